//! The SMTP relay: the public face of the capture server. It speaks SMTP as
//! a production submission server does (STARTTLS, then AUTH) and injects a
//! scenario's SMTP faults into the sessions of that scenario's call.
//!
//! # Why the relay, not mailin, does TLS and AUTH
//! Faults act on commands, so the relay must read them in plaintext. It
//! therefore terminates STARTTLS itself (rustls, with a certificate from the
//! run's local CA) and checks AUTH PLAIN/LOGIN against the run's credentials,
//! then relays the session in plaintext over loopback to the mailin server,
//! which only stores what it is given. The relay is always in front, with or
//! without faults, so every session meets the same server: one that offers
//! STARTTLS, offers AUTH only once TLS is up (as production servers do, so a
//! password never crosses in clear), and refuses `MAIL` before AUTH with
//! `530 5.7.0 Authentication required`. Without a [`RelaySecurity`] (backends
//! whose lambdas are not given the CA) it offers neither and takes any mail.
//! STARTTLS and AUTH never reach mailin, which has neither.
//!
//! # Whose session
//! An SMTP session carries no trace id until its message does. The runtime
//! shim reports to the fault book which `bootstrap` process serves an
//! invocation of a call with SMTP faults ([`FaultBook::bind_process`]); the
//! relay looks the connecting socket up in the kernel's table
//! (`/proc/net/tcp`: the client port gives the socket's inode) and finds which
//! of those processes holds it (`/proc/<pid>/fd`). A session of any other
//! process, or any session while no call has SMTP faults, gets no fault.
//! Linux only, as the host backend is.
//!
//! # What each fault does
//! - `reply`: the client gets the reply instead of the server's; the command
//!   never reaches the server (at `message`, the server never sees the final
//!   dot, so nothing is stored; at `auth`, the client is not authenticated).
//! - `stall_ms`: the relay waits, then carries on.
//! - `disconnect`: the relay closes the connection without a reply; at
//!   `message`, after the server stored the message, so the client cannot
//!   know it was delivered.
//! - `withhold` (at `ehlo` only): the EHLO reply leaves the extension out, and
//!   for the rest of the session the relay acts as a server without it:
//!   without `starttls`, STARTTLS is refused and the session stays plaintext
//!   (AUTH is then offered in clear, as such a server would); without `auth`,
//!   AUTH is refused and mail is taken unauthenticated.
//!
//! [`FaultBook::bind_process`]: fault_plan::FaultBook::bind_process

use std::{
    collections::VecDeque,
    io::{self, BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use fault_plan::{SharedFaultBook, SmtpAction, SmtpEvent, SmtpExtension};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde::Serialize;
use xray_trace::TraceId;

use crate::smtp::SmtpCredentials;

/// How many sessions' timings the relay keeps.
const SESSION_TIMINGS: usize = 10_000;

/// When each command of one relayed session arrived, for `harness bench`'s
/// breakdown of where an email's time goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmtpSessionTiming {
    /// The trace id of the message's `X-Amzn-Trace-Id` header, if it had one.
    pub trace: Option<TraceId>,
    /// When the connection was accepted, in microseconds since the Unix epoch.
    pub accepted_us: u64,
    /// Each command's verb (`EHLO`, `STARTTLS`, `AUTH`, `MAIL`, `QUIT`, ...)
    /// with the microseconds from accepting the connection to reading it;
    /// the message's final dot is `.`.
    pub commands: Vec<(String, u64)>,
    /// Microseconds from accepting the connection to the session's end.
    pub total_us: u64,
}

/// The timings of the relay's most recent sessions, oldest first.
#[derive(Debug, Clone, Default)]
pub struct SessionTimings(Arc<Mutex<VecDeque<SmtpSessionTiming>>>);

impl SessionTimings {
    fn push(&self, timing: SmtpSessionTiming) {
        let mut sessions = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if sessions.len() == SESSION_TIMINGS {
            sessions.pop_front();
        }
        sessions.push_back(timing);
    }

    /// The sessions whose message carried `trace`, oldest first.
    pub fn of_trace(&self, trace: &TraceId) -> Vec<SmtpSessionTiming> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|s| s.trace.as_ref() == Some(trace))
            .cloned()
            .collect()
    }
}

/// Times one session as the relay reads it.
struct SessionClock {
    accepted: Instant,
    accepted_us: u64,
    commands: Vec<(String, u64)>,
    trace: Option<TraceId>,
}

