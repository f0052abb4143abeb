//! Strict JSON: the request body as the contract reads it, before any field is looked at.
//!
//! `serde_json` accepts three things that let two readers of one body disagree on what it
//! says, so the contract refuses them, each as a validation error naming the JSON path:
//! - a key that appears twice in one object (serde_json keeps the last, other parsers the
//!   first): the error names the second occurrence, e.g. `alert.number`;
//! - a `\u` escape of a lone surrogate (`\ud800` not followed by a low surrogate, or a low
//!   surrogate `\udc00`–`\udfff` on its own), which encodes no character: some parsers fail,
//!   others substitute U+FFFD;
//! - objects and arrays nested more than [`MAX_JSON_DEPTH`] (32) levels deep, counting the
//!   top-level object as 1; a valid payload needs 3 (`recipients.to`).
//!
//! Text that is not JSON at all is reported as such, with `serde_json`'s description.
//! Both lambdas apply [`check`]: the caller before it forwards a body, the callee before it
//! validates one, so both hops accept and refuse the same bodies.
//!
//! # Example
//! ```
//! use alert_payload::strict_json;
//!
//! assert!(strict_json::check(br#"{"alert": {"number": "INC0012345"}}"#).is_ok());
//! let err = strict_json::check(br#"{"alert": {"number": "a", "number": "b"}}"#).unwrap_err();
//! assert_eq!(err.field(), Some("alert.number"));
//! let err = strict_json::check(br#"{"alert": {"state": "\ud800"}}"#).unwrap_err();
//! assert_eq!(err.field(), Some("alert.state"));
//! ```

use std::collections::HashSet;

use crate::NotificationError;

/// Deepest nesting of objects and arrays accepted; the top-level object is level 1.
///
/// The payload itself needs 3 levels; 32 leaves room for any future shape while keeping
/// recursive readers far from their stack limits (serde_json stops at 128).
pub const MAX_JSON_DEPTH: usize = 32;

/// Checks that `raw` is one JSON value with no duplicate key, no lone surrogate escape and
/// no nesting deeper than [`MAX_JSON_DEPTH`].
///
/// The error's field is the JSON path of the offending key, string or container
/// (`alert.number`, `recipients.to[1]`), or `payload` for the body as a whole.
pub fn check(raw: &[u8]) -> Result<(), NotificationError> {
    let Ok(text) = std::str::from_utf8(raw) else {
        return Err(not_json(raw));
    };
    let mut scanner = Scanner {
        text,
        bytes: raw,
        pos: 0,
        path: Vec::new(),
    };
    let result = scanner.value(1).and_then(|()| {
        scanner.whitespace();
        if scanner.pos == raw.len() {
            Ok(())
        } else {
            Err(Fault::Syntax)
        }
    });
    match result {
        Ok(()) => Ok(()),
        Err(Fault::Syntax) => Err(not_json(raw)),
        Err(Fault::Strict { path, reason }) => Err(NotificationError::validation(path, reason)),
    }
}

/// The error for a body that is not JSON, in serde_json's words when it has them.
fn not_json(raw: &[u8]) -> NotificationError {
    let reason = match serde_json::from_slice::<serde::de::IgnoredAny>(raw) {
        Err(e) => format!("is not valid JSON: {e}"),
        // The scanner and serde_json disagree on the syntax; refuse rather than guess.
        Ok(_) => "is not valid JSON".to_owned(),
    };
    NotificationError::validation("payload", reason)
}

enum Fault {
    /// Not JSON; reported by [`not_json`].
    Syntax,
    /// JSON the contract refuses.
    Strict { path: String, reason: String },
}

enum Segment {
    Key(String),
    Index(usize),
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    path: Vec<Segment>,
}

