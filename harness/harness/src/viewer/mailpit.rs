//! Mailpit's REST API shapes (`/api/v1`), filled from captured emails, so
//! Mailpit's existing clients read the harness's inbox unchanged.
//!
//! Field names and meanings follow Mailpit's `storage.MessageSummary`,
//! `storage.Message` and `apiv1.MessagesSummary`. The harness has no tags,
//! no SMTP authentication and no List-Unsubscribe handling, so those fields
//! are always empty. Message IDs are the capture server's sequence numbers.

use std::collections::BTreeMap;

use mail_parser::{MessageParser, MimeHeaders as _};
use scenario::CapturedEmail;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// The `ID` that names the newest message in Mailpit's API.
pub const LATEST: &str = "latest";

/// How many characters of the body a summary's snippet keeps (Mailpit's limit).
const SNIPPET_CHARS: usize = 250;

/// The ID of a captured email in the API.
pub fn id_of(email: &CapturedEmail) -> String {
    email.seq.to_string()
}

/// One mailbox, as Go's `net/mail.Address` serialises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailAddress {
    /// The display name, possibly empty.
    #[serde(rename = "Name")]
    pub name: String,
    /// The address.
    #[serde(rename = "Address")]
    pub address: String,
}

/// An email in a list (`storage.MessageSummary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageSummary {
    /// The ID in this API.
    #[serde(rename = "ID")]
    pub id: String,
    /// The `Message-ID` header, without angle brackets.
    #[serde(rename = "MessageID")]
    pub message_id: String,
    /// Whether the message was opened through the API or the page.
    #[serde(rename = "Read")]
    pub read: bool,
    /// The sender.
    #[serde(rename = "From")]
    pub from: Option<MailAddress>,
    /// The `To` mailboxes.
    #[serde(rename = "To")]
    pub to: Vec<MailAddress>,
    /// The `Cc` mailboxes.
    #[serde(rename = "Cc")]
    pub cc: Vec<MailAddress>,
    /// The `Bcc` mailboxes.
    #[serde(rename = "Bcc")]
    pub bcc: Vec<MailAddress>,
    /// The `Reply-To` mailboxes.
    #[serde(rename = "ReplyTo")]
    pub reply_to: Vec<MailAddress>,
    /// The decoded subject.
    #[serde(rename = "Subject")]
    pub subject: String,
    /// When the capture server accepted it, RFC 3339.
    #[serde(rename = "Created")]
    pub created: String,
    /// The SMTP user; the capture server takes no authentication.
    #[serde(rename = "Username")]
    pub username: String,
    /// Mailpit's tags; the harness has none.
    #[serde(rename = "Tags")]
    pub tags: Vec<String>,
    /// The raw message's size in bytes.
    #[serde(rename = "Size")]
    pub size: u64,
    /// How many attachments it has.
    #[serde(rename = "Attachments")]
    pub attachments: usize,
    /// The start of its text, whitespace collapsed.
    #[serde(rename = "Snippet")]
    pub snippet: String,
}

/// A page of emails (`apiv1.MessagesSummary`), for both the list and search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessagesSummary {
    /// Every message in the mailbox.
    pub total: u64,
    /// The unread ones.
    pub unread: u64,
    /// How many this page holds (Mailpit keeps it for older clients).
    pub count: u64,
    /// Every message matching the query (the mailbox for a list).
    pub messages_count: u64,
    /// The unread ones among them.
    pub messages_unread: u64,
    /// The page's offset.
    pub start: usize,
    /// Every tag in use; none here.
    pub tags: Vec<String>,
    /// The page, newest first.
    pub messages: Vec<MessageSummary>,
}

/// An attachment or inline part (`storage.Attachment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// The MIME part's position in the message.
    #[serde(rename = "PartID")]
    pub part_id: String,
    /// Its file name.
    #[serde(rename = "FileName")]
    pub file_name: String,
    /// Its content type.
    #[serde(rename = "ContentType")]
    pub content_type: String,
    /// Its `Content-ID`.
    #[serde(rename = "ContentID")]
    pub content_id: String,
    /// Its decoded size in bytes.
    #[serde(rename = "Size")]
    pub size: u64,
    /// Its checksums.
    #[serde(rename = "Checksums")]
    pub checksums: Checksums,
}

