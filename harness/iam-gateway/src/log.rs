//! The decision log: one record per request the gateway saw, in memory and
//! optionally appended as JSON lines to a file other processes read.

use std::{
    collections::{BTreeMap, VecDeque},
    fmt::Write as _,
    fs::{File, OpenOptions},
    io::Write as _,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};
use xray_trace::TraceId;

use iam_policy::{Decision, DecisionReason, StatementRef};
use serde::{Deserialize, Serialize};

use crate::error::GatewayError;

/// How many records the in-memory log keeps; older ones are only in the file.
const MEMORY_RECORDS: usize = 50_000;

/// What the gateway did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ruling {
    /// Evaluated and allowed; forwarded.
    Allow,
    /// Evaluated and denied; answered with AWS's error, never forwarded.
    Deny,
    /// Audit mode: AWS would deny it, but it was forwarded.
    WouldDeny,
    /// Not an action the gateway evaluates; forwarded unchecked.
    NotEvaluated,
    /// The gateway could not evaluate it (upstream failure, unusable policy).
    Error,
}

impl Ruling {
    /// The lowercase name used in the log (`allow`, `would_deny`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::WouldDeny => "would_deny",
            Self::NotEvaluated => "not_evaluated",
            Self::Error => "error",
        }
    }
}

/// A statement that decided a request, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecidingStatement {
    /// `trust`, `resource` or `identity`.
    pub kind: String,
    /// The policy's name.
    pub policy: String,
    /// The statement's Sid, else its 0-based index.
    pub sid_or_index: String,
}

impl From<&StatementRef> for DecidingStatement {
    fn from(s: &StatementRef) -> Self {
        Self {
            kind: s.kind.to_string(),
            policy: s.policy.clone(),
            sid_or_index: s.sid.clone().unwrap_or_else(|| s.index.to_string()),
        }
    }
}

/// One request as the gateway saw and decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The `Root=` of the request's `X-Amzn-Trace-Id`, grouping one run of the chain.
    pub trace: Option<TraceId>,
    /// The caller's ARN, when the gateway resolved it.
    pub principal: Option<String>,
    /// `sts:AssumeRole`, `lambda:InvokeFunction`, or the passed-through action (`iam:CreateRole`, `s3:unknown`, `unknown`).
    pub action: String,
    /// The role or function ARN, for evaluated actions.
    pub resource: Option<String>,
    /// What the gateway did.
    pub decision: Ruling,
    /// A stable reason code: `allowed`, `explicit_deny`, `no_resource_based_policy_allows`,
    /// `no_identity_based_policy_allows`, `root_cannot_assume_role`, `role_not_found`,
    /// `duration_exceeds_max_session_duration`, `duration_exceeds_role_chaining_limit`,
    /// `unsigned_request`, `evaluation_failed`, `not_evaluated`.
    pub reason: String,
    /// The human explanation: the evaluator's `ALLOW (...)`/`DENY: ...` text, or why not evaluated.
    pub explanation: String,
    /// The statements that decided it.
    pub deciding: Vec<DecidingStatement>,
    /// The HTTP status the client got.
    pub status: Option<u16>,
    /// Time the gateway itself spent on the request (excluding the upstream's), in microseconds.
    pub overhead_us: Option<u64>,
    /// Time the upstream took to answer the forwarded request, in
    /// microseconds; `None` when nothing was forwarded (a denial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_us: Option<u64>,
    /// The upstream's `x-amzn-RequestId`, for a forwarded request: for an
    /// Invoke, the invocation's request id, which its log's `START` and
    /// `REPORT` lines name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The log's reason code for an evaluator reason.
pub fn reason_code(reason: DecisionReason) -> &'static str {
    match reason {
        DecisionReason::Allowed => "allowed",
        DecisionReason::ExplicitDeny(_) => "explicit_deny",
        DecisionReason::NoResourceBasedPolicyAllows => "no_resource_based_policy_allows",
        DecisionReason::NoIdentityBasedPolicyAllows => "no_identity_based_policy_allows",
        DecisionReason::RootCannotAssumeRole => "root_cannot_assume_role",
    }
}

impl DecisionRecord {
    /// A record of an evaluator decision.
    pub fn from_decision(decision: &Decision, verdict: Ruling, trace: Option<TraceId>) -> Self {
        Self {
            time_ms: now_ms(),
            trace,
            principal: Some(decision.principal_arn.clone()),
            action: decision.action.clone(),
            resource: Some(decision.resource.clone()),
            decision: verdict,
            reason: reason_code(decision.reason).to_owned(),
            explanation: decision.to_string(),
            deciding: decision.deciding.iter().map(Into::into).collect(),
            status: None,
            overhead_us: None,
            upstream_us: None,
            request_id: None,
        }
    }
}

