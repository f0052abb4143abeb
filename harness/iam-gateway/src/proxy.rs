//! The HTTP side: a hyper server that classifies, decides and forwards each
//! request over a pooled keep-alive client to the upstream.

use std::{
    collections::VecDeque,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use xray_trace::TraceId;

use http_body_util::BodyExt;
use hyper::{
    HeaderMap, Request, Response, StatusCode, Uri,
    body::Incoming,
    header::{self, HeaderName, HeaderValue},
    http::uri::{Authority, Scheme},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use iam_policy::Principal;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{
    GatewayConfig, GatewayHandle, Mode,
    aws_error::{
        AuthFailure, ErrorShape, ProxyBody, auth_failure, error_response, full_body, lambda_error,
        sts_error,
    },
    classify::{self, Operation, Refusal, RequestFacts},
    decide::{self, ASSUME_ROLE, INVOKE_FUNCTION, Outcome},
    deploy_check, faults, issue,
    keys::{KeyError, KeyStore},
    lambda_rules,
    log::{DecisionLog, DecisionRecord, Ruling, now_ms, reason_code},
    policies::{Caller, PolicySource},
    signature::{self, SignatureError, Signed},
    sigv4::{self, CredentialScope},
    xml,
};
use sdk_config::REGION;

use crate::error::GatewayError;

/// Overhead samples kept for [`OverheadStats`].
const OVERHEAD_SAMPLES: usize = 10_000;

/// Headers that describe one connection, not the message, so are not forwarded.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The gateway's own time per request: arrival to forwarding plus upstream answer to reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverheadStats {
    /// How many requests the figures cover (the most recent ones, up to 10 000).
    pub requests: usize,
    /// Median overhead in microseconds.
    pub median_us: u64,
    /// 90th percentile in microseconds.
    pub p90_us: u64,
    /// Largest in microseconds.
    pub max_us: u64,
}

impl OverheadStats {
    fn from_samples(samples: &[u64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let at = |q: f64| {
            sorted
                .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        Self {
            requests: sorted.len(),
            median_us: at(0.5),
            p90_us: at(0.9),
            max_us: sorted.last().copied().unwrap_or(0),
        }
    }
}

/// Shared by every connection of one gateway.
pub(super) struct State {
    pub(super) mode: Mode,
    scheme: Scheme,
    authority: Authority,
    client: Client<HttpConnector, ProxyBody>,
    pub(super) source: PolicySource,
    pub(super) log: DecisionLog,
    overhead: Mutex<VecDeque<u64>>,
    /// Every secret the gateway knows, for verifying signatures.
    pub(super) keys: KeyStore,
    /// The shared secret the emulator's executor presents to get execution-role credentials.
    pub(super) issuer_token: Option<String>,
    /// Scenario faults (`faults.rs`).
    faults: faults::Book,
    /// Accepts TLS connections, when the gateway serves HTTPS.
    pub(super) tls: Option<tokio_rustls::TlsAcceptor>,
    /// Who started each stack's deploy (`deploy_check.rs`).
    pub(super) deployers: deploy_check::Deployers,
    /// The permissions resource handlers need (`deploy_check.rs`).
    pub(super) resource_schemas: Option<Arc<deploy_permissions::Schemas>>,
}

/// Parses `http://host:port` into what each forwarded URI needs.
fn parse_upstream(upstream: &str) -> Result<(Scheme, Authority), GatewayError> {
    let invalid = |reason: &'static str| GatewayError::BadUpstream {
        upstream: upstream.to_owned(),
        reason,
    };
    let uri: Uri = upstream
        .trim_end_matches('/')
        .parse()
        .map_err(|_| invalid("is not a URL"))?;
    if uri.scheme() != Some(&Scheme::HTTP) {
        return Err(invalid("is not a plain http:// URL"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(invalid("has a path"));
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| invalid("has no host"))?;
    Ok((Scheme::HTTP, authority))
}

pub(super) async fn start(config: GatewayConfig) -> Result<GatewayHandle, GatewayError> {
    let (scheme, authority) = parse_upstream(&config.upstream)?;
    let listener =
        std::net::TcpListener::bind(config.listen).map_err(|source| GatewayError::PortInUse {
            port: config.listen.port(),
            source,
        })?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    let log = DecisionLog::open(config.log_file.as_deref())?;

    let mut connector = HttpConnector::new();
    // Small request/response pairs: Nagle would add tens of milliseconds.
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let state = Arc::new(State {
        mode: config.mode,
        scheme,
        authority,
        client,
        source: PolicySource::new(
            sdk_config::Endpoint::new(config.upstream.trim_end_matches('/')),
            config.policy_ttl,
        )
        // The accounts whose buckets it looks up.
        .with_root_keys(config.root_keys.clone()),
        log,
        overhead: Mutex::new(VecDeque::new()),
        keys: KeyStore::new(&config.root_keys),
        issuer_token: config.issuer_token.clone(),
        faults: config.faults.clone(),
        tls: config.tls.clone().map(tokio_rustls::TlsAcceptor::from),
        deployers: deploy_check::Deployers::default(),
        resource_schemas: config.resource_schemas.clone(),
    });
    let (shutdown, stopped) = watch::channel(());
    let task = tokio::spawn(accept_loop(listener, state.clone(), stopped));
    tracing::info!(listen = %addr, upstream = %config.upstream, mode = %config.mode, "iam gateway listening");
    Ok(GatewayHandle {
        addr,
        state,
        _shutdown: shutdown,
        task,
    })
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    mut stopped: watch::Receiver<()>,
) {
    loop {
        let accepted = tokio::select! {
            // Resolves (with an error) once the handle drops the sender.
            _ = stopped.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %err, "iam gateway cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = serve_connection(state, stream) => {}
                _ = stopped.changed() => {}
            }
        });
    }
}

/// The first byte of a TLS ClientHello (a handshake record); no HTTP method starts with it.
const TLS_HANDSHAKE: u8 = 0x16;

/// Serves one connection, over TLS when its first byte opens a handshake and
/// the gateway has a certificate, in plain HTTP otherwise.
async fn serve_connection(state: Arc<State>, stream: tokio::net::TcpStream) {
    let mut first = [0u8; 1];
    let tls_hello = matches!(stream.peek(&mut first).await, Ok(1) if first[0] == TLS_HANDSHAKE);
    let result = match (&state.tls, tls_hello) {
        (Some(acceptor), true) => match acceptor.accept(stream).await {
            Ok(tls) => serve_http(state, TokioIo::new(tls), Transport::Tls).await,
            Err(err) => {
                tracing::debug!(error = %err, "iam gateway TLS handshake failed");
                return;
            }
        },
        _ => serve_http(state, TokioIo::new(stream), Transport::Plain).await,
    };
    if let Err(err) = result {
        tracing::debug!(error = %err, "iam gateway connection ended with an error");
    }
}

async fn serve_http<I>(state: Arc<State>, io: I, transport: Transport) -> Result<(), hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(state.clone(), req, transport));
    http1::Builder::new().serve_connection(io, service).await
}

