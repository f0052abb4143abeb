//! Invokes the deployed chain the way a user would, and gathers what happened:
//! the response or error, each lambda's logs, and the emails of this call.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant, SystemTime},
};

use aws_config::SdkConfig;
use aws_sdk_lambda::{
    primitives::Blob,
    types::{InvocationType, LogType},
};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::{deploy::Deployment, smtp::CapturedEmail};

/// Which lambda the call enters through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The full chain: caller (B) → STS → callee (A) → SMTP.
    Caller,
    /// The callee directly, from its own account.
    Callee,
}

/// How the call is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
pub enum Invocation {
    /// Synchronous.
    #[default]
    RequestResponse,
    /// Asynchronous: the call returns before the function runs.
    Event,
    /// Validation only: the function does not run.
    DryRun,
}

impl From<Invocation> for InvocationType {
    fn from(value: Invocation) -> Self {
        match value {
            Invocation::RequestResponse => InvocationType::RequestResponse,
            Invocation::Event => InvocationType::Event,
            Invocation::DryRun => InvocationType::DryRun,
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// The function answered normally.
    Success,
    /// A handler returned an error.
    FunctionError,
    /// An AWS access denial, anywhere in the chain.
    Denied,
    /// The Lambda service rejected the request before any handler ran.
    InvalidRequest,
    /// Anything else (transport, emulator).
    Error,
}

/// What one call produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallOutcome {
    /// How it ended.
    pub status: CallStatus,
    /// The response JSON (success), or the error payload (function error).
    pub response: Option<serde_json::Value>,
    /// The error type: the function's `errorType` or AWS's error code.
    pub error_type: Option<String>,
    /// The error message.
    pub error_message: Option<String>,
    /// Logs of each lambda in the chain, by function name.
    pub logs: BTreeMap<String, String>,
    /// The trace id that tags this call's emails.
    pub trace_id: String,
    /// How long the Invoke call took.
    pub duration: Duration,
}

/// Denials surface from the caller as these error types.
const DENIAL_TYPES: [&str; 2] = ["AssumeRoleDenied", "InvokeDenied"];

/// A fresh X-Ray trace header, unique per call, that the chain carries to the
/// callee, which copies it into the email's `X-Amzn-Trace-Id` header.
pub fn new_trace_id() -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{:08x}-{};Sampled=0",
        now.as_secs() as u32,
        &random[..24]
    )
}

/// The `Root=` part of a trace header: what survives every hop unchanged.
pub fn trace_root(trace: &str) -> &str {
    trace
        .split(';')
        .find(|p| p.trim_start().starts_with("Root="))
        .map(str::trim)
        .unwrap_or(trace)
}

/// Whether an email belongs to the call tagged with `trace`.
pub fn email_of(email: &CapturedEmail, trace: &str) -> bool {
    let root = trace_root(trace);
    email
        .header("X-Amzn-Trace-Id")
        .is_some_and(|h| trace_root(h) == root)
}

/// One call to make.
#[derive(Debug, Clone)]
pub struct Call {
    /// The entry point.
    pub via: Via,
    /// The payload bytes, sent unchanged.
    pub payload: Vec<u8>,
    /// How to invoke.
    pub invocation: Invocation,
    /// The trace id to tag the call with.
    pub trace_id: String,
}

/// SDK configs of both accounts, made once and shared by every call.
#[derive(Debug, Clone)]
pub struct Clients {
    /// Account A (the callee's).
    pub callee_account: SdkConfig,
    /// Account B (the caller's).
    pub caller_account: SdkConfig,
}

impl Clients {
    /// Acts as the root of each account against `endpoint`.
    pub async fn new(endpoint: &str, accounts: &crate::deploy::Accounts) -> Self {
        Self {
            callee_account: crate::aws::account_config(endpoint, &accounts.callee).await,
            caller_account: crate::aws::account_config(endpoint, &accounts.caller).await,
        }
    }
}