impl Scanner<'_> {
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), Fault> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Fault::Syntax)
        }
    }

    fn strict(&self, reason: String) -> Fault {
        Fault::Strict {
            path: path_string(&self.path),
            reason,
        }
    }

    /// One value at nesting level `depth` (what a container here would be).
    fn value(&mut self, depth: usize) -> Result<(), Fault> {
        self.whitespace();
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(drop),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(Fault::Syntax),
        }
    }

    fn too_deep(&self, depth: usize) -> Result<(), Fault> {
        if depth > MAX_JSON_DEPTH {
            return Err(self.strict(format!(
                "nests objects and arrays {depth} levels deep here, more than the \
                 {MAX_JSON_DEPTH} allowed; the payload needs 3"
            )));
        }
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<(), Fault> {
        self.too_deep(depth)?;
        self.expect(b'{')?;
        self.whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        let mut keys = HashSet::new();
        loop {
            self.whitespace();
            if self.peek() != Some(b'"') {
                return Err(Fault::Syntax);
            }
            let key = self.string()?;
            self.path.push(Segment::Key(key.clone()));
            if !keys.insert(key) {
                return Err(self.strict(
                    "appears twice in one object; give each key once, since readers disagree \
                     on which copy counts"
                        .to_owned(),
                ));
            }
            self.whitespace();
            self.expect(b':')?;
            self.value(depth + 1)?;
            self.path.pop();
            self.whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Fault::Syntax),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), Fault> {
        self.too_deep(depth)?;
        self.expect(b'[')?;
        self.whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        let mut index = 0;
        loop {
            self.path.push(Segment::Index(index));
            self.value(depth + 1)?;
            self.path.pop();
            self.whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Fault::Syntax),
            }
            index += 1;
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), Fault> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Fault::Syntax)
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<(), Fault> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(Fault::Syntax),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(Fault::Syntax);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(Fault::Syntax);
            }
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16, Fault> {
        let digits = self.text.get(self.pos..self.pos + 4).ok_or(Fault::Syntax)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Fault::Syntax);
        }
        self.pos += 4;
        u16::from_str_radix(digits, 16).map_err(|_| Fault::Syntax)
    }

    /// A string from its opening quote, decoded; a key's path is not pushed yet, so a lone
    /// surrogate in a key is reported at the object holding it.
    fn string(&mut self) -> Result<String, Fault> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // Only ASCII bytes stop the run, so both ends are character boundaries.
            out.push_str(&self.text[start..self.pos]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.escape(out.chars().count())?;
                    out.push(c);
                }
                _ => return Err(Fault::Syntax),
            }
        }
    }

    /// The character of the escape after a backslash; `position` is its character index
    /// within the decoded string, for the error.
    fn escape(&mut self, position: usize) -> Result<char, Fault> {
        let Some(kind) = self.peek() else {
            return Err(Fault::Syntax);
        };
        self.pos += 1;
        let c = match kind {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                match unit {
                    0xD800..=0xDBFF => {
                        let low = if self.bytes[self.pos..].starts_with(b"\\u") {
                            let save = self.pos;
                            self.pos += 2;
                            let low = self.hex4()?;
                            if (0xDC00..=0xDFFF).contains(&low) {
                                Some(low)
                            } else {
                                self.pos = save;
                                None
                            }
                        } else {
                            None
                        };
                        let Some(low) = low else {
                            return Err(self.lone_surrogate(unit, position));
                        };
                        let code = 0x10000
                            + ((u32::from(unit) - 0xD800) << 10)
                            + (u32::from(low) - 0xDC00);
                        char::from_u32(code).ok_or(Fault::Syntax)?
                    }
                    0xDC00..=0xDFFF => return Err(self.lone_surrogate(unit, position)),
                    unit => char::from_u32(u32::from(unit)).ok_or(Fault::Syntax)?,
                }
            }
            _ => return Err(Fault::Syntax),
        };
        Ok(c)
    }

    fn lone_surrogate(&self, unit: u16, position: usize) -> Fault {
        self.strict(format!(
            "contains the escape \\u{unit:04x} at position {position}, a lone UTF-16 surrogate \
             that encodes no character; send the character itself or a complete surrogate pair"
        ))
    }
}

