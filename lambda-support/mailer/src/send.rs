//! Delivery over SMTP: one session per attempt, bounded by the caller's deadline.

use std::time::{Duration, Instant};

use lettre::{
    Address,
    message::Mailbox,
    transport::smtp::{
        Error as SmtpError,
        authentication::DEFAULT_MECHANISMS,
        client::{AsyncSmtpConnection, TlsParameters},
        commands::{Data, Mail, Rcpt},
        extension::{ClientId, Extension, MailBodyParameter, MailParameter},
    },
};
use tokio::time::{Instant as TokioInstant, sleep, timeout_at};
use tracing::{info, instrument, warn};

use crate::{MailerError, MessageId, OutgoingEmail, SmtpConfig, TlsMode};

/// What the server accepted, per recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The Message-ID the email was sent with.
    pub message_id: MessageId,
    /// Recipients the server accepted (RCPT TO answered 2xx); the message went to these.
    pub accepted: Vec<String>,
    /// Recipients the server refused permanently (RCPT TO answered 5xx).
    pub rejected: Vec<RejectedRecipient>,
    /// Attempts it took, the successful one included.
    pub attempts: u32,
}

/// A recipient the server refused, with its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRecipient {
    /// The address as given.
    pub address: String,
    /// The SMTP reply code, e.g. 550.
    pub code: Option<u16>,
    /// The server's reply text.
    pub reason: String,
}

/// Sends emails over SMTP; build once per process and share.
#[derive(Clone)]
pub struct Mailer {
    config: SmtpConfig,
    from: Mailbox,
    tls: Option<TlsParameters>,
    hello: ClientId,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SmtpConfig's Debug already redacts the password.
        f.debug_struct("Mailer")
            .field("config", &self.config)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed, before it becomes a [`MailerError`].
#[derive(Debug)]
enum Failure {
    Transient { code: Option<u16>, reason: String },
    Permanent { code: Option<u16>, reason: String },
    Timeout,
}

impl Mailer {
    /// Validates `mail_from` (e.g. `Alerts <alerts@example.com>`) and prepares TLS.
    pub fn new(config: SmtpConfig, mail_from: &str) -> Result<Self, MailerError> {
        let from = crate::message::parse_mail_from(mail_from)?;
        if config.host.trim().is_empty() {
            return Err(MailerError::Config {
                name: "SMTP_HOST",
                reason: "must not be empty".to_owned(),
            });
        }
        let tls = match config.tls {
            TlsMode::None => None,
            TlsMode::StartTls | TlsMode::Required => Some(
                TlsParameters::new(config.host.clone()).map_err(|e| MailerError::Config {
                    name: "SMTP_HOST",
                    reason: format!("cannot prepare tls for {:?}: {e}", config.host),
                })?,
            ),
        };
        Ok(Self {
            config,
            from,
            tls,
            hello: ClientId::default(),
        })
    }

    /// The settings this mailer uses.
    pub fn config(&self) -> &SmtpConfig {
        &self.config
    }

