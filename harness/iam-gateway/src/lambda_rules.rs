//! Lambda's own request rules for invokes, which LocalStack 4.8.1 does not
//! apply: the payload size quotas and "the body must be JSON".
//!
//! Measured against LocalStack 4.8.1 before writing this: a 6 MB+
//! synchronous payload reached the handler, a 1 MB+ `Event` payload got 202,
//! and `not json` reached the function (whose runtime failed to deserialize
//! it). AWS refuses all three before any handler runs. LocalStack already
//! answers `Event` with 202, `DryRun` with 204, and returns the last 4 KB of
//! a synchronous invocation's log for `LogType: Tail`, so those are not
//! repeated here.
//!
//! The checks run on every invoke the gateway allowed, in `enforce` and
//! `audit` alike: they are Lambda's rules, not IAM decisions.

use hyper::{HeaderMap, StatusCode};

/// The `Invoke` request quota for synchronous (`RequestResponse`, `DryRun`)
/// invocations: 6 MB, counted as 6 MiB.
pub const SYNC_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

/// The `Invoke` request quota for asynchronous (`Event`) invocations: 1 MB
/// since AWS raised it from 256 KB in 2025 ("For asynchronous invocations, the
/// maximum payload size is 1 MB", Lambda API reference, Invoke).
pub const ASYNC_PAYLOAD_LIMIT: usize = 1024 * 1024;

/// The deprecated `InvokeAsync` API keeps its 256 KB limit.
pub const INVOKE_ASYNC_PAYLOAD_LIMIT: usize = 256 * 1024;

/// Why Lambda refuses an invoke before any handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The HTTP status.
    pub status: StatusCode,
    /// Lambda's error type (`x-amzn-ErrorType`).
    pub code: &'static str,
    /// Lambda's message.
    pub message: String,
}

/// Which invoke API a request used, by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvokeApi {
    /// `POST /2015-03-31/functions/{name}/invocations`.
    Invoke,
    /// `POST /2014-11-13/functions/{name}/invoke-async/` (deprecated).
    InvokeAsync,
    /// `InvokeWithResponseStream` and anything else: no rule applied here.
    Other,
}

fn api_of(path: &str) -> InvokeApi {
    let path = path.trim_end_matches('/');
    if path.ends_with("/invocations") {
        InvokeApi::Invoke
    } else if path.ends_with("/invoke-async") {
        InvokeApi::InvokeAsync
    } else {
        InvokeApi::Other
    }
}

/// Checks an invoke (`path`, `headers`, `body`) against Lambda's request rules;
/// `None` when Lambda would run it.
pub fn check_invoke(path: &str, headers: &HeaderMap, body: &[u8]) -> Option<Violation> {
    let api = api_of(path);
    let asynchronous = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.eq_ignore_ascii_case("Event"));
    let (limit, operation) = match api {
        InvokeApi::Invoke if asynchronous => (ASYNC_PAYLOAD_LIMIT, "InvokeFunction"),
        InvokeApi::Invoke => (SYNC_PAYLOAD_LIMIT, "InvokeFunction"),
        InvokeApi::InvokeAsync => (INVOKE_ASYNC_PAYLOAD_LIMIT, "InvokeAsync"),
        InvokeApi::Other => return None,
    };
    if body.len() > limit {
        return Some(Violation {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "RequestTooLargeException",
            message: format!(
                "Request must be smaller than {limit} bytes for the {operation} operation"
            ),
        });
    }
    // No body at all is allowed: the function gets an empty event.
    if body.is_empty() {
        return None;
    }
    not_json(body).map(|reason| Violation {
        status: StatusCode::BAD_REQUEST,
        code: "InvalidRequestContentException",
        message: format!(
            "Could not parse request body into json: Could not parse payload into json: {reason}"
        ),
    })
}

