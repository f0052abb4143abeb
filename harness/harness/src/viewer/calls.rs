//! The calls behind the emails: which call (trace) an email belongs to, the
//! calls that were denied before any email was sent, and one call's chain,
//! hop by hop, with the IAM gateway's decisions and both lambdas' logs.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use iam_gateway::{DecidingStatement, DecisionRecord, Ruling, abbreviate_arn};
use scenario::CapturedEmail;
use serde::Serialize;
use xray_trace::TraceId;

use super::mailpit::id_of;

/// One row of the page's list: an email, or a denied call that sent none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRow {
    /// `email` or `denied`.
    pub kind: &'static str,
    /// The email's ID in the API (emails only).
    pub id: Option<String>,
    /// The trace root of the call.
    pub trace: Option<String>,
    /// The scenario whose call this was, when a scenario report says so.
    pub scenario: Option<String>,
    /// When the email arrived, or the denied request was made (ms since the epoch).
    pub time_ms: u64,
    /// The sender (emails only).
    pub from: String,
    /// The recipients (emails only).
    pub to: Vec<String>,
    /// The subject, or what was denied.
    pub subject: String,
    /// The gateway's explanation of the denial (denied calls only).
    pub denial: Option<String>,
}

/// The list: every email, and every call the gateway denied (or would have)
/// that sent no email, newest first. Denials before `since_ms` are left out.
pub fn rows(
    emails: &[CapturedEmail],
    decisions: &[DecisionRecord],
    scenarios: &BTreeMap<TraceId, String>,
    since_ms: u64,
    accounts: &BTreeMap<String, String>,
) -> Vec<CallRow> {
    let mut rows: Vec<CallRow> = emails
        .iter()
        .map(|email| {
            let trace = trace_of(email);
            CallRow {
                kind: "email",
                id: Some(id_of(email)),
                scenario: trace.as_ref().and_then(|t| scenarios.get(t).cloned()),
                trace: trace.map(|t| t.root().to_owned()),
                time_ms: email.received_at_ms,
                from: email.from.clone(),
                to: email.to.clone(),
                subject: email.subject.clone(),
                denial: None,
            }
        })
        .collect();
    let emailed: BTreeSet<TraceId> = emails.iter().filter_map(trace_of).collect();
    let mut denied: BTreeMap<&TraceId, &DecisionRecord> = BTreeMap::new();
    for record in decisions {
        if let Some(trace) = &record.trace
            && matches!(record.decision, Ruling::Deny | Ruling::WouldDeny)
            && record.time_ms >= since_ms
            && !emailed.contains(trace)
        {
            denied.entry(trace).or_insert(record);
        }
    }
    rows.extend(denied.into_iter().map(|(trace, record)| CallRow {
        kind: "denied",
        id: None,
        trace: Some(trace.root().to_owned()),
        scenario: scenarios.get(trace).cloned(),
        time_ms: record.time_ms,
        from: String::new(),
        to: Vec::new(),
        subject: format!(
            "{} on {} denied",
            record.action,
            record
                .resource
                .as_deref()
                .map(|r| abbreviate_arn(r, accounts))
                .unwrap_or_default()
        ),
        denial: Some(record.explanation.clone()),
    }));
    rows.sort_by_key(|row| std::cmp::Reverse(row.time_ms));
    rows
}

/// The call an email belongs to, from its trace header.
pub fn trace_of(email: &CapturedEmail) -> Option<TraceId> {
    email
        .header(xray_trace::HEADER)
        .and_then(TraceId::from_header)
}

/// One hop of a call's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// What the hop is: `caller`, `sts:AssumeRole`, `lambda:InvokeFunction`, `callee`, `SMTP`.
    pub step: String,
    /// Who or what: a role, a function, the recipients.
    pub subject: String,
    /// The gateway's ruling (`allow`, `deny`, `would_deny`, `error`), for IAM hops.
    pub decision: Option<&'static str>,
    /// The gateway's explanation, for IAM hops.
    pub explanation: Option<String>,
    /// The statements that decided it, for IAM hops.
    pub deciding: Vec<DecidingStatement>,
    /// The HTTP status the caller got, for IAM hops.
    pub status: Option<u16>,
}