    /// Sends `email`, retrying transient failures, and returns before `deadline`.
    ///
    /// Every attempt, backoff included, ends by `deadline` minus the policy's safety
    /// margin. Only transient failures (4xx replies, refused or reset connections,
    /// timeouts) are retried, at most `max_attempts` times in all; 5xx replies and TLS
    /// failures end the send at once. Recipients refused with 5xx at RCPT TO are
    /// reported in [`Delivery::rejected`] while the rest still get the message; if all
    /// are refused the send fails permanently. A timeout after the final `.` cannot tell
    /// whether the server kept the message, so a retry may deliver it twice; the
    /// deterministic Message-ID lets mail clients drop the duplicate.
    #[instrument(skip_all, fields(server = %self.config.server(), message_id = %email.message_id))]
    pub async fn send(
        &self,
        email: &OutgoingEmail,
        deadline: Instant,
    ) -> Result<Delivery, MailerError> {
        // Everything that can be wrong with the email itself fails here, before connecting.
        let message = email.to_message(&self.from)?;
        let recipients = email.recipients()?;
        let body = message.formatted();

        let policy = self.config.retry;
        let end = deadline
            .checked_sub(policy.safety_margin)
            .unwrap_or_else(Instant::now);
        let mut attempts = 0;
        let mut backoff = policy.backoff;
        loop {
            if end.saturating_duration_since(Instant::now()) < policy.min_attempt {
                return Err(self.timeout(attempts));
            }
            attempts += 1;
            let failure = match self.attempt(&recipients, &body, end).await {
                Ok((accepted, rejected)) => {
                    info!(
                        accepted = accepted.len(),
                        rejected = rejected.len(),
                        attempts,
                        "smtp server accepted the message"
                    );
                    return Ok(Delivery {
                        message_id: email.message_id.clone(),
                        accepted,
                        rejected,
                        attempts,
                    });
                }
                Err(failure) => failure,
            };
            let retry_possible = attempts < policy.max_attempts
                && end.saturating_duration_since(Instant::now()) >= backoff + policy.min_attempt;
            match failure {
                Failure::Permanent { code, reason } => {
                    return Err(MailerError::Permanent {
                        server: self.config.server(),
                        code,
                        reason,
                    });
                }
                Failure::Timeout if !retry_possible => return Err(self.timeout(attempts)),
                Failure::Transient { code, reason } if !retry_possible => {
                    return Err(MailerError::Transient {
                        server: self.config.server(),
                        attempts,
                        code,
                        reason,
                    });
                }
                Failure::Timeout => {
                    warn!(
                        attempt = attempts,
                        backoff_ms = backoff.as_millis() as u64,
                        "smtp attempt timed out, retrying"
                    );
                }
                Failure::Transient { code, reason } => {
                    warn!(
                        attempt = attempts,
                        code,
                        reason = %reason,
                        backoff_ms = backoff.as_millis() as u64,
                        "transient smtp failure, retrying"
                    );
                }
            }
            sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }

    fn timeout(&self, attempts: u32) -> MailerError {
        MailerError::Timeout {
            server: self.config.server(),
            attempts,
        }
    }

    /// One SMTP session. Returns accepted addresses and permanently refused ones.
    async fn attempt(
        &self,
        recipients: &[Address],
        body: &[u8],
        end: Instant,
    ) -> Result<(Vec<String>, Vec<RejectedRecipient>), Failure> {
        let end = TokioInstant::from_std(end);
        let stream = timeout_at(
            end,
            tokio::net::TcpStream::connect((self.config.host.as_str(), self.config.port)),
        )
        .await
        .map_err(|_| Failure::Timeout)?
        .map_err(|e| Failure::Transient {
            code: None,
            reason: format!("cannot connect to {}: {e}", self.config.server()),
        })?;
        // lettre writes the body and the closing "." in separate writes; with Nagle's
        // algorithm the second waits for the server's delayed ACK, 40 ms per message.
        stream.set_nodelay(true).map_err(|e| Failure::Transient {
            code: None,
            reason: format!("cannot configure the connection: {e}"),
        })?;
        let mut connection = timeout_at(
            end,
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello),
        )
        .await
        .map_err(|_| Failure::Timeout)?
        .map_err(classify)?;
        if let Some(tls) = &self.tls
            && connection.can_starttls()
        {
            match timeout_at(end, connection.starttls(tls.clone(), &self.hello)).await {
                Err(_) => return Err(Failure::Timeout),
                // A failed handshake leaves lettre's connection without a stream
                // (writing QUIT to it trips an assertion in lettre): dropped unspoken.
                Ok(Err(error)) => return Err(classify(error)),
                Ok(Ok(())) => {}
            }
        }

        match timeout_at(end, self.transaction(&mut connection, recipients, body)).await {
            Ok(Ok(outcome)) => {
                // The message is accepted once the final `.` is acknowledged; a slow or
                // failed QUIT must not turn that into a failure (and a duplicate on retry).
                let _ = timeout_at(close_by(end), connection.quit()).await;
                Ok(outcome)
            }
            Ok(Err(failure)) => {
                // A polite QUIT, but never at the cost of the retry budget.
                let _ = timeout_at(close_by(end), connection.abort()).await;
                Err(failure)
            }
            Err(_) => Err(Failure::Timeout),
        }
    }