/// The in-memory log, plus the JSON-lines file when configured.
#[derive(Debug)]
pub struct DecisionLog {
    memory: Mutex<VecDeque<DecisionRecord>>,
    file: Option<(PathBuf, Mutex<File>)>,
}

impl DecisionLog {
    /// Opens (appending, creating) the file if one is given.
    pub fn open(path: Option<&Path>) -> Result<Self, GatewayError> {
        let file = match path {
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| GatewayError::Log {
                        path: dir.to_path_buf(),
                        action: "directory cannot be created",
                        source,
                    })?;
                }
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| GatewayError::Log {
                        path: path.to_path_buf(),
                        action: "cannot be opened for appending",
                        source,
                    })?;
                Some((path.to_path_buf(), Mutex::new(file)))
            }
            None => None,
        };
        Ok(Self {
            memory: Mutex::new(VecDeque::new()),
            file,
        })
    }

    /// The file records are appended to, if any.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|(p, _)| p.as_path())
    }

    /// Records one request: in memory, and as one line in the file.
    pub fn push(&self, record: DecisionRecord) {
        if let Some((path, file)) = &self.file {
            match serde_json::to_string(&record) {
                Ok(mut line) => {
                    line.push('\n');
                    // One write per line on an O_APPEND file keeps lines whole
                    // when other processes read while we write.
                    let written = file
                        .lock()
                        .map_err(|_| std::io::Error::other("decision log lock poisoned"))
                        .and_then(|mut f| f.write_all(line.as_bytes()));
                    if let Err(err) = written {
                        tracing::warn!(path = %path.display(), error = %err, "cannot append to the decision log");
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot serialise a decision record"),
            }
        }
        if let Ok(mut memory) = self.memory.lock() {
            if memory.len() == MEMORY_RECORDS {
                memory.pop_front();
            }
            memory.push_back(record);
        }
    }

    /// Every record still in memory, oldest first.
    pub fn all(&self) -> Vec<DecisionRecord> {
        self.memory
            .lock()
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The records of one trace root, oldest first.
    pub fn of_trace(&self, trace: &TraceId) -> Vec<DecisionRecord> {
        self.memory
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|r| r.trace.as_ref() == Some(trace))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Reads a decision log file written by a gateway (possibly in another process).
///
/// Lines that do not parse (a line being written right now) are skipped.
pub fn read_log(path: &Path) -> Result<Vec<DecisionRecord>, GatewayError> {
    read_lines(path, |_| true)
}

/// The records of one call (`trace`) in a log written with
/// [`GatewayConfig::log_file`](crate::GatewayConfig::log_file). Only the lines
/// that name the trace are parsed, so reading stays cheap as the log of a
/// long-running system grows.
pub fn read_log_of(path: &Path, trace: &TraceId) -> Result<Vec<DecisionRecord>, GatewayError> {
    let mut records = read_lines(path, |line| line.contains(trace.root()))?;
    records.retain(|record| record.trace.as_ref() == Some(trace));
    Ok(records)
}

fn read_lines(
    path: &Path,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<DecisionRecord>, GatewayError> {
    let text = std::fs::read_to_string(path).map_err(|source| GatewayError::Log {
        path: path.to_path_buf(),
        action: "cannot be read",
        source,
    })?;
    Ok(text
        .lines()
        .filter(|line| !line.trim().is_empty() && keep(line))
        .filter_map(|line| match serde_json::from_str(line) {
            Ok(record) => Some(record),
            Err(err) => {
                tracing::debug!(path = %path.display(), error = %err, "skipping an unreadable decision log line");
                None
            }
        })
        .collect())
}

/// Shortens an ARN for chains: the account becomes its letter when `accounts`
/// maps it (`B:role/servicenow-invoker-exec`), and a role session becomes its role.
///
/// ARNs that are not IAM, STS or Lambda ARNs are returned unchanged.
pub fn abbreviate_arn(arn: &str, accounts: &BTreeMap<String, String>) -> String {
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", _, service, _, account, resource] = fields.as_slice() else {
        return arn.to_owned();
    };
    let who = accounts
        .get(*account)
        .map(String::as_str)
        .unwrap_or(account);
    let short = match *service {
        "sts" => match resource.strip_prefix("assumed-role/") {
            Some(rest) => format!("role/{}", rest.split('/').next().unwrap_or(rest)),
            None => (*resource).to_owned(),
        },
        "iam" => match resource.strip_prefix("role/") {
            // Sessions drop the role's path, so the role does too, to line up.
            Some(path) => format!("role/{}", path.rsplit('/').next().unwrap_or(path)),
            None => (*resource).to_owned(),
        },
        "lambda" => (*resource).to_owned(),
        _ => return arn.to_owned(),
    };
    format!("{who}:{short}")
}

/// Renders evaluated records as a chain, one hop per line.
///
/// A hop whose caller is the previous hop's resource (the role just assumed)
/// continues the previous line's chain; any other hop starts a new chain.
/// `not_evaluated` records are left out.
///
/// ```text
/// B:role/servicenow-invoker-exec → sts:AssumeRole → A:role/servicenow-invoke  ALLOW (trust policy servicenow-invoke statement 0; identity policy invoker-assume/Assume)
///   → lambda:InvokeFunction A:function:servicenow-alert  ALLOW (resource policy servicenow-alert/invoke; identity policy servicenow-invoke/invoke)
/// ```
pub fn format_chain(records: &[DecisionRecord], accounts: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut previous_resource: Option<String> = None;
    for record in records
        .iter()
        .filter(|r| r.decision != Ruling::NotEvaluated)
    {
        let principal = record
            .principal
            .as_deref()
            .map(|p| abbreviate_arn(p, accounts))
            .unwrap_or_else(|| "unknown caller".to_owned());
        let resource = record
            .resource
            .as_deref()
            .map(|r| abbreviate_arn(r, accounts))
            .unwrap_or_default();
        let verdict = match record.decision {
            Ruling::WouldDeny => format!("WOULD {}", record.explanation),
            Ruling::Error => format!("ERROR: {}", record.explanation),
            _ => record.explanation.clone(),
        };
        let _ = if previous_resource.as_deref() == Some(principal.as_str()) {
            writeln!(out, "  → {} {resource}  {verdict}", record.action)
        } else {
            writeln!(
                out,
                "{principal} → {} → {resource}  {verdict}",
                record.action
            )
        };
        previous_resource = Some(resource);
    }
    out
}

#[cfg(test)]
mod tests {
    use iam_policy::{Effect, PolicyKind};
    use rstest::rstest;

    use super::*;

    fn accounts() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("111111111111".to_owned(), "A".to_owned()),
            ("222222222222".to_owned(), "B".to_owned()),
        ])
    }

    fn record(
        principal: &str,
        action: &str,
        resource: &str,
        decision: Ruling,
        explanation: &str,
    ) -> DecisionRecord {
        DecisionRecord {
            time_ms: 1,
            trace: TraceId::from_header("Root=1-abc-def"),
            principal: Some(principal.into()),
            action: action.into(),
            resource: Some(resource.into()),
            decision,
            reason: "allowed".into(),
            explanation: explanation.into(),
            deciding: Vec::new(),
            status: Some(200),
            overhead_us: Some(100),
            upstream_us: None,
            request_id: None,
        }
    }

    #[rstest]
    #[case::session_is_its_role(
        "arn:aws:sts::222222222222:assumed-role/servicenow-invoker-exec/1700000000",
        "B:role/servicenow-invoker-exec"
    )]
    #[case::role_path_dropped(
        "arn:aws:iam::111111111111:role/svc/servicenow-invoke",
        "A:role/servicenow-invoke"
    )]
    #[case::function(
        "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert",
        "A:function:servicenow-alert"
    )]
    #[case::qualified_function(
        "arn:aws:lambda:us-east-1:111111111111:function:f:live",
        "A:function:f:live"
    )]
    #[case::root("arn:aws:iam::222222222222:root", "B:root")]
    #[case::unmapped_account(
        "arn:aws:iam::333333333333:user/ops/alice",
        "333333333333:user/ops/alice"
    )]
    #[case::other_service("arn:aws:s3:::bucket", "arn:aws:s3:::bucket")]
    #[case::not_an_arn("servicenow-alert", "servicenow-alert")]
    fn abbreviations(#[case] arn: &str, #[case] expected: &str) {
        assert_eq!(abbreviate_arn(arn, &accounts()), expected);
    }

    #[test]
    fn chain_continues_from_the_assumed_role() {
        let records = [
            record(
                "arn:aws:sts::222222222222:assumed-role/servicenow-invoker-exec/s",
                "sts:AssumeRole",
                "arn:aws:iam::111111111111:role/servicenow-invoke",
                Ruling::Allow,
                "ALLOW (trust policy servicenow-invoke statement 0)",
            ),
            record(
                "arn:aws:lambda:us-east-1:111111111111:function:x",
                "logs:PutLogEvents",
                "",
                Ruling::NotEvaluated,
                "not evaluated",
            ),
            record(
                "arn:aws:sts::111111111111:assumed-role/servicenow-invoke/s",
                "lambda:InvokeFunction",
                "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert",
                Ruling::Allow,
                "ALLOW (resource policy servicenow-alert/invoke; identity policy servicenow-invoke/invoke)",
            ),
            record(
                "arn:aws:iam::333333333333:root",
                "lambda:InvokeFunction",
                "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert",
                Ruling::WouldDeny,
                "DENY: no resource-based policy allows",
            ),
        ];
        assert_eq!(
            format_chain(&records, &accounts()),
            "B:role/servicenow-invoker-exec → sts:AssumeRole → A:role/servicenow-invoke  ALLOW (trust policy servicenow-invoke statement 0)\n\
             \x20 → lambda:InvokeFunction A:function:servicenow-alert  ALLOW (resource policy servicenow-alert/invoke; identity policy servicenow-invoke/invoke)\n\
             333333333333:root → lambda:InvokeFunction → A:function:servicenow-alert  WOULD DENY: no resource-based policy allows\n"
        );
    }

    #[test]
    fn file_log_round_trips_and_skips_torn_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/decisions.jsonl");
        let log = DecisionLog::open(Some(&path)).expect("open");
        let first = record(
            "arn:aws:iam::222222222222:root",
            "a",
            "r",
            Ruling::Allow,
            "x",
        );
        let mut second = first.clone();
        second.trace = TraceId::from_header("Root=other");
        second.decision = Ruling::Deny;
        log.push(first.clone());
        log.push(second.clone());
        // A line another writer has only half written.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"time_ms\": 3, \"trace"))
            .expect("append");

        assert_eq!(
            read_log(&path).expect("read"),
            vec![first.clone(), second.clone()]
        );
        assert_eq!(log.all(), vec![first.clone(), second]);
        let trace = |root: &str| TraceId::from_header(&format!("Root={root}")).expect("a root");
        assert_eq!(log.of_trace(&trace("1-abc-def")), vec![first.clone()]);
        assert!(log.of_trace(&trace("none")).is_empty());
        // From the file, one call's records only: a record that merely mentions
        // the trace (here in its explanation) is another call's.
        let mut mentions = first.clone();
        mentions.trace = Some(trace("other"));
        mentions.explanation = "see 1-abc-def".to_owned();
        // After the torn line, on a line of its own.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"\n"))
            .expect("append");
        log.push(mentions.clone());
        assert_eq!(read_log(&path).expect("read").last(), Some(&mentions));
        assert_eq!(
            read_log_of(&path, &trace("1-abc-def")).expect("read"),
            vec![first]
        );
        assert!(read_log_of(&path, &trace("none")).expect("read").is_empty());
    }

    #[test]
    fn records_carry_the_deciding_statements() {
        let decision = Decision {
            allowed: true,
            reason: DecisionReason::Allowed,
            deciding: vec![
                StatementRef {
                    kind: PolicyKind::Trust,
                    policy: "servicenow-invoke".into(),
                    index: 0,
                    sid: None,
                    effect: Effect::Allow,
                    principal_match: None,
                },
                StatementRef {
                    kind: PolicyKind::Identity,
                    policy: "invoker-assume".into(),
                    index: 2,
                    sid: Some("Assume".into()),
                    effect: Effect::Allow,
                    principal_match: None,
                },
            ],
            principal_arn: "arn:aws:sts::222222222222:assumed-role/r/s".into(),
            action: "sts:AssumeRole".into(),
            resource: "arn:aws:iam::111111111111:role/servicenow-invoke".into(),
        };
        let record = DecisionRecord::from_decision(&decision, Ruling::Allow, None);
        assert_eq!(record.reason, "allowed");
        assert_eq!(
            record.explanation,
            "ALLOW (trust policy servicenow-invoke statement 0; identity policy invoker-assume/Assume)"
        );
        assert_eq!(
            record.deciding,
            vec![
                DecidingStatement {
                    kind: "trust".into(),
                    policy: "servicenow-invoke".into(),
                    sid_or_index: "0".into()
                },
                DecidingStatement {
                    kind: "identity".into(),
                    policy: "invoker-assume".into(),
                    sid_or_index: "Assume".into()
                },
            ]
        );
        let json = serde_json::to_value(&record).expect("json");
        assert_eq!(json["decision"], "allow");
        assert!(json["trace"].is_null());
    }

    #[test]
    fn reading_a_missing_log_names_the_file() {
        let err = read_log(Path::new("/nonexistent/decisions.jsonl")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/decisions.jsonl"),
            "{err}"
        );
    }
}
