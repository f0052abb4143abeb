//! Lambda's own rules for invokes, against the whole system: the real callee
//! behind the IAM gateway and LocalStack. Each test names the rule it proves,
//! as the README's table of what the harness emulates lists them.
//!
//! The rules that refuse a request (size quotas, not JSON) are the gateway's
//! (`iam-gateway/src/lambda_rules.rs`); the others LocalStack already keeps,
//! and these tests hold it to them.

mod support;

use std::sync::OnceLock;

use aws_sdk_lambda::{
    error::ProvideErrorMetadata,
    primitives::Blob,
    types::{InvocationType, LogType},
};
use base64::Engine as _;
use support::Running;
use xray_trace::TraceId;

static SYSTEM: OnceLock<Running> = OnceLock::new();

fn system() -> &'static Running {
    SYSTEM.get_or_init(|| Running::up("lambda-rules"))
}

/// A valid alert whose compact JSON is exactly `len` bytes (`len` ≥ 400).
fn alert_of(number: &str, len: usize) -> Vec<u8> {
    let mut body = support::alert(number, "lambda rules", "", "oncall@example.com");
    let empty = body.len();
    let text = serde_json::to_string(&"x".repeat(len - empty)).expect("json");
    let at = body
        .windows(b"\"description\":\"\"".len())
        .position(|w| w == b"\"description\":\"\"")
        .expect("description")
        + b"\"description\":".len();
    body.splice(at..at + 2, text.into_bytes());
    assert_eq!(body.len(), len);
    body
}

struct Answer {
    status: Option<u16>,
    code: Option<String>,
    message: Option<String>,
    log_result: Option<String>,
    function_error: Option<String>,
}

fn invoke(
    invocation: InvocationType,
    log_type: Option<LogType>,
    payload: Vec<u8>,
    trace: &TraceId,
) -> Answer {
    let running = system();
    let system = running.system();
    let lambda = aws_sdk_lambda::Client::new(&system.clients.callee_account);
    let function = system.running.deployment.callee_function_arn.clone();
    let header = trace.header();
    running.block_on(async move {
        let mut request = lambda
            .invoke()
            .function_name(function)
            .invocation_type(invocation)
            .payload(Blob::new(payload));
        if let Some(log_type) = log_type {
            request = request.log_type(log_type);
        }
        let answer = request
            .customize()
            .mutate_request(move |req| {
                req.headers_mut().insert(xray_trace::HEADER, header.clone());
            })
            .send()
            .await;
        match answer {
            Ok(out) => Answer {
                status: Some(out.status_code() as u16),
                code: None,
                message: None,
                log_result: out.log_result().map(str::to_owned),
                function_error: out.function_error().map(str::to_owned),
            },
            Err(err) => Answer {
                status: err.raw_response().map(|r| r.status().as_u16()),
                code: err.code().map(str::to_owned),
                message: err.message().map(str::to_owned),
                log_result: None,
                function_error: None,
            },
        }
    })
}

/// The gateway's decision records of `trace` that reached LocalStack: the
/// refusals below must have none, so no handler can have run.
fn forwarded_statuses(trace: &TraceId) -> Vec<Option<u16>> {
    let system = system().system();
    let gateway = system.gateway.as_ref().expect("a gateway");
    gateway
        .decisions_of(trace)
        .into_iter()
        .map(|d| d.status)
        .collect()
}

#[test]
fn a_synchronous_payload_over_6_mb_is_request_too_large_before_any_handler() {
    let trace = TraceId::new();
    let answer = invoke(
        InvocationType::RequestResponse,
        None,
        alert_of("INC0019001", 6 * 1024 * 1024 + 1),
        &trace,
    );

    assert_eq!(answer.status, Some(413));
    assert_eq!(answer.code.as_deref(), Some("RequestTooLargeException"));
    assert_eq!(
        answer.message.as_deref(),
        Some("Request must be smaller than 6291456 bytes for the InvokeFunction operation")
    );
    // One decision, answered by the gateway itself with the 413.
    assert_eq!(forwarded_statuses(&trace), vec![Some(413)]);
    let emails = system().system().capture.messages();
    assert!(!emails.iter().any(|e| e.is_of(&trace)), "an email was sent");
}