    async fn transaction(
        &self,
        connection: &mut AsyncSmtpConnection,
        recipients: &[Address],
        body: &[u8],
    ) -> Result<(Vec<String>, Vec<RejectedRecipient>), Failure> {
        if self.config.tls == TlsMode::Required && !connection.is_encrypted() {
            return Err(Failure::Permanent {
                code: None,
                reason: "server does not offer STARTTLS and SMTP_TLS is required".to_owned(),
            });
        }
        if let Some(credentials) = &self.config.credentials {
            connection
                .auth(DEFAULT_MECHANISMS, &credentials.to_lettre())
                .await
                .map_err(classify)?;
        }

        let mut parameters = Vec::new();
        if !body.is_ascii() {
            if !connection
                .server_info()
                .supports_feature(Extension::EightBitMime)
            {
                return Err(Failure::Permanent {
                    code: None,
                    reason: "message is not ascii and the server lacks 8BITMIME".to_owned(),
                });
            }
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        connection
            .command(Mail::new(Some(self.from.email.clone()), parameters))
            .await
            .map_err(classify)?;

        let mut accepted = Vec::new();
        let mut rejected = Vec::new();
        for recipient in recipients {
            match connection
                .command(Rcpt::new(recipient.clone(), Vec::new()))
                .await
            {
                Ok(_) => accepted.push(recipient.to_string()),
                Err(error) if error.is_permanent() => {
                    warn!(recipient = %recipient, code = ?status_code(&error), "smtp server refused recipient");
                    rejected.push(RejectedRecipient {
                        address: recipient.to_string(),
                        code: status_code(&error),
                        reason: error.to_string(),
                    });
                }
                // A 4xx for one recipient: retry the whole transaction rather than
                // deliver to some now and resend to all later.
                Err(error) => return Err(classify(error)),
            }
        }
        if accepted.is_empty() {
            let last = rejected.last();
            return Err(Failure::Permanent {
                code: last.and_then(|r| r.code),
                reason: format!(
                    "every recipient was refused: {}",
                    last.map_or("", |r| r.reason.as_str())
                ),
            });
        }

        connection.command(Data).await.map_err(classify)?;
        connection.message(body).await.map_err(classify)?;
        Ok((accepted, rejected))
    }
}

/// How long closing a session may take: QUIT is a courtesy, not worth the retry budget.
const CLOSE_GRACE: Duration = Duration::from_millis(200);

fn close_by(end: TokioInstant) -> TokioInstant {
    end.min(TokioInstant::now() + CLOSE_GRACE)
}

fn status_code(error: &SmtpError) -> Option<u16> {
    error
        .status()
        .and_then(|code| code.to_string().parse().ok())
}

/// Whether rustls refused the TLS session (an untrusted or mismatched
/// certificate, a protocol failure): lettre reports a handshake that rustls
/// ends as a connection error, which would otherwise look transient, but the
/// same certificate is refused on every retry.
fn tls_refused(error: &SmtpError) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let rustls_error = cause.downcast_ref::<rustls::Error>().is_some()
            || cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
        if rustls_error {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Sorts a lettre error into transient (may pass) or permanent (will not).
fn classify(error: SmtpError) -> Failure {
    let code = status_code(&error);
    let reason = error.to_string();
    if error.is_permanent() || error.is_tls() || error.is_client() || tls_refused(&error) {
        // 5xx replies, failed TLS handshakes and client-side refusals (no common AUTH
        // mechanism, no STARTTLS) repeat identically on retry.
        Failure::Permanent { code, reason }
    } else if error.is_timeout() {
        Failure::Timeout
    } else {
        // 4xx replies, refused or reset connections, garbled replies.
        Failure::Transient { code, reason }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use mail_parser::MessageParser;

    use super::*;
    use crate::{
        RetryPolicy, SmtpCredentials,
        testing::{ReceivedMessage, SilentServer, SinkScript, SmtpSink, closed_port},
    };

    /// Fast retries so failing paths finish in well under a second.
    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            backoff: Duration::from_millis(20),
            safety_margin: Duration::from_millis(200),
            min_attempt: Duration::from_millis(50),
        }
    }

    fn mailer(port: u16) -> Mailer {
        let mut config = SmtpConfig::new("127.0.0.1");
        config.port = port;
        config.tls = TlsMode::None;
        config.retry = policy();
        Mailer::new(config, "ServiceNow Alerts <alerts@example.com>").expect("valid mailer")
    }

    fn email() -> OutgoingEmail {
        OutgoingEmail {
            to: vec!["oncall@example.com".into(), "dba@example.com".into()],
            cc: vec!["lead@example.org".into()],
            subject: "[P1] INC0012345: Datenbank nicht erreichbar – 🔥".into(),
            text: "Primary and replica stopped answering.\nSee the runbook.".into(),
            html: "<p>Primary and replica stopped answering.</p>".into(),
            message_id: MessageId::derive([
                "INC0012345",
                "9d385017c611228701d22104cc95c371",
                "New",
                "",
            ]),
            headers: vec![
                ("X-ServiceNow-Number".into(), "INC0012345".into()),
                ("X-ServiceNow-Priority".into(), "1".into()),
                (
                    crate::HEADER_TRACE_ID.into(),
                    "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".into(),
                ),
            ],
        }
    }

    fn in_ten_seconds() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    fn only_message(sink: &SmtpSink) -> ReceivedMessage {
        let messages = sink.messages();
        assert_eq!(
            messages.len(),
            1,
            "exactly one delivered message: {messages:?}"
        );
        messages.into_iter().next().expect("one message")
    }

    fn script() -> SinkScript {
        SinkScript::default()
    }

    fn reply(code: u16, text: &str) -> (u16, String) {
        (code, text.to_owned())
    }

    #[tokio::test]
    async fn accepted_message_arrives_once_with_expected_headers() {
        let sink = SmtpSink::start().expect("sink");
        let email = email();

        let delivery = mailer(sink.port())
            .send(&email, in_ten_seconds())
            .await
            .expect("delivered");

        assert_eq!(
            delivery.accepted,
            ["oncall@example.com", "dba@example.com", "lead@example.org"]
        );
        assert!(delivery.rejected.is_empty());
        assert_eq!(delivery.attempts, 1);
        assert_eq!(delivery.message_id, email.message_id);
        let received = only_message(&sink);
        assert_eq!(received.from, "alerts@example.com");
        assert_eq!(
            received.to,
            ["oncall@example.com", "dba@example.com", "lead@example.org"]
        );

        let parsed = MessageParser::new()
            .parse(&received.data)
            .expect("parsable message");
        assert_eq!(
            parsed.subject(),
            Some("[P1] INC0012345: Datenbank nicht erreichbar – 🔥")
        );
        assert_eq!(
            parsed.message_id().map(|id| format!("<{id}>")),
            Some(email.message_id.as_str().to_owned())
        );
        let from = parsed.from().and_then(|f| f.first()).expect("From");
        assert_eq!(from.address(), Some("alerts@example.com"));
        assert_eq!(from.name(), Some("ServiceNow Alerts"));
        let to = parsed.to().expect("To");
        assert!(to.contains("oncall@example.com") && to.contains("dba@example.com"));
        assert!(parsed.cc().expect("Cc").contains("lead@example.org"));
        let header = |name: &'static str| {
            parsed
                .header(name)
                .and_then(|v| v.as_text().map(str::to_owned))
        };
        assert_eq!(header("X-ServiceNow-Number").as_deref(), Some("INC0012345"));
        assert_eq!(header("X-ServiceNow-Priority").as_deref(), Some("1"));
        assert_eq!(
            header("X-Amzn-Trace-Id").as_deref(),
            Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
        );
        let content_type = parsed.header_raw("Content-Type").expect("Content-Type");
        assert!(
            content_type.contains("multipart/alternative"),
            "{content_type}"
        );
        assert_eq!(
            parsed.body_text(0).as_deref(),
            Some("Primary and replica stopped answering.\r\nSee the runbook.")
        );
        assert_eq!(
            parsed.body_html(0).as_deref(),
            Some("<p>Primary and replica stopped answering.</p>")
        );
    }