/// An attachment's checksums; only SHA-256 is computed (MD5 and SHA-1 are empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checksums {
    /// Not computed.
    #[serde(rename = "MD5")]
    pub md5: String,
    /// Not computed.
    #[serde(rename = "SHA1")]
    pub sha1: String,
    /// The SHA-256 of the decoded content, in hex.
    #[serde(rename = "SHA256")]
    pub sha256: String,
}

/// Mailpit's summary of the `List-Unsubscribe` header; always empty here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListUnsubscribe {
    /// The header.
    #[serde(rename = "Header")]
    pub header: String,
    /// Its links.
    #[serde(rename = "Links")]
    pub links: Vec<String>,
    /// Problems with them.
    #[serde(rename = "Errors")]
    pub errors: String,
    /// `List-Unsubscribe-Post`.
    #[serde(rename = "HeaderPost")]
    pub header_post: String,
}

/// One email in full (`storage.Message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// The ID in this API.
    #[serde(rename = "ID")]
    pub id: String,
    /// The `Message-ID` header, without angle brackets.
    #[serde(rename = "MessageID")]
    pub message_id: String,
    /// The sender.
    #[serde(rename = "From")]
    pub from: Option<MailAddress>,
    /// The `To` mailboxes.
    #[serde(rename = "To")]
    pub to: Vec<MailAddress>,
    /// The `Cc` mailboxes.
    #[serde(rename = "Cc")]
    pub cc: Vec<MailAddress>,
    /// The `Bcc` mailboxes.
    #[serde(rename = "Bcc")]
    pub bcc: Vec<MailAddress>,
    /// The `Reply-To` mailboxes.
    #[serde(rename = "ReplyTo")]
    pub reply_to: Vec<MailAddress>,
    /// `Return-Path`, else the sender's address.
    #[serde(rename = "ReturnPath")]
    pub return_path: String,
    /// The decoded subject.
    #[serde(rename = "Subject")]
    pub subject: String,
    /// Always empty.
    #[serde(rename = "ListUnsubscribe")]
    pub list_unsubscribe: ListUnsubscribe,
    /// The `Date` header, else when it was received, RFC 3339.
    #[serde(rename = "Date")]
    pub date: String,
    /// Always empty.
    #[serde(rename = "Tags")]
    pub tags: Vec<String>,
    /// Always empty.
    #[serde(rename = "Username")]
    pub username: String,
    /// The text part.
    #[serde(rename = "Text")]
    pub text: String,
    /// The HTML part.
    #[serde(rename = "HTML")]
    pub html: String,
    /// The raw message's size in bytes.
    #[serde(rename = "Size")]
    pub size: u64,
    /// Inline parts with a name or a Content-ID.
    #[serde(rename = "Inline")]
    pub inline: Vec<Attachment>,
    /// Attachments.
    #[serde(rename = "Attachments")]
    pub attachments: Vec<Attachment>,
}

/// Milliseconds since the Unix epoch as RFC 3339 in UTC.
pub fn rfc3339(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{ms}ms"))
}

/// What the API says about one email, read from its raw bytes with
/// mail-parser; an unparsable message falls back to what the capture server
/// recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The full message.
    pub message: Message,
    /// How many attachments it has.
    attachment_count: usize,
}