/// `alert.number`, `recipients.to[1]`, `payload` for the root; a key that is not a plain
/// name is quoted, e.g. `alert["a b"]`.
fn path_string(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key)
                if !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Key(key) => {
                let quoted = serde_json::to_string(key).unwrap_or_else(|_| format!("{key:?}"));
                out.push_str(&format!("[{quoted}]"));
            }
            Segment::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    if out.is_empty() {
        "payload".to_owned()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn nested(depth: usize) -> String {
        // `depth` levels in all: the top-level object, then arrays under key "a".
        format!(
            "{{\"a\": {}{}}}",
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        )
    }

    /// One row per strict rule: the field is the JSON path, the reason says what.
    #[rstest]
    #[case::duplicate_top_level_key(r#"{"alert": {}, "alert": {}}"#, "alert", "appears twice")]
    #[case::duplicate_nested_key(
        r#"{"alert": {"number": "INC0012345", "priority": 1, "number": "INC0099999"}}"#,
        "alert.number",
        "appears twice"
    )]
    #[case::duplicate_key_spelled_with_an_escape(
        r#"{"alert": {"state": "New", "st\u0061te": "Closed"}}"#,
        "alert.state",
        "appears twice"
    )]
    #[case::duplicate_key_inside_an_array(
        r#"{"recipients": {"to": ["a@example.com", {"x": 1, "x": 2}]}}"#,
        "recipients.to[1].x",
        "appears twice"
    )]
    #[case::odd_key_is_quoted(r#"{"a b": 1, "a b": 2}"#, r#"["a b"]"#, "appears twice")]
    #[case::lone_high_surrogate(
        r#"{"alert": {"short_description": "Disk \ud800 full"}}"#,
        "alert.short_description",
        "\\ud800 at position 5, a lone UTF-16 surrogate"
    )]
    #[case::lone_low_surrogate(
        r#"{"alert": {"short_description": "\udfff"}}"#,
        "alert.short_description",
        "\\udfff at position 0, a lone UTF-16 surrogate"
    )]
    #[case::high_surrogate_then_another_high(
        r#"{"alert": {"state": "\ud83d\ud83d"}}"#,
        "alert.state",
        "\\ud83d at position 0"
    )]
    #[case::high_surrogate_at_the_end_of_a_string(
        r#"{"recipients": {"to": ["x\uD800"]}}"#,
        "recipients.to[0]",
        "\\ud800 at position 1"
    )]
    #[case::lone_surrogate_in_a_key(
        r#"{"alert": {"\ud800": 1}}"#,
        "alert",
        "\\ud800 at position 0"
    )]
    fn strict_rule_is_a_validation_error_naming_the_path(
        #[case] body: &str,
        #[case] field: &str,
        #[case] reason: &str,
    ) {
        let err = check(body.as_bytes()).expect_err("strict rule broken");
        assert_eq!(err.field(), Some(field), "{err}");
        assert!(err.to_string().contains(reason), "{err}");
    }

    #[test]
    fn nesting_at_the_limit_is_accepted_and_one_more_level_is_not() {
        check(nested(MAX_JSON_DEPTH).as_bytes()).expect("32 levels");
        let err = check(nested(MAX_JSON_DEPTH + 1).as_bytes()).expect_err("33 levels");
        // The 33rd level is the 32nd array under "a": index 0 thirty-one times.
        assert_eq!(err.field(), Some(format!("a{}", "[0]".repeat(31)).as_str()));
        assert!(err.to_string().contains("33 levels deep"), "{err}");
    }

    #[test]
    fn nesting_far_beyond_serde_json_s_own_limit_is_a_validation_error() {
        let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = check(body.as_bytes()).expect_err("too deep");
        assert!(err.to_string().contains("33 levels deep"), "{err}");
    }

    /// Accepted twins: what looks close to a rule but keeps it.
    #[rstest]
    #[case::same_key_in_sibling_objects(r#"{"a": {"x": 1}, "b": {"x": 1}}"#)]
    #[case::keys_differing_in_case(r#"{"alert": {"state": "New", "State": "x"}}"#)]
    #[case::surrogate_pair(r#"{"alert": {"short_description": "Disk \ud83d\udd25 full"}}"#)]
    #[case::surrogate_pair_upper_case(r#"{"s": "\uD83D\uDD25"}"#)]
    #[case::escaped_backslash_before_u(r#"{"s": "\\ud800"}"#)]
    #[case::every_escape(r#"{"s": "\" \\ \/ \b \f \n \r \t \u0000 \u00e9 \uffff"}"#)]
    #[case::numbers(r#"[0, -1, 1.5, 2e10, -3.25E-2, 10]"#)]
    #[case::literals_and_whitespace(" \t\r\n[true, false, null] \n")]
    #[case::empty_containers(r#"{"a": {}, "b": []}"#)]
    fn strict_json_accepts(#[case] body: &str) {
        check(body.as_bytes()).expect("strict JSON");
        serde_json::from_str::<serde_json::Value>(body).expect("serde_json agrees");
    }

    #[rstest]
    #[case::empty(b"")]
    #[case::not_json(b"not json")]
    #[case::trailing_garbage(b"{} x")]
    #[case::unclosed_object(br#"{"a": 1"#)]
    #[case::trailing_comma(br#"[1, 2,]"#)]
    #[case::leading_zero(b"01")]
    #[case::bad_escape(br#""\x41""#)]
    #[case::short_unicode_escape(br#""\u12""#)]
    #[case::raw_control_in_string(b"\"a\x01b\"")]
    #[case::invalid_utf8(b"\"\xff\"")]
    fn text_that_is_not_json_is_a_payload_error(#[case] body: &[u8]) {
        let err = check(body).expect_err("not JSON");
        assert_eq!(err.field(), Some("payload"), "{err}");
        assert!(err.to_string().contains("is not valid JSON"), "{err}");
        assert!(serde_json::from_slice::<serde_json::Value>(body).is_err());
    }
}