/// How a request reached the gateway: what `aws:SecureTransport` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    /// Plain HTTP.
    Plain,
    /// HTTPS.
    Tls,
}

impl Transport {
    /// The value of `aws:SecureTransport`.
    pub(super) fn secure_transport(self) -> &'static str {
        match self {
            Self::Plain => "false",
            Self::Tls => "true",
        }
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

fn text_response(status: StatusCode, message: String) -> Response<ProxyBody> {
    let mut response = Response::new(full_body(message));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A forwarded response and how long the upstream took to answer it.
struct Forwarded {
    response: Response<ProxyBody>,
    upstream: Duration,
}

impl State {
    /// Sends the request upstream unchanged (but for hop-by-hop headers).
    async fn forward(&self, mut request: Request<ProxyBody>) -> Forwarded {
        let path_and_query = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| hyper::http::uri::PathAndQuery::from_static("/"));
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build();
        match uri {
            Ok(uri) => *request.uri_mut() = uri,
            Err(err) => {
                return Forwarded {
                    response: text_response(
                        StatusCode::BAD_REQUEST,
                        format!("iam gateway: cannot forward this request: {err}"),
                    ),
                    upstream: Duration::ZERO,
                };
            }
        }
        let headers = request.headers_mut();
        strip_hop_by_hop(headers);
        // hyper answers `Expect: 100-continue` itself when the body is read.
        headers.remove(header::EXPECT);

        let sent = Instant::now();
        let answer = self.client.request(request).await;
        let upstream = sent.elapsed();
        let response = match answer {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.boxed())
            }
            Err(err) => {
                tracing::warn!(upstream = %self.authority, error = %err, "iam gateway cannot reach the upstream");
                text_response(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "iam gateway: the upstream http://{} did not answer: {err}",
                        self.authority
                    ),
                )
            }
        };
        Forwarded { response, upstream }
    }

    fn record_overhead(&self, overhead: Duration) -> u64 {
        let micros = overhead.as_micros() as u64;
        if let Ok(mut samples) = self.overhead.lock() {
            if samples.len() == OVERHEAD_SAMPLES {
                samples.pop_front();
            }
            samples.push_back(micros);
        }
        micros
    }

    pub(super) fn overhead_stats(&self) -> OverheadStats {
        let samples: Vec<u64> = self
            .overhead
            .lock()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        OverheadStats::from_samples(&samples)
    }

    fn finish(
        &self,
        mut record: DecisionRecord,
        started: Instant,
        upstream: Duration,
        response: &Response<ProxyBody>,
    ) {
        let overhead = self.record_overhead(started.elapsed().saturating_sub(upstream));
        // The record is about the request, so it carries its arrival time.
        record.time_ms = now_ms().saturating_sub(started.elapsed().as_millis() as u64);
        record.status = Some(response.status().as_u16());
        record.overhead_us = Some(overhead);
        record.upstream_us = (!upstream.is_zero()).then_some(upstream.as_micros() as u64);
        record.request_id = record
            .upstream_us
            .and_then(|_| response.headers().get("x-amzn-requestid"))
            .and_then(|id| id.to_str().ok())
            .map(str::to_owned);
        match record.decision {
            Ruling::Deny | Ruling::WouldDeny | Ruling::Error => tracing::info!(
                principal = record.principal.as_deref().unwrap_or("unknown"),
                action = %record.action,
                resource = record.resource.as_deref().unwrap_or(""),
                decision = record.decision.as_str(),
                reason = %record.reason,
                explanation = %record.explanation,
                "iam gateway decision"
            ),
            Ruling::Allow | Ruling::NotEvaluated => tracing::debug!(
                principal = record.principal.as_deref().unwrap_or("unknown"),
                action = %record.action,
                decision = record.decision.as_str(),
                overhead_us = overhead,
                "iam gateway decision"
            ),
        }
        self.log.push(record);
    }
}

