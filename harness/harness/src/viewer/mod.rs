//! The mail and call viewer: while `harness up` runs, a web page lists every
//! captured email (newest first, live over server-sent events) and every
//! denied call, shows one email (rendered HTML in a sandboxed frame, text,
//! headers, source, `.eml` download) and the call behind it (each hop's IAM
//! decision and both lambdas' logs). Beside the page, a REST API compatible
//! with Mailpit's (`/api/v1/...`) lets Mailpit's clients read the inbox.
//!
//! The page is `page/` embedded in the binary: no CDN, nothing remote. Mail
//! is shown through `textContent` and the HTML part only inside
//! `<iframe sandbox="">` under a policy that forbids scripts and remote loads.
//!
//! Routes:
//! - `/`, `/app.js`, `/style.css`: the page.
//! - `/events`: a `change` event whenever the inbox or the decision log changes.
//! - `/ui/rows`, `/ui/call/{trace}`: the page's list and one call.
//! - `/api/v1/messages` (GET with `start`, `limit`; DELETE),
//!   `/api/v1/message/{ID}` (`latest` allowed), `.../headers`, `.../raw`,
//!   `/api/v1/search?query=`: Mailpit's API.

pub mod calls;
pub mod mailpit;
pub mod search;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    convert::Infallible,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::get,
};
use futures::Stream;
use scenario::CapturedEmail;
use serde::Deserialize;
use tokio::sync::watch;
use xray_trace::TraceId;

use self::{
    calls::{CallRow, CallView},
    mailpit::{LATEST, Message, MessagesSummary, Parsed},
    search::{Candidate, Query as SearchQuery},
};
use crate::{
    deploy::Deployment,
    error::HarnessError,
    observe::{self, Clients},
    smtp::MailCapture,
};

/// Mailpit's default page size.
const DEFAULT_LIMIT: usize = 50;

/// How often an event stream looks at the decision log and the reports.
const FILE_POLL: Duration = Duration::from_millis(250);

/// How long before a call's first request its lambdas' logs are read from.
const LOG_SLACK: Duration = Duration::from_secs(5);

/// The page's policy: its own script and styles only; mail HTML, in a
/// sandboxed `srcdoc` frame, inherits it, so it runs no script and loads
/// nothing remote (inline styles and `data:` images still show).
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'";

/// The same for raw and API responses opened directly.
const DATA_POLICY: &str = "default-src 'none'; sandbox";

/// What the viewer reads: the system's inbox, decision log and deployment.
#[derive(Debug, Clone)]
pub struct ViewerSources {
    /// The capture server.
    pub capture: MailCapture,
    /// The IAM gateway's decision log; `None` without a gateway.
    pub iam_log: Option<PathBuf>,
    /// SDK configs of both accounts, for the lambdas' logs.
    pub clients: Clients,
    /// The deployment whose lambdas' logs are read.
    pub deployment: Deployment,
    /// Where `harness run` writes scenario reports, which name each scenario's call.
    pub reports_dir: PathBuf,
}

