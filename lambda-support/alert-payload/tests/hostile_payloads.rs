//! Property tests for hostile payloads: whatever arrives, validation and rendering return
//! rather than panic, and nothing the header-line rule rejects reaches the subject or title.
//!
//! Case counts are kept low so the suite runs in seconds; raise them locally with a bigger
//! `CASES` when changing the rule.

use std::sync::LazyLock;

use alert_payload::{
    AlertPayload, Allowlists, MAX_ASSIGNED_TO_CHARS, MAX_ASSIGNMENT_GROUP_CHARS,
    MAX_CATEGORY_CHARS, MAX_SHORT_DESCRIPTION_CHARS, MAX_STATE_CHARS, RecipientAllowlist,
    RenderedEmail, Renderer, TemplateKind, header_line,
};
use proptest::{collection::vec, option, prelude::*};
use serde_json::{Value, json};

const CASES: u32 = 128;

/// Built once: registering the templates costs more than a case.
static RENDERER: LazyLock<Renderer> =
    LazyLock::new(|| Renderer::new().expect("templates register"));

fn allowlist() -> Allowlists {
    Allowlists::new(
        RecipientAllowlist::from_csv("example.com, example.org").expect("valid allowlist"),
    )
}

/// The first character the header-line rule rejects, with its index, if any.
fn first_forbidden(text: &str) -> Option<(usize, char)> {
    text.chars()
        .enumerate()
        .find(|&(_, c)| header_line::forbidden_char(c).is_some())
}

/// The text between `<title>` and `</title>` of a rendered HTML body.
fn html_title(html: &str) -> &str {
    let start = html.find("<title>").map_or(0, |i| i + "<title>".len());
    let end = html.find("</title>").unwrap_or(html.len());
    html.get(start..end).unwrap_or_default()
}

/// Asserts the subject and HTML title hold nothing the header-line rule rejects.
fn assert_one_visible_line(email: &RenderedEmail) {
    assert_eq!(first_forbidden(&email.subject), None, "{:?}", email.subject);
    let title = html_title(&email.html);
    assert_eq!(first_forbidden(title), None, "{title:?}");
}

/// Text the rule accepts: 1 to `max` characters, at least one of them visible.
fn valid_line(max: usize) -> impl Strategy<Value = String> {
    let allowed = any::<char>().prop_filter("rejected by the rule", |&c| {
        header_line::forbidden_char(c).is_none()
    });
    let visible = allowed
        .clone()
        .prop_filter("invisible", |&c| !header_line::is_invisible(c));
    (visible, vec(allowed, 0..max), any::<prop::sample::Index>()).prop_map(
        move |(visible, mut rest, at)| {
            rest.truncate(max - 1);
            let at = at.index(rest.len() + 1);
            rest.insert(at, visible);
            rest.into_iter().collect()
        },
    )
}

/// An optional text field as ServiceNow may send it: missing, null, blank or text.
fn optional_line(max: usize) -> impl Strategy<Value = Option<Value>> {
    let blank = vec(
        prop::sample::select(vec![
            ' ', '\u{a0}', '\u{3000}', '\u{200b}', '\u{feff}', '\t',
        ]),
        0..4,
    )
    .prop_map(|cs| json!(cs.into_iter().collect::<String>()));
    option::of(prop_oneof![
        Just(Value::Null),
        blank,
        valid_line(max).prop_map(Value::from),
    ])
}

fn record_number() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["INC", "CHG", "PRB", "RITM"]),
        "[0-9]{7,20}",
    )
        .prop_map(|(prefix, digits)| format!("{prefix}{digits}"))
}

fn recipient() -> impl Strategy<Value = String> {
    (
        "[A-Za-z0-9_+'-]{1,12}(\\.[A-Za-z0-9_+'-]{1,12}){0,2}",
        prop::sample::select(vec!["example.com", "EXAMPLE.org"]),
    )
        .prop_map(|(local, domain)| format!("{local}@{domain}"))
}

/// A payload every rule accepts, built field by field from arbitrary Unicode.
fn valid_payload() -> impl Strategy<Value = Value> {
    let alert = (
        record_number(),
        "[0-9a-fA-F]{32}",
        valid_line(MAX_SHORT_DESCRIPTION_CHARS),
        option::of(any::<String>().prop_map(|s| s.replace('\0', ""))),
        1_u8..=5,
        valid_line(MAX_STATE_CHARS),
        optional_line(MAX_CATEGORY_CHARS),
        optional_line(MAX_ASSIGNMENT_GROUP_CHARS),
        optional_line(MAX_ASSIGNED_TO_CHARS),
    );
    let recipients = (vec(recipient(), 1..4), vec(recipient(), 0..3));
    let template = prop::sample::select(vec!["incident", "resolved"]);
    (alert, recipients, template).prop_map(
        |(
            (
                number,
                sys_id,
                short_description,
                description,
                priority,
                state,
                category,
                group,
                assignee,
            ),
            (to, cc),
            template,
        )| {
            let mut alert = json!({
                "number": number,
                "sys_id": sys_id,
                "short_description": short_description,
                "priority": priority,
                "state": state,
                "instance_url": "https://example.service-now.com",
                "opened_at": "2026-11-22T08:00:00Z",
            });
            for (key, value) in [
                ("description", description.map(Value::from)),
                ("category", category),
                ("assignment_group", group),
                ("assigned_to", assignee),
            ] {
                if let Some(value) = value {
                    alert[key] = value;
                }
            }
            json!({
                "alert": alert,
                "recipients": { "to": to, "cc": cc },
                "template": template,
            })
        },
    )
}