/// Learns the keys a successful answer hands out, so their signatures can be
/// verified: a session's from `AssumeRole` (with its identity, so its first
/// call needs no `GetCallerIdentity` round trip) and a user's from
/// `CreateAccessKey`.
async fn harvest_credentials(
    source: &PolicySource,
    keys: &KeyStore,
    response: Response<ProxyBody>,
) -> Response<ProxyBody> {
    let (parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            return text_response(
                StatusCode::BAD_GATEWAY,
                format!("iam gateway: the upstream's answer broke off: {err}"),
            );
        }
    };
    let Some(texts) = std::str::from_utf8(&bytes)
        .ok()
        .and_then(xml::element_texts)
    else {
        return Response::from_parts(parts, full_body(bytes));
    };
    if let (Some(key), Some(secret)) = (
        xml::find(&texts, "AccessKey/AccessKeyId"),
        xml::find(&texts, "AccessKey/SecretAccessKey"),
    ) {
        keys.insert_long_term(key, secret);
    }
    if let Some(key) = xml::find(&texts, "Credentials/AccessKeyId") {
        if let Some(arn) = xml::find(&texts, "AssumedRoleUser/Arn")
            && let Ok(principal) = Principal::from_arn(arn)
            && let Ok(principal) = source.with_role_path(principal).await
        {
            let user_id = xml::find(&texts, "AssumedRoleUser/AssumedRoleId").map(str::to_owned);
            source.remember_identity(key, Caller { principal, user_id });
        }
        if let (Some(secret), Some(token), Some(expires)) = (
            xml::find(&texts, "Credentials/SecretAccessKey"),
            xml::find(&texts, "Credentials/SessionToken"),
            xml::find(&texts, "Credentials/Expiration").and_then(issue::parse_expiration),
        ) {
            keys.insert_session(key, secret, token, expires);
        }
    }
    Response::from_parts(parts, full_body(bytes))
}

fn rejection_response(
    action: &str,
    outcome: &Outcome,
    request_id: &str,
) -> Option<Response<ProxyBody>> {
    let rejection = outcome.rejection.as_ref()?;
    Some(if action == ASSUME_ROLE {
        sts_error(
            rejection.status,
            rejection.code,
            &rejection.message,
            request_id,
        )
    } else {
        lambda_error(
            rejection.status,
            rejection.code,
            &rejection.message,
            request_id,
        )
    })
}

fn service_error(
    action: &str,
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
) -> Response<ProxyBody> {
    if action == ASSUME_ROLE {
        sts_error(status, code, message, request_id)
    } else {
        // Lambda's spelling of the same faults.
        let code = match code {
            "InternalFailure" => "ServiceException",
            "MissingAuthenticationToken" => "MissingAuthenticationTokenException",
            other => other,
        };
        lambda_error(status, code, message, request_id)
    }
}

fn evaluated_record(
    trace: Option<TraceId>,
    principal: Option<String>,
    action: &str,
    resource: String,
    decision: Ruling,
    reason: &str,
    explanation: String,
) -> DecisionRecord {
    DecisionRecord {
        time_ms: now_ms(),
        trace,
        principal,
        action: action.to_owned(),
        resource: Some(resource),
        decision,
        reason: reason.to_owned(),
        explanation,
        deciding: Vec::new(),
        status: None,
        overhead_us: None,
        upstream_us: None,
        request_id: None,
    }
}