/// A request the viewer cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    /// No message has this ID.
    #[error("no message with ID {0}")]
    NoMessage(String),
    /// Nothing is known about this trace.
    #[error("no call with trace id {0} in the decision log or the inbox")]
    NoCall(String),
    /// `/api/v1/search` without a query (Mailpit's wording).
    #[error("Error: no search query")]
    NoQuery,
    /// The decision log could not be read.
    #[error("cannot read the IAM gateway's decisions")]
    Decisions(#[source] iam_gateway::GatewayError),
    /// The scenario reports could not be read.
    #[error("cannot read the scenario reports in {dir}")]
    Reports {
        /// The reports directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Deleting messages from the spool failed.
    #[error("cannot delete the captured emails")]
    Delete(#[source] std::io::Error),
}

impl IntoResponse for ViewerError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::NoMessage(_) | Self::NoCall(_) => StatusCode::NOT_FOUND,
            Self::NoQuery => StatusCode::BAD_REQUEST,
            Self::Decisions(_) | Self::Reports { .. } | Self::Delete(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut text = self.to_string();
        let mut source = std::error::Error::source(&self);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        if status.is_server_error() {
            tracing::warn!(error = %text, "viewer request failed");
        }
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response()
    }
}

/// Binds the viewer's port, so a taken port fails `up` before anything is built.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, HarnessError> {
    let listener = std::net::TcpListener::bind(addr).map_err(|source| HarnessError::PortInUse {
        what: "the mail viewer",
        port: addr.port(),
        source,
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A running viewer. Dropping it stops the server and ends every event stream.
pub struct ViewerHandle {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for ViewerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

impl ViewerHandle {
    /// The address the page is served on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's URL, `http://<addr>/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for ViewerHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

/// Serves the viewer on `listener` (from [`bind`]) until the handle is dropped.
///
/// Must be called inside a Tokio runtime; the server runs on it.
pub fn start(
    listener: std::net::TcpListener,
    sources: ViewerSources,
) -> Result<ViewerHandle, HarnessError> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    let (shutdown, stopped) = watch::channel(false);
    let viewer = Arc::new(Viewer {
        accounts: sources.deployment.accounts.letters(),
        sources,
        read: Mutex::new(BTreeSet::new()),
        cleared_at_ms: AtomicU64::new(0),
        shutdown: stopped.clone(),
    });
    let app = router(viewer);
    let mut stop = stopped;
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "the mail viewer stopped");
        }
    });
    tracing::debug!(%addr, "mail viewer listening");
    Ok(ViewerHandle {
        addr,
        shutdown,
        task,
    })
}

struct Viewer {
    sources: ViewerSources,
    accounts: BTreeMap<String, String>,
    /// Sequence numbers of the messages opened.
    read: Mutex<BTreeSet<u64>>,
    /// When the inbox was last emptied: older denied calls are not listed.
    cleared_at_ms: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

type Shared = Arc<Viewer>;

fn router(viewer: Shared) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/app.js", get(script))
        .route("/style.css", get(style))
        // Browsers ask for it; an empty answer keeps their consoles clean.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/events", get(events))
        .route("/ui/rows", get(rows))
        .route("/ui/call/{trace}", get(call))
        .route("/api/v1/messages", get(list).delete(delete))
        .route("/api/v1/search", get(search))
        .route("/api/v1/message/{id}", get(message))
        .route("/api/v1/message/{id}/headers", get(headers))
        .route("/api/v1/message/{id}/raw", get(raw))
        .with_state(viewer)
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
        ],
        include_str!("page/index.html"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("page/app.js"),
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("page/style.css"),
    )
        .into_response()
}

impl Viewer {
    /// Every captured email, newest first.
    fn newest_first(&self) -> Vec<CapturedEmail> {
        let mut emails = self.sources.capture.messages();
        emails.sort_by_key(|email| std::cmp::Reverse(email.seq));
        emails
    }

    /// The email `id` names (`latest` for the newest).
    fn email(&self, id: &str) -> Result<CapturedEmail, ViewerError> {
        let emails = self.newest_first();
        let found = if id == LATEST {
            emails.into_iter().next()
        } else {
            emails.into_iter().find(|e| mailpit::id_of(e) == id)
        };
        found.ok_or_else(|| ViewerError::NoMessage(id.to_owned()))
    }

    fn is_read(&self, seq: u64) -> bool {
        self.read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&seq)
    }

    fn mark_read(&self, seq: u64) {
        self.read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(seq);
    }

    fn decisions(&self) -> Result<Vec<iam_gateway::DecisionRecord>, ViewerError> {
        match &self.sources.iam_log {
            Some(log) => iam_gateway::read_log(log).map_err(ViewerError::Decisions),
            None => Ok(Vec::new()),
        }
    }

    fn scenarios(&self) -> Result<BTreeMap<TraceId, String>, ViewerError> {
        let dir = &self.sources.reports_dir;
        calls::scenarios(dir).map_err(|source| ViewerError::Reports {
            dir: dir.clone(),
            source,
        })
    }

    /// One page of `emails` (already filtered, newest first) in Mailpit's shape.
    fn page_of(
        &self,
        emails: &[(CapturedEmail, Parsed)],
        total: &[CapturedEmail],
        page: &Page,
    ) -> MessagesSummary {
        let unread = |list: &mut dyn Iterator<Item = &CapturedEmail>| {
            list.filter(|e| !self.is_read(e.seq)).count() as u64
        };
        let messages: Vec<_> = emails
            .iter()
            .skip(page.start)
            .take(page.limit)
            .map(|(email, parsed)| parsed.summary(email, self.is_read(email.seq)))
            .collect();
        MessagesSummary {
            total: total.len() as u64,
            unread: unread(&mut total.iter()),
            count: messages.len() as u64,
            messages_count: emails.len() as u64,
            messages_unread: unread(&mut emails.iter().map(|(e, _)| e)),
            start: page.start,
            tags: Vec::new(),
            messages,
        }
    }
}

