//! The viewer's Mailpit-compatible API, read by `mailpit-api` (npm), a
//! Mailpit client nobody here wrote, through `tests/mailpit-client/client.mjs`:
//! it lists, reads the latest message with its HTML, reads headers and
//! source, searches, and deletes, against a whole running system whose emails
//! came through the real chain. Without `node`, the test says so and skips.

mod support;

use std::{collections::BTreeSet, process::Command, time::Duration};

use harness::observe::{Call, EmailWait};
use scenario::{InvocationType, OutcomeStatus, Via};
use serde_json::Value;

fn subjects(page: &Value) -> Vec<&str> {
    page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["Subject"].as_str())
        .collect()
}

#[test]
fn mailpit_api_reads_searches_and_deletes_the_inbox() {
    let Some(project) = support::node_project("mailpit-client") else {
        return;
    };
    let running = support::Running::up("viewer-mailpit-client");
    let system = running.system();
    let send = |number: &str, short: &str, description: &str, to: &str| {
        let call = Call::new(
            Via::Caller,
            support::alert(number, short, description, to),
            InvocationType::RequestResponse,
        );
        let outcome = running
            .block_on(system.call(
                call,
                EmailWait {
                    at_least: 1,
                    within: Duration::from_secs(10),
                },
            ))
            .expect("the call is observed")
            .outcome;
        assert_eq!(outcome.status, OutcomeStatus::Success, "{outcome:?}");
        assert_eq!(outcome.emails.len(), 1, "{outcome:?}");
        outcome.emails[0].clone()
    };
    let first = send(
        "INC0020201",
        "Mailpit check: printer on fire",
        "Paper tray 2 is smouldering.",
        "facilities@example.com",
    );
    let second = send(
        "INC0020202",
        "Mailpit check: queue backlog",
        "The payments queue holds 12000 messages.",
        "oncall@example.com",
    );
    let inbox = system.capture.messages();
    assert_eq!(inbox.len(), 3, "the warm-up email and these two");

    let output = Command::new("node")
        .arg(project.join("client.mjs"))
        .arg(running.viewer_url())
        .args([
            "to:facilities@example.com",
            "subject:\"queue backlog\"",
            "smouldering",
            "from:nobody@example.org",
            "--delete",
        ])
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "client.mjs failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");

    // The list: every email, newest first, with Mailpit's counters.
    let list = &report["list"];
    assert_eq!(list["total"], 3);
    assert_eq!(list["messages_count"], 3);
    assert_eq!(list["count"], 3);
    assert_eq!(list["unread"], 3, "nothing opened yet");
    assert_eq!(list["start"], 0);
    assert_eq!(list["tags"], serde_json::json!([]));
    assert_eq!(
        subjects(list),
        [
            second.subject.as_str(),
            first.subject.as_str(),
            inbox[0].subject.as_str()
        ]
    );
    let newest = &list["messages"][0];
    assert_eq!(newest["From"]["Address"], "alerts@example.com");
    assert_eq!(newest["To"][0]["Address"], "oncall@example.com");
    assert_eq!(newest["Read"], false);
    assert_eq!(newest["Size"], second.raw.len());
    assert!(
        newest["Snippet"]
            .as_str()
            .is_some_and(|s| !s.is_empty() && !s.contains('\n')),
        "{newest}"
    );
    assert!(
        newest["Created"].as_str().is_some_and(|c| c.ends_with('Z')),
        "{newest}"
    );

    // Paging: the second page of one.
    assert_eq!(report["second_page"]["start"], 1);
    assert_eq!(subjects(&report["second_page"]), [first.subject.as_str()]);

    // The latest message in full, with its HTML part.
    let latest = &report["latest"];
    assert_eq!(latest["Subject"], second.subject.as_str());
    assert_eq!(
        latest["HTML"],
        second.html.as_deref().expect("an HTML part")
    );
    assert_eq!(latest["Text"], second.text.as_deref().expect("a text part"));
    assert!(
        latest["MessageID"]
            .as_str()
            .is_some_and(|id| !id.is_empty() && !id.starts_with('<')),
        "{latest}"
    );
    assert_eq!(latest["Attachments"], serde_json::json!([]));
    assert_eq!(
        report["list_after_read"]["unread"], 2,
        "reading a message marks it read, as in Mailpit"
    );

    // Headers and source of that message.
    let trace_header = second.header(xray_trace::HEADER).expect("a trace header");
    assert_eq!(report["headers"]["X-Amzn-Trace-Id"][0], trace_header);
    assert_eq!(
        report["headers"]["Subject"][0]
            .as_str()
            .map(|s| !s.is_empty()),
        Some(true)
    );
    assert_eq!(
        report["source"].as_str().map(str::as_bytes),
        Some(second.raw.as_slice())
    );

    // Searches.
    let found = |query: &str| -> BTreeSet<String> {
        subjects(&report["searches"][query])
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        found("to:facilities@example.com"),
        BTreeSet::from([first.subject.clone()])
    );
    assert_eq!(
        found("subject:\"queue backlog\""),
        BTreeSet::from([second.subject.clone()])
    );
    assert_eq!(
        found("smouldering"),
        BTreeSet::from([first.subject.clone()]),
        "free text matches the body"
    );
    assert!(found("from:nobody@example.org").is_empty());
    assert_eq!(report["searches"]["smouldering"]["total"], 3);
    assert_eq!(report["searches"]["smouldering"]["messages_count"], 1);

    // Deleting empties the viewer and the capture server alike.
    assert_eq!(report["deleted"], "ok");
    assert_eq!(report["list_after_delete"]["total"], 0);
    assert!(system.capture.messages().is_empty());
}