/// Everything the page shows about one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallView {
    /// The trace root.
    pub trace: String,
    /// The scenario whose call this was, when known.
    pub scenario: Option<String>,
    /// The chain, hop by hop.
    pub hops: Vec<Hop>,
    /// The IDs of the call's emails.
    pub emails: Vec<String>,
    /// Both lambdas' log lines of this call, by function name.
    pub logs: BTreeMap<String, String>,
    /// Why the logs could not be read, if they could not.
    pub logs_error: Option<String>,
}

/// The chain of one call: who made it, then each request the gateway
/// evaluated (in arrival order), each lambda an allowed invoke started, and
/// the SMTP delivery when emails arrived.
///
/// A lambda that made further requests is the caller; the last one invoked
/// is the callee. A warm caller reuses the credentials it assumed earlier, so
/// its call may have no `sts:AssumeRole` of its own: the hop is then shown as
/// not requested, with the role the reused credentials belong to.
pub fn chain(
    records: &[DecisionRecord],
    emails: &[&CapturedEmail],
    accounts: &BTreeMap<String, String>,
) -> Vec<Hop> {
    let short = |arn: Option<&str>| arn.map(|a| abbreviate_arn(a, accounts)).unwrap_or_default();
    let mut evaluated: Vec<&DecisionRecord> = records
        .iter()
        .filter(|r| r.decision != Ruling::NotEvaluated)
        .collect();
    evaluated.sort_by_key(|r| r.time_ms);
    let mut hops = Vec::new();
    if let Some(first) = evaluated.first() {
        hops.push(plain("client", short(first.principal.as_deref())));
    }
    for (index, record) in evaluated.iter().enumerate() {
        let follows_a_lambda = hops.last().is_some_and(|h| h.step == CALLER);
        if follows_a_lambda
            && record.action == INVOKE
            && record
                .principal
                .as_deref()
                .is_some_and(|p| p.contains(":assumed-role/"))
        {
            hops.push(Hop {
                explanation: Some(
                    "not requested in this call: the caller reused credentials it assumed earlier"
                        .to_owned(),
                ),
                ..plain(ASSUME_ROLE, short(record.principal.as_deref()))
            });
        }
        hops.push(Hop {
            step: record.action.clone(),
            subject: short(record.resource.as_deref()),
            decision: Some(record.decision.as_str()),
            explanation: Some(record.explanation.clone()),
            deciding: record.deciding.clone(),
            status: record.status,
        });
        let started =
            record.action == INVOKE && matches!(record.decision, Ruling::Allow | Ruling::WouldDeny);
        if started {
            let made_requests = index + 1 < evaluated.len();
            let step = if made_requests { CALLER } else { "callee" };
            hops.push(plain(step, short(record.resource.as_deref())));
        }
    }
    if !emails.is_empty() {
        let recipients: BTreeSet<&str> = emails
            .iter()
            .flat_map(|e| e.envelope_to.iter().map(String::as_str))
            .collect();
        let count = emails.len();
        hops.push(plain(
            "SMTP",
            format!(
                "{count} email{} to {}",
                if count == 1 { "" } else { "s" },
                recipients.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    hops
}

const CALLER: &str = "caller";
const INVOKE: &str = "lambda:InvokeFunction";
const ASSUME_ROLE: &str = "sts:AssumeRole";

fn plain(step: &str, subject: String) -> Hop {
    Hop {
        step: step.to_owned(),
        subject,
        decision: None,
        explanation: None,
        deciding: Vec::new(),
        status: None,
    }
}

/// Which scenario made which call, from the `result.json` files of the
/// scenario reports under `dir`. No directory means no reports yet; a report
/// being written right now is skipped until it is whole.
pub fn scenarios(dir: &Path) -> std::io::Result<BTreeMap<TraceId, String>> {
    let mut found = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(err) => return Err(err),
    };
    for entry in entries {
        let result = entry?.path().join("result.json");
        let text = match std::fs::read(&result) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&text) else {
            tracing::debug!(file = %result.display(), "skipping a scenario report being written");
            continue;
        };
        if let (Some(name), Some(trace)) = (
            json["scenario"].as_str(),
            json["outcome"]["trace_id"]
                .as_str()
                .and_then(|root| TraceId::from_header(&format!("Root={root}"))),
        ) {
            found.insert(trace, name.to_owned());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("111111111111".to_owned(), "A".to_owned()),
            ("222222222222".to_owned(), "B".to_owned()),
        ])
    }

    fn trace(root: &str) -> TraceId {
        TraceId::from_header(&format!("Root={root}")).expect("a root")
    }

    fn record(root: &str, time_ms: u64, action: &str, decision: Ruling) -> DecisionRecord {
        DecisionRecord {
            time_ms,
            trace: Some(trace(root)),
            principal: Some(
                "arn:aws:sts::222222222222:assumed-role/servicenow-invoker-exec/s".into(),
            ),
            action: action.into(),
            resource: Some(match action {
                "sts:AssumeRole" => "arn:aws:iam::111111111111:role/servicenow-invoke".into(),
                _ => "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert".into(),
            }),
            decision,
            reason: "allowed".into(),
            explanation: format!("{} by test", decision.as_str()),
            deciding: vec![DecidingStatement {
                kind: "trust".into(),
                policy: "servicenow-invoke".into(),
                sid_or_index: "0".into(),
            }],
            status: Some(200),
            overhead_us: None,
            upstream_us: None,
            request_id: None,
        }
    }

    fn email(root: &str, seq: u64, at: u64) -> CapturedEmail {
        let raw = format!(
            "From: alerts@example.com\r\nTo: oncall@example.com\r\nSubject: s{seq}\r\nX-Amzn-Trace-Id: Root={root};Sampled=0\r\n\r\nbody\r\n"
        );
        let mut email = CapturedEmail::parse(
            raw.as_bytes(),
            "alerts@example.com",
            &["oncall@example.com".to_owned()],
            seq,
        );
        email.received_at_ms = at;
        email
    }

    #[test]
    fn rows_are_emails_and_denials_without_email_newest_first() {
        let emails = [email("1-a-1", 1, 100), email("1-a-2", 2, 300)];
        let decisions = [
            record("1-a-1", 90, "sts:AssumeRole", Ruling::Allow),
            record("1-a-3", 200, "sts:AssumeRole", Ruling::Deny),
            // Denied in audit mode, yet it sent its email: listed once, as the email.
            record("1-a-2", 290, "lambda:InvokeFunction", Ruling::WouldDeny),
            // Before a clear of the inbox.
            record("1-a-4", 10, "sts:AssumeRole", Ruling::Deny),
        ];
        let scenarios = BTreeMap::from([(trace("1-a-3"), "iam-denied".to_owned())]);

        let rows = rows(&emails, &decisions, &scenarios, 50, &accounts());

        let summary: Vec<(&str, Option<&str>, u64)> = rows
            .iter()
            .map(|r| (r.kind, r.trace.as_deref(), r.time_ms))
            .collect();
        assert_eq!(
            summary,
            [
                ("email", Some("1-a-2"), 300),
                ("denied", Some("1-a-3"), 200),
                ("email", Some("1-a-1"), 100)
            ]
        );
        assert_eq!(rows[1].scenario.as_deref(), Some("iam-denied"));
        assert_eq!(
            rows[1].subject,
            "sts:AssumeRole on A:role/servicenow-invoke denied"
        );
        assert_eq!(rows[1].denial.as_deref(), Some("deny by test"));
        assert_eq!(rows[0].id.as_deref(), Some("2"));
    }

    fn invoke(root: &str, time_ms: u64, by: &str, function: &str) -> DecisionRecord {
        DecisionRecord {
            principal: Some(by.into()),
            resource: Some(format!("arn:aws:lambda:us-east-1:{function}")),
            ..record(root, time_ms, "lambda:InvokeFunction", Ruling::Allow)
        }
    }

    fn steps(hops: &[Hop]) -> Vec<(&str, &str, Option<&str>)> {
        hops.iter()
            .map(|h| (h.step.as_str(), h.subject.as_str(), h.decision))
            .collect()
    }

    const ROOT_B: &str = "arn:aws:iam::222222222222:root";
    const INVOKER: &str = "arn:aws:sts::111111111111:assumed-role/servicenow-invoke/s";

    #[test]
    fn a_cold_chain_runs_from_the_client_through_both_lambdas_to_smtp() {
        let records = [
            invoke(
                "1-a-1",
                3,
                INVOKER,
                "111111111111:function:servicenow-alert",
            ),
            record("1-a-1", 2, "sts:AssumeRole", Ruling::Allow),
            invoke(
                "1-a-1",
                1,
                ROOT_B,
                "222222222222:function:servicenow-invoker",
            ),
            record("1-a-1", 4, "logs:PutLogEvents", Ruling::NotEvaluated),
        ];
        let sent = email("1-a-1", 1, 5);

        let hops = chain(&records, &[&sent], &accounts());

        assert_eq!(
            steps(&hops),
            [
                ("client", "B:root", None),
                (
                    "lambda:InvokeFunction",
                    "B:function:servicenow-invoker",
                    Some("allow")
                ),
                ("caller", "B:function:servicenow-invoker", None),
                ("sts:AssumeRole", "A:role/servicenow-invoke", Some("allow")),
                (
                    "lambda:InvokeFunction",
                    "A:function:servicenow-alert",
                    Some("allow")
                ),
                ("callee", "A:function:servicenow-alert", None),
                ("SMTP", "1 email to oncall@example.com", None),
            ]
        );
        assert_eq!(hops[3].deciding[0].policy, "servicenow-invoke");
    }

    #[test]
    fn a_warm_caller_reuses_its_role_and_the_chain_says_so() {
        let records = [
            invoke(
                "1-a-1",
                1,
                ROOT_B,
                "222222222222:function:servicenow-invoker",
            ),
            invoke(
                "1-a-1",
                2,
                INVOKER,
                "111111111111:function:servicenow-alert",
            ),
        ];

        let hops = chain(&records, &[], &accounts());

        assert_eq!(
            steps(&hops)[2..4],
            [
                ("caller", "B:function:servicenow-invoker", None),
                ("sts:AssumeRole", "A:role/servicenow-invoke", None),
            ]
        );
        assert!(
            hops[3]
                .explanation
                .as_deref()
                .is_some_and(|e| e.contains("reused")),
            "{hops:?}"
        );
    }

    #[test]
    fn a_direct_invoke_reaches_the_callee_alone() {
        let records = [invoke(
            "1-a-1",
            1,
            "arn:aws:iam::111111111111:root",
            "111111111111:function:servicenow-alert",
        )];

        let hops = chain(&records, &[], &accounts());

        assert_eq!(
            steps(&hops),
            [
                ("client", "A:root", None),
                (
                    "lambda:InvokeFunction",
                    "A:function:servicenow-alert",
                    Some("allow")
                ),
                ("callee", "A:function:servicenow-alert", None),
            ]
        );
    }

    #[test]
    fn a_denied_chain_stops_at_the_denial() {
        let records = [
            invoke(
                "1-a-1",
                1,
                ROOT_B,
                "222222222222:function:servicenow-invoker",
            ),
            record("1-a-1", 2, "sts:AssumeRole", Ruling::Deny),
        ];

        let hops = chain(&records, &[], &accounts());

        assert_eq!(
            steps(&hops)[2..],
            [
                ("caller", "B:function:servicenow-invoker", None),
                ("sts:AssumeRole", "A:role/servicenow-invoke", Some("deny")),
            ]
        );
    }

    #[test]
    fn scenario_reports_name_their_calls() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("p1-basic");
        std::fs::create_dir_all(&report).unwrap();
        std::fs::write(
            report.join("result.json"),
            r#"{"scenario": "p1 basic", "outcome": {"trace_id": "1-abc-def"}}"#,
        )
        .unwrap();
        let torn = dir.path().join("torn");
        std::fs::create_dir_all(&torn).unwrap();
        std::fs::write(torn.join("result.json"), r#"{"scenario": "#).unwrap();

        let found = scenarios(dir.path()).unwrap();

        assert_eq!(
            found.get(&trace("1-abc-def")).map(String::as_str),
            Some("p1 basic")
        );
        assert_eq!(found.len(), 1);
        assert!(scenarios(&dir.path().join("none")).unwrap().is_empty());
    }
}