/// `start` and `limit`, read leniently as Mailpit does: anything unusable is the default.
struct Page {
    start: usize,
    limit: usize,
}

impl Page {
    fn of(params: &HashMap<String, String>) -> Self {
        let number = |key: &str| params.get(key).and_then(|v| v.parse::<usize>().ok());
        Self {
            start: number("start").unwrap_or(0),
            limit: number("limit").unwrap_or(DEFAULT_LIMIT),
        }
    }
}

async fn list(
    State(viewer): State<Shared>,
    Query(params): Query<HashMap<String, String>>,
) -> Json<MessagesSummary> {
    let emails = viewer.newest_first();
    let parsed: Vec<_> = emails.iter().map(|e| (e.clone(), Parsed::of(e))).collect();
    Json(viewer.page_of(&parsed, &emails, &Page::of(&params)))
}

async fn search(
    State(viewer): State<Shared>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<MessagesSummary>, ViewerError> {
    let query = params
        .get("query")
        .map(|q| q.trim())
        .filter(|q| !q.is_empty())
        .ok_or(ViewerError::NoQuery)?;
    let query = SearchQuery::parse(query);
    let emails = viewer.newest_first();
    let matching: Vec<_> = emails
        .iter()
        .map(|e| (e.clone(), Parsed::of(e)))
        .filter(|(e, parsed)| {
            query.matches(Candidate {
                message: &parsed.message,
                read: viewer.is_read(e.seq),
            })
        })
        .collect();
    Ok(Json(viewer.page_of(&matching, &emails, &Page::of(&params))))
}

/// `DELETE /api/v1/messages`: the messages named in `{"IDs": [...]}`, or all of them.
#[derive(Debug, Default, Deserialize)]
struct DeleteRequest {
    #[serde(rename = "IDs", default)]
    ids: Vec<String>,
}

async fn delete(State(viewer): State<Shared>, body: Bytes) -> Result<Response, ViewerError> {
    // Mailpit deletes everything when the body is missing or names no IDs.
    let request: DeleteRequest = serde_json::from_slice(&body).unwrap_or_default();
    let capture = &viewer.sources.capture;
    if request.ids.is_empty() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        viewer.cleared_at_ms.store(now, Ordering::SeqCst);
        capture.clear().map_err(ViewerError::Delete)?;
    } else {
        let ids: BTreeSet<&str> = request.ids.iter().map(String::as_str).collect();
        capture
            .discard(|e| ids.contains(mailpit::id_of(e).as_str()))
            .map_err(ViewerError::Delete)?;
    }
    Ok(([(header::CONTENT_TYPE, "text/plain")], "ok").into_response())
}

async fn message(
    State(viewer): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Message>, ViewerError> {
    let email = viewer.email(&id)?;
    viewer.mark_read(email.seq);
    Ok(Json(Parsed::of(&email).message))
}

async fn headers(
    State(viewer): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<BTreeMap<String, Vec<String>>>, ViewerError> {
    Ok(Json(mailpit::headers(&viewer.email(&id)?.raw)))
}

async fn raw(
    State(viewer): State<Shared>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ViewerError> {
    let email = viewer.email(&id)?;
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, DATA_POLICY),
        ],
        email.raw.clone(),
    )
        .into_response();
    if params.get("dl").is_some_and(|v| v == "1") {
        let name = format!("attachment; filename=\"{}.eml\"", mailpit::id_of(&email));
        if let Ok(value) = HeaderValue::from_str(&name) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, value);
        }
    }
    Ok(response)
}