impl SessionClock {
    fn start() -> Self {
        Self {
            accepted: Instant::now(),
            accepted_us: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0),
            commands: Vec::new(),
            trace: None,
        }
    }

    fn since_accepted(&self) -> u64 {
        self.accepted.elapsed().as_micros() as u64
    }

    /// Notes a command line's arrival, by its verb.
    fn command(&mut self, line: &str) {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let at = self.since_accepted();
        self.commands.push((verb, at));
    }

    /// Notes a message header line, keeping the trace id it may carry.
    fn header(&mut self, line: &str) {
        if self.trace.is_none()
            && let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case(xray_trace::HEADER)
        {
            self.trace = TraceId::from_header(value.trim());
        }
    }

    fn finish(self) -> SmtpSessionTiming {
        SmtpSessionTiming {
            total_us: self.since_accepted(),
            trace: self.trace,
            accepted_us: self.accepted_us,
            commands: self.commands,
        }
    }
}

/// What the relay demands of every session: STARTTLS with this certificate,
/// then AUTH with these credentials.
#[derive(Clone)]
pub(crate) struct RelaySecurity {
    /// The server side of STARTTLS.
    pub tls: Arc<ServerConfig>,
    /// What AUTH PLAIN and AUTH LOGIN must present.
    pub credentials: SmtpCredentials,
}

/// Serves `listener`, relaying every connection to the capture server at `inner`.
pub(crate) fn serve(
    listener: TcpListener,
    inner: SocketAddr,
    book: Option<SharedFaultBook>,
    security: Option<RelaySecurity>,
    timings: SessionTimings,
) {
    let server = match listener.local_addr() {
        Ok(addr) => addr,
        Err(err) => {
            tracing::error!(error = %err, "SMTP relay has no address");
            return;
        }
    };
    for stream in listener.incoming() {
        let client = match stream {
            Ok(client) => client,
            Err(err) => {
                tracing::warn!(error = %err, "SMTP relay cannot accept");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let book = book.clone();
        let security = security.clone();
        let timings = timings.clone();
        let spawned = thread::Builder::new()
            .name("smtp-relay".into())
            .spawn(move || {
                let _ = client.set_nodelay(true);
                let faults = book.and_then(|book| {
                    let peer = client.peer_addr().ok()?;
                    let trace = book
                        .has_smtp_faults()
                        .then(|| session_owner(peer, server, &book))
                        .flatten()?;
                    Some((book, trace))
                });
                let mut session = Session::new(client, inner, faults, security);
                let relayed = session.run();
                timings.push(session.clock.finish());
                if let Err(err) = relayed {
                    tracing::debug!(error = %err, "SMTP relay session ended with an error");
                }
            });
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "SMTP relay cannot start a session thread");
        }
    }
}

/// The trace whose `bootstrap` holds the client end of the connection from `peer` to `server`.
fn session_owner(peer: SocketAddr, server: SocketAddr, book: &SharedFaultBook) -> Option<TraceId> {
    let inode = socket_inode(peer.port(), server.port())?;
    let wanted = format!("socket:[{inode}]");
    book.processes().into_iter().find_map(|(pid, trace)| {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        fds.filter_map(Result::ok)
            .any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|target| target.to_string_lossy() == wanted)
            })
            .then_some(trace)
    })
}

/// The inode of the socket from local port `port` to remote port `remote`, from `/proc/net/tcp{,6}`.
fn socket_inode(port: u16, remote: u16) -> Option<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .find_map(|table| find_inode(&table, port, remote))
}

/// Parses a `/proc/net/tcp` table for the socket `port` → `remote`.
fn find_inode(table: &str, port: u16, remote: u16) -> Option<u64> {
    let port_of = |address: &str| {
        address
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, rem, inode) = (fields.get(1)?, fields.get(2)?, fields.get(9)?);
        (port_of(local)? == port && port_of(rem)? == remote)
            .then(|| inode.parse().ok())
            .flatten()
            .filter(|inode| *inode != 0)
    })
}

/// The client's side of a session: plaintext until STARTTLS, TLS after.
enum ClientStream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// One session, relayed line by line.
struct Session {
    client: BufReader<ClientStream>,
    inner: SocketAddr,
    server: Option<BufReader<TcpStream>>,
    /// The book and the call whose session this is, when that call has SMTP faults.
    faults: Option<(SharedFaultBook, TraceId)>,
    security: Option<RelaySecurity>,
    /// The last EHLO/HELO line, replayed on a fresh server connection.
    hello: Option<String>,
    /// Extensions a fault withheld for the rest of the session.
    withheld_starttls: bool,
    withheld_auth: bool,
    tls_active: bool,
    authenticated: bool,
    clock: SessionClock,
}

/// Reads one line, CRLF included; `None` at end of stream.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

