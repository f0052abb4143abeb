//! Wire shapes: LocalStack's invoke request, AWS error payloads and AWS log lines.

use std::{process::ExitStatus, time::Duration};

use serde::{Deserialize, Serialize};

/// An invocation as LocalStack posts it to `POST /invoke` on the execution environment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InvokeRequest {
    /// Request id of the invocation.
    #[serde(rename = "invoke-id")]
    pub invoke_id: String,
    /// ARN the caller invoked (may carry a qualifier).
    #[serde(rename = "invoked-function-arn")]
    pub invoked_function_arn: String,
    /// The event, as a string (LocalStack decodes it as UTF-8).
    pub payload: String,
    /// X-Ray trace header of the invocation.
    #[serde(rename = "trace-id", default)]
    pub trace_id: Option<String>,
    /// Client context JSON (decoded), when the caller sent one.
    #[serde(rename = "client-context", default)]
    pub client_context: Option<String>,
    /// Cognito identity JSON, when the caller had one.
    #[serde(rename = "cognito-identity", default)]
    pub cognito_identity: Option<String>,
}

/// The largest response body Lambda takes from a function: 6 MiB and 100 bytes.
///
/// AWS's Runtime API (`interop.MaxPayloadSize` in aws-lambda-runtime-interface-emulator)
/// accepts exactly this many bytes and refuses one more; LocalStack hands the same
/// figure to its own runtime init as `LOCALSTACK_MAX_PAYLOAD_SIZE`.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024 + 100;

/// The error body AWS Lambda returns to the invoker for platform-detected failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorPayload {
    /// Stable error type, e.g. `Sandbox.Timedout`.
    pub error_type: String,
    /// Human-readable message in AWS's wording.
    pub error_message: String,
}

impl ErrorPayload {
    /// The payload for an invocation that ran past the function timeout.
    pub fn timed_out(request_id: &str, timeout: Duration) -> Self {
        Self {
            error_type: "Sandbox.Timedout".into(),
            error_message: format!(
                "RequestId: {request_id} Error: {}",
                timed_out_message(timeout)
            ),
        }
    }

    /// The payload for a bootstrap that exited while an invocation was running or starting.
    pub fn runtime_exited(request_id: Option<&str>, status: ExitStatus) -> Self {
        let message = format!("Runtime exited with error: {}", describe_exit(status));
        Self {
            error_type: "Runtime.ExitError".into(),
            error_message: with_request_id(request_id, &message),
        }
    }

    /// The payload for a function whose response body (`size` bytes) is over `limit`.
    ///
    /// AWS's wording, as its Runtime API reports it to the invoker; the function
    /// ran to its end, but the invoker gets this function error instead.
    pub fn response_too_large(size: usize, limit: usize) -> Self {
        Self {
            error_type: "Function.ResponseSizeTooLarge".into(),
            error_message: format!(
                "Response payload size ({size} bytes) exceeded maximum allowed payload size ({limit} bytes)."
            ),
        }
    }

    /// What the Runtime API answers (413) to a function that posts a response over `limit`.
    pub fn request_entity_too_large(limit: usize) -> Self {
        Self {
            error_type: "RequestEntityTooLarge".into(),
            error_message: format!("Exceeded maximum allowed payload size ({limit} bytes)."),
        }
    }

    /// The payload for a bootstrap that could not be started at all.
    pub fn invalid_entrypoint(request_id: Option<&str>, detail: &str) -> Self {
        Self {
            error_type: "Runtime.InvalidEntrypoint".into(),
            error_message: with_request_id(request_id, detail),
        }
    }

    /// Serialises the payload as JSON bytes.
    pub fn to_bytes(&self) -> bytes::Bytes {
        // Serialising two strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default().into()
    }
}

fn with_request_id(request_id: Option<&str>, message: &str) -> String {
    match request_id {
        Some(id) => format!("RequestId: {id} Error: {message}"),
        None => format!("Error: {message}"),
    }
}

/// AWS's wording for a timeout, e.g. `Task timed out after 3.00 seconds`.
pub fn timed_out_message(timeout: Duration) -> String {
    format!("Task timed out after {:.2} seconds", timeout.as_secs_f64())
}

/// Describes an exit status the way the Lambda service does (Go's `ExitError` wording).
pub fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(9) => "signal: killed".into(),
        Some(15) => "signal: terminated".into(),
        Some(11) => "signal: segmentation fault".into(),
        Some(6) => "signal: aborted".into(),
        Some(signal) => format!("signal: {signal}"),
        None => "unknown exit".into(),
    }
}

/// An error body a runtime posted; when it is not a JSON object, wrap it in one so the invoker always gets JSON.
pub fn runtime_error_body(error_type: Option<&str>, body: &[u8]) -> bytes::Bytes {
    let is_object = serde_json::from_slice::<serde_json::Value>(body)
        .map(|value| value.is_object())
        .unwrap_or(false);
    if is_object {
        return bytes::Bytes::copy_from_slice(body);
    }
    ErrorPayload {
        error_type: error_type.unwrap_or("Unhandled").to_owned(),
        error_message: String::from_utf8_lossy(body).into_owned(),
    }
    .to_bytes()
}

