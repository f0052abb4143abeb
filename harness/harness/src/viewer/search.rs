//! Mailpit's search syntax, for the part the harness's inbox can answer:
//! words and "quoted phrases" match anywhere in the message; `to:`, `from:`,
//! `cc:`, `bcc:`, `reply-to:`, `addressed:`, `subject:` and `message-id:`
//! match one field; `is:read`, `is:unread` and `has:attachment` filter; a
//! leading `-` or `!` negates a term. Every term must hold, and matching is
//! case-insensitive and by substring, as in Mailpit.

use super::mailpit::{MailAddress, Message};

/// A parsed search query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    negated: bool,
    field: Field,
    /// Lowercase.
    needle: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Anywhere,
    To,
    From,
    Cc,
    Bcc,
    ReplyTo,
    Addressed,
    Subject,
    MessageId,
    Read,
    Unread,
    Attachment,
}

/// What a query is matched against: one message and its read status.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The message.
    pub message: &'a Message,
    /// Whether it was opened.
    pub read: bool,
}

impl Query {
    /// Parses a query; an empty one matches everything.
    pub fn parse(query: &str) -> Self {
        let terms = words(query)
            .into_iter()
            .filter_map(|word| {
                let (negated, word) = match word.strip_prefix(['-', '!']) {
                    Some(rest) if !rest.is_empty() => (true, rest.to_owned()),
                    _ => (false, word),
                };
                let lower = word.to_lowercase();
                let (field, needle) = match lower.split_once(':') {
                    Some(("is", "read")) => (Field::Read, String::new()),
                    Some(("is", "unread")) => (Field::Unread, String::new()),
                    Some(("has", "attachment" | "attachments")) => {
                        (Field::Attachment, String::new())
                    }
                    Some((prefix, value)) => match prefix {
                        "to" => (Field::To, value.to_owned()),
                        "from" => (Field::From, value.to_owned()),
                        "cc" => (Field::Cc, value.to_owned()),
                        "bcc" => (Field::Bcc, value.to_owned()),
                        "reply-to" => (Field::ReplyTo, value.to_owned()),
                        "addressed" => (Field::Addressed, value.to_owned()),
                        "subject" => (Field::Subject, value.to_owned()),
                        "message-id" => (Field::MessageId, value.to_owned()),
                        _ => (Field::Anywhere, lower.clone()),
                    },
                    None => (Field::Anywhere, lower),
                };
                let needle = needle.trim_matches('"').to_owned();
                let is_filter = matches!(field, Field::Read | Field::Unread | Field::Attachment);
                (is_filter || !needle.is_empty()).then_some(Term {
                    negated,
                    field,
                    needle,
                })
            })
            .collect();
        Self { terms }
    }

    /// Whether every term holds for `candidate`.
    pub fn matches(&self, candidate: Candidate<'_>) -> bool {
        self.terms
            .iter()
            .all(|term| term.holds(candidate) != term.negated)
    }
}

impl Term {
    fn holds(&self, candidate: Candidate<'_>) -> bool {
        let m = candidate.message;
        let contains = |haystack: &str| haystack.to_lowercase().contains(&self.needle);
        let any = |list: &[MailAddress]| list.iter().any(|a| contains(&show(a)));
        match self.field {
            Field::To => any(&m.to),
            Field::From => m.from.as_ref().is_some_and(|a| contains(&show(a))),
            Field::Cc => any(&m.cc),
            Field::Bcc => any(&m.bcc),
            Field::ReplyTo => any(&m.reply_to),
            Field::Addressed => any(&m.to) || any(&m.cc) || any(&m.bcc),
            Field::Subject => contains(&m.subject),
            Field::MessageId => contains(&m.message_id),
            Field::Read => candidate.read,
            Field::Unread => !candidate.read,
            Field::Attachment => !m.attachments.is_empty(),
            Field::Anywhere => {
                contains(&m.subject)
                    || m.from.as_ref().is_some_and(|a| contains(&show(a)))
                    || any(&m.to)
                    || any(&m.cc)
                    || any(&m.bcc)
                    || contains(&m.text)
                    || contains(&m.html)
            }
        }
    }
}

fn show(address: &MailAddress) -> String {
    format!("{} <{}>", address.name, address.address)
}

/// Splits on whitespace, keeping "quoted phrases" (quotes removed) together,
/// also after a prefix (`subject:"disk full"`).
fn words(query: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in query.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::viewer::mailpit::Parsed;

    fn message() -> Message {
        let raw = "From: \"ServiceNow Alerts\" <alerts@example.com>\r\n\
            To: oncall@example.com\r\n\
            Cc: dba@example.com\r\n\
            Subject: [P1] INC0012345: disk full\r\n\
            Message-ID: <m-1@harness>\r\n\
            Content-Type: text/plain\r\n\r\n\
            The volume /var is at 99%.\r\n";
        Parsed::of(&scenario::CapturedEmail::parse(
            raw.as_bytes(),
            "alerts@example.com",
            &[],
            1,
        ))
        .message
    }

    #[rstest]
    #[case::empty_matches_all("", true)]
    #[case::free_text_in_the_body("volume", true)]
    #[case::free_text_is_case_insensitive("INC0012345 DISK", true)]
    #[case::every_word_must_match("disk printer", false)]
    #[case::phrase("\"disk full\"", true)]
    #[case::phrase_in_order("\"full disk\"", false)]
    #[case::to("to:oncall@example.com", true)]
    #[case::to_is_not_cc("to:dba", false)]
    #[case::cc("cc:dba", true)]
    #[case::addressed("addressed:dba", true)]
    #[case::from_by_name("from:servicenow", true)]
    #[case::from_other("from:someone", false)]
    #[case::subject("subject:INC0012345", true)]
    #[case::subject_phrase("subject:\"disk full\"", true)]
    #[case::subject_not_body("subject:volume", false)]
    #[case::message_id("message-id:m-1@harness", true)]
    #[case::negated_dash("-printer", true)]
    #[case::negated_bang("!disk", false)]
    #[case::unread("is:unread", true)]
    #[case::read("is:read", false)]
    #[case::no_attachment("has:attachment", false)]
    fn queries(#[case] query: &str, #[case] expected: bool) {
        let message = message();

        let matched = Query::parse(query).matches(Candidate {
            message: &message,
            read: false,
        });

        assert_eq!(matched, expected, "{query}");
    }
}