/// Reads one reply, every line of a multi-line one.
fn read_reply(reader: &mut impl BufRead) -> io::Result<String> {
    let mut reply = String::new();
    loop {
        let line = read_line(reader)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the server hung up"))?;
        let last = line.as_bytes().get(3) != Some(&b'-');
        reply.push_str(&line);
        if last {
            return Ok(reply);
        }
    }
}

/// The event a command line is, and its `RCPT TO` address.
fn event_of(line: &str) -> (Option<SmtpEvent>, Option<String>) {
    let verb = line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let event = match verb.as_str() {
        "EHLO" | "HELO" => SmtpEvent::Ehlo,
        "STARTTLS" => SmtpEvent::Starttls,
        "AUTH" => SmtpEvent::Auth,
        "MAIL" => SmtpEvent::Mail,
        "RCPT" => SmtpEvent::Rcpt,
        "DATA" => SmtpEvent::Data,
        _ => return (None, None),
    };
    let rcpt = (event == SmtpEvent::Rcpt)
        .then(|| {
            let start = line.find('<')? + 1;
            let end = start + line[start..].find('>')?;
            Some(line[start..end].to_owned())
        })
        .flatten();
    (Some(event), rcpt)
}

/// `reply`, a multi-line `250` EHLO reply, with `extensions` added to its lines.
fn with_extensions(reply: &str, extensions: &[&str]) -> String {
    if extensions.is_empty() || !reply.starts_with("250") {
        return reply.to_owned();
    }
    let mut lines: Vec<&str> = reply
        .lines()
        .map(|line| line.get(4..).unwrap_or_default())
        .collect();
    lines.extend_from_slice(extensions);
    let last = lines.len() - 1;
    lines
        .iter()
        .enumerate()
        .map(|(i, text)| format!("250{}{text}\r\n", if i == last { ' ' } else { '-' }))
        .collect()
}

/// Decodes one base64 line of an AUTH exchange; `None` when it is not base64.
fn decode_line(line: &str) -> Option<String> {
    let bytes = BASE64.decode(line.trim()).ok()?;
    String::from_utf8(bytes).ok()
}

