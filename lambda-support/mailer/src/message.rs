//! The email to send and how it becomes a MIME message.

use std::fmt;

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use lettre::{
    Address, Message,
    message::{
        Mailbox, MultiPart,
        header::{HeaderName, HeaderValue},
    },
};
use sha2::{Digest, Sha256};

use crate::MailerError;

/// Domain part of every generated Message-ID.
pub const MESSAGE_ID_DOMAIN: &str = "servicenow-alert";

/// Name of the header that carries the Lambda invocation's X-Ray trace id.
pub const HEADER_TRACE_ID: &str = "X-Amzn-Trace-Id";

/// A deterministic Message-ID, so a retried invocation produces the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    /// Derives `<32 hex digits@servicenow-alert>` from the SHA-256 of `parts`.
    ///
    /// Each part is length-prefixed in the hash input, so `["ab", "c"]` and `["a", "bc"]`
    /// give different ids.
    ///
    /// # Example
    /// ```
    /// use mailer::MessageId;
    ///
    /// let id = MessageId::derive(["INC0012345", "9d385017c611228701d22104cc95c371", "New", ""]);
    /// assert_eq!(id, MessageId::derive(["INC0012345", "9d385017c611228701d22104cc95c371", "New", ""]));
    /// assert!(id.as_str().ends_with("@servicenow-alert>"));
    /// ```
    pub fn derive<'a>(parts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hex::encode(hasher.finalize());
        Self(format!("<{}@{MESSAGE_ID_DOMAIN}>", &digest[..32]))
    }

    /// The id with its angle brackets, as it appears in the header.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One email: recipients, rendered parts and identifying headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// Primary recipients (bare addresses), at least one.
    pub to: Vec<String>,
    /// Copied recipients (bare addresses).
    pub cc: Vec<String>,
    /// One-line subject; anything but plain ASCII is sent as RFC 2047 encoded words, so a
    /// reader decodes exactly this text.
    pub subject: String,
    /// Plain text part.
    pub text: String,
    /// HTML part.
    pub html: String,
    /// The Message-ID header.
    pub message_id: MessageId,
    /// Further headers, e.g. `X-ServiceNow-Number`; values must be single-line, and are
    /// encoded like the subject.
    pub headers: Vec<(String, String)>,
}

/// Rewrites CRLF, bare CR and bare LF alike to CRLF.
///
/// SMTP ends DATA at `CRLF.CRLF`; with every line ending in CRLF, lettre's dot-stuffing
/// sees every line start, so payload text can never end the message early.
pub fn normalize_line_endings(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    out
}

fn single_line(field: &str, value: &str) -> Result<(), MailerError> {
    if value.contains(['\r', '\n', '\0']) {
        return Err(MailerError::InvalidEmail {
            field: field.to_owned(),
            reason: "must not contain CR, LF or NUL characters".to_owned(),
        });
    }
    Ok(())
}

/// Longest UTF-8 chunk per encoded word: 42 bytes are 56 base64 characters, so a word
/// `=?utf-8?b?…?=` is 68 characters and a folded line stays within RFC 5322's 78.
const ENCODED_WORD_BYTES: usize = 42;

/// Whether `value` can go into a header as it is (folded at its spaces when long): a reader
/// then sees exactly it.
///
/// Only plain printable ASCII qualifies, without `=?`, without a space at either end and
/// without two spaces in a row. Anything else is encoded by [`encode_header_text`]: readers
/// decode text that looks like an RFC 2047 encoded word (`=?utf-8?b?…?=`), drop the
/// whitespace between encoded words, and trim whitespace at either end, so such text would
/// not read back as it was written.
fn is_plain_header_text(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        && !value.contains("=?")
        && !value.starts_with(' ')
        && !value.ends_with(' ')
        && !value.contains("  ")
}

/// The header value a reader decodes to exactly `value`.
///
/// Plain text (see [`is_plain_header_text`]) is sent as it is, folded where a line would
/// pass 78 characters by turning one space into CRLF and that space, which unfolding
/// undoes. Anything else is sent whole as RFC 2047 `B` encoded words of UTF-8, one per
/// folded line, never splitting a character.
///
/// Lettre's own encoder leaves ASCII words such as `=?utf-8?b?SGk=?=` as they are, which a
/// reader then decodes to `Hi`, and encodes only the non-ASCII words, so the spaces between
/// two of them vanish; hence this encoder for every header that carries payload text.
pub(crate) fn encode_header_text(name: &str, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    if is_plain_header_text(value) {
        let mut out = String::with_capacity(value.len() + 8);
        let mut line = name.len() + 2;
        for (index, word) in value.split(' ').enumerate() {
            if index > 0 {
                if line + 1 + word.len() > 78 {
                    out.push_str("\r\n ");
                    line = 1;
                } else {
                    out.push(' ');
                    line += 1;
                }
            }
            out.push_str(word);
            line += word.len();
        }
        return out;
    }
    let mut words = Vec::new();
    let mut chunk_start = 0;
    let mut chunk_end = 0;
    for (index, c) in value.char_indices() {
        let end = index + c.len_utf8();
        if end - chunk_start > ENCODED_WORD_BYTES {
            words.push(encoded_word(&value[chunk_start..chunk_end]));
            chunk_start = chunk_end;
        }
        chunk_end = end;
    }
    words.push(encoded_word(&value[chunk_start..chunk_end]));
    words.join("\r\n ")
}

