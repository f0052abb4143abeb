//! The fuzz target: arbitrary bodies and arbitrary valid payloads through the callee's own
//! validation, rendering and MIME encoding ([`compose`], then [`OutgoingEmail::to_mime`]).
//!
//! Checked for every case: nothing panics, and every header that carries payload text
//! (`Subject`, `To`, `Cc`, `X-ServiceNow-Number`, `X-ServiceNow-Priority`) appears exactly
//! once in the raw message and reads back, through a real MIME parser (mail-parser, decoding
//! every unstructured header as a mail reader does), as exactly the validated input.
//!
//! The number of cases per property is `PROPTEST_CASES` (default 64, a few seconds in all);
//! a long run: `PROPTEST_CASES=200000 cargo test -p alert-callee --release --test fuzz_payloads`.

use std::sync::LazyLock;

use alert_callee::compose;
use alert_payload::{AlertPayload, Allowlists, RecipientAllowlist, Renderer, header_line};
use mail_parser::{HeaderValue, MessageParser};
use proptest::{collection::vec, prelude::*};
use serde_json::{Value, json};

/// Cases per property when `PROPTEST_CASES` is not set: short enough for every `cargo test`.
const DEFAULT_CASES: u32 = 64;

static RENDERER: LazyLock<Renderer> =
    LazyLock::new(|| Renderer::new().expect("templates register"));

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        // Failures are reported with their minimal case; no files are written.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn allowlists() -> Allowlists {
    Allowlists::new(RecipientAllowlist::from_csv("example.com, example.org").expect("valid"))
}

/// A reader: every unstructured header decoded, custom ones included (mail-parser applies
/// its default only once some header has its own parser).
fn reader() -> MessageParser {
    MessageParser::new()
        .with_minimal_headers()
        .with_message_ids()
        .default_header_text()
}

