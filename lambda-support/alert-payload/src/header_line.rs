//! The one rule for a single-line, header-bound payload field.
//!
//! A field that reaches an email header (`Subject`, `To`, `Cc`, `X-ServiceNow-Number`), the
//! subject or the HTML `<title>` must be one visible line. Validation applies
//! [`check`] to every such field, and the renderer applies [`forbidden_char`] to the
//! rendered subject, so both enforce the same rule.
//!
//! # Example
//! ```
//! use alert_payload::header_line;
//!
//! assert_eq!(header_line::forbidden_char('\u{1b}'), Some("a control character"));
//! assert_eq!(header_line::forbidden_char('\u{202e}'), Some("a bidirectional formatting character"));
//! assert_eq!(header_line::forbidden_char('é'), None);
//! assert!(header_line::is_blank(" \u{200b}\u{feff} "));
//! assert!(!header_line::is_blank(" 🔥 "));
//! ```

use crate::NotificationError;

/// Why `c` may not appear in a single-line header field, or `None` when it may.
///
/// Rejected, with the class named in the error:
/// - every C0 control U+0000–U+001F (TAB, LF, CR, NUL, ESC, VT, FF, FS, …), DEL U+007F and
///   every C1 control U+0080–U+009F (including NEL U+0085): "a control character";
/// - U+2028 LINE SEPARATOR: "a line separator";
/// - U+2029 PARAGRAPH SEPARATOR: "a paragraph separator";
/// - the bidirectional embeddings and overrides U+202A–U+202E and isolates U+2066–U+2069:
///   "a bidirectional formatting character".
///
/// Every other character, including accented letters, CJK, emoji and a plain space, is
/// allowed.
pub fn forbidden_char(c: char) -> Option<&'static str> {
    match c {
        // CR, LF and NUL split or end a header; the other controls (ESC, NEL, VT, FF, ...) are
        // read as line breaks or terminal commands by some mail clients and log viewers.
        c if c.is_control() => Some("a control character"),
        '\u{2028}' => Some("a line separator"),
        '\u{2029}' => Some("a paragraph separator"),
        // These reorder what the reader sees, so a subject can display text it does not contain.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
            Some("a bidirectional formatting character")
        }
        _ => None,
    }
}

/// Whether `c` shows nothing: Unicode whitespace or a zero-width character (ZWSP U+200B,
/// ZWNJ U+200C, ZWJ U+200D, WORD JOINER U+2060, BOM U+FEFF).
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}'
        )
}

/// Whether `text` is empty once whitespace and zero-width characters are removed.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(is_invisible)
}

