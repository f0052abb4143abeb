//! The embedded SMTP server that captures every email the callee sends.
//!
//! A real SMTP server (mailin-embedded) listens on loopback; every message it
//! accepts is parsed with mail-parser, kept in memory, and optionally spooled to
//! a directory as `.eml` plus a `.json` summary so that other processes (for
//! example `harness invoke` next to a running `harness up`) can read it.
//!
//! The server listens on a private loopback port; the public port belongs to
//! the relay in `smtp_faults.rs`, which offers STARTTLS and AUTH as a
//! production server does and injects scenario faults.

use std::{
    io,
    net::{IpAddr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use fault_plan::SharedFaultBook;
use mailin_embedded::{Handler, Response, Server, SslConfig, response};
use rustls::ServerConfig;
use scenario::CapturedEmail;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

pub use crate::smtp_faults::{SessionTimings, SmtpSessionTiming};
use crate::{error::HarnessError, smtp_faults::RelaySecurity};

/// The SMTP AUTH user name and password of one run; `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpCredentials {
    /// The user name.
    pub username: String,
    /// The password: never print or log it.
    pub password: String,
}

impl SmtpCredentials {
    /// Fresh credentials for one run.
    pub fn generate() -> Self {
        Self {
            username: format!("harness-{}", &sdk_config::random_secret()[..8]),
            password: sdk_config::random_secret(),
        }
    }

    /// Whether `username` and `password` are these.
    pub(crate) fn matches(&self, username: &str, password: &str) -> bool {
        // Compare every byte, so how long a refusal takes says nothing.
        let same = |a: &str, b: &str| {
            a.len() == b.len()
                && a.bytes()
                    .zip(b.bytes())
                    .fold(0, |acc, (x, y)| acc | (x ^ y))
                    == 0
        };
        same(&self.username, username) & same(&self.password, password)
    }
}

impl std::fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What the public SMTP port demands: STARTTLS with this certificate, then
/// AUTH with these credentials.
#[derive(Clone)]
pub struct SmtpSecurity {
    /// The server side of STARTTLS (a certificate from the run's local CA).
    pub tls: Arc<ServerConfig>,
    /// What AUTH must present.
    pub credentials: SmtpCredentials,
}

impl std::fmt::Debug for SmtpSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSecurity")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inbox {
    messages: Mutex<Vec<CapturedEmail>>,
    arrived: Notify,
    // Bumped on every arrival and every clear, for watchers that must not
    // miss a change between two looks (the mail viewer's live list).
    version: watch::Sender<u64>,
    next_seq: AtomicU64,
    spool: Option<PathBuf>,
}

impl Inbox {
    fn deliver(&self, raw: &[u8], from: &str, to: &[String]) {
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst) + 1;
        let email = CapturedEmail::parse(raw, from, to, seq);
        if let Some(dir) = &self.spool
            && let Err(err) = spool(dir, &email)
        {
            tracing::warn!(dir = %dir.display(), error = %err, "could not spool captured email");
        }
        tracing::debug!(seq, subject = %email.subject, "email captured");
        self.messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(email);
        self.arrived.notify_waiters();
        self.version.send_modify(|v| *v += 1);
    }
}

/// Writes `<seq>.eml` and `<seq>.json` atomically (temp file, then rename),
/// so a reader in another process never sees half a message.
fn spool(dir: &Path, email: &CapturedEmail) -> io::Result<()> {
    let stem = spool_stem(email.seq);
    let eml = dir.join(format!("{stem}.eml"));
    let json = dir.join(format!("{stem}.json"));
    write_atomic(&eml, &email.raw)?;
    let summary = serde_json::to_vec_pretty(email).map_err(io::Error::other)?;
    write_atomic(&json, &summary)
}

/// The file name, without extension, of the `seq`-th message in a spool.
fn spool_stem(seq: u64) -> String {
    format!("{seq:06}")
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

/// Reads every message spooled in `dir` by a capture server, in arrival order.
pub fn read_spool(dir: &Path) -> io::Result<Vec<CapturedEmail>> {
    let mut emails = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(emails),
        Err(err) => return Err(err),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let mut email: CapturedEmail = serde_json::from_slice(&std::fs::read(&path)?)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            email.raw = std::fs::read(path.with_extension("eml"))?;
            emails.push(email);
        }
    }
    emails.sort_by_key(|e| e.seq);
    Ok(emails)
}

#[derive(Clone)]
struct CaptureHandler {
    inbox: Arc<Inbox>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for CaptureHandler {
    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        response::OK
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_string();
        self.to.clear();
        self.data.clear();
        response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        self.to.push(to.to_string());
        response::OK
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_string();
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let raw = std::mem::take(&mut self.data);
        self.inbox.deliver(&raw, &self.from, &self.to);
        response::OK
    }
}