/// Whether `path` names one of the emulator's `/_harness/` routes, however it
/// is spelled (percent-encoded, with doubled slashes), as its router would match it.
fn is_harness_route(path: &str) -> bool {
    let named = |path: &str| path.trim_start_matches('/').starts_with("_harness");
    // Every request passes here: decode (and allocate) only what is escaped.
    if !path.contains('%') {
        return named(path);
    }
    named(&classify::percent_decode(path).unwrap_or_else(|| path.to_owned()))
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
    transport: Transport,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    if request.uri().path() == issue::ISSUE_PATH {
        return Ok(issue::serve(&state, request).await);
    }
    if request.uri().path() == deploy_check::DEPLOY_CHECK_PATH {
        return Ok(deploy_check::serve(&state, request).await);
    }
    if request.uri().path() == deploy_check::HANDLER_RAN_PATH {
        return Ok(deploy_check::handler_ran(&state, request).await);
    }
    if request.uri().path().starts_with(fault_plan::FAULTS_PATH) {
        return Ok(faults::serve(&state.faults, request).await);
    }
    if is_harness_route(request.uri().path()) {
        // The emulator's own harness routes (the executor plugin's
        // `/_harness/attach`) are for the harness alone: a client that reached
        // one through the gateway could re-point the functions around it.
        return Ok(issue::refusal(
            StatusCode::FORBIDDEN,
            "the emulator's /_harness/ routes cannot be reached through the IAM gateway",
        ));
    }
    if state.mode == Mode::Off {
        let forwarded = state.forward(request.map(BodyExt::boxed)).await;
        state.record_overhead(started.elapsed().saturating_sub(forwarded.upstream));
        return Ok(forwarded.response);
    }

    let (parts, body) = request.into_parts();
    // Every body is read: its hash is part of the signature, and awsQuery
    // requests carry their action in it.
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            return Ok(text_response(
                StatusCode::BAD_REQUEST,
                format!("iam gateway: the request body broke off: {err}"),
            ));
        }
    };
    let claimed = sigv4::credential(&parts.headers, parts.uri.query());
    let trace = sigv4::trace(&parts.headers);
    let facts = RequestFacts {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        service: claimed.as_ref().map(|s| s.service.as_str()),
        body: classify::needs_body(&parts.method, parts.uri.path(), &parts.headers)
            .then_some(&bytes[..]),
    };
    let operation = classify::classify(facts);
    let changes_policies = matches!(operation, Operation::Function(..))
        && !matches!(parts.method, hyper::Method::GET | hyper::Method::HEAD);
    let shape = classify::shape(facts);
    let session_token = sigv4::session_token(&parts.headers, parts.uri.query());
    let user_agent = parts
        .headers
        .get(hyper::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let authenticated = authenticate(&state.keys, &parts, &bytes, session_token.as_deref());
    // `Bytes` clones share one buffer: the body stays readable for Lambda's rules.
    let request = Request::from_parts(parts, full_body(bytes.clone()));
    let scope = match authenticated {
        Ok(scope) => scope,
        Err(failure) => {
            return Ok(refuse_authentication(
                &state, request, &operation, shape, failure, trace, started,
            )
            .await);
        }
    };

    let (action, call) = match operation {
        Operation::Other(other) => {
            let context = OtherContext {
                scope: &scope,
                session_token: session_token.as_deref(),
                transport,
                shape,
                trace,
                started,
                body: &bytes,
            };
            return Ok(other_service(&state, request, other, context).await);
        }
        Operation::Refused(refusal) => {
            let principal = state
                .source
                .known_identity(&scope.access_key_id)
                .map(|c| c.principal.arn().to_owned());
            return Ok(refuse(&state, request, refusal, principal, trace, started).await);
        }
        Operation::AssumeRole(call) => (ASSUME_ROLE, Call::AssumeRole(call)),
        Operation::Invoke(function) => (INVOKE_FUNCTION, Call::Function(function)),
        Operation::Function(action, function) => (action, Call::Function(function)),
    };
    let request_id = uuid::Uuid::new_v4().to_string();

    let region = scope.region.clone().unwrap_or_else(|| REGION.to_owned());
    let evaluated = evaluate(
        &state.source,
        &scope,
        session_token.as_deref(),
        action,
        &call,
        &region,
        Sent {
            user_agent: user_agent.as_deref(),
            transport,
        },
    )
    .await;
    let (caller, outcome) = match evaluated {
        Ok(found) => found,
        Err((caller, err)) => {
            let message = format!("iam gateway could not evaluate {action}: {}", err.chain());
            let record = evaluated_record(
                trace,
                caller.map(|c| c.principal.arn().to_owned()),
                action,
                call.resource(None, &region),
                Ruling::Error,
                "evaluation_failed",
                message.clone(),
            );
            let (response, upstream) = if state.mode == Mode::Audit {
                let forwarded = state.forward(request).await;
                (forwarded.response, forwarded.upstream)
            } else {
                let status = StatusCode::INTERNAL_SERVER_ERROR;
                (
                    service_error(action, status, "InternalFailure", &message, &request_id),
                    Duration::ZERO,
                )
            };
            state.finish(record, started, upstream, &response);
            return Ok(response);
        }
    };

    let verdict = match (&outcome.rejection, state.mode) {
        (None, _) => Ruling::Allow,
        (Some(_), Mode::Audit) => Ruling::WouldDeny,
        (Some(_), _) => Ruling::Deny,
    };
    let mut record = DecisionRecord::from_decision(&outcome.decision, verdict, trace.clone());
    record.reason = outcome.reason.to_owned();
    record.explanation = outcome.explanation.clone();
    record.principal = Some(caller.principal.arn().to_owned());

    if verdict == Ruling::Deny
        && let Some(response) = rejection_response(action, &outcome, &request_id)
    {
        state.finish(record, started, Duration::ZERO, &response);
        return Ok(response);
    }
    if action == INVOKE_FUNCTION
        && let Some(broken) =
            lambda_rules::check_invoke(request.uri().path(), request.headers(), &bytes)
    {
        let response = lambda_error(broken.status, broken.code, &broken.message, &request_id);
        state.finish(record, started, Duration::ZERO, &response);
        return Ok(response);
    }
    let injected = match &call {
        Call::AssumeRole(_) => faults::sts(&state.faults, trace.as_ref(), &request_id),
        Call::Function(function) if action == INVOKE_FUNCTION => {
            faults::invoke(&state.faults, trace.as_ref(), &function.name, &request_id).await
        }
        Call::Function(_) => None,
    };
    if let Some(response) = injected {
        // Allowed by IAM; the answer is the scenario's, and the log says so.
        record.explanation = format!(
            "{}; then a scenario fault answered {}",
            record.explanation,
            response.status().as_u16()
        );
        state.finish(record, started, Duration::ZERO, &response);
        return Ok(response);
    }
    let forwarded = state.forward(request).await;
    let mut upstream = forwarded.upstream;
    let mut response = forwarded.response;
    // AddPermission, RemovePermission and the like change what the next decision reads.
    if changes_policies {
        state.source.invalidate();
    }
    if action == ASSUME_ROLE && response.status() == StatusCode::OK {
        let reading = Instant::now();
        response = harvest_credentials(&state.source, &state.keys, response).await;
        // Reading the body is mostly waiting for the upstream to finish sending it.
        upstream += reading.elapsed();
    }
    state.finish(record, started, upstream, &response);
    Ok(response)
}

/// How [`other_service`] rules on a request: the ruling, its log reason
/// code, the explanation, and AWS's message when the request is refused.
type Verdict = (Ruling, &'static str, String, Option<String>);

/// The evaluator's decision as a verdict.
fn decided(decision: &iam_policy::Decision) -> Verdict {
    match decision.access_denied_message() {
        None => (Ruling::Allow, "allowed", decision.to_string(), None),
        Some(message) => (
            Ruling::Deny,
            reason_code(decision.reason),
            decision.to_string(),
            Some(message),
        ),
    }
}

/// A refusal the gateway makes itself, with AWS's error carrying `message`.
fn refused(reason: &'static str, message: String) -> Verdict {
    (
        Ruling::Deny,
        reason,
        format!("DENY: {message}"),
        Some(message),
    )
}

/// An evaluation that could not be made: a denial, never a pass.
fn evaluation_failed(action: &str, err: &GatewayError) -> Verdict {
    let message = format!("iam gateway could not evaluate {action}: {}", err.chain());
    (
        Ruling::Error,
        "evaluation_failed",
        message.clone(),
        Some(message),
    )
}

/// What [`other_service`] needs to know of its request.
struct OtherContext<'a> {
    scope: &'a CredentialScope,
    session_token: Option<&'a str>,
    transport: Transport,
    shape: ErrorShape,
    trace: Option<TraceId>,
    started: Instant,
    /// The request body, read whole.
    body: &'a [u8],
}