/// A payload with arbitrary Unicode (controls and bidi characters included) in every field.
fn hostile_payload() -> impl Strategy<Value = Value> {
    let text = || any::<String>();
    (
        (text(), text(), text(), text(), text()),
        (text(), text(), text(), text(), text()),
        any::<i64>(),
        vec(text(), 0..3),
    )
        .prop_map(
            |(
                (number, sys_id, short_description, description, state),
                (category, group, assignee, opened_at, instance_url),
                priority,
                to,
            )| {
                json!({
                    "alert": {
                        "number": number,
                        "sys_id": sys_id,
                        "short_description": short_description,
                        "description": description,
                        "priority": priority,
                        "state": state,
                        "category": category,
                        "assignment_group": group,
                        "assigned_to": assignee,
                        "opened_at": opened_at,
                        "instance_url": instance_url,
                    },
                    "recipients": { "to": to },
                })
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES * 4))]

    /// Arbitrary bytes as the request body: an error or a payload, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(body in vec(any::<u8>(), 0..1024)) {
        let _ = AlertPayload::from_slice(&body, &allowlist());
    }

    /// Bytes that look like JSON (the payload's own punctuation and keys) reach deeper.
    #[test]
    fn json_shaped_bytes_never_panic(
        parts in vec(
            prop::sample::select(vec![
                "{", "}", "[", "]", ":", ",", "\"", "\"alert\"", "\"number\"", "\"to\"",
                "\"recipients\"", "\"INC0012345\"", "1", "null", "\\u0000", "\\r\\n", "\u{202e}",
            ]),
            0..64,
        )
    ) {
        let _ = AlertPayload::from_slice(parts.concat().as_bytes(), &allowlist());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// A payload that follows every rule is accepted, renders, and its subject is exactly
    /// the template applied to the fields, on one visible line.
    #[test]
    fn valid_payloads_render_to_one_visible_subject_line(raw in valid_payload()) {
        let body = serde_json::to_vec(&raw).expect("serialisable");
        let payload = AlertPayload::from_slice(&body, &allowlist())
            .map_err(|e| TestCaseError::fail(format!("rejected a valid payload: {e}")))?;
        let email = RENDERER
            .render(&payload)
            .map_err(|e| TestCaseError::fail(format!("render failed: {e}")))?;
        assert_one_visible_line(&email);
        let alert = &payload.alert;
        let prefix = match payload.template {
            TemplateKind::Resolved => "[RESOLVED] ",
            TemplateKind::Incident => "",
        };
        prop_assert_eq!(
            &email.subject,
            &format!("{prefix}[P{}] {}: {}", alert.priority, alert.number, alert.short_description)
        );
        // A blank optional field is absent, so it renders no empty row.
        let optional = [&alert.category, &alert.assignment_group, &alert.assigned_to, &alert.description];
        for value in optional.into_iter().flatten() {
            prop_assert!(!header_line::is_blank(value), "{:?} kept", value);
        }
    }

    /// Arbitrary Unicode everywhere: validation and rendering never panic, and whatever is
    /// accepted renders a subject and title free of every character the rule rejects.
    #[test]
    fn hostile_payloads_never_panic_or_reach_the_subject(raw in hostile_payload()) {
        let body = serde_json::to_vec(&raw).expect("serialisable");
        if let Ok(payload) = AlertPayload::from_slice(&body, &allowlist())
            && let Ok(email) = RENDERER.render(&payload)
        {
            assert_one_visible_line(&email);
        }
    }

    /// A forbidden character anywhere in the short description is reported at its index.
    #[test]
    fn forbidden_character_is_reported_at_its_position(
        text in valid_line(MAX_SHORT_DESCRIPTION_CHARS - 1),
        bad in prop::sample::select(vec![
            '\t', '\r', '\n', '\0', '\u{1b}', '\u{b}', '\u{c}', '\u{1c}', '\u{7f}', '\u{85}',
            '\u{9f}', '\u{2028}', '\u{2029}', '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}',
        ]),
        at in any::<prop::sample::Index>(),
    ) {
        let mut chars: Vec<char> = text.chars().collect();
        let position = at.index(chars.len() + 1);
        chars.insert(position, bad);
        let raw = json!({
            "alert": {
                "number": "INC0012345",
                "sys_id": "9d385017c611228701d22104cc95c371",
                "short_description": chars.into_iter().collect::<String>(),
                "priority": 1,
                "state": "New",
            },
            "recipients": { "to": ["oncall@example.com"] },
        });
        let err = AlertPayload::from_value(&raw, &allowlist())
            .err()
            .ok_or_else(|| TestCaseError::fail("accepted a forbidden character"))?;
        prop_assert_eq!(err.field(), Some("alert.short_description"));
        let expected = format!("contains U+{:04X} (", u32::from(bad));
        let message = err.to_string();
        prop_assert!(message.contains(&expected), "{}", message);
        prop_assert!(message.contains(&format!(") at position {position};")), "{}", message);
    }
}