/// Where and how the capture server listens.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// The address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// When set, every message is also written there as `.eml` and `.json`.
    pub spool_dir: Option<PathBuf>,
    /// Scenario faults to inject into the sessions of their calls
    /// (`smtp_faults.rs`); `None` injects none.
    pub faults: Option<SharedFaultBook>,
    /// STARTTLS and AUTH, required of every session; `None` offers neither
    /// and takes mail from anyone.
    pub security: Option<SmtpSecurity>,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], crate::DEFAULT_SMTP_PORT)),
            spool_dir: None,
            faults: None,
            security: None,
        }
    }
}

/// A running capture server. Its worker threads end with the process.
#[derive(Clone)]
pub struct MailCapture {
    inbox: Arc<Inbox>,
    addr: SocketAddr,
    sessions: SessionTimings,
}

impl std::fmt::Debug for MailCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailCapture")
            .field("addr", &self.addr)
            .finish()
    }
}

impl MailCapture {
    /// Binds the port and starts serving on background threads.
    pub fn start(config: CaptureConfig) -> Result<Self, HarnessError> {
        let listener =
            TcpListener::bind(config.bind).map_err(|source| HarnessError::PortInUse {
                what: "the SMTP capture server",
                port: config.bind.port(),
                source,
            })?;
        let addr = listener.local_addr().map_err(HarnessError::Io)?;
        if let Some(dir) = &config.spool_dir {
            std::fs::create_dir_all(dir).map_err(HarnessError::Io)?;
        }
        let inbox = Arc::new(Inbox {
            spool: config.spool_dir,
            ..Inbox::default()
        });
        let handler = CaptureHandler {
            inbox: inbox.clone(),
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        };
        // The server listens privately; the relay takes the public port, to
        // speak TLS and AUTH and to act on the sessions of calls with SMTP faults.
        let server_listener =
            TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).map_err(HarnessError::Io)?;
        let inner = server_listener.local_addr().map_err(HarnessError::Io)?;
        let security = config.security.map(|security| {
            // The gateway's configuration names HTTP as ALPN; SMTP has none.
            let mut tls = (*security.tls).clone();
            tls.alpn_protocols.clear();
            RelaySecurity {
                tls: Arc::new(tls),
                credentials: security.credentials,
            }
        });
        let book = config.faults;
        let sessions = SessionTimings::default();
        let timings = sessions.clone();
        std::thread::Builder::new()
            .name("smtp-relay".into())
            .spawn(move || crate::smtp_faults::serve(listener, inner, book, security, timings))
            .map_err(HarnessError::Io)?;
        let mut server = Server::new(handler);
        server
            .with_name("harness.localhost")
            .with_ssl(SslConfig::None)
            .map_err(|e| HarnessError::Smtp(e.to_string()))?
            .with_num_threads(16)
            .with_tcp_listener(server_listener);
        std::thread::Builder::new()
            .name("smtp-capture".into())
            .spawn(move || {
                if let Err(err) = server.serve() {
                    tracing::error!(error = %err, "SMTP capture server stopped");
                }
            })
            .map_err(HarnessError::Io)?;
        tracing::debug!(%addr, "SMTP capture listening");
        Ok(Self {
            inbox,
            addr,
            sessions,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// When each command of the relay's recent sessions arrived.
    pub fn session_timings(&self) -> &SessionTimings {
        &self.sessions
    }

    /// A copy of every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<CapturedEmail> {
        self.inbox
            .messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A receiver that sees a new value whenever a message arrives or the
    /// inbox is cleared.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inbox.version.subscribe()
    }

    /// Forgets every message received so far, in memory and in the spool.
    /// Sequence numbers keep counting, so a message's number is never reused.
    pub fn clear(&self) -> io::Result<usize> {
        self.discard(|_| true)
    }

    /// Forgets the messages that `matches`, in memory and in the spool, and
    /// returns how many there were.
    pub fn discard(&self, matches: impl Fn(&CapturedEmail) -> bool) -> io::Result<usize> {
        let mut messages = self
            .inbox
            .messages
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = &self.inbox.spool {
            for email in messages.iter().filter(|e| matches(e)) {
                let stem = spool_stem(email.seq);
                for extension in ["json", "eml"] {
                    match std::fs::remove_file(dir.join(format!("{stem}.{extension}"))) {
                        Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                        _ => {}
                    }
                }
            }
        }
        let before = messages.len();
        messages.retain(|e| !matches(e));
        let discarded = before - messages.len();
        drop(messages);
        self.inbox.version.send_modify(|v| *v += 1);
        Ok(discarded)
    }

    /// Waits until at least `n` received messages satisfy `matches`, or until
    /// `timeout` passes; returns the matching messages either way, so a caller
    /// can report what did arrive.
    pub async fn wait_for(
        &self,
        n: usize,
        timeout: Duration,
        matches: impl Fn(&CapturedEmail) -> bool,
    ) -> Result<Vec<CapturedEmail>, Vec<CapturedEmail>> {
        let deadline = Instant::now() + timeout;
        loop {
            // Register interest before looking, so a delivery between the look
            // and the wait is not missed.
            let notified = self.inbox.arrived.notified();
            let found: Vec<CapturedEmail> =
                self.messages().into_iter().filter(|m| matches(m)).collect();
            if found.len() >= n {
                return Ok(found);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                let found = self.messages().into_iter().filter(|m| matches(m)).collect();
                return Err(found);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use lettre::{
        AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::header::ContentType,
    };

    use super::*;

    async fn send(addr: SocketAddr, subject: &str, trace: &str) {
        let email = Message::builder()
            .from("alerts@example.com".parse().unwrap())
            .to("oncall@example.com".parse().unwrap())
            .cc("dba@example.com".parse().unwrap())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .raw_header(lettre::message::header::HeaderValue::new(
                lettre::message::header::HeaderName::new_from_ascii_str("X-Amzn-Trace-Id"),
                trace.to_string(),
            ))
            .body(String::from("Body with ünïcode\n"))
            .unwrap();
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
            .port(addr.port())
            .build();
        mailer.send(email).await.unwrap();
    }

    fn ephemeral(spool: Option<PathBuf>) -> MailCapture {
        MailCapture::start(CaptureConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            spool_dir: spool,
            faults: None,
            security: None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn captures_envelope_headers_and_body() {
        let capture = ephemeral(None);
        send(capture.addr(), "[P1] INC0000001: ok", "Root=1-a").await;

        let got = capture
            .wait_for(1, Duration::from_secs(5), |_| true)
            .await
            .unwrap();

        assert_eq!(got.len(), 1);
        let email = &got[0];
        assert_eq!(email.envelope_from, "alerts@example.com");
        assert_eq!(
            email.envelope_to,
            vec!["oncall@example.com", "dba@example.com"]
        );
        assert_eq!(email.from, "alerts@example.com");
        assert_eq!(email.to, vec!["oncall@example.com"]);
        assert_eq!(email.cc, vec!["dba@example.com"]);
        assert_eq!(email.subject, "[P1] INC0000001: ok");
        let text = email.text.as_deref().expect("a text part");
        assert!(text.contains("ünïcode"), "{text}");
        assert_eq!(email.header("x-amzn-trace-id"), Some("Root=1-a"));
    }

    #[tokio::test]
    async fn wait_for_filters_and_times_out_with_what_arrived() {
        let capture = ephemeral(None);
        send(capture.addr(), "one", "Root=1-x").await;

        let err = capture
            .wait_for(2, Duration::from_millis(200), |m| {
                m.header("X-Amzn-Trace-Id") == Some("Root=1-x")
            })
            .await
            .unwrap_err();

        assert_eq!(err.len(), 1);
        assert_eq!(err[0].subject, "one");
    }

    #[tokio::test]
    async fn spooled_messages_read_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let capture = ephemeral(Some(dir.path().to_path_buf()));
        send(capture.addr(), "first", "Root=1-1").await;
        send(capture.addr(), "second", "Root=1-2").await;
        capture
            .wait_for(2, Duration::from_secs(5), |_| true)
            .await
            .unwrap();

        let spooled = read_spool(dir.path()).unwrap();

        assert_eq!(spooled, capture.messages());
        assert_eq!(
            spooled
                .iter()
                .map(|e| e.subject.as_str())
                .collect::<Vec<_>>(),
            ["first", "second"]
        );
        assert!(dir.path().join("000001.eml").exists());
    }

    #[tokio::test]
    async fn clearing_empties_memory_and_spool_and_tells_watchers() {
        let dir = tempfile::tempdir().unwrap();
        let capture = ephemeral(Some(dir.path().to_path_buf()));
        let mut watcher = capture.subscribe();
        send(capture.addr(), "first", "Root=1-1").await;
        capture
            .wait_for(1, Duration::from_secs(5), |_| true)
            .await
            .unwrap();
        assert!(watcher.has_changed().unwrap(), "an arrival is a change");
        watcher.borrow_and_update();

        capture.clear().unwrap();

        assert!(watcher.has_changed().unwrap(), "a clear is a change");
        assert!(capture.messages().is_empty());
        assert!(read_spool(dir.path()).unwrap().is_empty());
        send(capture.addr(), "second", "Root=1-2").await;
        let got = capture
            .wait_for(1, Duration::from_secs(5), |_| true)
            .await
            .unwrap();
        assert_eq!(got[0].seq, 2, "numbers are not reused after a clear");
    }

    #[test]
    fn a_taken_port_is_named() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();

        let err = MailCapture::start(CaptureConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], port)),
            spool_dir: None,
            faults: None,
            security: None,
        })
        .unwrap_err();

        assert!(err.to_string().contains(&port.to_string()), "{err}");
    }
}
