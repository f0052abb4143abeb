//! In-process SMTP servers for tests (feature `testing`): a scriptable real SMTP sink and
//! a server that accepts connections but never speaks.
//!
//! Both listen on an ephemeral 127.0.0.1 port and stop, threads joined, when dropped.
//!
//! The sink drives the `mailin` SMTP state machine (the engine inside `mailin-embedded`)
//! from its own accept loop, because `mailin_embedded::Server::serve` runs forever and
//! offers no way to stop it at the end of a test.

use std::{
    collections::{HashMap, VecDeque},
    io::{self, BufRead, BufReader, ErrorKind, Write},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::{self, JoinHandle},
    time::Duration,
};

use mailin::{AuthMechanism, Handler, Response, SessionBuilder};

/// How often blocked loops look at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// Replies the sink gives instead of `250 OK`.
#[derive(Debug, Clone, Default)]
pub struct SinkScript {
    /// Replies to successive DATA ends (the final `.`), first to last; then `250 OK`.
    /// After a 4xx/5xx reply here the sink closes the connection.
    pub data_end: VecDeque<(u16, String)>,
    /// Replies to successive RCPT TO commands, first to last; then [`Self::rcpt_by_address`].
    pub rcpt: VecDeque<(u16, String)>,
    /// Fixed RCPT TO reply per address (lowercase); any other address gets `250 OK`.
    pub rcpt_by_address: HashMap<String, (u16, String)>,
    /// Require AUTH PLAIN/LOGIN (allowed without TLS) with this username and password.
    pub credentials: Option<(String, String)>,
}

/// One DATA transaction the sink saw, accepted or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// MAIL FROM address.
    pub from: String,
    /// RCPT TO addresses the sink accepted.
    pub to: Vec<String>,
    /// The message as received, dot-unstuffed, without the final `.` line.
    pub data: Vec<u8>,
    /// The code the sink answered the final `.` with.
    pub reply: u16,
}

#[derive(Default)]
struct SinkState {
    script: SinkScript,
    transactions: Vec<ReceivedMessage>,
    auth_attempts: Vec<(String, String)>,
}

struct Shared {
    stop: AtomicBool,
    connections: AtomicUsize,
    state: Mutex<SinkState>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, SinkState> {
        // A panicking handler thread must not hide what the sink recorded.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A real SMTP server on 127.0.0.1 that records what it receives.
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_loop: Option<JoinHandle<()>>,
}

impl SmtpSink {
    /// Starts a sink that accepts every message.
    pub fn start() -> io::Result<Self> {
        Self::with_script(SinkScript::default())
    }

    /// Starts a sink that answers as `script` says.
    pub fn with_script(script: SinkScript) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let mut session = SessionBuilder::new("sink.test");
        if script.credentials.is_some() {
            session
                .enable_auth(AuthMechanism::Plain)
                .enable_auth(AuthMechanism::Login)
                .insecure_enable_plaintext_auth();
        }
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            state: Mutex::new(SinkState {
                script,
                ..SinkState::default()
            }),
        });
        let loop_shared = Arc::clone(&shared);
        let accept_loop = thread::Builder::new()
            .name("smtp-sink".into())
            .spawn(move || accept_loop(listener, loop_shared, session))?;
        Ok(Self {
            addr,
            shared,
            accept_loop: Some(accept_loop),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Every DATA transaction so far, including refused ones.
    pub fn transactions(&self) -> Vec<ReceivedMessage> {
        self.shared.state().transactions.clone()
    }

    /// Messages answered with 250, i.e. delivered.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.transactions()
            .into_iter()
            .filter(|m| m.reply == 250)
            .collect()
    }

    /// Username/password pairs clients tried to log in with.
    pub fn auth_attempts(&self) -> Vec<(String, String)> {
        self.shared.state().auth_attempts.clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.accept_loop.take() {
            let _ = handle.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, session: SessionBuilder) {
    let mut sessions = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&shared);
                let session = session.clone();
                sessions.push(thread::spawn(move || {
                    // An I/O error ends this one session; the test sees it as a client error.
                    let _ = serve_session(stream, peer.ip(), &shared, &session);
                }));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(_) => thread::sleep(POLL),
        }
    }
    for handle in sessions {
        let _ = handle.join();
    }
}