/// A request to a service other than STS's `AssumeRole` and Lambda's function
/// operations: S3, KMS, IAM, CloudFormation, Logs, EC2, Lambda's account-level calls.
///
/// - S3 is decided for every caller, roots included, with the bucket policy
///   and the SSE-KMS key policy ([`decide::s3`]); an S3 operation the gateway
///   cannot name is refused.
/// - An account root has every permission its identity needs, so its request
///   goes through, logged `not_evaluated`: a bucket or key policy could still
///   deny it in AWS.
/// - `sts:GetCallerIdentity` needs no permission at all.
/// - Anyone else's request is decided on the caller's identity policies
///   (resource `*`, the caller's own account). An operation the gateway cannot
///   name is refused, never passed.
async fn other_service(
    state: &State,
    request: Request<ProxyBody>,
    other: classify::OtherCall,
    context: OtherContext<'_>,
) -> Response<ProxyBody> {
    let OtherContext {
        scope,
        session_token,
        transport,
        shape,
        trace,
        started,
        body,
    } = context;
    let caller = match state
        .source
        .caller(&scope.access_key_id, session_token)
        .await
    {
        Ok(caller) => caller,
        Err(err) => {
            let message = format!(
                "iam gateway could not tell who signed with {}: {}",
                scope.access_key_id,
                err.chain()
            );
            let record = evaluated_record(
                trace,
                None,
                &other.action,
                "*".to_owned(),
                Ruling::Error,
                "evaluation_failed",
                message.clone(),
            );
            let request_id = uuid::Uuid::new_v4().to_string();
            let response = error_response(
                shape,
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                &message,
                &request_id,
            );
            state.finish(record, started, Duration::ZERO, &response);
            return response;
        }
    };
    let principal = caller.principal.arn().to_owned();
    let root = caller.principal.kind() == iam_policy::PrincipalKind::Root;
    let transport_context = [("aws:SecureTransport", transport.secure_transport())];
    let mut resource = "*".to_owned();
    let (ruling, reason, explanation, rejection): Verdict = if other.action.starts_with("s3:") {
        // S3 is evaluated for everyone, roots included: a bucket policy's
        // explicit deny binds the account root too.
        match &other.s3 {
            None => refused(
                "unknown_action",
                "iam gateway: the S3 operation of this request cannot be told, so it is refused"
                    .to_owned(),
            ),
            Some(call) => {
                resource = call.resource();
                match decide::s3(&state.source, &caller, call, &transport_context).await {
                    Ok(decision) => match decision.access_denied_message() {
                        None => decided(&decision),
                        Some(message) => (
                            Ruling::Deny,
                            reason_code(decision.reason),
                            decision.to_string(),
                            // S3 quotes the resource ARN in its messages ("Troubleshoot
                            // access denied (403 Forbidden) errors in Amazon S3"); a denied
                            // data key keeps KMS's wording.
                            Some(if decision.action.starts_with("s3:") {
                                let on = format!("on resource: {} ", decision.resource);
                                message.replacen(
                                    &on,
                                    &format!("on resource: \"{}\" ", decision.resource),
                                    1,
                                )
                            } else {
                                message
                            }),
                        ),
                    },
                    Err(err) => evaluation_failed(&other.action, &err),
                }
            }
        }
    } else if other.action.starts_with("kms:")
        && let Some(key) = decide::kms_key(&other.action, body)
    {
        match key {
            Err(message) => refused("cannot_evaluate", message),
            Ok(key) => {
                resource = key.clone();
                match decide::kms(
                    &state.source,
                    &caller,
                    &other.action,
                    &key,
                    &transport_context,
                )
                .await
                {
                    Ok(Some(decision)) => {
                        resource = decision.resource.clone();
                        decided(&decision)
                    }
                    Ok(None) => (
                        Ruling::Allow,
                        "allowed",
                        format!(
                            "ALLOW to reach KMS: no key {key} exists, and KMS answers NotFoundException"
                        ),
                        None,
                    ),
                    Err(err) => evaluation_failed(&other.action, &err),
                }
            }
        }
    } else if root {
        let account = caller.principal.account().unwrap_or_default();
        match decide::root_request(&other.action, account, request.uri(), body) {
            Ok(explanation) => (Ruling::Allow, "allowed", explanation, None),
            Err(message) => refused("cannot_evaluate", message),
        }
    } else if other.action == "sts:GetCallerIdentity" {
        (
            Ruling::Allow,
            "allowed",
            "ALLOW (sts:GetCallerIdentity needs no permission)".to_owned(),
            None,
        )
    } else if other.action == "unknown" || other.action.ends_with(":unknown") {
        refused(
            "unknown_action",
            format!(
                "iam gateway: the IAM action of this {} request cannot be told, so it is refused",
                other.action.split(':').next().unwrap_or("unknown")
            ),
        )
    } else {
        if let Some(stack) = &other.stack {
            let account = caller.principal.account().unwrap_or_default();
            resource = decide::stack_resource(stack, account, REGION);
        }
        match decide::identity_only(
            &state.source,
            &caller,
            &other.action,
            &resource,
            &transport_context,
        )
        .await
        {
            Ok(decision) => match decision.access_denied_message() {
                None => (
                    Ruling::Allow,
                    "allowed",
                    format!("{decision} (resource {resource}; resource policies not evaluated)"),
                    None,
                ),
                Some(message) => (
                    Ruling::Deny,
                    "no_identity_based_policy_allows",
                    format!("{decision} (resource {resource})"),
                    Some(message),
                ),
            },
            Err(err) => evaluation_failed(&other.action, &err),
        }
    };
    let audit = state.mode == Mode::Audit;
    let ruling = match (ruling, audit) {
        (Ruling::Deny | Ruling::Error, true) => Ruling::WouldDeny,
        (ruling, _) => ruling,
    };
    let record = DecisionRecord {
        time_ms: now_ms(),
        trace,
        principal: Some(principal),
        action: other.action.clone(),
        resource: Some(resource),
        decision: ruling,
        reason: reason.to_owned(),
        explanation,
        deciding: Vec::new(),
        status: None,
        overhead_us: None,
        upstream_us: None,
        request_id: None,
    };
    if let (Some(message), false) = (&rejection, audit) {
        let request_id = uuid::Uuid::new_v4().to_string();
        let response = error_response(
            shape,
            shape.access_denied_status(),
            shape.access_denied_code(),
            message,
            &request_id,
        );
        state.finish(record, started, Duration::ZERO, &response);
        return response;
    }
    // Where no executor plugin reports its resource handlers (no issuer),
    // any CloudFormation request may be the first sign of what they changed.
    let handlers_unreported =
        state.issuer_token.is_none() && other.action.starts_with("cloudformation:");
    if other.may_change_policies || handlers_unreported {
        state.source.invalidate();
    }
    if let Some(stack) = &other.stack
        && deploy_check::STARTS_HANDLERS.contains(&other.action.as_str())
        && let Some(account) = caller.principal.account()
    {
        state.deployers.remember(account, stack, caller.clone());
    }
    let forwarded = state.forward(request).await;
    let (mut response, mut upstream) = (forwarded.response, forwarded.upstream);
    if other.action == "iam:CreateAccessKey" && response.status() == StatusCode::OK {
        let reading = Instant::now();
        response = harvest_credentials(&state.source, &state.keys, response).await;
        upstream += reading.elapsed();
    }
    state.finish(record, started, upstream, &response);
    response
}

