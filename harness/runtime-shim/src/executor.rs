//! The executor side: the `POST /invoke` endpoint LocalStack sends invocations to.
//!
//! LocalStack's own protocol answers `/invoke` at once (202) and takes the
//! result through two callbacks to its HTTP gateway (logs, then result). The
//! harness's executor plugin asks instead, with [`INLINE_RESULT_HEADER`], for
//! the result in the answer to `/invoke` itself: each callback is a pass
//! through LocalStack's whole request handler chain, and `harness bench`
//! measured the two at several milliseconds per invoke.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use hyper::{Method, Request, StatusCode, body::Incoming, header::HeaderValue};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::{
    config::is_path_segment,
    http::{self, HttpResponse},
    protocol::InvokeRequest,
    sandbox::Finished,
};

/// A request header: `inline` asks for the invocation's result in the answer to `/invoke`.
pub const INLINE_RESULT_HEADER: &str = "x-harness-result";
/// An inline answer's header: `response` or `error`, as the callback the result would have gone to.
pub const OUTCOME_HEADER: &str = "x-harness-outcome";
/// An inline answer's header: how many bytes of the body, from its start, are the logs; the payload follows.
pub const LOGS_LENGTH_HEADER: &str = "x-harness-logs-length";

/// One queued invocation, and where its result goes when it is answered inline.
#[derive(Debug)]
pub struct Queued {
    /// The invocation.
    pub request: InvokeRequest,
    /// Takes the result when the caller asked for it inline; `None`: post the callbacks.
    pub answer: Option<oneshot::Sender<Finished>>,
}

/// The inline answer to `/invoke`: the logs, then the payload, in one body.
pub fn inline_answer(finished: Finished) -> HttpResponse {
    let (outcome, payload) = match finished.result {
        Ok(payload) => ("response", payload),
        Err(payload) => ("error", payload),
    };
    let mut body = BytesMut::with_capacity(finished.logs.len() + payload.len());
    body.put_slice(finished.logs.as_bytes());
    body.put_slice(&payload);
    let mut response = http::respond(StatusCode::OK, body.freeze());
    let headers = response.headers_mut();
    headers.insert(OUTCOME_HEADER, HeaderValue::from_static(outcome));
    headers.insert(LOGS_LENGTH_HEADER, HeaderValue::from(finished.logs.len()));
    response
}

/// Accepts an invocation and queues it. Its result goes back through the
/// callbacks, or in this response when the caller sent [`INLINE_RESULT_HEADER`].
pub async fn handle(
    invocations: Arc<mpsc::Sender<Queued>>,
    request: Request<Incoming>,
) -> HttpResponse {
    if request.method() != Method::POST || request.uri().path() != "/invoke" {
        return http::respond(StatusCode::NOT_FOUND, "");
    }
    let inline = request
        .headers()
        .get(INLINE_RESULT_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"inline"));
    let Some(body) = http::read_body(request).await else {
        return http::respond(StatusCode::BAD_REQUEST, "");
    };
    let invoke: InvokeRequest = match serde_json::from_slice(&body) {
        Ok(invoke) => invoke,
        Err(err) => {
            warn!(error = %err, "rejecting a malformed invoke request");
            let message = serde_json::json!({ "error": format!("invalid invoke request: {err}") });
            return http::respond(StatusCode::BAD_REQUEST, message.to_string());
        }
    };
    // The id becomes part of callback and Runtime API URLs.
    if !is_path_segment(&invoke.invoke_id) {
        warn!(invoke_id = %invoke.invoke_id, "rejecting an invoke id that is not a plain token");
        return http::respond(
            StatusCode::BAD_REQUEST,
            r#"{"error":"invoke-id must be letters, digits, '-' or '_'"}"#,
        );
    }
    let (answer, result) = if inline {
        let (tx, rx) = oneshot::channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let queued = Queued {
        request: invoke,
        answer,
    };
    if invocations.send(queued).await.is_err() {
        return http::respond(StatusCode::SERVICE_UNAVAILABLE, "");
    }
    match result {
        None => http::respond(StatusCode::ACCEPTED, ""),
        Some(result) => match result.await {
            Ok(finished) => inline_answer(finished),
            // The environment shut down with the invocation queued or running.
            Err(_) => http::respond(StatusCode::SERVICE_UNAVAILABLE, ""),
        },
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn an_inline_answer_carries_the_logs_then_the_payload() {
        let answer = inline_answer(Finished {
            request_id: "r".into(),
            logs: "START\nREPORT\n".into(),
            result: Err(Bytes::from_static(br#"{"errorType":"X"}"#)),
        });
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.headers()[OUTCOME_HEADER], "error");
        assert_eq!(answer.headers()[LOGS_LENGTH_HEADER], "13");
        let body = answer.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&body[..13], b"START\nREPORT\n");
        assert_eq!(&body[13..], br#"{"errorType":"X"}"#);
    }
}