impl Parsed {
    /// Parses a captured email.
    pub fn of(email: &CapturedEmail) -> Self {
        let fallback = |address: &String| MailAddress {
            name: String::new(),
            address: address.clone(),
        };
        let mut message = Message {
            id: id_of(email),
            message_id: String::new(),
            from: (!email.from.is_empty()).then(|| fallback(&email.from)),
            to: email.to.iter().map(fallback).collect(),
            cc: email.cc.iter().map(fallback).collect(),
            bcc: Vec::new(),
            reply_to: Vec::new(),
            return_path: email.from.clone(),
            subject: email.subject.clone(),
            list_unsubscribe: ListUnsubscribe::default(),
            date: rfc3339(email.received_at_ms),
            tags: Vec::new(),
            username: String::new(),
            text: email.text.clone().unwrap_or_default(),
            html: email.html.clone().unwrap_or_default(),
            size: email.raw.len() as u64,
            inline: Vec::new(),
            attachments: Vec::new(),
        };
        let Some(parsed) = MessageParser::default().parse(&email.raw) else {
            return Self {
                message,
                attachment_count: 0,
            };
        };
        let list = |address: Option<&mail_parser::Address<'_>>| -> Vec<MailAddress> {
            address
                .map(|list| {
                    list.iter()
                        .map(|a| MailAddress {
                            name: a.name().unwrap_or_default().to_owned(),
                            address: a.address().unwrap_or_default().to_owned(),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        message.message_id = parsed.message_id().unwrap_or_default().to_owned();
        message.from = list(parsed.from()).into_iter().next().or(message.from);
        message.to = list(parsed.to());
        message.cc = list(parsed.cc());
        message.bcc = list(parsed.bcc());
        message.reply_to = list(parsed.reply_to());
        if let Some(path) = parsed.return_address() {
            message.return_path = path.to_owned();
        } else if let Some(from) = &message.from {
            message.return_path = from.address.clone();
        }
        if let Some(date) = parsed.date() {
            message.date = date.to_rfc3339();
        }
        for part in parsed.attachments() {
            let summary = Attachment {
                part_id: parsed
                    .parts
                    .iter()
                    .position(|p| std::ptr::eq(p, part))
                    .map(|i| i.to_string())
                    .unwrap_or_default(),
                file_name: part.attachment_name().unwrap_or_default().to_owned(),
                content_type: part
                    .content_type()
                    .map(|t| match t.subtype() {
                        Some(sub) => format!("{}/{sub}", t.ctype()),
                        None => t.ctype().to_owned(),
                    })
                    .unwrap_or_default(),
                content_id: part.content_id().unwrap_or_default().to_owned(),
                size: part.len() as u64,
                checksums: Checksums {
                    md5: String::new(),
                    sha1: String::new(),
                    sha256: hex::encode(Sha256::digest(part.contents())),
                },
            };
            let inline = part
                .content_disposition()
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
            if inline {
                message.inline.push(summary);
            } else {
                message.attachments.push(summary);
            }
        }
        let attachment_count = message.attachments.len();
        Self {
            message,
            attachment_count,
        }
    }

    /// The list entry for it.
    pub fn summary(&self, email: &CapturedEmail, read: bool) -> MessageSummary {
        let m = &self.message;
        MessageSummary {
            id: m.id.clone(),
            message_id: m.message_id.clone(),
            read,
            from: m.from.clone(),
            to: m.to.clone(),
            cc: m.cc.clone(),
            bcc: m.bcc.clone(),
            reply_to: m.reply_to.clone(),
            subject: m.subject.clone(),
            created: rfc3339(email.received_at_ms),
            username: String::new(),
            tags: Vec::new(),
            size: m.size,
            attachments: self.attachment_count,
            snippet: snippet(&m.text, &m.html),
        }
    }
}

/// The start of a message's text (else its HTML without tags), whitespace collapsed.
fn snippet(text: &str, html: &str) -> String {
    let source = if text.trim().is_empty() {
        strip_tags(html)
    } else {
        text.to_owned()
    };
    let collapsed = source.split_whitespace().collect::<Vec<_>>().join(" ");
    match collapsed.char_indices().nth(SNIPPET_CHARS) {
        Some((cut, _)) => format!("{}...", &collapsed[..cut]),
        None => collapsed,
    }
}

/// HTML without its tags, `<style>` and `<script>` contents included.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push(' ');
        let tail = &rest[open..];
        let lower = tail.get(..8).unwrap_or(tail).to_ascii_lowercase();
        let skip_to = ["<style", "<script"]
            .iter()
            .find(|t| lower.starts_with(*t))
            .and_then(|t| {
                let closing = format!("</{}", &t[1..]);
                tail.to_ascii_lowercase().find(&closing)
            });
        let from = skip_to.unwrap_or(0);
        rest = match tail[from..].find('>') {
            Some(close) => &tail[from + close + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// The message's headers as Go's `net/mail` reads them: canonical names
/// (`Message-Id`, `X-Amzn-Trace-Id`), each with its raw values, unfolded.
pub fn headers(raw: &[u8]) -> BTreeMap<String, Vec<String>> {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Some(message) = MessageParser::default().parse_headers(raw) else {
        return headers;
    };
    for (name, value) in message.headers_raw() {
        let unfolded = value
            .split(['\r', '\n'])
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        headers
            .entry(canonical_header(name))
            .or_default()
            .push(unfolded);
    }
    headers
}

/// A header name as Go's `textproto.CanonicalMIMEHeaderKey` writes it.
fn canonical_header(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const RAW: &str = "From: \"ServiceNow Alerts\" <alerts@example.com>\r\n\
        To: oncall@example.com, \"DBA\" <dba@example.com>\r\n\
        Reply-To: noc@example.com\r\n\
        Subject: [P1] INC0012345: database down\r\n\
        Message-ID: <abc@harness>\r\n\
        Date: Tue, 02 Jan 2024 03:04:05 +0000\r\n\
        X-Amzn-Trace-Id: Root=1-aaa-bbb;\r\n Sampled=0\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/alternative; boundary=b\r\n\
        \r\n\
        --b\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        \r\n\
        The   database\r\n is down.\r\n\
        --b\r\n\
        Content-Type: text/html; charset=utf-8\r\n\
        \r\n\
        <p>The <b>database</b> is down.</p>\r\n\
        --b--\r\n";

    fn captured() -> CapturedEmail {
        CapturedEmail::parse(
            RAW.as_bytes(),
            "alerts@example.com",
            &["oncall@example.com".to_owned()],
            7,
        )
    }

    #[test]
    fn a_message_carries_names_addresses_ids_and_both_bodies() {
        let message = Parsed::of(&captured()).message;

        assert_eq!(message.id, "7");
        assert_eq!(message.message_id, "abc@harness");
        assert_eq!(
            message.from,
            Some(MailAddress {
                name: "ServiceNow Alerts".into(),
                address: "alerts@example.com".into()
            })
        );
        assert_eq!(message.to.len(), 2);
        assert_eq!(message.to[1].name, "DBA");
        assert_eq!(message.reply_to[0].address, "noc@example.com");
        assert_eq!(message.return_path, "alerts@example.com");
        assert_eq!(message.date, "2024-01-02T03:04:05Z");
        assert!(message.html.contains("<b>database</b>"), "{}", message.html);
        assert!(message.text.contains("is down."), "{}", message.text);
        assert_eq!(message.size, RAW.len() as u64);
    }

    #[test]
    fn the_json_uses_mailpits_field_names() {
        let email = captured();
        let parsed = Parsed::of(&email);
        let message = serde_json::to_value(&parsed.message).unwrap();
        let summary = serde_json::to_value(parsed.summary(&email, false)).unwrap();

        for field in [
            "ID",
            "MessageID",
            "From",
            "To",
            "Cc",
            "Bcc",
            "ReplyTo",
            "ReturnPath",
            "Subject",
            "Date",
            "Tags",
            "Text",
            "HTML",
            "Size",
            "Inline",
            "Attachments",
        ] {
            assert!(message.get(field).is_some(), "message lacks {field}");
        }
        for field in [
            "ID",
            "MessageID",
            "Read",
            "From",
            "To",
            "Cc",
            "Bcc",
            "ReplyTo",
            "Subject",
            "Created",
            "Tags",
            "Size",
            "Attachments",
            "Snippet",
        ] {
            assert!(summary.get(field).is_some(), "summary lacks {field}");
        }
        assert_eq!(message["From"]["Address"], "alerts@example.com");
        assert_eq!(summary["Snippet"], "The database is down.");
    }

    #[test]
    fn headers_are_canonical_unfolded_and_raw() {
        let headers = headers(RAW.as_bytes());

        assert_eq!(headers["Message-Id"], vec!["<abc@harness>"]);
        assert_eq!(
            headers["X-Amzn-Trace-Id"],
            vec!["Root=1-aaa-bbb; Sampled=0"]
        );
        assert_eq!(headers["Mime-Version"], vec!["1.0"]);
        assert!(!headers.contains_key("Message-ID"));
    }

    #[rstest]
    #[case::text_first("a\n  b", "<p>x</p>", "a b")]
    #[case::html_without_tags("", "<style>p{}</style><p>Hello <b>there</b></p>", "Hello there")]
    #[case::cut_at_the_limit(&"x".repeat(300), "", &format!("{}...", "x".repeat(250)))]
    fn snippets(#[case] text: &str, #[case] html: &str, #[case] expected: &str) {
        assert_eq!(snippet(text, html), expected);
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(1_704_164_645_123), "2024-01-02T03:04:05.123Z");
    }
}