/// What an evaluated request asks for.
enum Call {
    AssumeRole(classify::AssumeRoleCall),
    /// An invoke or another operation on one function.
    Function(classify::FunctionRef),
}

impl Call {
    /// The resource for the log, using the caller's account for plain function names.
    fn resource(&self, caller_account: Option<&str>, region: &str) -> String {
        match self {
            Self::AssumeRole(call) => call.role_arn.clone(),
            Self::Function(function) => function.arn(caller_account.unwrap_or(""), region),
        }
    }
}

type EvaluationError = (Option<Caller>, GatewayError);

/// What the request itself tells the evaluator's context.
#[derive(Debug, Clone, Copy)]
struct Sent<'a> {
    user_agent: Option<&'a str>,
    transport: Transport,
}

async fn evaluate(
    source: &PolicySource,
    scope: &CredentialScope,
    session_token: Option<&str>,
    action: &str,
    call: &Call,
    region: &str,
    sent: Sent<'_>,
) -> Result<(Caller, Outcome), EvaluationError> {
    let caller = source
        .caller(&scope.access_key_id, session_token)
        .await
        .map_err(|err| (None, err))?;
    let mut context = vec![("aws:SecureTransport", sent.transport.secure_transport())];
    if let Some(agent) = sent.user_agent {
        context.push(("aws:UserAgent", agent));
    }
    let outcome = match call {
        Call::AssumeRole(call) => {
            decide::assume_role_in_context(source, &caller, call, region, &context).await
        }
        Call::Function(function) => {
            decide::on_function(source, &caller, action, function, region, &context).await
        }
    };
    match outcome {
        Ok(outcome) => Ok((caller, outcome)),
        Err(err) => Err((Some(caller), err)),
    }
}

/// Answers a refused request in its service's error shape (audit mode:
/// forwards it and records that AWS's answer would differ).
async fn refuse(
    state: &State,
    request: Request<ProxyBody>,
    refusal: Refusal,
    principal: Option<String>,
    trace: Option<TraceId>,
    started: Instant,
) -> Response<ProxyBody> {
    let audit = state.mode == Mode::Audit;
    let record = DecisionRecord {
        time_ms: now_ms(),
        trace,
        principal,
        action: refusal.action.clone(),
        resource: None,
        decision: if audit {
            Ruling::WouldDeny
        } else {
            Ruling::Deny
        },
        reason: "refused_unreadable".to_owned(),
        explanation: format!("DENY: {}", refusal.message),
        deciding: Vec::new(),
        status: None,
        overhead_us: None,
        upstream_us: None,
        request_id: None,
    };
    let (response, upstream) = if audit {
        let forwarded = state.forward(request).await;
        (forwarded.response, forwarded.upstream)
    } else {
        let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::FORBIDDEN);
        let request_id = uuid::Uuid::new_v4().to_string();
        let code = match (refusal.shape, refusal.code) {
            (ErrorShape::Lambda | ErrorShape::Json, "IncompleteSignature") => {
                "IncompleteSignatureException"
            }
            (_, code) => code,
        };
        let response = error_response(refusal.shape, status, code, &refusal.message, &request_id);
        (response, Duration::ZERO)
    };
    state.finish(record, started, upstream, &response);
    response
}

/// Checks who signed a request: the signature against the secret the gateway
/// knows for its key, the date, and a session key's token and expiry.
fn authenticate(
    keys: &KeyStore,
    parts: &hyper::http::request::Parts,
    body: &[u8],
    session_token: Option<&str>,
) -> Result<CredentialScope, AuthFailure> {
    let query = parts.uri.query();
    let signature = match signature::parts(&parts.headers, query) {
        Ok(Some(signature)) => signature,
        Ok(None) => return Err(AuthFailure::Missing),
        Err(err) => return Err(signature_failure(err)),
    };
    let now = time::OffsetDateTime::now_utc();
    let secret = keys
        .secret(&signature.scope.access_key_id, session_token, now)
        .map_err(|err| match err {
            KeyError::Unknown => AuthFailure::UnknownKey,
            KeyError::WrongToken => AuthFailure::WrongToken,
            KeyError::Expired => AuthFailure::ExpiredToken,
        })?;
    let request = Signed {
        method: &parts.method,
        path: parts.uri.path(),
        query,
        headers: &parts.headers,
        body,
    };
    signature::verify(&signature, request, &secret, now).map_err(signature_failure)?;
    Ok(signature.scope)
}

fn signature_failure(err: SignatureError) -> AuthFailure {
    match err {
        SignatureError::Incomplete(what) => AuthFailure::Incomplete(what),
        SignatureError::Mismatch => AuthFailure::Mismatch,
        SignatureError::Skewed {
            amz_date,
            now,
            future,
        } => AuthFailure::Skewed {
            amz_date,
            now,
            future,
        },
        SignatureError::PresignExpired => AuthFailure::PresignExpired,
        SignatureError::ContentHashMismatch => AuthFailure::ContentHashMismatch,
    }
}