    #[tokio::test]
    async fn transient_data_reply_is_retried_and_mail_arrives_once() {
        let mut script = script();
        script.data_end = VecDeque::from([reply(451, "try again later")]);
        let sink = SmtpSink::with_script(script).expect("sink");

        let delivery = mailer(sink.port())
            .send(&email(), in_ten_seconds())
            .await
            .expect("second attempt succeeds");

        assert_eq!(delivery.attempts, 2);
        assert_eq!(sink.connections(), 2);
        let codes: Vec<u16> = sink.transactions().iter().map(|t| t.reply).collect();
        assert_eq!(codes, [451, 250]);
        only_message(&sink);
    }

    #[tokio::test]
    async fn transient_rcpt_reply_retries_the_whole_transaction() {
        let mut script = script();
        script.rcpt = VecDeque::from([reply(450, "mailbox busy")]);
        let sink = SmtpSink::with_script(script).expect("sink");

        let delivery = mailer(sink.port())
            .send(&email(), in_ten_seconds())
            .await
            .expect("second attempt succeeds");

        assert_eq!(delivery.attempts, 2);
        assert_eq!(delivery.accepted.len(), 3);
        // No DATA on the first attempt: nobody got a partial delivery.
        assert_eq!(sink.transactions().len(), 1);
        only_message(&sink);
    }

