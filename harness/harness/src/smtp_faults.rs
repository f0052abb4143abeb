//! SMTP faults: a relay in front of the capture server that finds out whose
//! session a connection is and, for a call with SMTP faults, answers,
//! stalls or hangs up where the call's plan says.
//!
//! # Whose session
//! An SMTP session carries no trace id until its message does. The runtime
//! shim reports to the fault book which `bootstrap` process serves an
//! invocation of a call with SMTP faults ([`FaultBook::bind_process`]); the
//! relay looks the connecting socket up in the kernel's table
//! (`/proc/net/tcp`: the client port gives the socket's inode) and finds which
//! of those processes holds it (`/proc/<pid>/fd`). A session of any other
//! process, or any session while no call has SMTP faults, is relayed
//! untouched. Linux only, as the host backend is.
//!
//! # What each fault does
//! - `reply`: the client gets the reply instead of the server's; the command
//!   never reaches the server (at `message`, the server never sees the final
//!   dot, so nothing is stored).
//! - `stall_ms`: the relay waits, then carries on.
//! - `disconnect`: the relay closes the connection without a reply; at
//!   `message`, after the server stored the message, so the client cannot
//!   know it was delivered.

use std::{
    io::{self, BufRead, BufReader, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    thread,
    time::Duration,
};

use fault_plan::{SharedFaultBook, SmtpAction, SmtpEvent};
use xray_trace::TraceId;

/// Serves `listener`, relaying every connection to the capture server at `inner`.
pub(crate) fn serve(listener: TcpListener, inner: SocketAddr, book: SharedFaultBook) {
    let server = match listener.local_addr() {
        Ok(addr) => addr,
        Err(err) => {
            tracing::error!(error = %err, "SMTP fault relay has no address");
            return;
        }
    };
    for stream in listener.incoming() {
        let client = match stream {
            Ok(client) => client,
            Err(err) => {
                tracing::warn!(error = %err, "SMTP fault relay cannot accept");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let book = book.clone();
        let spawned = thread::Builder::new()
            .name("smtp-relay".into())
            .spawn(move || {
                let _ = client.set_nodelay(true);
                let trace = match client.peer_addr() {
                    Ok(peer) if book.has_smtp_faults() => session_owner(peer, server, &book),
                    _ => None,
                };
                let relayed = match trace {
                    Some(trace) => Session::new(client, inner, book, trace).and_then(Session::run),
                    None => pipe(client, inner),
                };
                if let Err(err) = relayed {
                    tracing::debug!(error = %err, "SMTP relay session ended with an error");
                }
            });
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "SMTP fault relay cannot start a session thread");
        }
    }
}

/// Copies bytes both ways until either side closes.
fn pipe(client: TcpStream, inner: SocketAddr) -> io::Result<()> {
    let server = TcpStream::connect(inner)?;
    server.set_nodelay(true)?;
    let (mut client_read, mut server_write) = (client.try_clone()?, server.try_clone()?);
    let upstream = thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut server_write);
        let _ = server_write.shutdown(Shutdown::Write);
    });
    let (mut server_read, mut client_write) = (server, client);
    let _ = io::copy(&mut server_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Write);
    let _ = upstream.join();
    Ok(())
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

/// One faulted session, relayed line by line.
struct Session {
    client: BufReader<TcpStream>,
    inner: SocketAddr,
    server: Option<BufReader<TcpStream>>,
    book: SharedFaultBook,
    trace: TraceId,
    /// The last EHLO/HELO line, replayed on a fresh server connection.
    hello: Option<String>,
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

impl Session {
    fn new(
        client: TcpStream,
        inner: SocketAddr,
        book: SharedFaultBook,
        trace: TraceId,
    ) -> io::Result<Self> {
        Ok(Self {
            client: BufReader::new(client),
            inner,
            server: None,
            book,
            trace,
            hello: None,
        })
    }

    fn fault(&self, event: SmtpEvent, rcpt: Option<&str>) -> Option<SmtpAction> {
        let action = self.book.smtp(&self.trace, event, rcpt)?;
        tracing::info!(trace = %self.trace, %event, ?action, "smtp fault injected");
        Some(action)
    }

    fn reply_to_client(&mut self, text: &str) -> io::Result<()> {
        let client = self.client.get_mut();
        client.write_all(text.as_bytes())?;
        client.flush()
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

    fn run(mut self) -> io::Result<()> {
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
            None => {}
        }
        let greeting = self.connect()?;
        self.reply_to_client(&greeting)?;
        while let Some(line) = read_line(&mut self.client)? {
            let (event, rcpt) = event_of(&line);
            if let Some(event) = event {
                match self.fault(event, rcpt.as_deref()) {
                    Some(SmtpAction::Disconnect) => return Ok(()),
                    Some(SmtpAction::Stall { ms }) => thread::sleep(Duration::from_millis(ms)),
                    Some(SmtpAction::Reply { code, text }) => {
                        self.reply_to_client(&format!("{code} {text}\r\n"))?;
                        continue;
                    }
                    None => {}
                }
            }
            if event == Some(SmtpEvent::Ehlo) {
                self.hello = Some(line.clone());
            }
            let reply = self.exchange(&line)?;
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

    /// Relays a message up to its final dot, where the `message` faults
    /// apply; false when the session must end (a disconnect).
    fn message(&mut self) -> io::Result<bool> {
        loop {
            let line = read_line(&mut self.client)?
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "client hung up"))?;
            if line != ".\r\n" && line != ".\n" {
                let server = self.server.as_mut().expect("a server in DATA");
                server.get_mut().write_all(line.as_bytes())?;
                continue;
            }
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
                None => {}
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
}