/// Why `body` is not one JSON value, or `None` when it is.
///
/// Syntax only, as Lambda's parser reads it: duplicate keys and `\u` escapes
/// of lone surrogates are valid JSON here (serde's ignoring reader consumes a
/// `\u` escape without judging the code point). Refusing them is the callee's
/// business (the strict JSON rules), not Lambda's.
fn not_json(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .err()
        .map(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;
    use rstest::rstest;

    use super::*;

    const INVOKE: &str = "/2015-03-31/functions/servicenow-alert/invocations";

    fn headers(invocation_type: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(t) = invocation_type {
            headers.insert(
                "x-amz-invocation-type",
                HeaderValue::from_str(t).expect("header"),
            );
        }
        headers
    }

    /// A JSON string body of exactly `len` bytes.
    fn json_of(len: usize) -> Vec<u8> {
        let mut body = vec![b'"'];
        body.resize(len - 1, b'a');
        body.push(b'"');
        body
    }

    #[rstest]
    #[case::sync_at_the_limit(None, SYNC_PAYLOAD_LIMIT, None)]
    #[case::sync_one_byte_over(None, SYNC_PAYLOAD_LIMIT + 1, Some("Request must be smaller than 6291456 bytes for the InvokeFunction operation"))]
    #[case::request_response_over(Some("RequestResponse"), SYNC_PAYLOAD_LIMIT + 1, Some("Request must be smaller than 6291456 bytes for the InvokeFunction operation"))]
    #[case::dry_run_over(Some("DryRun"), SYNC_PAYLOAD_LIMIT + 1, Some("Request must be smaller than 6291456 bytes for the InvokeFunction operation"))]
    #[case::event_at_the_limit(Some("Event"), ASYNC_PAYLOAD_LIMIT, None)]
    #[case::event_one_byte_over(Some("Event"), ASYNC_PAYLOAD_LIMIT + 1, Some("Request must be smaller than 1048576 bytes for the InvokeFunction operation"))]
    fn payload_size_quota(
        #[case] invocation_type: Option<&str>,
        #[case] len: usize,
        #[case] refused: Option<&str>,
    ) {
        let violation = check_invoke(INVOKE, &headers(invocation_type), &json_of(len));

        match refused {
            None => assert_eq!(violation, None),
            Some(message) => assert_eq!(
                violation,
                Some(Violation {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    code: "RequestTooLargeException",
                    message: message.into(),
                })
            ),
        }
    }

    #[test]
    fn the_deprecated_invoke_async_keeps_256_kb() {
        let path = "/2014-11-13/functions/f/invoke-async/";
        assert_eq!(
            check_invoke(path, &headers(None), &json_of(INVOKE_ASYNC_PAYLOAD_LIMIT)),
            None
        );
        let violation = check_invoke(
            path,
            &headers(None),
            &json_of(INVOKE_ASYNC_PAYLOAD_LIMIT + 1),
        )
        .expect("refused");
        assert_eq!(
            violation.message,
            "Request must be smaller than 262144 bytes for the InvokeAsync operation"
        );
    }

    #[rstest]
    #[case::object(r#"{"alert": {"number": "INC1"}}"#, true)]
    #[case::string(r#""just a string""#, true)]
    #[case::number_with_spaces(" 42 \n", true)]
    #[case::null("null", true)]
    #[case::duplicate_keys_are_the_callees_business(r#"{"a": 1, "a": 2}"#, true)]
    #[case::lone_surrogate_is_the_callees_business(r#"{"a": "\ud800"}"#, true)]
    #[case::empty_body_is_an_empty_event("", true)]
    #[case::bare_words("not json", false)]
    #[case::single_quotes("{'a': 1}", false)]
    #[case::truncated(r#"{"alert": {"number": "INC1""#, false)]
    #[case::trailing_garbage(r#"{"a": 1} x"#, false)]
    #[case::two_values(r#"{} {}"#, false)]
    fn the_body_must_be_json(#[case] body: &str, #[case] accepted: bool) {
        let violation = check_invoke(INVOKE, &headers(None), body.as_bytes());

        if accepted {
            assert_eq!(violation, None, "{body}");
        } else {
            let violation = violation.expect("refused");
            assert_eq!(violation.status, StatusCode::BAD_REQUEST);
            assert_eq!(violation.code, "InvalidRequestContentException");
            assert!(
                violation.message.starts_with(
                    "Could not parse request body into json: Could not parse payload into json: "
                ),
                "{}",
                violation.message
            );
        }
    }

    #[test]
    fn response_streams_are_left_alone() {
        let path = "/2021-11-15/functions/f/response-streaming-invocations";
        assert_eq!(check_invoke(path, &headers(None), b"not json"), None);
    }
}