/// Invokes the chain and classifies the result; logs are gathered too.
pub async fn call(clients: &Clients, deployment: &Deployment, call: &Call) -> CallOutcome {
    let (sdk, function) = match call.via {
        Via::Caller => (&clients.caller_account, &deployment.caller_function_arn),
        Via::Callee => (&clients.callee_account, &deployment.callee_function_arn),
    };
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let started_wall = SystemTime::now();
    let started = Instant::now();
    let mut request = lambda
        .invoke()
        .function_name(function)
        .invocation_type(call.invocation.into())
        .payload(Blob::new(call.payload.clone()));
    if call.invocation == Invocation::RequestResponse {
        request = request.log_type(LogType::Tail);
    }
    let trace = call.trace_id.clone();
    let result = request
        .customize()
        .mutate_request(move |req| {
            req.headers_mut().insert("X-Amzn-Trace-Id", trace.clone());
        })
        .send()
        .await;
    let duration = started.elapsed();

    let mut outcome = CallOutcome {
        status: CallStatus::Success,
        response: None,
        error_type: None,
        error_message: None,
        logs: BTreeMap::new(),
        trace_id: call.trace_id.clone(),
        duration,
    };
    let entry_name = match call.via {
        Via::Caller => deployment.caller_function_name.clone(),
        Via::Callee => deployment.callee_function_name.clone(),
    };
    match result {
        Ok(resp) => {
            if let Some(tail) = resp.log_result() {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(tail)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                outcome.logs.insert(entry_name.clone(), decoded);
            }
            let body = resp
                .payload()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default();
            let json: Option<serde_json::Value> = if body.is_empty() {
                None
            } else {
                Some(serde_json::from_slice(&body).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(&body).into_owned())
                }))
            };
            if resp.function_error().is_some() {
                let error_type = json
                    .as_ref()
                    .and_then(|j| j["errorType"].as_str())
                    .unwrap_or("Unhandled")
                    .to_string();
                outcome.status = if DENIAL_TYPES.contains(&error_type.as_str()) {
                    CallStatus::Denied
                } else {
                    CallStatus::FunctionError
                };
                outcome.error_message = json
                    .as_ref()
                    .and_then(|j| j["errorMessage"].as_str())
                    .map(str::to_string);
                outcome.error_type = Some(error_type);
            }
            outcome.response = json;
        }
        Err(err) => {
            use aws_sdk_lambda::error::ProvideErrorMetadata;
            let code = err.code().map(str::to_string);
            let message = err.message().map(str::to_string).unwrap_or_else(|| {
                aws_smithy_types::error::display::DisplayErrorContext(&err).to_string()
            });
            outcome.status = classify_service_error(code.as_deref());
            outcome.error_type = code.or(Some("Error".into()));
            outcome.error_message = Some(message);
        }
    }
    if call.via == Via::Caller && call.invocation != Invocation::DryRun {
        let logs = invocations_of(
            &group_logs(
                &clients.callee_account,
                &deployment.callee_log_group,
                started_wall,
            )
            .await,
            &call.trace_id,
        );
        if !logs.is_empty() {
            outcome
                .logs
                .insert(deployment.callee_function_name.clone(), logs);
        }
    }
    if call.invocation == Invocation::Event || !outcome.logs.contains_key(&entry_name) {
        let (sdk, group) = match call.via {
            Via::Caller => (&clients.caller_account, &deployment.caller_log_group),
            Via::Callee => (&clients.callee_account, &deployment.callee_log_group),
        };
        let logs = invocations_of(&group_logs(sdk, group, started_wall).await, &call.trace_id);
        if !logs.is_empty() {
            outcome.logs.insert(entry_name, logs);
        }
    }
    outcome
}

/// Maps a Lambda service error code to a status.
pub fn classify_service_error(code: Option<&str>) -> CallStatus {
    match code {
        Some("AccessDeniedException") | Some("AccessDenied") => CallStatus::Denied,
        Some(
            "RequestTooLargeException"
            | "InvalidRequestContentException"
            | "InvalidParameterValueException"
            | "UnsupportedMediaTypeException"
            | "ResourceNotFoundException",
        ) => CallStatus::InvalidRequest,
        _ => CallStatus::Error,
    }
}

/// The invocations (START … REPORT blocks) in a log group's text that belong
/// to the call tagged `trace`: those with a line naming its trace root. Other
/// calls' invocations, from concurrent scenarios, are left out.
pub fn invocations_of(logs: &str, trace: &str) -> String {
    let root = trace_root(trace);
    let mut kept = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    let flush = |block: &mut Vec<&str>, kept: &mut Vec<String>| {
        if block.iter().any(|l| l.contains(root)) {
            kept.push(block.join("\n"));
        }
        block.clear();
    };
    for line in logs.lines() {
        if line.starts_with("START RequestId:") {
            flush(&mut block, &mut kept);
        }
        block.push(line);
        if line.starts_with("REPORT RequestId:") {
            flush(&mut block, &mut kept);
        }
    }
    flush(&mut block, &mut kept);
    kept.join("\n")
}

/// Log lines a function wrote to its group since `since` (a little slack for clocks).
async fn group_logs(sdk: &SdkConfig, group: &str, since: SystemTime) -> String {
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    let start = since
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64 - 1000)
        .unwrap_or_default();
    let Ok(resp) = logs
        .filter_log_events()
        .log_group_name(group)
        .start_time(start)
        .send()
        .await
    else {
        return String::new();
    };
    resp.events()
        .iter()
        .filter_map(|e| e.message())
        .map(|m| m.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The gateway's decisions for the call tagged `trace`, read from its log.
pub fn decisions_of(log: &std::path::Path, trace: &str) -> Vec<crate::gateway::DecisionRecord> {
    // The gateway logs the root's value without its `Root=` key.
    let root = trace_root(trace).trim_start_matches("Root=");
    let mut records: Vec<_> = crate::gateway::read_log(log)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            r.trace_root
                .as_deref()
                .is_some_and(|t| trace_root(t).trim_start_matches("Root=") == root)
        })
        .collect();
    // Records are written when each response returns, so inner hops come
    // first; arrival order is the chain's order.
    records.sort_by_key(|r| r.time_ms);
    records
}