/// Checks `value` of the header-bound field `field` against the rule.
///
/// In this order, the first failure wins:
/// 1. no character for which [`forbidden_char`] answers; the error gives its code point
///    and its position as a 0-based character index, e.g.
///    `invalid alert.short_description: contains U+001B (a control character) at position 7; ...`;
/// 2. not blank (see [`is_blank`]);
/// 3. at most `max_chars` characters (Unicode scalar values, not bytes).
pub fn check(field: &str, value: &str, max_chars: usize) -> Result<(), NotificationError> {
    if let Some((position, c, class)) = value
        .chars()
        .enumerate()
        .find_map(|(i, c)| forbidden_char(c).map(|class| (i, c, class)))
    {
        return Err(NotificationError::validation(
            field,
            format!(
                "contains U+{:04X} ({class}) at position {position}; remove it, since a header \
                 field must be one line without CR, LF or NUL or any other control, separator or \
                 bidirectional formatting character",
                u32::from(c)
            ),
        ));
    }
    if is_blank(value) {
        return Err(NotificationError::validation(
            field,
            "must not be blank; whitespace and zero-width characters alone do not count",
        ));
    }
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(NotificationError::validation(
            field,
            format!("is {chars} characters, over the {max_chars} character limit; shorten it"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const FIELD: &str = "alert.short_description";

    /// One row per rejected character class: the error names the field, code point and position.
    #[rstest]
    #[case::tab("Disk\tfull", "U+0009 (a control character) at position 4")]
    #[case::cr("Disk full\r", "U+000D (a control character) at position 9")]
    #[case::lf("\nDisk full", "U+000A (a control character) at position 0")]
    #[case::nul("Disk\0full", "U+0000 (a control character) at position 4")]
    #[case::esc("Disk fu\u{1b}[31mll", "U+001B (a control character) at position 7")]
    #[case::vertical_tab("Disk\u{b}full", "U+000B (a control character) at position 4")]
    #[case::form_feed("Disk\u{c}full", "U+000C (a control character) at position 4")]
    #[case::file_separator("Disk\u{1c}full", "U+001C (a control character) at position 4")]
    #[case::unit_separator("Disk\u{1f}full", "U+001F (a control character) at position 4")]
    #[case::delete("Disk\u{7f}full", "U+007F (a control character) at position 4")]
    #[case::c1_first("Disk\u{80}full", "U+0080 (a control character) at position 4")]
    #[case::next_line("Disk\u{85}full", "U+0085 (a control character) at position 4")]
    #[case::c1_last("Disk\u{9f}full", "U+009F (a control character) at position 4")]
    #[case::line_separator("Disk\u{2028}full", "U+2028 (a line separator) at position 4")]
    #[case::paragraph_separator("Disk\u{2029}full", "U+2029 (a paragraph separator) at position 4")]
    #[case::left_to_right_embedding(
        "Disk\u{202a}full",
        "U+202A (a bidirectional formatting character) at position 4"
    )]
    #[case::right_to_left_override(
        "Disk\u{202e}lluf",
        "U+202E (a bidirectional formatting character) at position 4"
    )]
    #[case::left_to_right_isolate(
        "Disk\u{2066}full",
        "U+2066 (a bidirectional formatting character) at position 4"
    )]
    #[case::pop_directional_isolate(
        "Disk\u{2069}full",
        "U+2069 (a bidirectional formatting character) at position 4"
    )]
    #[case::position_counts_characters_not_bytes(
        "数据库🔥\u{1b}",
        "U+001B (a control character) at position 4"
    )]
    #[case::first_offender_is_reported(
        "ab\u{202e}c\u{1b}",
        "U+202E (a bidirectional formatting character) at position 2"
    )]
    #[case::control_wins_over_blank(" \u{200b}\t", "U+0009 (a control character) at position 2")]
    fn header_line_rejects_character_class(#[case] value: &str, #[case] expected: &str) {
        let err = check(FIELD, value, 160).expect_err("forbidden character");
        assert_eq!(err.field(), Some(FIELD));
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("invalid {FIELD}: contains {expected}")),
            "{message}"
        );
    }

    /// One row per way of being blank: whitespace and zero-width characters do not count.
    #[rstest]
    #[case::empty("")]
    #[case::spaces("   ")]
    #[case::no_break_space("\u{a0}")]
    #[case::ideographic_space("\u{3000}")]
    #[case::zero_width_space("\u{200b}")]
    #[case::zero_width_non_joiner("\u{200c}")]
    #[case::zero_width_joiner("\u{200d}")]
    #[case::word_joiner("\u{2060}")]
    #[case::byte_order_mark("\u{feff}")]
    #[case::mixed_invisibles(" \u{200b}\u{feff}\u{2060} \u{200d}")]
    fn header_line_rejects_blank(#[case] value: &str) {
        let err = check(FIELD, value, 160).expect_err("blank");
        assert_eq!(err.field(), Some(FIELD));
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("invalid {FIELD}: must not be blank")),
            "{message}"
        );
    }

    /// Accepted twins of the rejected rows: visible text of any script passes.
    #[rstest]
    #[case::ascii_with_space("Disk full")]
    #[case::accents("Zoë Ångström – état")]
    #[case::cjk("数据库不可用")]
    #[case::emoji("🚨 Disk full 🔥")]
    #[case::emoji_joined_by_zwj("👩\u{200d}💻 on call")]
    #[case::right_to_left_script("שרת הגיבוי לא עונה")]
    #[case::no_break_space_inside("10\u{a0}GB free")]
    #[case::leading_and_trailing_space(" Disk full ")]
    #[case::latin1_letters_after_c1("\u{a0}ÿ")]
    fn header_line_accepts_visible_text(#[case] value: &str) {
        check(FIELD, value, 160).expect("visible single-line text");
    }

    #[rstest]
    #[case::at_limit(160, true)]
    #[case::over_limit(161, false)]
    fn header_line_limit_counts_characters(#[case] chars: usize, #[case] accepted: bool) {
        // Four-byte characters: the byte length is four times the character count.
        let value = "🔥".repeat(chars);
        let result = check(FIELD, &value, 160);
        assert_eq!(result.is_ok(), accepted, "{result:?}");
        if let Err(err) = result {
            assert_eq!(err.field(), Some(FIELD));
            assert!(
                err.to_string()
                    .contains("161 characters, over the 160 character limit")
            );
        }
    }
}