/// The `START` line that opens an invocation's logs.
pub fn start_line(request_id: &str, version: &str) -> String {
    format!("START RequestId: {request_id} Version: {version}\n")
}

/// The `END` line that closes an invocation's logs.
pub fn end_line(request_id: &str) -> String {
    format!("END RequestId: {request_id}\n")
}

/// Figures for the `REPORT` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Time from the invoke's arrival to its outcome.
    pub duration: Duration,
    /// Configured memory in MB.
    pub memory_size_mb: u64,
    /// Peak resident memory of the bootstrap in MB, when known.
    pub max_memory_used_mb: Option<u64>,
    /// Duration of the init phase, on the first invocation after an init.
    pub init_duration: Option<Duration>,
    /// `timeout` or `error` when the platform ended the invocation.
    pub status: Option<&'static str>,
}

/// The `REPORT` line, tab-separated like AWS's.
pub fn report_line(request_id: &str, report: &Report) -> String {
    let duration_ms = report.duration.as_secs_f64() * 1000.0;
    let mut line = format!(
        "REPORT RequestId: {request_id}\tDuration: {duration_ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
        duration_ms.ceil() as u64,
        report.memory_size_mb,
        report.max_memory_used_mb.unwrap_or(0),
    );
    if let Some(init) = report.init_duration {
        line.push_str(&format!(
            "Init Duration: {:.2} ms\t",
            init.as_secs_f64() * 1000.0
        ));
    }
    if let Some(status) = report.status {
        line.push_str(&format!("Status: {status}\t"));
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use rstest::rstest;

    use super::*;

    #[test]
    fn invoke_request_parses_localstack_shape() {
        let body = r#"{"invoke-id":"id-1","invoked-function-arn":"arn:aws:lambda:us-east-1:111111111111:function:f","payload":"{\"a\":1}","trace-id":"Root=1-abc;Parent=def;Sampled=0"}"#;
        let request: InvokeRequest = serde_json::from_str(body).expect("valid request");
        assert_eq!(request.invoke_id, "id-1");
        assert_eq!(request.payload, r#"{"a":1}"#);
        assert_eq!(
            request.trace_id.as_deref(),
            Some("Root=1-abc;Parent=def;Sampled=0")
        );
        assert_eq!(request.client_context, None);
    }

    #[test]
    fn timeout_payload_uses_aws_wording() {
        let payload = ErrorPayload::timed_out("req-1", Duration::from_secs(2));
        assert_eq!(payload.error_type, "Sandbox.Timedout");
        assert_eq!(
            payload.error_message,
            "RequestId: req-1 Error: Task timed out after 2.00 seconds"
        );
        let json: serde_json::Value =
            serde_json::from_slice(&payload.to_bytes()).expect("payload is json");
        assert_eq!(json["errorType"], "Sandbox.Timedout");
    }

    #[rstest]
    #[case::exit_code(ExitStatus::from_raw(3 << 8), "exit status 3")]
    #[case::killed(ExitStatus::from_raw(9), "signal: killed")]
    #[case::segfault(ExitStatus::from_raw(11), "signal: segmentation fault")]
    #[case::other_signal(ExitStatus::from_raw(10), "signal: 10")]
    fn exit_statuses_are_described_like_aws(#[case] status: ExitStatus, #[case] expected: &str) {
        assert_eq!(describe_exit(status), expected);
    }

    #[test]
    fn exit_error_names_request_and_status() {
        let payload = ErrorPayload::runtime_exited(Some("req-9"), ExitStatus::from_raw(3 << 8));
        assert_eq!(payload.error_type, "Runtime.ExitError");
        assert_eq!(
            payload.error_message,
            "RequestId: req-9 Error: Runtime exited with error: exit status 3"
        );
    }

    #[rstest]
    #[case::json_object_passes_through(br#"{"errorType":"E","errorMessage":"m"}"#.as_slice(), "E", "m")]
    #[case::plain_text_is_wrapped(b"boom".as_slice(), "Runtime.Custom", "boom")]
    #[case::json_string_is_wrapped(br#""boom""#.as_slice(), "Runtime.Custom", "\"boom\"")]
    fn runtime_error_bodies_are_json_objects(
        #[case] body: &[u8],
        #[case] error_type: &str,
        #[case] message: &str,
    ) {
        let out = runtime_error_body(Some("Runtime.Custom"), body);
        let json: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(json["errorType"], error_type);
        assert_eq!(json["errorMessage"], message);
    }

    #[test]
    fn report_line_has_aws_fields() {
        let line = report_line(
            "req-1",
            &Report {
                duration: Duration::from_micros(1_234_560),
                memory_size_mb: 128,
                max_memory_used_mb: Some(17),
                init_duration: Some(Duration::from_millis(20)),
                status: Some("timeout"),
            },
        );
        assert_eq!(
            line,
            "REPORT RequestId: req-1\tDuration: 1234.56 ms\tBilled Duration: 1235 ms\tMemory Size: 128 MB\tMax Memory Used: 17 MB\tInit Duration: 20.00 ms\tStatus: timeout\t\n"
        );
    }

    #[test]
    fn start_and_end_lines() {
        assert_eq!(
            start_line("r", "$LATEST"),
            "START RequestId: r Version: $LATEST\n"
        );
        assert_eq!(end_line("r"), "END RequestId: r\n");
    }
}