    #[tokio::test]
    async fn permanent_data_reply_is_not_retried() {
        let mut script = script();
        script.data_end = VecDeque::from([reply(550, "message refused")]);
        let sink = SmtpSink::with_script(script).expect("sink");

        let err = mailer(sink.port())
            .send(&email(), in_ten_seconds())
            .await
            .expect_err("550 is permanent");

        assert!(
            matches!(
                &err,
                MailerError::Permanent {
                    code: Some(550),
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.is_transient());
        assert_eq!(sink.connections(), 1, "exactly one attempt");
        assert_eq!(sink.transactions().len(), 1);
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn every_recipient_refused_is_permanent() {
        let mut script = script();
        for address in ["oncall@example.com", "dba@example.com", "lead@example.org"] {
            script
                .rcpt_by_address
                .insert(address.into(), reply(550, "no such user"));
        }
        let sink = SmtpSink::with_script(script).expect("sink");

        let err = mailer(sink.port())
            .send(&email(), in_ten_seconds())
            .await
            .expect_err("nobody to deliver to");

        assert!(
            matches!(
                &err,
                MailerError::Permanent {
                    code: Some(550),
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(sink.connections(), 1);
        assert!(sink.transactions().is_empty(), "no DATA without recipients");
    }

    #[tokio::test]
    async fn refused_recipient_is_reported_and_others_still_get_the_mail() {
        let mut script = script();
        script
            .rcpt_by_address
            .insert("dba@example.com".into(), reply(550, "no such user"));
        let sink = SmtpSink::with_script(script).expect("sink");

        let delivery = mailer(sink.port())
            .send(&email(), in_ten_seconds())
            .await
            .expect("partially delivered");

        assert_eq!(
            delivery.accepted,
            ["oncall@example.com", "lead@example.org"]
        );
        assert_eq!(delivery.rejected.len(), 1);
        assert_eq!(delivery.rejected[0].address, "dba@example.com");
        assert_eq!(delivery.rejected[0].code, Some(550));
        assert_eq!(
            only_message(&sink).to,
            ["oncall@example.com", "lead@example.org"]
        );
    }

    #[tokio::test]
    async fn persistent_transient_failure_stops_after_max_attempts() {
        let mut script = script();
        script.data_end = VecDeque::from(vec![reply(451, "still busy"); 5]);
        let sink = SmtpSink::with_script(script).expect("sink");

        let err = mailer(sink.port())
            .send(&email(), in_ten_seconds())
            .await
            .expect_err("never accepted");

        assert!(
            matches!(
                &err,
                MailerError::Transient {
                    attempts: 3,
                    code: Some(451),
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.is_transient());
        assert_eq!(sink.connections(), 3);
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn refused_connection_is_transient_and_retried() {
        let port = closed_port().expect("free port");

        let err = mailer(port)
            .send(&email(), in_ten_seconds())
            .await
            .expect_err("nothing listens");

        assert!(
            matches!(
                &err,
                MailerError::Transient {
                    attempts: 3,
                    code: None,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn stalled_server_times_out_before_the_deadline() {
        let server = SilentServer::start().expect("silent server");
        let started = Instant::now();
        let deadline = started + Duration::from_millis(1500);

        let err = mailer(server.port())
            .send(&email(), deadline)
            .await
            .expect_err("server never greets");

        let finished = Instant::now();
        assert!(
            matches!(&err, MailerError::Timeout { attempts: 1, .. }),
            "{err}"
        );
        assert!(err.is_transient());
        assert!(
            finished < deadline,
            "returned {:?} after the deadline",
            finished - deadline
        );
        // It used the time it had rather than giving up at once.
        assert!(
            finished - started >= Duration::from_millis(1000),
            "{:?}",
            finished - started
        );
        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    async fn no_attempt_when_the_deadline_leaves_no_time() {
        let sink = SmtpSink::start().expect("sink");

        let err = mailer(sink.port())
            .send(&email(), Instant::now() + Duration::from_millis(100))
            .await
            .expect_err("100 ms is inside the safety margin");

        assert!(
            matches!(&err, MailerError::Timeout { attempts: 0, .. }),
            "{err}"
        );
        assert_eq!(sink.connections(), 0);
    }

    #[tokio::test]
    async fn bare_dot_line_in_text_cannot_end_the_message_early() {
        let sink = SmtpSink::start().expect("sink");
        let mut email = email();
        email.text = "before\n.\nafter the dot\r.\rRCPT TO:<x@evil.test>\n".into();
        email.html = "<p>a</p>\n.\n<p>after the dot in html</p>".into();

        mailer(sink.port())
            .send(&email, in_ten_seconds())
            .await
            .expect("delivered");

        assert_eq!(sink.transactions().len(), 1, "one DATA transaction");
        let received = only_message(&sink);
        assert_eq!(received.to.len(), 3, "no smuggled recipient");
        let parsed = MessageParser::new()
            .parse(&received.data)
            .expect("parsable message");
        assert_eq!(
            parsed.body_text(0).as_deref(),
            Some("before\r\n.\r\nafter the dot\r\n.\r\nRCPT TO:<x@evil.test>\r\n")
        );
        assert_eq!(
            parsed.body_html(0).as_deref(),
            Some("<p>a</p>\r\n.\r\n<p>after the dot in html</p>")
        );
    }

    #[tokio::test]
    async fn credentials_are_used_for_smtp_auth() {
        let mut script = script();
        script.credentials = Some(("alerts".into(), "s3cret".into()));
        let sink = SmtpSink::with_script(script).expect("sink");
        let mut mailer = mailer(sink.port());
        mailer.config.credentials = Some(SmtpCredentials::new("alerts", "s3cret"));

        mailer
            .send(&email(), in_ten_seconds())
            .await
            .expect("delivered");

        assert_eq!(
            sink.auth_attempts(),
            [("alerts".to_owned(), "s3cret".to_owned())]
        );
        only_message(&sink);
    }

    #[tokio::test]
    async fn wrong_credentials_are_permanent() {
        let mut script = script();
        script.credentials = Some(("alerts".into(), "s3cret".into()));
        let sink = SmtpSink::with_script(script).expect("sink");
        let mut mailer = mailer(sink.port());
        mailer.config.credentials = Some(SmtpCredentials::new("alerts", "wrong"));

        let err = mailer
            .send(&email(), in_ten_seconds())
            .await
            .expect_err("535");

        assert!(
            matches!(
                &err,
                MailerError::Permanent {
                    code: Some(535),
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("wrong"), "password leaked: {err}");
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn required_tls_fails_permanently_without_starttls() {
        let sink = SmtpSink::start().expect("sink");
        let mut config = mailer(sink.port()).config.clone();
        config.tls = TlsMode::Required;
        let mailer = Mailer::new(config, "alerts@example.com").expect("valid mailer");

        let err = mailer
            .send(&email(), in_ten_seconds())
            .await
            .expect_err("no STARTTLS");

        assert!(matches!(&err, MailerError::Permanent { .. }), "{err}");
        assert!(err.to_string().contains("STARTTLS"), "{err}");
        assert_eq!(sink.connections(), 1);
        assert!(sink.transactions().is_empty(), "nothing sent in plain text");
    }

    #[tokio::test]
    async fn opportunistic_starttls_continues_without_it() {
        let sink = SmtpSink::start().expect("sink");
        let mut config = mailer(sink.port()).config.clone();
        config.tls = TlsMode::StartTls;
        let mailer = Mailer::new(config, "alerts@example.com").expect("valid mailer");

        mailer
            .send(&email(), in_ten_seconds())
            .await
            .expect("plain text is allowed");

        only_message(&sink);
    }

    #[tokio::test]
    async fn injected_trace_id_is_refused_before_connecting() {
        let sink = SmtpSink::start().expect("sink");
        let mut email = email();
        email.headers[2].1 = "Root=1-abc\r\nBcc: x@evil.test".into();

        let err = mailer(sink.port())
            .send(&email, in_ten_seconds())
            .await
            .expect_err("header injection");

        assert!(
            matches!(&err, MailerError::InvalidEmail { field, .. } if field == "header X-Amzn-Trace-Id"),
            "{err}"
        );
        assert_eq!(sink.connections(), 0);
    }

    #[test]
    fn invalid_mail_from_is_a_config_error() {
        let err = Mailer::new(SmtpConfig::new("127.0.0.1"), "not a mailbox").expect_err("invalid");
        assert!(
            matches!(
                err,
                MailerError::Config {
                    name: "MAIL_FROM",
                    ..
                }
            ),
            "{err}"
        );
    }
}
