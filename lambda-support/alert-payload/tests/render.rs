//! Rendering tests: golden files for whole emails, targeted checks for escaping and Unicode.
//!
//! Golden files live in `tests/golden/`. After an intended template change, regenerate them
//! with `UPDATE_GOLDEN=1 cargo test -p notification --test render`, then review the diff.

use std::{fs, path::PathBuf};

use alert_payload::{AlertPayload, Allowlists, RecipientAllowlist, RenderedEmail, Renderer};
use serde_json::{Value, json};

fn example() -> Value {
    json!({
        "alert": {
            "number": "INC0012345",
            "sys_id": "9d385017c611228701d22104cc95c371",
            "short_description": "Database cluster unreachable",
            "description": "Primary and replica stopped answering health checks.\nFailover did not start.",
            "priority": 1,
            "state": "New",
            "category": "Database",
            "assignment_group": "DBA On-Call",
            "assigned_to": "Ada Lovelace",
            "opened_at": "2026-11-22T08:00:00Z",
            "updated_at": "2026-11-22T08:05:00Z",
            "instance_url": "https://example.service-now.com"
        },
        "recipients": { "to": ["oncall@example.com"], "cc": [] },
        "template": "incident"
    })
}

fn minimal_resolved() -> Value {
    json!({
        "alert": {
            "number": "CHG0000042",
            "sys_id": "0123456789abcdef0123456789abcdef",
            "short_description": "Certificate rotation finished",
            "priority": 4,
            "state": "Resolved"
        },
        "recipients": { "to": ["oncall@example.com"] },
        "template": "resolved"
    })
}

fn render(raw: &Value) -> RenderedEmail {
    let allow =
        Allowlists::new(RecipientAllowlist::from_csv("example.com").expect("valid allowlist"));
    let payload = AlertPayload::from_value(raw, &allow).expect("valid payload");
    Renderer::new()
        .expect("templates register")
        .render(&payload)
        .expect("templates render")
}