async fn rows(State(viewer): State<Shared>) -> Result<Json<Vec<CallRow>>, ViewerError> {
    let emails = viewer.newest_first();
    let decisions = viewer.decisions()?;
    let scenarios = viewer.scenarios()?;
    Ok(Json(calls::rows(
        &emails,
        &decisions,
        &scenarios,
        viewer.cleared_at_ms.load(Ordering::SeqCst),
        &viewer.accounts,
    )))
}

async fn call(
    State(viewer): State<Shared>,
    Path(root): Path<String>,
) -> Result<Json<CallView>, ViewerError> {
    let trace = TraceId::from_header(&format!("Root={root}"))
        .ok_or_else(|| ViewerError::NoCall(root.clone()))?;
    let records = match &viewer.sources.iam_log {
        Some(log) => observe::decisions_of(log, &trace).map_err(ViewerError::Decisions)?,
        None => Vec::new(),
    };
    let inbox = viewer.newest_first();
    let mut emails: Vec<&CapturedEmail> = inbox.iter().filter(|e| e.is_of(&trace)).collect();
    emails.sort_by_key(|e| e.seq);
    let first_ms = records
        .iter()
        .map(|r| r.time_ms)
        .chain(emails.iter().map(|e| e.received_at_ms))
        .min()
        .ok_or_else(|| ViewerError::NoCall(root.clone()))?;
    let since = UNIX_EPOCH + Duration::from_millis(first_ms) - LOG_SLACK;
    let sources = &viewer.sources;
    let (logs, logs_error) =
        match observe::logs_of(&sources.clients, &sources.deployment, &trace, since).await {
            Ok(logs) => (logs, None),
            Err(err) => {
                let mut text = err.to_string();
                if let Some(cause) = std::error::Error::source(&err) {
                    text.push_str(&format!(": {cause}"));
                }
                (BTreeMap::new(), Some(text))
            }
        };
    Ok(Json(CallView {
        scenario: viewer.scenarios()?.get(&trace).cloned(),
        hops: calls::chain(&records, &emails, &viewer.accounts),
        emails: emails.iter().map(|e| mailpit::id_of(e)).collect(),
        trace: root,
        logs,
        logs_error,
    }))
}

/// A `change` event whenever a message arrives or is deleted, the decision
/// log grows (a denied call sends no email), or scenario reports are written
/// (they name the calls); the page then reloads its list. The stream ends
/// when the viewer stops.
async fn events(
    State(viewer): State<Shared>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let files = Files {
        log: viewer.sources.iam_log.clone(),
        reports: viewer.sources.reports_dir.clone(),
    };
    let state = Watch {
        inbox: viewer.sources.capture.subscribe(),
        stopped: viewer.shutdown.clone(),
        seen: files.look(),
        files,
        greeted: false,
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        if !state.greeted {
            state.greeted = true;
            return Some((Ok(Event::default().event("hello").data("ready")), state));
        }
        let mut poll = tokio::time::interval(FILE_POLL);
        loop {
            // `None` ends the stream; `Some(None)` keeps watching.
            let step = tokio::select! {
                changed = state.inbox.changed() => changed.ok().map(|()| Some("inbox")),
                _ = state.stopped.wait_for(|stopped| *stopped) => None,
                _ = poll.tick() => {
                    let now = state.files.look();
                    let changed = now != state.seen;
                    state.seen = now;
                    Some(changed.then_some("files"))
                }
            };
            match step? {
                Some(what) => {
                    return Some((Ok(Event::default().event("change").data(what)), state));
                }
                None => continue,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// What one event stream watches.
struct Watch {
    inbox: watch::Receiver<u64>,
    stopped: watch::Receiver<bool>,
    files: Files,
    seen: FileMarks,
    greeted: bool,
}

/// The files whose changes the list shows.
struct Files {
    log: Option<PathBuf>,
    reports: PathBuf,
}

/// The decision log's size and the reports directory's modification time.
type FileMarks = (u64, Option<SystemTime>);

impl Files {
    fn look(&self) -> FileMarks {
        let log = self
            .log
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len());
        let reports = std::fs::metadata(&self.reports)
            .and_then(|m| m.modified())
            .ok();
        (log, reports)
    }
}