#[test]
fn a_synchronous_payload_of_6_mb_reaches_the_function() {
    // The twin of the rule above: exactly the quota is Lambda's to run, and
    // the callee refuses it itself (its own 256 KB limit).
    let trace = TraceId::new();
    let answer = invoke(
        InvocationType::RequestResponse,
        None,
        alert_of("INC0019002", 6 * 1024 * 1024),
        &trace,
    );

    assert_eq!(answer.status, Some(200), "{:?}", answer.code);
    assert_eq!(answer.function_error.as_deref(), Some("Unhandled"));
}

#[test]
fn an_event_payload_over_1_mb_is_request_too_large() {
    let trace = TraceId::new();
    let answer = invoke(
        InvocationType::Event,
        None,
        alert_of("INC0019003", 1024 * 1024 + 1),
        &trace,
    );

    assert_eq!(answer.status, Some(413));
    assert_eq!(answer.code.as_deref(), Some("RequestTooLargeException"));
    assert_eq!(
        answer.message.as_deref(),
        Some("Request must be smaller than 1048576 bytes for the InvokeFunction operation")
    );
    assert_eq!(forwarded_statuses(&trace), vec![Some(413)]);
}

#[test]
fn an_event_payload_of_1_mb_is_queued_with_202() {
    let trace = TraceId::new();
    let answer = invoke(
        InvocationType::Event,
        None,
        alert_of("INC0019004", 1024 * 1024),
        &trace,
    );

    assert_eq!(answer.status, Some(202), "{:?}", answer.code);
}

#[test]
fn a_body_that_is_not_json_is_invalid_request_content_before_any_handler() {
    let trace = TraceId::new();
    let answer = invoke(
        InvocationType::RequestResponse,
        None,
        b"not json".to_vec(),
        &trace,
    );

    assert_eq!(answer.status, Some(400));
    assert_eq!(
        answer.code.as_deref(),
        Some("InvalidRequestContentException")
    );
    let message = answer.message.unwrap_or_default();
    assert!(
        message.starts_with(
            "Could not parse request body into json: Could not parse payload into json: "
        ),
        "{message}"
    );
    assert_eq!(forwarded_statuses(&trace), vec![Some(400)]);
}

#[test]
fn event_answers_202_and_dry_run_204() {
    let payload = support::alert("INC0019005", "status codes", "", "oncall@example.com");

    let event = invoke(
        InvocationType::Event,
        None,
        payload.clone(),
        &TraceId::new(),
    );
    let dry_run = invoke(InvocationType::DryRun, None, payload, &TraceId::new());

    assert_eq!(event.status, Some(202), "{:?}", event.code);
    assert_eq!(dry_run.status, Some(204), "{:?}", dry_run.code);
}

#[test]
fn log_type_tail_returns_the_last_4_kb_of_a_synchronous_invocations_log_only() {
    let payload = support::alert("INC0019006", "log tail", "", "oncall@example.com");

    let sync = invoke(
        InvocationType::RequestResponse,
        Some(LogType::Tail),
        payload.clone(),
        &TraceId::new(),
    );
    let event = invoke(
        InvocationType::Event,
        Some(LogType::Tail),
        payload,
        &TraceId::new(),
    );

    assert_eq!(sync.status, Some(200));
    let tail = base64::engine::general_purpose::STANDARD
        .decode(sync.log_result.expect("a log tail for a synchronous call"))
        .expect("base64");
    assert!(tail.len() <= 4096, "{} bytes", tail.len());
    let tail = String::from_utf8_lossy(&tail);
    assert!(tail.contains("START RequestId: "), "{tail}");
    assert!(tail.contains("REPORT RequestId: "), "{tail}");
    assert_eq!(event.status, Some(202));
    assert_eq!(
        event.log_result, None,
        "an Event invocation has no log tail"
    );
}
