//! Scenario faults on the gateway's side: STS errors and Lambda API errors
//! and latency, answered for the call whose trace registered them, and the
//! fault book's HTTP face for the harness and the runtime shim.
//!
//! - `PUT {FAULTS_PATH}{root}` (token header): registers a [`ScopedPlan`].
//! - `DELETE {FAULTS_PATH}{root}` (token header): withdraws it.
//! - `POST {FAULTS_PATH}{root}/invocation`, body `{"function": name}`: the
//!   shim asks what to do with an invocation ([`InvocationFaults`]).
//! - `POST {FAULTS_PATH}{root}/process`, body `{"pid": n}`: the shim says
//!   which `bootstrap` serves the trace, for the SMTP capture.
//!
//! The shim's two calls carry no token: they name a trace root, 96 random
//! bits only the harness and the call's own hops know, and can only consume
//! that call's faults.

use std::time::Duration;

use fault_plan::{
    AwsError, FAULTS_PATH, InvocationFaults, LambdaAction, ScopedPlan, SharedFaultBook,
    TOKEN_HEADER,
};
use http_body_util::BodyExt;
use hyper::{Method, Request, Response, StatusCode, body::Incoming, header::HeaderValue};
use serde::Deserialize;
use xray_trace::TraceId;

use super::aws_error::{ProxyBody, full_body, plain, sts_error};

/// The book this gateway serves, if the harness gave it one.
pub(crate) type Book = Option<SharedFaultBook>;

#[derive(Deserialize)]
struct InvocationQuestion {
    function: String,
    /// The `bootstrap` already running in the environment, if any.
    #[serde(default)]
    pid: Option<u32>,
}

#[derive(Deserialize)]
struct ProcessReport {
    pid: u32,
}

/// Serves `FAULTS_PATH`.
pub(crate) async fn serve(book: &Book, request: Request<Incoming>) -> Response<ProxyBody> {
    let Some(book) = book else {
        return plain(
            StatusCode::NOT_FOUND,
            "iam gateway: this gateway injects no faults",
        );
    };
    let (parts, body) = request.into_parts();
    let rest = parts.uri.path()[FAULTS_PATH.len()..].to_owned();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return plain(StatusCode::BAD_REQUEST, "the body broke off"),
    };
    let token_ok = parts
        .headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| book.authorises(t));
    let (root, tail) = rest.split_once('/').unwrap_or((&rest, ""));
    let trace = TraceId::from_header(&format!("Root={root}"));
    let Some(trace) = trace else {
        return plain(StatusCode::BAD_REQUEST, "no trace root in the path");
    };
    match (&parts.method, tail) {
        (&Method::PUT, "") if token_ok => match serde_json::from_slice::<ScopedPlan>(&bytes) {
            Ok(scoped) if scoped.trace == trace => {
                tracing::info!(trace = %trace, "faults registered");
                book.register(scoped);
                plain(StatusCode::NO_CONTENT, "")
            }
            Ok(_) => plain(StatusCode::BAD_REQUEST, "the plan is another trace's"),
            Err(err) => plain(StatusCode::BAD_REQUEST, &format!("not a fault plan: {err}")),
        },
        (&Method::DELETE, "") if token_ok => {
            book.withdraw(&trace);
            plain(StatusCode::NO_CONTENT, "")
        }
        (&Method::PUT | &Method::DELETE, "") => {
            plain(StatusCode::FORBIDDEN, "a wrong or missing faults token")
        }
        (&Method::POST, "invocation") => {
            match serde_json::from_slice::<InvocationQuestion>(&bytes) {
                Ok(question) => {
                    let answer: InvocationFaults =
                        book.invocation(&trace, &question.function, question.pid);
                    if answer != InvocationFaults::default() {
                        tracing::info!(trace = %trace, function = %question.function, ?answer, "runtime faults for an invocation");
                    }
                    let mut response = Response::new(full_body(
                        serde_json::to_string(&answer).unwrap_or_default(),
                    ));
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    response
                }
                Err(err) => plain(StatusCode::BAD_REQUEST, &err.to_string()),
            }
        }
        (&Method::POST, "process") => match serde_json::from_slice::<ProcessReport>(&bytes) {
            Ok(report) => {
                book.bind_process(report.pid, trace);
                plain(StatusCode::NO_CONTENT, "")
            }
            Err(err) => plain(StatusCode::BAD_REQUEST, &err.to_string()),
        },
        _ => plain(StatusCode::NOT_FOUND, "no such faults endpoint"),
    }
}