fn serve_session(
    stream: TcpStream,
    peer: IpAddr,
    shared: &Arc<Shared>,
    builder: &SessionBuilder,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let hang_up = Arc::new(AtomicBool::new(false));
    let handler = SinkHandler {
        shared: Arc::clone(shared),
        current: None,
        hang_up: Arc::clone(&hang_up),
    };
    let mut session = builder.build(peer, handler);
    // One write per reply: piecewise writes meet Nagle and delayed ACKs (40 ms each).
    writer.write_all(&session.greeting().buffer()?)?;
    let mut line = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) if line.ends_with(b"\n") => {
                let response = session.process(&line);
                line.clear();
                if response.action != mailin::Action::NoReply {
                    writer.write_all(&response.buffer()?)?;
                }
                if response.action == mailin::Action::Close || hang_up.load(Ordering::SeqCst) {
                    break;
                }
            }
            // A partial line stays in `line`; keep reading.
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

struct SinkHandler {
    shared: Arc<Shared>,
    current: Option<ReceivedMessage>,
    // mailin stays in its DATA state after refusing a message, so it would take the
    // client's next command for message text; hanging up is the honest way out.
    hang_up: Arc<AtomicBool>,
}

fn reply((code, text): (u16, String)) -> Response {
    Response::custom(code, text)
}

impl Handler for SinkHandler {
    fn rcpt(&mut self, to: &str) -> Response {
        let mut state = self.shared.state();
        if let Some(scripted) = state.script.rcpt.pop_front() {
            return reply(scripted);
        }
        match state.script.rcpt_by_address.get(&to.to_ascii_lowercase()) {
            Some(scripted) => reply(scripted.clone()),
            None => mailin::response::OK,
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(ReceivedMessage {
            from: from.to_owned(),
            to: to.to_vec(),
            data: Vec::new(),
            reply: 0,
        });
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Some(message) = &mut self.current {
            message.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut state = self.shared.state();
        let (code, text) = state
            .script
            .data_end
            .pop_front()
            .unwrap_or((250, "OK".to_owned()));
        if let Some(mut message) = self.current.take() {
            message.reply = code;
            state.transactions.push(message);
        }
        if code >= 400 {
            self.hang_up.store(true, Ordering::SeqCst);
        }
        reply((code, text))
    }

    fn auth_plain(&mut self, _authorization_id: &str, user: &str, password: &str) -> Response {
        self.check_login(user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.check_login(user, password)
    }
}

impl SinkHandler {
    fn check_login(&mut self, user: &str, password: &str) -> Response {
        let mut state = self.shared.state();
        state
            .auth_attempts
            .push((user.to_owned(), password.to_owned()));
        match &state.script.credentials {
            Some((u, p)) if u == user && p == password => mailin::response::AUTH_OK,
            _ => mailin::response::INVALID_CREDENTIALS,
        }
    }
}

/// A server that accepts TCP connections and never sends a greeting.
pub struct SilentServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    accept_loop: Option<JoinHandle<()>>,
}

impl SilentServer {
    /// Starts listening on an ephemeral 127.0.0.1 port.
    pub fn start() -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let (loop_stop, loop_connections) = (Arc::clone(&stop), Arc::clone(&connections));
        let accept_loop = thread::Builder::new()
            .name("silent-smtp".into())
            .spawn(move || {
                // Held open, unanswered, until the server stops.
                let mut held = Vec::new();
                while !loop_stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            loop_connections.fetch_add(1, Ordering::SeqCst);
                            held.push(stream);
                        }
                        Err(_) => thread::sleep(POLL),
                    }
                }
            })?;
        Ok(Self {
            addr,
            stop,
            connections,
            accept_loop: Some(accept_loop),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.accept_loop.take() {
            let _ = handle.join();
        }
    }
}

/// A 127.0.0.1 port with nothing listening, so connecting is refused.
pub fn closed_port() -> io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    Ok(port)
}