/// Compares `actual` with the golden file, or rewrites it when `UPDATE_GOLDEN` is set.
fn assert_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert!(
        expected == actual,
        "{} drifted; review and run with UPDATE_GOLDEN=1 if intended\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

#[test]
fn incident_email_matches_golden_files() {
    let email = render(&example());
    assert_eq!(
        email.subject,
        "[P1] INC0012345: Database cluster unreachable"
    );
    assert_golden("incident.txt", &email.text);
    assert_golden("incident.html", &email.html);
}

#[test]
fn resolved_email_matches_golden_files() {
    let email = render(&minimal_resolved());
    assert_eq!(
        email.subject,
        "[RESOLVED] [P4] CHG0000042: Certificate rotation finished"
    );
    assert_golden("resolved.txt", &email.text);
    assert_golden("resolved.html", &email.html);
}

#[test]
fn resolved_subject_prefixes_the_incident_subject() {
    let mut raw = example();
    raw["template"] = json!("resolved");
    assert_eq!(
        render(&raw).subject,
        "[RESOLVED] [P1] INC0012345: Database cluster unreachable"
    );
}

#[test]
fn template_defaults_to_incident() {
    let mut raw = example();
    raw.as_object_mut().expect("object").remove("template");
    let email = render(&raw);
    assert_eq!(
        email.subject,
        "[P1] INC0012345: Database cluster unreachable"
    );
    assert!(email.text.contains("needs attention"), "{}", email.text);
}

#[test]
fn every_present_field_is_shown_in_both_bodies() {
    let email = render(&example());
    for value in [
        "INC0012345",
        "9d385017c611228701d22104cc95c371",
        "Database cluster unreachable",
        "Primary and replica stopped answering health checks.",
        "1 - Critical",
        "New",
        "Database",
        "DBA On-Call",
        "Ada Lovelace",
        "2026-11-22T08:00:00Z",
        "2026-11-22T08:05:00Z",
        "https://example.service-now.com",
    ] {
        assert!(email.text.contains(value), "text lacks {value:?}");
        assert!(email.html.contains(value), "html lacks {value:?}");
    }
}

#[test]
fn absent_fields_leave_no_empty_rows() {
    let email = render(&minimal_resolved());
    for label in [
        "Category",
        "Assigned to",
        "Opened at",
        "Description",
        "ServiceNow:",
    ] {
        assert!(!email.text.contains(label), "text shows absent {label:?}");
    }
    assert!(!email.html.contains("<a "), "no instance_url, so no link");
}

#[test]
fn record_link_is_an_anchor_in_html_and_plain_in_text() {
    let email = render(&example());
    let link = "https://example.service-now.com/nav_to.do?uri=incident.do?sys_id=9d385017c611228701d22104cc95c371";
    assert!(
        email.html.contains(&format!("<a href=\"{link}\">")),
        "{}",
        email.html
    );
    assert!(email.text.contains(link), "{}", email.text);
}

#[test]
fn values_are_html_escaped_in_html_only() {
    let mut raw = example();
    raw["alert"]["short_description"] = json!("<b>Disk</b> & \"quota\"");
    raw["alert"]["description"] = json!("<script>alert('x')</script>");
    raw["alert"]["assigned_to"] = json!("O'Brien <ob@example.com>");
    let email = render(&raw);

    assert!(!email.html.contains("<script>"), "{}", email.html);
    assert!(!email.html.contains("<b>Disk"), "{}", email.html);
    assert!(
        email
            .html
            .contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;")
    );
    assert!(
        email
            .html
            .contains("&lt;b&gt;Disk&lt;/b&gt; &amp; &quot;quota&quot;")
    );
    assert!(email.html.contains("O&#x27;Brien &lt;ob@example.com&gt;"));

    assert!(
        email.text.contains("<script>alert('x')</script>"),
        "{}",
        email.text
    );
    assert!(
        email.text.contains("O'Brien <ob@example.com>"),
        "{}",
        email.text
    );
    assert_eq!(email.subject, "[P1] INC0012345: <b>Disk</b> & \"quota\"");
}

#[test]
fn unicode_renders_in_every_text_field() {
    let fields = [
        ("short_description", "Кластер базы данных недоступен 🔥"),
        ("description", "主节点和副本停止响应。\nΔεύτερη γραμμή."),
        ("state", "Nouveau état"),
        ("category", "Base de données"),
        ("assignment_group", "DBA Bereitschaft – Süd"),
        ("assigned_to", "Zoë Ångström"),
    ];
    let mut raw = example();
    for (field, value) in fields {
        raw["alert"][field] = json!(value);
    }
    let email = render(&raw);
    for (field, value) in fields {
        assert!(email.text.contains(value), "text lacks {field}");
        assert!(email.html.contains(value), "html lacks {field}");
    }
    assert_eq!(
        email.subject,
        "[P1] INC0012345: Кластер базы данных недоступен 🔥"
    );
}

#[test]
fn subject_is_one_line_even_though_template_files_end_in_newline() {
    let email = render(&example());
    assert!(!email.subject.contains(['\r', '\n']), "{:?}", email.subject);
}

#[test]
fn blank_optional_fields_render_as_if_not_given() {
    // Whitespace and zero-width characters show nothing, so they must not add empty rows.
    let mut raw = minimal_resolved();
    for (field, blank) in [
        ("category", "   "),
        ("assignment_group", "\u{200b}"),
        ("assigned_to", "\u{a0}\u{feff}"),
        ("opened_at", " "),
        ("updated_at", "\u{2060}"),
        ("instance_url", "\u{200c}\u{200d}"),
        ("description", "\n \u{3000}\n"),
    ] {
        raw["alert"][field] = json!(blank);
    }
    let email = render(&raw);
    let plain = render(&minimal_resolved());
    assert_eq!(email, plain);
    assert!(!email.text.contains("Category"), "{}", email.text);
    assert!(!email.html.contains("Assignment group"), "{}", email.html);
}