/// Where a call's emails are read from.
#[derive(Debug, Clone)]
pub enum Mailbox {
    /// The capture server in this process.
    InProcess(crate::smtp::MailCapture),
    /// The spool directory of a capture server in another process (`harness up`).
    Spool(PathBuf),
}

impl Mailbox {
    /// Waits up to `timeout` for `at_least` emails of the call tagged `trace`,
    /// and returns all of that call's emails seen by then.
    pub async fn emails_of(
        &self,
        trace: &str,
        at_least: usize,
        timeout: Duration,
    ) -> Vec<CapturedEmail> {
        match self {
            Mailbox::InProcess(capture) => match capture
                .wait_for(at_least, timeout, |m| email_of(m, trace))
                .await
            {
                Ok(found) | Err(found) => found,
            },
            Mailbox::Spool(dir) => {
                let deadline = Instant::now() + timeout;
                loop {
                    let found: Vec<CapturedEmail> = crate::smtp::read_spool(dir)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|m| email_of(m, trace))
                        .collect();
                    if found.len() >= at_least || Instant::now() >= deadline {
                        return found;
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[test]
    fn trace_ids_are_unique_and_well_formed() {
        let a = new_trace_id();
        let b = new_trace_id();
        assert_ne!(a, b);
        let root = trace_root(&a);
        let parts: Vec<&str> = root.trim_start_matches("Root=").split('-').collect();
        assert_eq!(parts.len(), 3, "{a}");
        assert_eq!(parts[0], "1");
        assert_eq!(parts[1].len(), 8);
        assert_eq!(parts[2].len(), 24);
        assert!(parts[2].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[rstest]
    #[case::same_root_other_parent("Root=1-abc-def;Parent=123;Sampled=1", true)]
    #[case::other_root("Root=1-abc-xyz;Sampled=0", false)]
    fn emails_match_on_the_trace_root(#[case] header: &str, #[case] expected: bool) {
        let email = CapturedEmail {
            seq: 1,
            envelope_from: String::new(),
            envelope_to: vec![],
            from: String::new(),
            to: vec![],
            cc: vec![],
            subject: String::new(),
            text: String::new(),
            html: String::new(),
            headers: vec![("X-Amzn-Trace-Id".into(), header.into())],
            received_at_ms: 0,
            raw: vec![],
        };
        assert_eq!(email_of(&email, "Root=1-abc-def;Sampled=0"), expected);
    }

    #[test]
    fn only_the_invocations_of_this_trace_are_kept() {
        let logs = "START RequestId: a Version: $LATEST\n\
                    INFO handle{xrayTraceId=\"Root=1-aaa-111;Parent=9\"}: sent\n\
                    END RequestId: a\n\
                    REPORT RequestId: a\tDuration: 4 ms\n\
                    START RequestId: b Version: $LATEST\n\
                    INFO handle{xrayTraceId=\"Root=1-bbb-222;Parent=8\"}: sent\n\
                    END RequestId: b\n\
                    REPORT RequestId: b\tDuration: 5 ms";

        let kept = invocations_of(logs, "Root=1-bbb-222;Sampled=0");

        assert!(kept.starts_with("START RequestId: b"), "{kept}");
        assert!(kept.ends_with("Duration: 5 ms"), "{kept}");
        assert!(!kept.contains("RequestId: a"), "{kept}");
    }

    #[test]
    fn decisions_are_matched_on_the_trace_root_value() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("iam.jsonl");
        let record = |root: &str| {
            serde_json::json!({"time_ms": 1, "trace_root": root, "principal": null,
                "action": "sts:AssumeRole", "resource": null, "decision": "allow",
                "reason": "allowed", "explanation": "ALLOW", "deciding": [],
                "status": 200, "overhead_us": 1})
            .to_string()
        };
        std::fs::write(
            &log,
            format!("{}\n{}\n", record("1-abc-def"), record("1-abc-xyz")),
        )
        .unwrap();

        let found = decisions_of(&log, "Root=1-abc-def;Sampled=0");

        assert_eq!(found.len(), 1);
        assert_eq!(found[0].trace_root.as_deref(), Some("1-abc-def"));
    }

    #[rstest]
    #[case::denied(Some("AccessDeniedException"), CallStatus::Denied)]
    #[case::too_large(Some("RequestTooLargeException"), CallStatus::InvalidRequest)]
    #[case::bad_json(Some("InvalidRequestContentException"), CallStatus::InvalidRequest)]
    #[case::throttled(Some("TooManyRequestsException"), CallStatus::Error)]
    #[case::transport(None, CallStatus::Error)]
    fn service_errors_are_classified(#[case] code: Option<&str>, #[case] expected: CallStatus) {
        assert_eq!(classify_service_error(code), expected);
    }
}