/// Lambda's error document for a fault: `Type`, `message` and, for
/// throttling, `Reason`, with `Retry-After` in a header.
fn lambda_fault_response(error: &AwsError, request_id: &str) -> Response<ProxyBody> {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = serde_json::json!({
        "Type": if status.is_server_error() { "Service" } else { "User" },
        "message": error.message,
    });
    if let Some(reason) = &error.reason {
        body["Reason"] = serde_json::Value::String(reason.clone());
    }
    let mut response = Response::new(full_body(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(code) = HeaderValue::from_str(&error.code) {
        headers.insert("x-amzn-errortype", code);
    }
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    if let Some(seconds) = error.retry_after_seconds {
        headers.insert(hyper::header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The answer a fault gives instead of forwarding an `sts:AssumeRole`, if any.
pub(crate) fn sts(
    book: &Book,
    trace: Option<&TraceId>,
    request_id: &str,
) -> Option<Response<ProxyBody>> {
    let error = book.as_ref()?.sts(trace?, "AssumeRole")?;
    tracing::info!(code = %error.code, "sts fault injected");
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    Some(sts_error(status, &error.code, &error.message, request_id))
}

/// Applies a Lambda API fault to an invoke of `function`: the answer instead
/// of forwarding (an error), or `None` after any latency.
pub(crate) async fn invoke(
    book: &Book,
    trace: Option<&TraceId>,
    function: &str,
    request_id: &str,
) -> Option<Response<ProxyBody>> {
    match book.as_ref()?.lambda_api(trace?, function)? {
        LambdaAction::Error(error) => {
            tracing::info!(code = %error.code, function, "lambda fault injected");
            Some(lambda_fault_response(&error, request_id))
        }
        LambdaAction::LatencyMs(ms) => {
            tracing::info!(ms, function, "lambda latency injected");
            tokio::time::sleep(Duration::from_millis(ms)).await;
            None
        }
        LambdaAction::Timeout | LambdaAction::Crash | LambdaAction::InitError => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use fault_plan::{ChainFunction, FaultBook, FaultPlan, FunctionNames, LambdaFault, StsFault};
    use http_body_util::BodyExt;

    use super::*;

    fn book(plan: FaultPlan) -> (Book, TraceId) {
        let trace = TraceId::new();
        let book = FaultBook::new("t".into());
        book.register(ScopedPlan {
            trace: trace.clone(),
            functions: FunctionNames {
                callee: "alert".into(),
                caller: "invoker".into(),
            },
            plan,
        });
        (Some(SharedFaultBook(Arc::new(book))), trace)
    }

    async fn text(response: Response<ProxyBody>) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn a_throttled_invoke_answers_429_with_reason_and_retry_after() {
        let (book, trace) = book(FaultPlan {
            lambda: vec![LambdaFault {
                function: ChainFunction::Callee,
                action: LambdaAction::Error(AwsError {
                    status: 429,
                    code: "TooManyRequestsException".into(),
                    message: "Rate Exceeded.".into(),
                    reason: Some("ReservedFunctionConcurrentInvocationLimitExceeded".into()),
                    retry_after_seconds: Some(1),
                }),
                times: Some(1),
            }],
            ..FaultPlan::default()
        });

        let response = invoke(&book, Some(&trace), "alert", "req-1")
            .await
            .expect("faulted");

        assert_eq!(response.status(), 429);
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "TooManyRequestsException"
        );
        assert_eq!(response.headers()["retry-after"], "1");
        let body: serde_json::Value = serde_json::from_str(&text(response).await).expect("json");
        assert_eq!(
            body,
            serde_json::json!({"Type": "User", "message": "Rate Exceeded.", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"})
        );
        assert!(
            invoke(&book, Some(&trace), "alert", "req-2")
                .await
                .is_none(),
            "times: 1"
        );
        assert!(
            invoke(&book, None, "alert", "req-3").await.is_none(),
            "no trace, no fault"
        );
    }

    #[tokio::test]
    async fn a_throttled_assume_role_answers_stss_xml() {
        let (book, trace) = book(FaultPlan {
            sts: vec![StsFault {
                action: "AssumeRole".into(),
                error: AwsError {
                    status: 400,
                    code: "Throttling".into(),
                    message: "Rate exceeded".into(),
                    reason: None,
                    retry_after_seconds: None,
                },
                times: None,
            }],
            ..FaultPlan::default()
        });

        let response = sts(&book, Some(&trace), "req-1").expect("faulted");

        assert_eq!(response.status(), 400);
        let body = text(response).await;
        assert!(
            body.contains("<Code>Throttling</Code><Message>Rate exceeded</Message>"),
            "{body}"
        );
        assert!(sts(&book, Some(&TraceId::new()), "req-2").is_none());
    }
}
