//! The AWS Lambda Runtime API (`/2018-06-01/runtime/...`) served to one bootstrap process.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
};

use bytes::Bytes;
use hyper::{
    Method, Request, StatusCode,
    body::Incoming,
    header::{HeaderName, HeaderValue},
};
use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{debug, warn};

use crate::{
    error::ShimError,
    http::{self, HttpResponse},
    protocol::ErrorPayload,
};

const PREFIX: &str = "/2018-06-01/runtime";

/// One invocation as handed to the function through `GET .../invocation/next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Request id (`Lambda-Runtime-Aws-Request-Id`).
    pub request_id: String,
    /// The event body.
    pub payload: Bytes,
    /// ARN the caller invoked (`Lambda-Runtime-Invoked-Function-Arn`).
    pub function_arn: String,
    /// Deadline in milliseconds since the Unix epoch (`Lambda-Runtime-Deadline-Ms`).
    pub deadline_ms: u128,
    /// X-Ray trace header (`Lambda-Runtime-Trace-Id`).
    pub trace_id: Option<String>,
    /// Client context JSON (`Lambda-Runtime-Client-Context`).
    pub client_context: Option<String>,
    /// Cognito identity JSON (`Lambda-Runtime-Cognito-Identity`).
    pub cognito_identity: Option<String>,
}

/// What the function told the Runtime API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeEvent {
    /// The function asked for its next invocation; the first one ends the init phase.
    Polling,
    /// The function returned a result.
    Response {
        /// Request id the result belongs to.
        request_id: String,
        /// The result body.
        body: Bytes,
    },
    /// The function reported an invocation error.
    Error {
        /// Request id the error belongs to.
        request_id: String,
        /// `Lambda-Runtime-Function-Error-Type` header.
        error_type: Option<String>,
        /// The error body (normally `{"errorType","errorMessage",...}`).
        body: Bytes,
    },
    /// The function reported that its initialisation failed.
    InitError {
        /// `Lambda-Runtime-Function-Error-Type` header.
        error_type: Option<String>,
        /// The error body.
        body: Bytes,
    },
}

/// A Runtime API server bound to a loopback port, serving one bootstrap process.
///
/// Each bootstrap gets a fresh server, so nothing a killed process still had in
/// flight can reach its successor.
pub struct RuntimeApi {
    addr: SocketAddr,
    events: mpsc::UnboundedReceiver<RuntimeEvent>,
    invocations: mpsc::UnboundedSender<Invocation>,
    server: JoinHandle<()>,
}

struct ApiState {
    events: mpsc::UnboundedSender<RuntimeEvent>,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    in_flight: Mutex<Option<String>>,
    initialized: AtomicBool,
    max_response_bytes: usize,
}

impl RuntimeApi {
    /// Binds a server on `127.0.0.1` with an ephemeral port; a response body over
    /// `max_response_bytes` becomes a `Function.ResponseSizeTooLarge` error.
    pub async fn bind(max_response_bytes: usize) -> Result<Self, ShimError> {
        let listener = http::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr().map_err(|source| ShimError::Bind {
            addr: "127.0.0.1:0".into(),
            source,
        })?;
        let (events_tx, events) = mpsc::unbounded_channel();
        let (invocations, queue) = mpsc::unbounded_channel();
        let state = Arc::new(ApiState {
            events: events_tx,
            queue: tokio::sync::Mutex::new(queue),
            in_flight: Mutex::new(None),
            initialized: AtomicBool::new(false),
            max_response_bytes,
        });
        let server = tokio::spawn(http::serve(listener, state, handle));
        Ok(Self {
            addr,
            events,
            invocations,
            server,
        })
    }

    /// The `host:port` to give the function as `AWS_LAMBDA_RUNTIME_API`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues an invocation for the function's next `GET .../invocation/next`.
    pub fn deliver(&self, invocation: Invocation) {
        // The receiver lives in the server state, which lives as long as self.
        let _ = self.invocations.send(invocation);
    }

