//! The executor side: the `POST /invoke` endpoint LocalStack sends invocations to.

use std::sync::Arc;

use hyper::{Method, Request, StatusCode, body::Incoming};
use tokio::sync::mpsc;
use tracing::warn;

use crate::{
    config::is_path_segment,
    http::{self, HttpResponse},
    protocol::InvokeRequest,
};

/// Accepts an invocation and queues it; the result goes back through the callbacks, not this response.
pub async fn handle(
    invocations: Arc<mpsc::Sender<InvokeRequest>>,
    request: Request<Incoming>,
) -> HttpResponse {
    if request.method() != Method::POST || request.uri().path() != "/invoke" {
        return http::respond(StatusCode::NOT_FOUND, "");
    }
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
    match invocations.send(invoke).await {
        Ok(()) => http::respond(StatusCode::ACCEPTED, ""),
        Err(_) => http::respond(StatusCode::SERVICE_UNAVAILABLE, ""),
    }
}