fn encoded_word(text: &str) -> String {
    format!("=?utf-8?b?{}?=", BASE64.encode(text))
}

fn parse_address(field: &str, raw: &str) -> Result<Address, MailerError> {
    single_line(field, raw)?;
    raw.parse::<Address>()
        .map_err(|e| MailerError::InvalidEmail {
            field: field.to_owned(),
            reason: format!("is not an email address: {e}"),
        })
}

/// A header whose value readers decode to exactly `value` (see [`encode_header_text`]).
///
/// The caller has checked `value` with [`single_line`]; the encoded form is printable ASCII
/// folded with CRLF and a space only, which is what lettre requires of a pre-encoded value.
fn text_header(name: HeaderName, value: &str) -> HeaderValue {
    let encoded = encode_header_text(&name, value);
    HeaderValue::dangerous_new_pre_encoded(name, value.to_owned(), encoded)
}

/// Headers the builder sets itself; an extra header must not duplicate them.
const RESERVED_HEADERS: [&str; 9] = [
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "message-id",
    "date",
    "mime-version",
    "content-type",
];

/// Parses the sender mailbox (e.g. `Alerts <alerts@example.com>`), as `MAIL_FROM` gives it.
pub(crate) fn parse_mail_from(mail_from: &str) -> Result<Mailbox, MailerError> {
    mail_from.parse().map_err(|e| MailerError::Config {
        name: "MAIL_FROM",
        reason: format!("{mail_from:?} is not a mailbox: {e}"),
    })
}

impl OutgoingEmail {
    /// The message exactly as [`crate::Mailer`] sends it from `mail_from`: the
    /// bytes after SMTP `DATA` (its `Date` is the time of the call).
    pub fn to_mime(&self, mail_from: &str) -> Result<Vec<u8>, MailerError> {
        Ok(self.to_message(&parse_mail_from(mail_from)?)?.formatted())
    }

    /// Envelope recipients in order, `to` then `cc`, parsed.
    pub(crate) fn recipients(&self) -> Result<Vec<Address>, MailerError> {
        let to = self
            .to
            .iter()
            .enumerate()
            .map(|(i, a)| parse_address(&format!("to[{i}]"), a));
        let cc = self
            .cc
            .iter()
            .enumerate()
            .map(|(i, a)| parse_address(&format!("cc[{i}]"), a));
        to.chain(cc).collect()
    }