    /// Waits for the next thing the function tells the API.
    pub async fn next_event(&mut self) -> Option<RuntimeEvent> {
        self.events.recv().await
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(state: Arc<ApiState>, request: Request<Incoming>) -> HttpResponse {
    let path = request.uri().path().to_owned();
    let Some(route) = path.strip_prefix(PREFIX) else {
        return not_found(&path);
    };
    let method = request.method().clone();
    match (method, route) {
        (Method::GET, "/invocation/next") => next(&state).await,
        (Method::POST, "/init/error") => init_error(&state, request).await,
        (Method::POST, route) => match route.strip_prefix("/invocation/") {
            Some(rest) => match rest.rsplit_once('/') {
                Some((id, "response")) => response(&state, id.to_owned(), request).await,
                Some((id, "error")) => error(&state, id.to_owned(), request).await,
                _ => not_found(&path),
            },
            None => not_found(&path),
        },
        _ => not_found(&path),
    }
}

async fn next(state: &ApiState) -> HttpResponse {
    state.initialized.store(true, Ordering::SeqCst);
    let _ = state.events.send(RuntimeEvent::Polling);
    // If the function disconnects while waiting, this future is dropped and
    // the invocation stays queued: recv() is cancel safe.
    let invocation = {
        let mut queue = state.queue.lock().await;
        queue.recv().await
    };
    let Some(invocation) = invocation else {
        return http::respond(StatusCode::INTERNAL_SERVER_ERROR, "");
    };
    debug!(request_id = %invocation.request_id, "delivering invocation to the function");
    *state
        .in_flight
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(invocation.request_id.clone());
    let mut response = http::respond(StatusCode::OK, invocation.payload);
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &str| match HeaderValue::from_str(value) {
        Ok(value) => {
            headers.insert(HeaderName::from_static(name), value);
        }
        Err(_) => warn!(
            header = name,
            "dropping a header value that is not valid in HTTP"
        ),
    };
    set("lambda-runtime-aws-request-id", &invocation.request_id);
    set(
        "lambda-runtime-deadline-ms",
        &invocation.deadline_ms.to_string(),
    );
    set(
        "lambda-runtime-invoked-function-arn",
        &invocation.function_arn,
    );
    if let Some(trace_id) = &invocation.trace_id {
        set("lambda-runtime-trace-id", trace_id);
    }
    if let Some(client_context) = &invocation.client_context {
        set("lambda-runtime-client-context", client_context);
    }
    if let Some(identity) = &invocation.cognito_identity {
        set("lambda-runtime-cognito-identity", identity);
    }
    response
}

/// Takes the in-flight request id if it is `request_id`; a stale or unknown id is refused.
fn finish(state: &ApiState, request_id: &str) -> bool {
    let mut in_flight = state
        .in_flight
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if in_flight.as_deref() == Some(request_id) {
        *in_flight = None;
        true
    } else {
        false
    }
}

fn invalid_request_id(request_id: &str) -> HttpResponse {
    warn!(
        request_id,
        "function answered an invocation that is not in flight"
    );
    http::respond(
        StatusCode::BAD_REQUEST,
        r#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#,
    )
}

fn accepted() -> HttpResponse {
    http::respond(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
}

fn error_type(request: &Request<Incoming>) -> Option<String> {
    request
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

async fn response(
    state: &ApiState,
    request_id: String,
    request: Request<Incoming>,
) -> HttpResponse {
    let Some(body) = http::read_body(request).await else {
        return http::respond(StatusCode::BAD_REQUEST, "");
    };
    if !finish(state, &request_id) {
        return invalid_request_id(&request_id);
    }
    let limit = state.max_response_bytes;
    if body.len() > limit {
        // As AWS's Runtime API: the function hears 413, the invoker gets a
        // function error in place of the response, and the invocation is over.
        warn!(
            request_id,
            size = body.len(),
            limit,
            "function response over the payload limit"
        );
        let too_large = ErrorPayload::response_too_large(body.len(), limit);
        let _ = state.events.send(RuntimeEvent::Error {
            request_id,
            error_type: Some(too_large.error_type.clone()),
            body: too_large.to_bytes(),
        });
        return http::respond(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorPayload::request_entity_too_large(limit).to_bytes(),
        );
    }
    let _ = state
        .events
        .send(RuntimeEvent::Response { request_id, body });
    accepted()
}

async fn error(state: &ApiState, request_id: String, request: Request<Incoming>) -> HttpResponse {
    let error_type = error_type(&request);
    let Some(body) = http::read_body(request).await else {
        return http::respond(StatusCode::BAD_REQUEST, "");
    };
    if !finish(state, &request_id) {
        return invalid_request_id(&request_id);
    }
    let _ = state.events.send(RuntimeEvent::Error {
        request_id,
        error_type,
        body,
    });
    accepted()
}

async fn init_error(state: &ApiState, request: Request<Incoming>) -> HttpResponse {
    if state.initialized.load(Ordering::SeqCst) {
        return http::respond(
            StatusCode::FORBIDDEN,
            r#"{"errorMessage":"init already completed","errorType":"InvalidStateTransition"}"#,
        );
    }
    let error_type = error_type(&request);
    let Some(body) = http::read_body(request).await else {
        return http::respond(StatusCode::BAD_REQUEST, "");
    };
    let _ = state
        .events
        .send(RuntimeEvent::InitError { error_type, body });
    accepted()
}

fn not_found(path: &str) -> HttpResponse {
    debug!(path, "unsupported runtime api path");
    http::respond(
        StatusCode::NOT_FOUND,
        r#"{"errorMessage":"not supported by the runtime shim","errorType":"NotFound"}"#,
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::{BodyExt, Full};
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};

    use super::*;

    type TestClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

    fn new_client() -> TestClient {
        Client::builder(TokioExecutor::new()).build_http()
    }

    async fn call(
        client: &TestClient,
        api: SocketAddr,
        method: Method,
        path: &str,
        body: &'static str,
    ) -> (StatusCode, hyper::HeaderMap, Bytes) {
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{api}{path}"))
            .header("lambda-runtime-function-error-type", "Test.Error")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .expect("request");
        let response = client.request(request).await.expect("api answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, headers, body)
    }

    fn invocation(id: &str) -> Invocation {
        Invocation {
            request_id: id.into(),
            payload: Bytes::from_static(b"{\"x\":1}"),
            function_arn: "arn:aws:lambda:us-east-1:111111111111:function:f".into(),
            deadline_ms: 1_700_000_000_000,
            trace_id: Some("Root=1-a-b".into()),
            client_context: None,
            cognito_identity: Some("{\"cognitoIdentityId\":\"id\"}".into()),
        }
    }

    #[tokio::test]
    async fn next_carries_the_invocation_and_a_result_is_taken_once() {
        let mut api = RuntimeApi::bind(crate::protocol::MAX_RESPONSE_BYTES)
            .await
            .expect("bind");
        let addr = api.addr();
        let poll = tokio::spawn(async move {
            call(
                &new_client(),
                addr,
                Method::GET,
                "/2018-06-01/runtime/invocation/next",
                "",
            )
            .await
        });
        assert_eq!(api.next_event().await, Some(RuntimeEvent::Polling));
        api.deliver(invocation("req-1"));
        let (status, headers, body) = poll.await.expect("poll task");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, Bytes::from_static(b"{\"x\":1}"));
        assert_eq!(headers["lambda-runtime-aws-request-id"], "req-1");
        assert_eq!(headers["lambda-runtime-deadline-ms"], "1700000000000");
        assert_eq!(
            headers["lambda-runtime-invoked-function-arn"],
            "arn:aws:lambda:us-east-1:111111111111:function:f"
        );
        assert_eq!(headers["lambda-runtime-trace-id"], "Root=1-a-b");
        assert_eq!(
            headers["lambda-runtime-cognito-identity"],
            "{\"cognitoIdentityId\":\"id\"}"
        );
        assert!(!headers.contains_key("lambda-runtime-client-context"));

        let client = new_client();
        let path = "/2018-06-01/runtime/invocation/req-1/response";
        let (status, _, _) = call(&client, addr, Method::POST, path, "\"ok\"").await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(
            api.next_event().await,
            Some(RuntimeEvent::Response {
                request_id: "req-1".into(),
                body: Bytes::from_static(b"\"ok\""),
            })
        );
        let (status, _, _) = call(&client, addr, Method::POST, path, "\"again\"").await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "a second result is refused"
        );
    }

    #[tokio::test]
    async fn error_for_another_request_is_refused() {
        let mut api = RuntimeApi::bind(crate::protocol::MAX_RESPONSE_BYTES)
            .await
            .expect("bind");
        let addr = api.addr();
        let poll = tokio::spawn(async move {
            call(
                &new_client(),
                addr,
                Method::GET,
                "/2018-06-01/runtime/invocation/next",
                "",
            )
            .await
        });
        api.next_event().await;
        api.deliver(invocation("req-1"));
        poll.await.expect("poll task");
        let client = new_client();
        let (status, _, _) = call(
            &client,
            addr,
            Method::POST,
            "/2018-06-01/runtime/invocation/other/error",
            "{}",
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _, _) = call(
            &client,
            addr,
            Method::POST,
            "/2018-06-01/runtime/invocation/req-1/error",
            "{\"errorType\":\"E\"}",
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(
            api.next_event().await,
            Some(RuntimeEvent::Error {
                request_id: "req-1".into(),
                error_type: Some("Test.Error".into()),
                body: Bytes::from_static(b"{\"errorType\":\"E\"}"),
            })
        );
    }

    #[tokio::test]
    async fn init_error_counts_only_before_the_first_poll() {
        let mut api = RuntimeApi::bind(crate::protocol::MAX_RESPONSE_BYTES)
            .await
            .expect("bind");
        let addr = api.addr();
        let client = new_client();
        let path = "/2018-06-01/runtime/init/error";
        let (status, _, _) = call(&client, addr, Method::POST, path, "{\"errorType\":\"I\"}").await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(
            api.next_event().await,
            Some(RuntimeEvent::InitError {
                error_type: Some("Test.Error".into()),
                body: Bytes::from_static(b"{\"errorType\":\"I\"}"),
            })
        );

        let _poll = tokio::spawn(async move {
            call(
                &new_client(),
                addr,
                Method::GET,
                "/2018-06-01/runtime/invocation/next",
                "",
            )
            .await
        });
        assert_eq!(api.next_event().await, Some(RuntimeEvent::Polling));
        let (status, _, _) = call(&client, addr, Method::POST, path, "{}").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let nothing = tokio::time::timeout(Duration::from_millis(50), api.next_event()).await;
        assert!(nothing.is_err(), "a late init error is not reported");
    }

    #[tokio::test]
    async fn unsupported_paths_are_not_found() {
        let api = RuntimeApi::bind(crate::protocol::MAX_RESPONSE_BYTES)
            .await
            .expect("bind");
        let client = new_client();
        for path in [
            "/2020-01-01/extension/register",
            "/2018-06-01/runtime/invocation/x/other",
        ] {
            let (status, _, _) = call(&client, api.addr(), Method::POST, path, "").await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
    }
}