/// Composes `body` as the callee does; when it is accepted, checks the MIME message.
fn compose_and_read_back(body: &[u8]) -> Result<bool, TestCaseError> {
    let Ok(email) = compose(body, &allowlists(), &RENDERER, None) else {
        return Ok(false);
    };
    // What validation accepted, independently of what compose did with it.
    let payload = AlertPayload::from_slice(body, &allowlists())
        .map_err(|e| TestCaseError::fail(format!("compose accepted, validation refused: {e}")))?;
    let raw = email
        .to_mime("ServiceNow Alerts <alerts@example.com>")
        .map_err(|e| TestCaseError::fail(format!("an accepted email is unsendable: {e}")))?;
    let message = reader()
        .parse(&raw)
        .ok_or_else(|| TestCaseError::fail("the message does not parse"))?;

    let one = |name: &str| -> Result<&HeaderValue<'_>, TestCaseError> {
        let values: Vec<_> = message
            .headers()
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .collect();
        prop_assert_eq!(values.len(), 1, "{} headers named {}", values.len(), name);
        Ok(values[0].value())
    };
    let text = |name: &str| -> Result<String, TestCaseError> {
        Ok(one(name)?.as_text().unwrap_or_default().to_owned())
    };
    let addresses = |name: &str| -> Result<Vec<String>, TestCaseError> {
        Ok(one(name)?
            .as_address()
            .map(|list| {
                list.iter()
                    .filter_map(|a| a.address().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    };

    let alert = &payload.alert;
    let prefix = match payload.template {
        alert_payload::TemplateKind::Resolved => "[RESOLVED] ",
        alert_payload::TemplateKind::Incident => "",
    };
    let subject = format!(
        "{prefix}[P{}] {}: {}",
        alert.priority, alert.number, alert.short_description
    );
    prop_assert_eq!(text("Subject")?, subject);
    prop_assert_eq!(text("X-ServiceNow-Number")?, alert.number.clone());
    prop_assert_eq!(text("X-ServiceNow-Priority")?, alert.priority.to_string());
    prop_assert_eq!(addresses("To")?, payload.recipients.to.clone());
    if payload.recipients.cc.is_empty() {
        prop_assert!(message.header("Cc").is_none());
    } else {
        prop_assert_eq!(addresses("Cc")?, payload.recipients.cc.clone());
    }
    // The HTML title holds the same fields; nothing the header rule rejects reaches it.
    let html = message.body_html(0).unwrap_or_default();
    let title = html
        .split("<title>")
        .nth(1)
        .and_then(|rest| rest.split("</title>").next())
        .unwrap_or_default();
    prop_assert!(
        !title
            .chars()
            .any(|c| header_line::forbidden_char(c).is_some()),
        "{:?}",
        title
    );
    Ok(true)
}

/// Text that looks like MIME encoding or whitespace a reader might drop or decode.
const TRICKY: [&str; 12] = [
    "=?utf-8?b?SGVsbG8=?=",
    "=?UTF-8?Q?Caf=C3=A9?=",
    "=?iso-8859-1?q?x?=",
    "?=",
    "=?",
    "  ",
    " ",
    "\u{a0}",
    "\u{200b}",
    "\u{feff}",
    "\"(comment)\"",
    "\\",
];

/// A header-bound field the rule accepts: at most `max` characters, one of them visible.
fn header_text(max: usize) -> impl Strategy<Value = String> {
    // Mapped rather than filtered: a filter runs out of retries in long runs.
    let allowed = any::<char>().prop_map(|c| {
        if header_line::forbidden_char(c).is_some() {
            '\u{fffd}'
        } else {
            c
        }
    });
    let piece = prop_oneof![
        3 => allowed.prop_map(String::from),
        1 => prop::sample::select(TRICKY.to_vec()).prop_map(str::to_owned),
        1 => "[a-z]{1,8}",
    ];
    (vec(piece, 0..24), "[A-Za-z0-9]").prop_map(move |(pieces, visible)| {
        let mut text: String = pieces.concat();
        text.insert_str(0, &visible);
        text.chars().take(max).collect()
    })
}

fn recipient() -> impl Strategy<Value = String> {
    (
        "[A-Za-z0-9_+'-]{1,12}(\\.[A-Za-z0-9_+'-]{1,12}){0,2}",
        prop::sample::select(vec!["example.com", "EXAMPLE.org"]),
    )
        .prop_map(|(local, domain)| format!("{local}@{domain}"))
}

/// A payload every rule accepts, with tricky text in every header-bound field.
fn valid_payload() -> impl Strategy<Value = Value> {
    (
        (
            prop::sample::select(vec!["INC", "CHG", "PRB", "RITM"]),
            "[0-9]{7,30}",
            header_text(160),
            header_text(80),
            1_u8..=5,
            prop::option::of(any::<String>().prop_map(|s| s.replace('\0', ""))),
        ),
        (
            prop::option::of(header_text(80)),
            prop::option::of(header_text(100)),
            prop::option::of(prop::sample::select(vec![
                "https://acme.service-now.com",
                "https://eu.acme.service-now.com/base",
            ])),
        ),
        vec(recipient(), 1..4),
        vec(recipient(), 0..3),
        prop::sample::select(vec!["incident", "resolved"]),
    )
        .prop_map(
            |(
                (prefix, digits, short, state, priority, description),
                (category, group, instance_url),
                to,
                cc,
                template,
            )| {
                let number: String = format!("{prefix}{digits}").chars().take(40).collect();
                json!({
                    "alert": {
                        "number": number,
                        "sys_id": "9d385017c611228701d22104cc95c371",
                        "short_description": short,
                        "description": description,
                        "priority": priority,
                        "state": state,
                        "category": category,
                        "assignment_group": group,
                        "instance_url": instance_url,
                    },
                    "recipients": { "to": to, "cc": cc },
                    "template": template,
                })
            },
        )
}

/// JSON text of `value`, with every non-ASCII character written as a `\u` escape (surrogate
/// pairs above U+FFFF) when `escape` is set: both spellings must validate alike.
fn to_json(value: &Value, escape: bool) -> Vec<u8> {
    let text = serde_json::to_string(value).expect("serialisable");
    if !escape {
        return text.into_bytes();
    }
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out.into_bytes()
}

/// A body made of JSON punctuation, payload keys and the strict rules' edge cases.
fn json_shaped_body() -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            "\"",
            "\"alert\"",
            "\"number\"",
            "\"to\"",
            "\"recipients\"",
            "\"INC0012345\"",
            "1",
            "null",
            "\\ud800",
            "\\udc00",
            "\\ud83d\\udd25",
            "\\u0000",
            "\\r\\n",
            "\u{202e}",
            "=?utf-8?b?SGk=?=",
            " ",
        ]),
        0..96,
    )
    .prop_map(|parts| parts.concat().into_bytes())
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes as the request body: an error or an email, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(body in vec(any::<u8>(), 0..2048)) {
        compose_and_read_back(&body)?;
    }

    /// Bodies made of JSON's own pieces reach the strict rules and the fields.
    #[test]
    fn json_shaped_bodies_never_panic(body in json_shaped_body()) {
        compose_and_read_back(&body)?;
    }

    /// Any valid payload is accepted, however it is spelled, and every header reads back as
    /// exactly what was validated.
    #[test]
    fn valid_payloads_read_back_exactly(raw in valid_payload(), escape in any::<bool>()) {
        let accepted = compose_and_read_back(&to_json(&raw, escape))?;
        prop_assert!(accepted, "a valid payload was refused: {}", raw);
    }

    /// Arbitrary Unicode in every field: refused, or accepted and read back exactly.
    #[test]
    fn hostile_payloads_read_back_exactly_when_accepted(
        fields in vec(any::<String>(), 6),
        priority in any::<i64>(),
        to in vec(any::<String>(), 0..3),
        escape in any::<bool>(),
    ) {
        let raw = json!({
            "alert": {
                "number": fields[0],
                "sys_id": fields[1],
                "short_description": fields[2],
                "state": fields[3],
                "category": fields[4],
                "instance_url": fields[5],
                "priority": priority,
            },
            "recipients": { "to": to },
        });
        compose_and_read_back(&to_json(&raw, escape))?;
    }
}