    /// Builds the MIME message: multipart/alternative text + HTML, UTF-8, CRLF line endings.
    pub(crate) fn to_message(&self, from: &Mailbox) -> Result<Message, MailerError> {
        if self.to.is_empty() {
            return Err(MailerError::InvalidEmail {
                field: "to".to_owned(),
                reason: "must list at least one address".to_owned(),
            });
        }
        single_line("subject", &self.subject)?;
        single_line("message_id", self.message_id.as_str())?;
        let mut builder = Message::builder()
            .from(from.clone())
            .raw_header(text_header(
                HeaderName::new_from_ascii_str("Subject"),
                &self.subject,
            ))
            .message_id(Some(self.message_id.as_str().to_owned()));
        for (i, address) in self.to.iter().enumerate() {
            builder = builder.to(Mailbox::new(
                None,
                parse_address(&format!("to[{i}]"), address)?,
            ));
        }
        for (i, address) in self.cc.iter().enumerate() {
            builder = builder.cc(Mailbox::new(
                None,
                parse_address(&format!("cc[{i}]"), address)?,
            ));
        }
        for (name, value) in &self.headers {
            let field = format!("header {name}");
            single_line(&field, value)?;
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(MailerError::InvalidEmail {
                    field,
                    reason: "is set by the mailer itself".to_owned(),
                });
            }
            let header_name = HeaderName::new_from_ascii(name.clone()).map_err(|_| {
                MailerError::InvalidEmail {
                    field: field.clone(),
                    reason: "is not a valid header name".to_owned(),
                }
            })?;
            builder = builder.raw_header(text_header(header_name, value));
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                normalize_line_endings(&self.text),
                normalize_line_endings(&self.html),
            ))
            .map_err(|e| MailerError::InvalidEmail {
                field: "message".to_owned(),
                reason: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::bare_lf("a\nb", "a\r\nb")]
    #[case::bare_cr("a\rb", "a\r\nb")]
    #[case::crlf_kept("a\r\nb", "a\r\nb")]
    #[case::lf_cr_is_two_breaks("a\n\rb", "a\r\n\r\nb")]
    #[case::dot_line("x\n.\ny", "x\r\n.\r\ny")]
    #[case::trailing_cr("a\r", "a\r\n")]
    #[case::no_breaks("plain", "plain")]
    fn line_endings_become_crlf(#[case] input: &str, #[case] expected: &str) {
        assert_eq!(normalize_line_endings(input), expected);
    }

    #[test]
    fn message_id_is_stable_and_shaped() {
        let id = MessageId::derive(["INC0012345", "9d385017c611228701d22104cc95c371", "New", "t"]);
        let again =
            MessageId::derive(["INC0012345", "9d385017c611228701d22104cc95c371", "New", "t"]);
        assert_eq!(id, again);
        let inner = id
            .as_str()
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix("@servicenow-alert>"))
            .expect("<hex@servicenow-alert>");
        assert_eq!(inner.len(), 32);
        assert!(
            inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[rstest]
    #[case::state_changes(["INC0012345", "id", "Resolved", "t"])]
    #[case::update_time_changes(["INC0012345", "id", "New", "t2"])]
    #[case::boundary_shift(["INC001234", "5id", "New", "t"])]
    #[case::separator_in_value(["INC0012345", "id\0New", "", "t"])]
    fn message_id_differs_when_any_part_differs(#[case] parts: [&str; 4]) {
        let base = MessageId::derive(["INC0012345", "id", "New", "t"]);
        assert_ne!(MessageId::derive(parts), base);
    }

    #[test]
    fn message_id_matches_independent_sha256() {
        // Length-prefixed input computed by hand: u64 big-endian length, then bytes.
        let mut input = Vec::new();
        for part in ["ab", "c"] {
            input.extend_from_slice(&(part.len() as u64).to_be_bytes());
            input.extend_from_slice(part.as_bytes());
        }
        let expected = hex::encode(Sha256::digest(&input));
        assert_eq!(
            MessageId::derive(["ab", "c"]).as_str(),
            format!("<{}@servicenow-alert>", &expected[..32])
        );
    }

    fn email() -> OutgoingEmail {
        OutgoingEmail {
            to: vec!["oncall@example.com".into()],
            cc: vec![],
            subject: "[P1] INC0012345: down".into(),
            text: "text".into(),
            html: "<p>html</p>".into(),
            message_id: MessageId::derive(["x"]),
            headers: vec![("X-ServiceNow-Number".into(), "INC0012345".into())],
        }
    }

    fn from() -> Mailbox {
        "Alerts <alerts@example.com>".parse().expect("mailbox")
    }

    type Mutation = fn(&mut OutgoingEmail);

    #[rstest]
    #[case::subject_with_lf(|e: &mut OutgoingEmail| e.subject.push_str("\nBcc: x@evil.test"), "subject")]
    #[case::subject_with_cr(|e: &mut OutgoingEmail| e.subject.push('\r'), "subject")]
    #[case::header_value_with_crlf(|e: &mut OutgoingEmail| e.headers[0].1.push_str("\r\nBcc: x@evil.test"), "header X-ServiceNow-Number")]
    #[case::header_value_with_nul(|e: &mut OutgoingEmail| e.headers[0].1.push('\0'), "header X-ServiceNow-Number")]
    #[case::header_name_invalid(|e: &mut OutgoingEmail| e.headers.push(("X Bad".into(), "v".into())), "header X Bad")]
    #[case::header_reserved(|e: &mut OutgoingEmail| e.headers.push(("Bcc".into(), "x@evil.test".into())), "header Bcc")]
    #[case::to_with_lf(|e: &mut OutgoingEmail| e.to[0].push_str("\nBcc: x@evil.test"), "to[0]")]
    #[case::to_malformed(|e: &mut OutgoingEmail| e.to[0] = "not an address".into(), "to[0]")]
    #[case::cc_malformed(|e: &mut OutgoingEmail| e.cc = vec!["@example.com".into()], "cc[0]")]
    #[case::to_empty(|e: &mut OutgoingEmail| e.to.clear(), "to")]
    fn unsafe_email_is_rejected_before_sending(#[case] spoil: Mutation, #[case] field: &str) {
        let mut email = email();
        spoil(&mut email);
        let err = email.to_message(&from()).expect_err("unsafe email");
        assert!(
            matches!(&err, MailerError::InvalidEmail { field: f, .. } if f == field),
            "{err}"
        );
    }

    /// What a reader sees: the subject and the extra header as mail-parser decodes them
    /// from the raw bytes, and every raw header line.
    fn read_back(subject: &str) -> (String, String, String) {
        let mut email = email();
        email.subject = subject.to_owned();
        email.headers[0].1 = subject.to_owned();
        let raw = email.to_message(&from()).expect("valid").formatted();
        // A reader decodes every unstructured header, custom ones included (mail-parser
        // applies its default only once some header has its own parser).
        let parsed = mail_parser::MessageParser::new()
            .with_minimal_headers()
            .with_message_ids()
            .default_header_text()
            .parse(&raw)
            .expect("parsable");
        let header = parsed
            .header("X-ServiceNow-Number")
            .and_then(|h| h.as_text())
            .unwrap_or_default()
            .to_owned();
        let text = String::from_utf8(raw.clone()).expect("ascii message");
        let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
        (
            parsed.subject().unwrap_or_default().to_owned(),
            header,
            head,
        )
    }

    /// Whatever the text, a reader decodes the header to exactly that text.
    #[rstest]
    #[case::plain("[P1] INC0012345: Disk full")]
    #[case::encoded_word_lookalike("[P1] INC0012345: =?utf-8?b?SGVsbG8=?=")]
    #[case::q_encoded_word_lookalike("=?iso-8859-1?q?Caf=E9?=")]
    #[case::lookalike_between_non_ascii("Zoë =?utf-8?q?x?= ünï")]
    #[case::non_ascii_words_keep_their_spaces("Zoë ünï 数据库 🔥")]
    #[case::leading_space(" Disk full")]
    #[case::trailing_space("Disk full ")]
    #[case::double_spaces("Disk  full   now")]
    #[case::only_an_equals_question("a=?b")]
    #[case::no_break_spaces_at_the_ends("\u{a0}Disk full\u{a0}")]
    #[case::zero_width_space("Disk\u{200b}full")]
    #[case::tab("Disk\tfull")]
    #[case::long_ascii_that_would_be_folded(
        "[P1] INC0012345: aaaaaaaaaa bbbbbbbbbbbbbbbbbbb cccccccccccccccccccc ddddddddddddddddddddd eeeeeeeeeeeeeeeeeee fffffffff"
    )]
    #[case::long_cjk(
        "数据库数据库数据库数据库数据库数据库数据库数据库数据库数据库数据库数据库数据库数据库"
    )]
    #[case::emoji_at_a_chunk_boundary("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa🔥🔥🔥")]
    fn header_text_reads_back_exactly(#[case] text: &str) {
        let (subject, header, head) = read_back(text);
        assert_eq!(subject, text, "{head}");
        assert_eq!(header, text, "{head}");
        // One Subject line (plus its folds), and folds never exceed 78 characters.
        assert_eq!(head.matches("\r\nSubject: ").count(), 1, "{head}");
        for line in head.split("\r\n").filter(|l| l.starts_with(' ')) {
            assert!(line.len() <= 78, "{line:?}");
        }
    }

    #[test]
    fn encoded_word_lookalike_is_itself_encoded() {
        let (_, _, head) = read_back("=?utf-8?b?SGVsbG8=?=");
        assert!(!head.contains("SGVsbG8=?="), "sent as typed: {head}");
        // base64 of the whole text, as one encoded word.
        assert!(
            head.contains("Subject: =?utf-8?b?PT91dGYtOD9iP1NHVnNiRzg9Pz0=?="),
            "{head}"
        );
    }

    #[test]
    fn long_plain_ascii_without_spaces_stays_plain() {
        let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        assert_eq!(encode_header_text("X-Amzn-Trace-Id", trace), trace);
    }

    #[test]
    fn plain_ascii_is_sent_as_typed() {
        let (_, _, head) = read_back("[P1] INC0012345: Disk full");
        assert!(
            head.contains("\r\nSubject: [P1] INC0012345: Disk full\r\n"),
            "{head}"
        );
    }

    #[test]
    fn formatted_message_has_expected_headers_and_crlf_only() {
        let mut email = email();
        email.text = "line one\nline two\r".into();
        let raw = email.to_message(&from()).expect("valid").formatted();
        let raw = String::from_utf8(raw).expect("ascii message");
        assert!(raw.contains("X-ServiceNow-Number: INC0012345\r\n"), "{raw}");
        assert!(raw.contains("Message-ID: <"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        // Every LF is preceded by CR: no bare line ending can reach the wire.
        let bytes = raw.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'\n' {
                assert_eq!(bytes[i - 1], b'\r', "bare LF at byte {i}");
            }
            if *b == b'\r' {
                assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR at byte {i}");
            }
        }
    }
}