/// The authentication identity and password of an AUTH PLAIN response
/// (`authzid NUL authcid NUL passwd`).
fn plain_credentials(response: &str) -> Option<(String, String)> {
    let mut parts = response.split('\0');
    let (_authzid, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    parts
        .next()
        .is_none()
        .then(|| (user.to_owned(), password.to_owned()))
}

impl Session {
    fn new(
        client: TcpStream,
        inner: SocketAddr,
        faults: Option<(SharedFaultBook, TraceId)>,
        security: Option<RelaySecurity>,
    ) -> Self {
        Self {
            client: BufReader::new(ClientStream::Plain(client)),
            inner,
            server: None,
            faults,
            security,
            hello: None,
            withheld_starttls: false,
            withheld_auth: false,
            tls_active: false,
            authenticated: false,
            clock: SessionClock::start(),
        }
    }

    fn fault(&self, event: SmtpEvent, rcpt: Option<&str>) -> Option<SmtpAction> {
        let (book, trace) = self.faults.as_ref()?;
        let action = book.smtp(trace, event, rcpt)?;
        tracing::info!(trace = %trace, %event, ?action, "smtp fault injected");
        Some(action)
    }

    /// Whether STARTTLS is offered now.
    fn offers_starttls(&self) -> bool {
        self.security.is_some() && !self.withheld_starttls && !self.tls_active
    }

    /// Whether AUTH is offered now: once TLS is up, or in clear by a server
    /// that offers no STARTTLS.
    fn offers_auth(&self) -> bool {
        self.security.is_some()
            && !self.withheld_auth
            && !self.authenticated
            && (self.tls_active || self.withheld_starttls)
    }

    /// Whether `MAIL` must wait for AUTH.
    fn requires_auth(&self) -> bool {
        self.security.is_some() && !self.withheld_auth && !self.authenticated
    }

    fn reply_to_client(&mut self, text: &str) -> io::Result<()> {
        let client = self.client.get_mut();
        client.write_all(text.as_bytes())?;
        client.flush()
    }

    fn read_client_line(&mut self) -> io::Result<String> {
        read_line(&mut self.client)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "client hung up"))
    }

    /// Connects to the capture server and reads its greeting.
    fn connect(&mut self) -> io::Result<String> {
        let stream = TcpStream::connect(self.inner)?;
        stream.set_nodelay(true)?;
        let mut server = BufReader::new(stream);
        let greeting = read_reply(&mut server)?;
        self.server = Some(server);
        Ok(greeting)
    }

    /// Sends `line` to the server (a fresh connection, greeted as before, if
    /// the last one was dropped) and returns its reply.
    fn exchange(&mut self, line: &str) -> io::Result<String> {
        if self.server.is_none() {
            self.connect()?;
            if let Some(hello) = self.hello.clone() {
                self.exchange(&hello)?;
            }
        }
        let server = self.server.as_mut().expect("connected above");
        server.get_mut().write_all(line.as_bytes())?;
        read_reply(server)
    }

    fn run(&mut self) -> io::Result<()> {
        match self.fault(SmtpEvent::Connect, None) {
            Some(SmtpAction::Disconnect) => return Ok(()),
            Some(SmtpAction::Stall { ms }) => thread::sleep(Duration::from_millis(ms)),
            Some(SmtpAction::Reply { code, text }) => {
                self.reply_to_client(&format!("{code} {text}\r\n"))?;
                // A server that refuses at the greeting still says goodbye.
                if read_line(&mut self.client)?
                    .is_some_and(|l| l.trim().eq_ignore_ascii_case("QUIT"))
                {
                    self.reply_to_client("221 2.0.0 Bye\r\n")?;
                }
                return Ok(());
            }
            Some(SmtpAction::Withhold { .. }) | None => {}
        }
        let greeting = self.connect()?;
        self.reply_to_client(&greeting)?;
        while let Some(line) = read_line(&mut self.client)? {
            self.clock.command(&line);
            let (event, rcpt) = event_of(&line);
            if let Some(event) = event {
                match self.fault(event, rcpt.as_deref()) {
                    Some(SmtpAction::Disconnect) => return Ok(()),
                    Some(SmtpAction::Stall { ms }) => thread::sleep(Duration::from_millis(ms)),
                    Some(SmtpAction::Reply { code, text }) => {
                        self.reply_to_client(&format!("{code} {text}\r\n"))?;
                        continue;
                    }
                    Some(SmtpAction::Withhold { extension }) => match extension {
                        SmtpExtension::Starttls => self.withheld_starttls = true,
                        SmtpExtension::Auth => self.withheld_auth = true,
                    },
                    None => {}
                }
            }
            match event {
                Some(SmtpEvent::Starttls) => {
                    self.starttls()?;
                    continue;
                }
                Some(SmtpEvent::Auth) => {
                    self.auth(&line)?;
                    continue;
                }
                Some(SmtpEvent::Mail) if self.requires_auth() => {
                    self.reply_to_client("530 5.7.0 Authentication required\r\n")?;
                    continue;
                }
                Some(SmtpEvent::Ehlo) => self.hello = Some(line.clone()),
                _ => {}
            }
            let mut reply = self.exchange(&line)?;
            if line
                .get(..4)
                .is_some_and(|verb| verb.eq_ignore_ascii_case("EHLO"))
            {
                let mut extensions = Vec::new();
                if self.offers_starttls() {
                    extensions.push("STARTTLS");
                }
                if self.offers_auth() {
                    extensions.push("AUTH PLAIN LOGIN");
                }
                reply = with_extensions(&reply, &extensions);
            }
            self.reply_to_client(&reply)?;
            if event == Some(SmtpEvent::Data) && reply.starts_with("354") {
                if !self.message()? {
                    return Ok(());
                }
            } else if line.trim().eq_ignore_ascii_case("QUIT") {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Answers STARTTLS and, when offered, turns the client's side into TLS.
    fn starttls(&mut self) -> io::Result<()> {
        let tls = match &self.security {
            Some(security) if self.offers_starttls() => security.tls.clone(),
            _ if self.tls_active => {
                return self.reply_to_client("503 5.5.1 TLS already active\r\n");
            }
            _ => return self.reply_to_client("502 5.5.1 STARTTLS not offered\r\n"),
        };
        // Anything the client sent after STARTTLS would be plaintext smuggled
        // into the TLS session (CVE-2011-0411): refuse it.
        if !self.client.buffer().is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the client pipelined commands after STARTTLS",
            ));
        }
        let tcp = match self.client.get_ref() {
            ClientStream::Plain(tcp) => tcp.try_clone()?,
            ClientStream::Tls(_) => unreachable!("offers_starttls is false once TLS is active"),
        };
        self.reply_to_client("220 2.0.0 Ready to start TLS\r\n")?;
        let connection = ServerConnection::new(tls).map_err(io::Error::other)?;
        self.client = BufReader::new(ClientStream::Tls(Box::new(StreamOwned::new(
            connection, tcp,
        ))));
        // RFC 3207: both sides forget what they knew; the client says EHLO again.
        self.tls_active = true;
        self.authenticated = false;
        Ok(())
    }

    /// Answers AUTH PLAIN or AUTH LOGIN, checking the run's credentials.
    fn auth(&mut self, line: &str) -> io::Result<()> {
        let Some(expected) = self.security.as_ref().map(|s| s.credentials.clone()) else {
            return self.reply_to_client("503 5.5.1 Error: authentication not enabled\r\n");
        };
        if self.authenticated {
            return self.reply_to_client("503 5.5.1 Error: already authenticated\r\n");
        }
        if !self.offers_auth() {
            let reply = if self.withheld_auth {
                "503 5.5.1 Error: authentication not enabled\r\n"
            } else {
                "530 5.7.0 Must issue a STARTTLS command first\r\n"
            };
            return self.reply_to_client(reply);
        }
        let mut words = line.split_whitespace().skip(1);
        let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
        let initial = words.next().map(str::to_owned);
        let presented = match mechanism.as_str() {
            "PLAIN" => {
                let response = match initial {
                    Some(initial) => initial,
                    None => {
                        self.reply_to_client("334 \r\n")?;
                        self.read_client_line()?
                    }
                };
                if response.trim() == "*" {
                    return self.reply_to_client("501 5.7.0 Authentication aborted\r\n");
                }
                decode_line(&response).and_then(|r| plain_credentials(&r))
            }
            "LOGIN" => {
                let user = match initial {
                    Some(initial) => initial,
                    None => {
                        self.reply_to_client("334 VXNlcm5hbWU6\r\n")?;
                        self.read_client_line()?
                    }
                };
                self.reply_to_client("334 UGFzc3dvcmQ6\r\n")?;
                let password = self.read_client_line()?;
                if user.trim() == "*" || password.trim() == "*" {
                    return self.reply_to_client("501 5.7.0 Authentication aborted\r\n");
                }
                decode_line(&user).zip(decode_line(&password))
            }
            _ => {
                return self.reply_to_client("504 5.5.4 Unrecognized authentication type\r\n");
            }
        };
        match presented {
            None => self.reply_to_client("501 5.5.2 Cannot decode response\r\n"),
            Some((user, password)) if expected.matches(&user, &password) => {
                self.authenticated = true;
                self.reply_to_client("235 2.7.0 Authentication successful\r\n")
            }
            Some(_) => {
                tracing::info!(mechanism = %mechanism, "SMTP AUTH refused: wrong credentials");
                self.reply_to_client("535 5.7.8 Authentication credentials invalid\r\n")
            }
        }
    }

    /// Relays a message up to its final dot, where the `message` faults
    /// apply; false when the session must end (a disconnect).
    fn message(&mut self) -> io::Result<bool> {
        let mut in_headers = true;
        loop {
            let line = self.read_client_line()?;
            if line != ".\r\n" && line != ".\n" {
                in_headers &= !line.trim_end().is_empty();
                if in_headers {
                    self.clock.header(&line);
                }
                let server = self.server.as_mut().expect("a server in DATA");
                server.get_mut().write_all(line.as_bytes())?;
                continue;
            }
            self.clock.command(&line);
            match self.fault(SmtpEvent::Message, None) {
                Some(SmtpAction::Reply { code, text }) => {
                    // The server never sees the dot: dropping its connection
                    // discards the message; the next command gets a fresh one.
                    self.server = None;
                    self.reply_to_client(&format!("{code} {text}\r\n"))?;
                    return Ok(true);
                }
                Some(SmtpAction::Disconnect) => {
                    let stored = self.exchange(&line)?;
                    tracing::info!(reply = %stored.trim_end(), "message stored, then the connection dropped");
                    return Ok(false);
                }
                Some(SmtpAction::Stall { ms }) => thread::sleep(Duration::from_millis(ms)),
                Some(SmtpAction::Withhold { .. }) | None => {}
            }
            let reply = self.exchange(&line)?;
            self.reply_to_client(&reply)?;
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[test]
    fn the_socket_table_gives_the_client_sockets_inode() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A1B2 0100007F:09C5 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:09C5 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
";
        assert_eq!(find_inode(table, 0xA1B2, 0x09C5), Some(4242));
        assert_eq!(find_inode(table, 0x09C5, 0xA1B2), Some(4343));
        assert_eq!(find_inode(table, 0x1234, 0x09C5), None);
    }

    #[test]
    fn extensions_are_appended_to_a_multi_line_ehlo_reply() {
        let reply = "250-harness.localhost\r\n250 8BITMIME\r\n";

        assert_eq!(
            with_extensions(reply, &["STARTTLS", "AUTH PLAIN LOGIN"]),
            "250-harness.localhost\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n"
        );
        assert_eq!(
            with_extensions("250 one\r\n", &["STARTTLS"]),
            "250-one\r\n250 STARTTLS\r\n"
        );
        assert_eq!(with_extensions("554 no\r\n", &["STARTTLS"]), "554 no\r\n");
    }

    #[rstest]
    #[case::plain_response("\0alerts\0s3cret", Some(("alerts", "s3cret")))]
    #[case::with_authzid("admin\0alerts\0s3cret", Some(("alerts", "s3cret")))]
    #[case::too_few_parts("alerts\0s3cret", None)]
    #[case::too_many_parts("\0alerts\0s3cret\0more", None)]
    fn auth_plain_responses_give_user_and_password(
        #[case] response: &str,
        #[case] expected: Option<(&str, &str)>,
    ) {
        assert_eq!(
            plain_credentials(response),
            expected.map(|(u, p)| (u.to_owned(), p.to_owned()))
        );
    }

    #[test]
    fn a_sessions_clock_keeps_each_verb_in_order_and_the_messages_trace() {
        let trace = TraceId::new();
        let mut clock = SessionClock::start();
        clock.command("EHLO client\r\n");
        clock.command("starttls\r\n");
        clock.header("Subject: P1\r\n");
        clock.header(&format!("x-amzn-trace-id: {}\r\n", trace.header()));
        clock.header("X-Amzn-Trace-Id: Root=1-00000000-000000000000000000000000\r\n");
        clock.command(".\r\n");
        let timing = clock.finish();
        let verbs: Vec<&str> = timing.commands.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(verbs, ["EHLO", "STARTTLS", "."]);
        assert!(timing.commands.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!(timing.total_us >= timing.commands[2].1);
        // The first trace header counts.
        assert_eq!(timing.trace, Some(trace));
    }

    #[rstest]
    #[case::ehlo("EHLO callee\r\n", Some(SmtpEvent::Ehlo), None)]
    #[case::helo("helo callee\r\n", Some(SmtpEvent::Ehlo), None)]
    #[case::mail("MAIL FROM:<alerts@example.com>\r\n", Some(SmtpEvent::Mail), None)]
    #[case::rcpt(
        "RCPT TO:<noc@example.com>\r\n",
        Some(SmtpEvent::Rcpt),
        Some("noc@example.com")
    )]
    #[case::data("DATA\r\n", Some(SmtpEvent::Data), None)]
    #[case::starttls("STARTTLS\r\n", Some(SmtpEvent::Starttls), None)]
    #[case::auth("AUTH PLAIN AGFsZXJ0cwBzM2NyZXQ=\r\n", Some(SmtpEvent::Auth), None)]
    #[case::quit("QUIT\r\n", None, None)]
    fn commands_are_events(
        #[case] line: &str,
        #[case] event: Option<SmtpEvent>,
        #[case] rcpt: Option<&str>,
    ) {
        assert_eq!(event_of(line), (event, rcpt.map(str::to_owned)));
    }

    #[test]
    fn this_process_is_found_behind_its_own_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = listener.local_addr().expect("addr");
        let client = TcpStream::connect(server).expect("connect");
        let (_accepted, peer) = listener.accept().expect("accept");
        let book = SharedFaultBook(std::sync::Arc::new(fault_plan::FaultBook::new("t".into())));
        let trace = TraceId::new();

        assert_eq!(session_owner(peer, server, &book), None, "no process bound");
        book.bind_process(std::process::id(), trace.clone());
        assert_eq!(session_owner(peer, server, &book), Some(trace));
        drop(client);
    }

    /// A client's view of the relay, through lettre as the callee uses it.
    mod client {
        use std::time::Duration;

        use fault_plan::{FaultBook, FaultPlan, FunctionNames, ScopedPlan, SmtpFault};
        use lettre::{
            AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
            transport::smtp::{
                Error as SmtpError,
                authentication::{Credentials, Mechanism},
                client::{Certificate, Tls, TlsParameters},
            },
        };
        use rstest::rstest;

        use super::*;
        use crate::smtp::{CaptureConfig, MailCapture, SmtpSecurity};

        struct Relay {
            capture: MailCapture,
            ca_pem: String,
            credentials: SmtpCredentials,
            book: SharedFaultBook,
        }

        /// A capture server behind a relay demanding STARTTLS (a certificate for
        /// 127.0.0.1 from a fresh local CA) and AUTH.
        fn relay() -> Relay {
            let ca = local_ca::LocalCa::generate().expect("CA");
            let credentials = SmtpCredentials::generate();
            let book = SharedFaultBook(Arc::new(FaultBook::new("token".into())));
            let capture = MailCapture::start(CaptureConfig {
                bind: "127.0.0.1:0".parse().expect("address"),
                spool_dir: None,
                faults: Some(book.clone()),
                security: Some(SmtpSecurity {
                    tls: ca.server_config(&["127.0.0.1"]).expect("certificate"),
                    credentials: credentials.clone(),
                }),
            })
            .expect("capture");
            Relay {
                capture,
                ca_pem: ca.certificate_pem(),
                credentials,
                book,
            }
        }

        impl Relay {
            /// Applies `faults` to every session of this process.
            fn fault_this_process(&self, faults: Vec<SmtpFault>) {
                let trace = TraceId::new();
                self.book.register(ScopedPlan {
                    trace: trace.clone(),
                    functions: FunctionNames::default(),
                    plan: FaultPlan {
                        smtp: faults,
                        ..FaultPlan::default()
                    },
                });
                self.book.bind_process(std::process::id(), trace);
            }

            /// TLS parameters that trust this relay's CA, as the callee's `SSL_CERT_FILE` does.
            fn trusting(&self) -> TlsParameters {
                TlsParameters::builder("127.0.0.1".into())
                    .add_root_certificate(
                        Certificate::from_pem(self.ca_pem.as_bytes()).expect("PEM"),
                    )
                    .build_rustls()
                    .expect("TLS parameters")
            }

            async fn send(
                &self,
                tls: Tls,
                credentials: Option<(&str, &str)>,
                mechanism: Mechanism,
            ) -> Result<(), SmtpError> {
                let addr = self.capture.addr();
                let mut builder =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
                        .port(addr.port())
                        .timeout(Some(Duration::from_secs(5)))
                        .tls(tls)
                        .authentication(vec![mechanism]);
                if let Some((user, password)) = credentials {
                    builder = builder.credentials(Credentials::new(user.into(), password.into()));
                }
                let email = Message::builder()
                    .from("alerts@example.com".parse().expect("from"))
                    .to("oncall@example.com".parse().expect("to"))
                    .subject("over TLS")
                    .body(String::from("body\n"))
                    .expect("message");
                builder.build().send(email).await.map(|_| ())
            }

            fn own_credentials(&self) -> Option<(&str, &str)> {
                Some((&self.credentials.username, &self.credentials.password))
            }
        }

        fn code(err: &SmtpError) -> Option<String> {
            err.status().map(|code| code.to_string())
        }

        #[rstest]
        #[case::auth_plain(Mechanism::Plain)]
        #[case::auth_login(Mechanism::Login)]
        #[tokio::test]
        async fn a_client_trusting_the_ca_delivers_over_starttls_with_the_runs_credentials(
            #[case] mechanism: Mechanism,
        ) {
            let relay = relay();

            relay
                .send(
                    Tls::Required(relay.trusting()),
                    relay.own_credentials(),
                    mechanism,
                )
                .await
                .expect("delivered");

            let got = relay.capture.messages();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].subject, "over TLS");
        }

        #[rstest]
        #[case::auth_plain(Mechanism::Plain)]
        #[case::auth_login(Mechanism::Login)]
        #[tokio::test]
        async fn a_wrong_password_is_refused_with_535_and_nothing_is_stored(
            #[case] mechanism: Mechanism,
        ) {
            let relay = relay();
            let user = relay.credentials.username.clone();

            let err = relay
                .send(
                    Tls::Required(relay.trusting()),
                    Some((&user, "wrong")),
                    mechanism,
                )
                .await
                .expect_err("refused");

            assert!(err.is_permanent(), "{err}");
            assert_eq!(code(&err).as_deref(), Some("535"), "{err}");
            assert!(relay.capture.messages().is_empty());
        }

        #[tokio::test]
        async fn mail_without_auth_is_refused_with_530() {
            let relay = relay();

            let err = relay
                .send(Tls::Required(relay.trusting()), None, Mechanism::Plain)
                .await
                .expect_err("refused");

            assert_eq!(code(&err).as_deref(), Some("530"), "{err}");
            assert!(relay.capture.messages().is_empty());
        }

        #[tokio::test]
        async fn a_client_that_does_not_trust_the_ca_fails_the_handshake() {
            let relay = relay();
            let system_roots = TlsParameters::builder("127.0.0.1".into())
                .build_rustls()
                .expect("TLS parameters");

            let err = relay
                .send(
                    Tls::Required(system_roots),
                    relay.own_credentials(),
                    Mechanism::Plain,
                )
                .await
                .expect_err("untrusted certificate");

            // lettre reports a rustls handshake failure as a connection error.
            assert!(err.to_string().contains("UnknownIssuer"), "{err}");
            assert!(relay.capture.messages().is_empty());
        }

        #[tokio::test]
        async fn the_callees_mailer_fails_permanently_on_an_untrusted_certificate() {
            let relay = relay();
            let mut config = mailer::SmtpConfig::new("127.0.0.1");
            config.port = relay.capture.addr().port();
            config.tls = mailer::TlsMode::Required;
            config.credentials = Some(mailer::SmtpCredentials::new(
                relay.credentials.username.clone(),
                relay.credentials.password.clone(),
            ));
            config.retry.backoff = Duration::from_millis(10);
            // No SSL_CERT_FILE here: the system's roots, which lack the run's CA.
            let mailer = mailer::Mailer::new(config, "alerts@example.com").expect("mailer");
            let email = mailer::OutgoingEmail {
                to: vec!["oncall@example.com".into()],
                cc: Vec::new(),
                subject: "untrusted".into(),
                text: "body".into(),
                html: "<p>body</p>".into(),
                message_id: mailer::MessageId::derive(["INC1", "", "", ""]),
                headers: Vec::new(),
            };

            let err = mailer
                .send(&email, std::time::Instant::now() + Duration::from_secs(10))
                .await
                .expect_err("untrusted certificate");

            assert!(!err.is_transient(), "{err}");
            // Permanent: the send loop does not retry it.
            assert!(
                matches!(&err, mailer::MailerError::Permanent { reason, .. } if reason.contains("UnknownIssuer")),
                "{err}"
            );
            assert!(relay.capture.messages().is_empty());
        }

        #[tokio::test]
        async fn auth_is_not_offered_in_clear_before_starttls() {
            let relay = relay();

            let err = relay
                .send(Tls::None, relay.own_credentials(), Mechanism::Plain)
                .await
                .expect_err("no AUTH before TLS");

            assert!(err.is_client(), "{err}");
            assert!(
                err.to_string().contains("authentication mechanism"),
                "{err}"
            );
            assert!(relay.capture.messages().is_empty());
        }

        #[tokio::test]
        async fn a_withheld_starttls_leaves_a_required_client_without_tls() {
            let relay = relay();
            relay.fault_this_process(vec![SmtpFault {
                on: SmtpEvent::Ehlo,
                to: None,
                action: SmtpAction::Withhold {
                    extension: SmtpExtension::Starttls,
                },
                times: None,
            }]);

            let err = relay
                .send(
                    Tls::Required(relay.trusting()),
                    relay.own_credentials(),
                    Mechanism::Plain,
                )
                .await
                .expect_err("no STARTTLS offered");

            assert!(err.is_client(), "{err}");
            assert!(relay.capture.messages().is_empty());
            // The same plaintext relay takes AUTH in clear from a client that allows it.
            relay
                .send(Tls::None, relay.own_credentials(), Mechanism::Plain)
                .await
                .expect("delivered in clear");
            assert_eq!(relay.capture.messages().len(), 1);
        }

        #[tokio::test]
        async fn a_withheld_auth_takes_mail_without_credentials_and_refuses_a_client_with_them() {
            let relay = relay();
            relay.fault_this_process(vec![SmtpFault {
                on: SmtpEvent::Ehlo,
                to: None,
                action: SmtpAction::Withhold {
                    extension: SmtpExtension::Auth,
                },
                times: None,
            }]);

            let err = relay
                .send(
                    Tls::Required(relay.trusting()),
                    relay.own_credentials(),
                    Mechanism::Plain,
                )
                .await
                .expect_err("no AUTH offered");
            assert!(err.is_client(), "{err}");
            assert!(relay.capture.messages().is_empty());

            relay
                .send(Tls::Required(relay.trusting()), None, Mechanism::Plain)
                .await
                .expect("an open relay takes it");
            assert_eq!(relay.capture.messages().len(), 1);
        }

        #[tokio::test]
        async fn an_auth_fault_refuses_the_right_credentials() {
            let relay = relay();
            relay.fault_this_process(vec![SmtpFault {
                on: SmtpEvent::Auth,
                to: None,
                action: SmtpAction::Reply {
                    code: 535,
                    text: "5.7.8 Authentication credentials invalid".into(),
                },
                times: Some(1),
            }]);

            let err = relay
                .send(
                    Tls::Required(relay.trusting()),
                    relay.own_credentials(),
                    Mechanism::Plain,
                )
                .await
                .expect_err("the fault refuses");
            assert_eq!(code(&err).as_deref(), Some("535"), "{err}");
            assert!(relay.capture.messages().is_empty());

            relay
                .send(
                    Tls::Required(relay.trusting()),
                    relay.own_credentials(),
                    Mechanism::Plain,
                )
                .await
                .expect("once only: the next session authenticates");
            assert_eq!(relay.capture.messages().len(), 1);
        }
    }
}