/// Answers a request whose signature does not hold (audit mode: forwards it
/// and records that AWS would refuse it).
async fn refuse_authentication(
    state: &State,
    request: Request<ProxyBody>,
    operation: &Operation,
    shape: ErrorShape,
    failure: AuthFailure,
    trace: Option<TraceId>,
    started: Instant,
) -> Response<ProxyBody> {
    let audit = state.mode == Mode::Audit;
    let action = match operation {
        Operation::AssumeRole(_) => ASSUME_ROLE.to_owned(),
        Operation::Invoke(_) => INVOKE_FUNCTION.to_owned(),
        Operation::Function(action, _) => (*action).to_owned(),
        Operation::Other(other) => other.action.clone(),
        Operation::Refused(refusal) => refusal.action.clone(),
    };
    let (status, code, message) = auth_failure(shape, &failure);
    let reason = if failure == AuthFailure::Missing {
        "unsigned_request"
    } else {
        "authentication_failed"
    };
    let record = DecisionRecord {
        time_ms: now_ms(),
        trace,
        principal: None,
        action,
        resource: None,
        decision: if audit {
            Ruling::WouldDeny
        } else {
            Ruling::Deny
        },
        reason: reason.to_owned(),
        explanation: match failure {
            // The answer is the same for both; the log tells them apart.
            AuthFailure::UnknownKey => format!("DENY: {code}: {message} (no such access key)"),
            AuthFailure::WrongToken => {
                format!(
                    "DENY: {code}: {message} (a known key with a missing or other session token)"
                )
            }
            _ => format!("DENY: {code}: {message}"),
        },
        deciding: Vec::new(),
        status: None,
        overhead_us: None,
        upstream_us: None,
        request_id: None,
    };
    let (response, upstream) = if audit {
        let forwarded = state.forward(request).await;
        (forwarded.response, forwarded.upstream)
    } else {
        let request_id = uuid::Uuid::new_v4().to_string();
        (
            error_response(shape, status, code, &message, &request_id),
            Duration::ZERO,
        )
    };
    state.finish(record, started, upstream, &response);
    response
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::empty(&[], OverheadStats::default())]
    #[case::one(&[7], OverheadStats { requests: 1, median_us: 7, p90_us: 7, max_us: 7 })]
    #[case::unsorted(&[50, 10, 30, 20, 40], OverheadStats { requests: 5, median_us: 30, p90_us: 50, max_us: 50 })]
    fn overhead_percentiles(#[case] samples: &[u64], #[case] expected: OverheadStats) {
        assert_eq!(OverheadStats::from_samples(samples), expected);
    }

    #[rstest]
    #[case::plain("http://127.0.0.1:4566", true)]
    #[case::trailing_slash("http://localhost:4566/", true)]
    #[case::https("https://127.0.0.1:4566", false)]
    #[case::path("http://127.0.0.1:4566/prefix", false)]
    #[case::not_a_url("127.0.0.1 4566", false)]
    fn upstreams(#[case] upstream: &str, #[case] ok: bool) {
        let parsed = parse_upstream(upstream);
        assert_eq!(parsed.is_ok(), ok, "{parsed:?}");
        if let Err(err) = parsed {
            assert!(
                err.to_string().contains(upstream.trim_end_matches('/')),
                "{err}"
            );
        }
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert(
            "authorization",
            HeaderValue::from_static("AWS4-HMAC-SHA256 x"),
        );
        headers.insert("x-amz-date", HeaderValue::from_static("20250101T000000Z"));
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["authorization", "x-amz-date"]);
    }

    #[tokio::test]
    async fn a_taken_port_is_named() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = start(GatewayConfig::new(addr, "http://127.0.0.1:4566"))
            .await
            .expect_err("port is taken");
        let message = err.to_string();
        assert!(
            message.contains(&format!("port {}", addr.port())),
            "{message}"
        );
        assert!(message.contains("IAM gateway"), "{message}");
    }

    #[tokio::test]
    async fn one_port_serves_https_to_clients_trusting_the_ca_and_plain_http() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a port");
        let ca = local_ca::LocalCa::generate().expect("a CA");
        let mut config = GatewayConfig::new(
            "127.0.0.1:0".parse().expect("addr"),
            format!("http://{closed}"),
        );
        config.mode = Mode::Audit;
        config.tls = Some(ca.server_config(&["127.0.0.1"]).expect("certificate"));
        let gateway = start(config).await.expect("gateway");
        assert!(gateway.url().starts_with("https://"), "{}", gateway.url());

        let trusting = reqwest::Client::builder()
            .tls_certs_only([
                reqwest::Certificate::from_pem(ca.certificate_pem().as_bytes()).expect("pem"),
            ])
            .build()
            .expect("client");
        let https = trusting
            .get(format!("{}/_localstack/health", gateway.url()))
            .send()
            .await
            .expect("the gateway answers over TLS");
        assert_eq!(https.status().as_u16(), 502);
        let plain = reqwest::get(format!("{}/_localstack/health", gateway.plain_url()))
            .await
            .expect("the same port answers plain HTTP");
        assert_eq!(plain.status().as_u16(), 502);

        let stranger = local_ca::LocalCa::generate().expect("another CA");
        let untrusting = reqwest::Client::builder()
            .tls_certs_only([
                reqwest::Certificate::from_pem(stranger.certificate_pem().as_bytes()).expect("pem"),
            ])
            .build()
            .expect("client");
        let refused = untrusting
            .get(format!("{}/_localstack/health", gateway.url()))
            .send()
            .await;
        assert!(
            refused.is_err(),
            "a client not trusting the CA must fail: {refused:?}"
        );
    }

    #[rstest::rstest]
    #[case("/_harness/attach", true)]
    #[case("//_harness/attach", true)]
    #[case("/%5Fharness/attach", true)]
    #[case("/%5fharness%2Fattach", true)]
    #[case("/_localstack/health", false)]
    #[case("/2015-03-31/functions/servicenow-alert/invocations", false)]
    #[case("/bucket/_harness/attach", false)]
    fn the_emulators_harness_routes_are_recognised_however_spelled(
        #[case] path: &str,
        #[case] harness: bool,
    ) {
        assert_eq!(is_harness_route(path), harness, "{path}");
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_bad_gateway_naming_it() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a port");
        let upstream = format!("http://{closed}");
        // Audit mode forwards even the unsigned request it would refuse.
        let mut config = GatewayConfig::new("127.0.0.1:0".parse().expect("addr"), upstream.clone());
        config.mode = Mode::Audit;
        let gateway = start(config).await.expect("gateway");

        let response = reqwest::get(format!("{}/_localstack/health", gateway.url()))
            .await
            .expect("the gateway answers");

        assert_eq!(response.status().as_u16(), 502);
        let body = response.text().await.expect("body");
        assert!(body.contains(&upstream), "{body}");
        let records = gateway.decisions();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].decision, Ruling::WouldDeny);
        assert_eq!(records[0].reason, "unsigned_request");
        assert_eq!(records[0].action, "unknown");
        assert_eq!(records[0].status, Some(502));
    }

    /// A gateway listening on `listen` whose upstream nobody answers (the
    /// discard port): a request it forwarded or evaluated would fail.
    fn unreachable_upstream(listen: &str) -> GatewayConfig {
        GatewayConfig::new(listen.parse().expect("addr"), "http://127.0.0.1:9")
    }

    #[tokio::test]
    async fn a_resource_handler_reported_by_the_executor_drops_what_it_made_stale() {
        let mut config = unreachable_upstream("127.0.0.1:0");
        config.issuer_token = Some("executor-secret".into());
        let gateway = start(config).await.expect("gateway");
        let url = format!("{}{}", gateway.url(), deploy_check::HANDLER_RAN_PATH);
        let client = reqwest::Client::new();
        let source = &gateway.state.source;
        let (exec, invoke) = (
            "arn:aws:iam::111111111111:role/exec",
            "arn:aws:iam::111111111111:role/invoke",
        );
        let report = |token: &'static str, body: &'static str| {
            client
                .post(&url)
                .header(issue::ISSUER_TOKEN_HEADER, token)
                .body(body)
                .send()
        };
        // What the executor's report is answered with.
        let told = |body: &'static str| {
            let sent = report("executor-secret", body);
            async move { sent.await.expect("the gateway answers").status().as_u16() }
        };
        source.cache_roles_for_test(&[exec, invoke]);

        let stranger = report("guess", "{}").await.expect("the gateway answers");
        assert_eq!(stranger.status().as_u16(), 403);
        assert_eq!(
            source.cached_roles_for_test(&[exec, invoke]),
            [true, true],
            "nothing dropped for a stranger"
        );

        let log_group = r#"{"StackName":"s","LogicalResourceId":"Logs","ResourceType":"AWS::Logs::LogGroup","Account":"111111111111","Properties":{}}"#;
        assert_eq!(told(log_group).await, 204);
        assert_eq!(source.cached_roles_for_test(&[exec, invoke]), [true, true]);

        let role = r#"{"StackName":"s","LogicalResourceId":"Exec","ResourceType":"AWS::IAM::Role","Account":"111111111111","Properties":{"RoleName":"exec"}}"#;
        assert_eq!(told(role).await, 204);
        assert_eq!(source.cached_roles_for_test(&[exec, invoke]), [false, true]);

        // A report that names no account (an older plugin's) drops everything.
        let unscoped =
            r#"{"StackName":"s","LogicalResourceId":"Logs","ResourceType":"AWS::Logs::LogGroup"}"#;
        assert_eq!(told(unscoped).await, 204);
        assert_eq!(
            source.cached_roles_for_test(&[exec, invoke]),
            [false, false]
        );

        source.cache_roles_for_test(&[exec, invoke]);
        assert_eq!(told("not json").await, 204);
        assert_eq!(
            source.cached_roles_for_test(&[exec, invoke]),
            [false, false]
        );
    }

    #[tokio::test]
    async fn a_gateway_on_every_interface_is_reached_at_loopback_from_this_machine() {
        let gateway = start(unreachable_upstream("0.0.0.0:0"))
            .await
            .expect("gateway");
        let port = gateway.addr().port();
        assert!(gateway.addr().ip().is_unspecified());
        assert_eq!(gateway.url(), format!("http://127.0.0.1:{port}"));
        assert_eq!(gateway.plain_url(), format!("http://127.0.0.1:{port}"));
        let answered = reqwest::get(format!("{}/_localstack/health", gateway.url()))
            .await
            .expect("the gateway answers at loopback");
        assert!(answered.status().is_client_error() || answered.status().is_server_error());
    }

    #[tokio::test]
    async fn unsigned_invokes_are_refused_without_asking_anyone() {
        // The upstream is unreachable: a forwarded or evaluated request would fail differently.
        let gateway = start(unreachable_upstream("127.0.0.1:0"))
            .await
            .expect("gateway");

        let response = reqwest::Client::new()
            .post(format!(
                "{}/2015-03-31/functions/f/invocations",
                gateway.url()
            ))
            .header("x-amzn-trace-id", "Root=1-aa-bb")
            .body("{}")
            .send()
            .await
            .expect("the gateway answers");

        assert_eq!(response.status().as_u16(), 403);
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "MissingAuthenticationTokenException"
        );
        let records = gateway.decisions_of(&TraceId::from_header("Root=1-aa-bb").expect("a root"));
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].decision, Ruling::Deny);
        assert_eq!(records[0].reason, "unsigned_request");
        assert_eq!(records[0].action, INVOKE_FUNCTION);
    }
}
