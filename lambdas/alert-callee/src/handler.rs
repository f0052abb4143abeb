//! The invocation handler: validate, render, send.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alert_payload::{AlertPayload, Allowlists, Renderer};
use lambda_runtime::{Context, LambdaEvent};
use mailer::{HEADER_TRACE_ID, Mailer, MessageId, OutgoingEmail};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tracing::{info, instrument, warn};

use crate::{CalleeError, Config, MAX_FUNCTION_TIMEOUT};

/// What a successful invocation returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalleeResponse {
    /// The Message-ID the email was sent with, angle brackets included.
    pub message_id: String,
    /// Recipients the SMTP server accepted.
    pub accepted: Vec<String>,
    /// Recipients the SMTP server refused permanently (the others still got the email).
    pub rejected: Vec<String>,
}

/// The callee, built once per process and shared by every invocation.
#[derive(Debug)]
pub struct AlertCallee {
    // A broken configuration is kept, not fatal at start-up, so every invocation can
    // answer ConfigError and callers see why instead of an init failure.
    ready: Result<Ready, CalleeError>,
}

#[derive(Debug)]
struct Ready {
    allowlists: Allowlists,
    renderer: Renderer,
    mailer: Mailer,
    function_timeout: Duration,
}

impl AlertCallee {
    /// Prepares templates and the SMTP client from `config`; any failure is kept for
    /// [`AlertCallee::handle`] to report.
    pub fn new(config: Result<Config, CalleeError>) -> Self {
        let ready = config.and_then(|config| {
            Ok(Ready {
                renderer: Renderer::new()?,
                mailer: Mailer::new(config.smtp, &config.mail_from)?,
                allowlists: config.allowlists,
                function_timeout: config.function_timeout,
            })
        });
        Self { ready }
    }

    /// The configuration problem every invocation will report, if any.
    pub fn startup_error(&self) -> Option<&CalleeError> {
        self.ready.as_ref().err()
    }

    /// Handles one invocation: the raw payload is validated before anything is rendered or
    /// sent, and the send ends before the invocation deadline.
    ///
    /// The event is the request body exactly as sent (a [`RawValue`] keeps its bytes), so the
    /// strict JSON rules see duplicate keys and escapes that a parsed value would have lost.
    #[instrument(skip_all, fields(request_id = %event.context.request_id))]
    pub async fn handle(
        &self,
        event: LambdaEvent<Box<RawValue>>,
    ) -> Result<CalleeResponse, CalleeError> {
        let ready = self.ready.as_ref().map_err(Clone::clone)?;
        let (raw, context) = event.into_parts();

        let email = compose(
            raw.get().as_bytes(),
            &ready.allowlists,
            &ready.renderer,
            trace_id(&context),
        )?;
        let incident = email
            .headers
            .iter()
            .find(|(name, _)| name == alert_payload::HEADER_NUMBER)
            .map(|(_, number)| number.clone())
            .unwrap_or_default();

        let deadline = deadline(&context, ready.function_timeout);
        let delivery = ready.mailer.send(&email, deadline).await?;
        info!(
            incident = %incident,
            recipients = delivery.accepted.len(),
            rejected = delivery.rejected.len(),
            message_id = %delivery.message_id,
            "notification sent"
        );
        Ok(CalleeResponse {
            message_id: delivery.message_id.to_string(),
            accepted: delivery.accepted,
            rejected: delivery.rejected.into_iter().map(|r| r.address).collect(),
        })
    }
}

/// Validates a raw request body and turns it into the email the callee sends:
/// rendered subject, text and HTML, the Message-ID, the ServiceNow headers and,
/// when given, the trace id header. Nothing is sent; `harness render` shows
/// exactly this without any AWS.
///
/// The Message-ID identifies the message: it is derived from everything the
/// rendered message is made of ([`Renderer::message_identity`]: the templates,
/// every alert field, the recipients), and from nothing else. The same alert
/// sent again (a retried invocation) keeps its id, so a reader's client can
/// tell the copy; any difference a reader could see gives a new id, even when
/// number, sys_id, state and updated_at are equal. The trace id is left out:
/// a retry carries another one.
pub fn compose(
    raw: &[u8],
    allowlists: &Allowlists,
    renderer: &Renderer,
    trace_id: Option<&str>,
) -> Result<OutgoingEmail, CalleeError> {
    let payload = AlertPayload::from_slice(raw, allowlists).inspect_err(|e| {
        warn!(field = e.field().unwrap_or_default(), error = %e, "payload rejected");
    })?;
    let rendered = renderer.render(&payload)?;

    let message_id = MessageId::derive(
        Renderer::message_identity(&payload)
            .iter()
            .map(String::as_str),
    );
    let mut headers: Vec<(String, String)> = payload
        .servicenow_headers()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    if let Some(trace_id) = trace_id {
        headers.push((HEADER_TRACE_ID.to_owned(), trace_id.to_owned()));
    }
    Ok(OutgoingEmail {
        to: payload.recipients.to.clone(),
        cc: payload.recipients.cc.clone(),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        message_id,
        headers,
    })
}

/// The invocation deadline as an `Instant`, read by the rule of [`time_left`]: a plausible
/// deadline already past gives "now" (the send fails fast), an implausible one gives the
/// function timeout from now, with a one-line warning.
fn deadline(context: &Context, function_timeout: Duration) -> Instant {
    let now = Instant::now();
    match time_left(context.deadline, SystemTime::now()) {
        TimeLeft::Until(left) => now + left,
        TimeLeft::Implausible => {
            warn!(
                deadline_ms = context.deadline,
                budget = ?function_timeout,
                "Lambda-Runtime-Deadline-Ms is not a plausible deadline in Unix epoch milliseconds \
                 (cargo lambda watch sends 600000); using the function timeout as the budget"
            );
            now + function_timeout
        }
    }
}

/// Slack for the clocks of whoever set the deadline and of this process to differ.
const CLOCK_TOLERANCE: Duration = Duration::from_secs(60);

/// What the handler makes of `Lambda-Runtime-Deadline-Ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeLeft {
    /// A deadline Lambda could have sent: the time until it, zero once it has passed.
    Until(Duration),
    /// Not a deadline for an invocation running now.
    Implausible,
}

/// Reads `deadline_ms` (`Lambda-Runtime-Deadline-Ms`, as `lambda_runtime` hands it over:
/// the header parsed as a `u64`, `Context::default()` giving 0) at `now`.
///
/// AWS documents the header as the date the function times out, in Unix time
/// milliseconds; Lambda sets it to the invocation's start plus the function timeout,
/// which is at most [`MAX_FUNCTION_TIMEOUT`], and stops the function at that date. So a
/// genuine deadline lies within the longest timeout (plus [`CLOCK_TOLERANCE`]) of `now`:
///
/// - within that window and ahead: the time until it;
/// - within that window and already past: zero, so the send fails fast without
///   connecting. This is AWS's near deadline, kept as is;
/// - outside the window, either side: implausible, and the caller falls back to the
///   function timeout. This catches 0 (no deadline), a relative duration such as
///   cargo-lambda 1.9.2's emulator sends (a constant `600000`, read as 1970-01-01
///   00:10 UTC), a timestamp in seconds or microseconds, and values like
///   `9999999999999`.
fn time_left(deadline_ms: u64, now: SystemTime) -> TimeLeft {
    let now_ms = now.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    });
    let distance = Duration::from_millis(deadline_ms.abs_diff(now_ms));
    if distance > MAX_FUNCTION_TIMEOUT + CLOCK_TOLERANCE {
        TimeLeft::Implausible
    } else if deadline_ms > now_ms {
        TimeLeft::Until(distance)
    } else {
        TimeLeft::Until(Duration::ZERO)
    }
}

/// The X-Ray trace id, if it is safe to put in a header.
///
/// It comes from the runtime, not the payload, so a bad one is dropped (and logged)
/// rather than failing the alert.
fn trace_id(context: &Context) -> Option<&str> {
    let id = context
        .xray_trace_id
        .as_deref()
        .filter(|id| !id.is_empty())?;
    if id.len() <= 256 && id.bytes().all(|b| b.is_ascii_graphic()) {
        Some(id)
    } else {
        warn!(trace_id = ?id, "trace id is not a safe header value; sending without it");
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use alert_payload::RecipientAllowlist;
    use mail_parser::MessageParser;
    use mailer::{
        RetryPolicy, SmtpConfig, TlsMode,
        testing::{SilentServer, SinkScript, SmtpSink},
    };
    use serde_json::{Value, json};

    use super::*;

    const TRACE: &str =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    fn config(port: u16) -> Config {
        let mut smtp = SmtpConfig::new("127.0.0.1");
        smtp.port = port;
        smtp.tls = TlsMode::None;
        smtp.retry = RetryPolicy {
            max_attempts: 3,
            backoff: Duration::from_millis(20),
            safety_margin: Duration::from_millis(200),
            min_attempt: Duration::from_millis(50),
        };
        Config {
            mail_from: "ServiceNow Alerts <alerts@example.com>".into(),
            allowlists: Allowlists::new(
                RecipientAllowlist::from_csv("example.com").expect("valid allowlist"),
            ),
            smtp,
            function_timeout: Duration::from_secs(10),
        }
    }

    fn callee(port: u16) -> AlertCallee {
        AlertCallee::new(Ok(config(port)))
    }

    fn callee_with_timeout(port: u16, function_timeout: Duration) -> AlertCallee {
        AlertCallee::new(Ok(Config {
            function_timeout,
            ..config(port)
        }))
    }

    fn payload() -> Value {
        json!({
            "alert": {
                "number": "INC0012345",
                "sys_id": "9d385017c611228701d22104cc95c371",
                "short_description": "Database cluster unreachable",
                "description": "Primary and replica stopped answering health checks.",
                "priority": 1,
                "state": "New",
                "updated_at": "2026-11-22T08:05:00Z",
                "instance_url": "https://example.service-now.com"
            },
            "recipients": { "to": ["oncall@example.com"], "cc": ["dba@example.com"] }
        })
    }

    /// An event with the body `body`, read as the runtime reads it.
    fn raw_event(body: &str) -> LambdaEvent<Box<RawValue>> {
        let mut context = Context::default();
        context.request_id = "8f507cfc-example".into();
        context.deadline = (SystemTime::now() + Duration::from_secs(10))
            .duration_since(UNIX_EPOCH)
            .expect("after the epoch")
            .as_millis() as u64;
        let raw: Box<RawValue> =
            serde_json::from_slice(body.as_bytes()).expect("the runtime accepts the body");
        LambdaEvent::new(raw, context)
    }

    fn event(
        payload: Value,
        time_left: Duration,
        trace: Option<&str>,
    ) -> LambdaEvent<Box<RawValue>> {
        let mut context = Context::default();
        context.request_id = "8f507cfc-example".into();
        context.deadline = (SystemTime::now() + time_left)
            .duration_since(UNIX_EPOCH)
            .expect("after the epoch")
            .as_millis() as u64;
        context.xray_trace_id = trace.map(str::to_owned);
        let raw = RawValue::from_string(payload.to_string()).expect("json");
        LambdaEvent::new(raw, context)
    }

    /// An event whose `Lambda-Runtime-Deadline-Ms` was `deadline_ms`.
    fn event_with_deadline_ms(deadline_ms: u64) -> LambdaEvent<Box<RawValue>> {
        let mut context = Context::default();
        context.request_id = "8f507cfc-example".into();
        context.deadline = deadline_ms;
        let raw = RawValue::from_string(payload().to_string()).expect("json");
        LambdaEvent::new(raw, context)
    }

    fn ten_seconds(payload: Value) -> LambdaEvent<Box<RawValue>> {
        event(payload, Duration::from_secs(10), Some(TRACE))
    }

    #[tokio::test]
    async fn valid_alert_is_sent_and_reported() {
        let sink = SmtpSink::start().expect("sink");

        let response = callee(sink.port())
            .handle(ten_seconds(payload()))
            .await
            .expect("sent");

        // The documented identity, spelled out: templates, template name, every field in
        // order (absent ones empty), then the recipients.
        let templates = "../../lambda-support/alert-payload/templates/incident";
        let template = |part: &str| {
            std::fs::read_to_string(format!("{templates}/{part}.hbs")).expect("template file")
        };
        let (subject, text, html) = (template("subject"), template("text"), template("html"));
        let expected_id = MessageId::derive([
            subject.as_str(),
            text.as_str(),
            html.as_str(),
            "incident",
            "INC0012345",
            "9d385017c611228701d22104cc95c371",
            "Database cluster unreachable",
            "Primary and replica stopped answering health checks.",
            "1",
            "New",
            "",
            "",
            "",
            "",
            "2026-11-22T08:05:00Z",
            "https://example.service-now.com",
            "to",
            "oncall@example.com",
            "cc",
            "dba@example.com",
        ]);
        assert_eq!(
            response,
            CalleeResponse {
                message_id: expected_id.to_string(),
                accepted: vec!["oncall@example.com".into(), "dba@example.com".into()],
                rejected: vec![],
            }
        );
        let messages = sink.messages();
        assert_eq!(messages.len(), 1);
        let parsed = MessageParser::new()
            .parse(&messages[0].data)
            .expect("parsable");
        assert_eq!(
            parsed.subject(),
            Some("[P1] INC0012345: Database cluster unreachable")
        );
        let header = |name: &'static str| parsed.header(name).and_then(|v| v.as_text());
        assert_eq!(header("X-ServiceNow-Number"), Some("INC0012345"));
        assert_eq!(header("X-ServiceNow-Priority"), Some("1"));
        assert_eq!(header("X-Amzn-Trace-Id"), Some(TRACE));
        let text = parsed.body_text(0).expect("text part");
        assert!(text.contains("nav_to.do?uri=incident.do?sys_id=9d385017c611228701d22104cc95c371"));
    }

    #[tokio::test]
    async fn response_serialises_to_the_documented_shape() {
        let sink = SmtpSink::start().expect("sink");
        let response = callee(sink.port())
            .handle(ten_seconds(payload()))
            .await
            .expect("sent");
        let json = serde_json::to_value(&response).expect("serialisable");
        let keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["accepted", "message_id", "rejected"]);
    }

    #[tokio::test]
    async fn same_alert_twice_keeps_the_message_id() {
        let sink = SmtpSink::start().expect("sink");
        let callee = callee(sink.port());
        let first = callee.handle(ten_seconds(payload())).await.expect("sent");
        let second = callee.handle(ten_seconds(payload())).await.expect("sent");
        assert_eq!(first.message_id, second.message_id);

        let mut updated = payload();
        updated["alert"]["state"] = json!("In Progress");
        let third = callee.handle(ten_seconds(updated)).await.expect("sent");
        assert_ne!(third.message_id, first.message_id);
    }

    /// Same number, sys_id, state and updated_at, yet another message: another Message-ID.
    #[rstest::rstest]
    #[case::short_description(|p: &mut Value| p["alert"]["short_description"] = json!("Replica lagging"))]
    #[case::description(|p: &mut Value| p["alert"]["description"] = json!("Another text."))]
    #[case::priority(|p: &mut Value| p["alert"]["priority"] = json!(2))]
    #[case::instance_url(|p: &mut Value| p["alert"]["instance_url"] = json!("https://other.service-now.com"))]
    #[case::to(|p: &mut Value| p["recipients"]["to"] = json!(["dba-lead@example.com"]))]
    #[case::cc_moved_to_to(|p: &mut Value| p["recipients"] = json!({"to": ["oncall@example.com", "dba@example.com"]}))]
    #[case::template(|p: &mut Value| p["template"] = json!("resolved"))]
    #[tokio::test]
    async fn different_content_with_the_same_record_keys_gets_another_message_id(
        #[case] change: fn(&mut Value),
    ) {
        let sink = SmtpSink::start().expect("sink");
        let callee = callee(sink.port());
        let mut other = payload();
        change(&mut other);
        for key in ["number", "sys_id", "state", "updated_at"] {
            assert_eq!(other["alert"][key], payload()["alert"][key], "{key}");
        }

        let first = callee.handle(ten_seconds(payload())).await.expect("sent");
        let second = callee.handle(ten_seconds(other)).await.expect("sent");

        assert_ne!(first.message_id, second.message_id);
        let ids: Vec<String> = sink
            .messages()
            .iter()
            .map(|m| {
                let parsed = MessageParser::new().parse(&m.data).expect("parsable");
                parsed.message_id().unwrap_or_default().to_owned()
            })
            .collect();
        assert_ne!(ids[0], ids[1], "the Message-ID headers differ too");
    }

    /// Bodies that strict JSON refuses: the callee reads the raw body, so it sees them.
    #[rstest::rstest]
    #[case::duplicate_key(
        r#"{"alert": {"number": "INC0012345", "sys_id": "9d385017c611228701d22104cc95c371", "short_description": "Disk full", "priority": 1, "state": "New", "number": "INC0099999"}, "recipients": {"to": ["oncall@example.com"]}}"#,
        "invalid alert.number: appears twice"
    )]
    #[case::lone_surrogate(
        r#"{"alert": {"number": "INC0012345", "sys_id": "9d385017c611228701d22104cc95c371", "short_description": "Disk \ud800 full", "priority": 1, "state": "New"}, "recipients": {"to": ["oncall@example.com"]}}"#,
        "invalid alert.short_description: contains the escape \\ud800 at position 5"
    )]
    #[case::nesting_beyond_serde_json_s_limit(
        &format!(r#"{{"alert": {{"number": "INC0012345"}}, "x": {}{}}}"#, "[".repeat(200), "]".repeat(200)),
        "invalid x[0]"
    )]
    #[case::phishing_instance_url(
        r#"{"alert": {"number": "INC0012345", "sys_id": "9d385017c611228701d22104cc95c371", "short_description": "Disk full", "priority": 1, "state": "New", "instance_url": "https://service-now.example.test"}, "recipients": {"to": ["oncall@example.com"]}}"#,
        "invalid alert.instance_url: host \"service-now.example.test\" is not an allowed"
    )]
    #[tokio::test]
    async fn hostile_body_is_a_validation_error_before_any_smtp(
        #[case] body: &str,
        #[case] message: &str,
    ) {
        let sink = SmtpSink::start().expect("sink");

        let err = callee(sink.port())
            .handle(raw_event(body))
            .await
            .expect_err("refused");

        assert_eq!(err.error_type(), "ValidationError");
        assert!(err.to_string().starts_with(message), "{err}");
        assert_eq!(sink.connections(), 0);
    }

    #[tokio::test]
    async fn invalid_payload_opens_no_smtp_connection() {
        let sink = SmtpSink::start().expect("sink");
        let mut bad = payload();
        bad["alert"]["short_description"] = json!("");

        let err = callee(sink.port())
            .handle(ten_seconds(bad))
            .await
            .expect_err("invalid");

        assert_eq!(err.error_type(), "ValidationError");
        assert!(err.to_string().contains("alert.short_description"), "{err}");
        assert_eq!(
            sink.connections(),
            0,
            "validation must fail before connecting"
        );
    }

    #[tokio::test]
    async fn header_injection_in_payload_opens_no_smtp_connection() {
        let sink = SmtpSink::start().expect("sink");
        let mut bad = payload();
        bad["alert"]["short_description"] = json!("down\r\nBcc: attacker@evil.test");

        let err = callee(sink.port())
            .handle(ten_seconds(bad))
            .await
            .expect_err("injection");

        assert_eq!(err.error_type(), "ValidationError");
        assert_eq!(sink.connections(), 0);
    }

    #[tokio::test]
    async fn recipient_outside_allowlist_opens_no_smtp_connection() {
        let sink = SmtpSink::start().expect("sink");
        let mut bad = payload();
        bad["recipients"]["cc"] = json!(["someone@evil.test"]);

        let err = callee(sink.port())
            .handle(ten_seconds(bad))
            .await
            .expect_err("not allowed");

        assert_eq!(err.error_type(), "ValidationError");
        assert!(err.to_string().contains("recipients.cc[0]"), "{err}");
        assert_eq!(sink.connections(), 0);
    }

    #[tokio::test]
    async fn broken_config_answers_config_error_for_every_invocation() {
        let sink = SmtpSink::start().expect("sink");
        let config = Config::from_lookup(|name| match name {
            "SMTP_HOST" => Some("127.0.0.1".to_owned()),
            _ => None,
        });
        let callee = AlertCallee::new(config);
        assert!(callee.startup_error().is_some());

        for _ in 0..2 {
            let err = callee
                .handle(ten_seconds(payload()))
                .await
                .expect_err("no MAIL_FROM");
            assert_eq!(err.error_type(), "ConfigError");
            assert!(err.to_string().contains("MAIL_FROM"), "{err}");
        }
        assert_eq!(sink.connections(), 0);
    }

    #[tokio::test]
    async fn unparsable_mail_from_is_a_config_error() {
        let mut config = config(1);
        config.mail_from = "not a mailbox".into();
        let err = AlertCallee::new(Ok(config))
            .handle(ten_seconds(payload()))
            .await
            .expect_err("bad MAIL_FROM");
        assert_eq!(err.error_type(), "ConfigError");
        assert!(err.to_string().contains("MAIL_FROM"), "{err}");
    }

    #[tokio::test]
    async fn persistent_4xx_is_smtp_transient() {
        let script = SinkScript {
            data_end: VecDeque::from(vec![(451, "busy".to_owned()); 5]),
            ..SinkScript::default()
        };
        let sink = SmtpSink::with_script(script).expect("sink");

        let err = callee(sink.port())
            .handle(ten_seconds(payload()))
            .await
            .expect_err("never accepted");

        assert_eq!(err.error_type(), "SmtpTransient");
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn rejection_5xx_is_smtp_permanent() {
        let script = SinkScript {
            data_end: VecDeque::from([(554, "rejected as spam".to_owned())]),
            ..SinkScript::default()
        };
        let sink = SmtpSink::with_script(script).expect("sink");

        let err = callee(sink.port())
            .handle(ten_seconds(payload()))
            .await
            .expect_err("refused");

        assert_eq!(err.error_type(), "SmtpPermanent");
        assert_eq!(sink.connections(), 1, "permanent failures are not retried");
    }

    #[tokio::test]
    async fn refused_recipient_is_listed_as_rejected() {
        let mut script = SinkScript::default();
        script
            .rcpt_by_address
            .insert("dba@example.com".into(), (550, "no such user".into()));
        let sink = SmtpSink::with_script(script).expect("sink");

        let response = callee(sink.port())
            .handle(ten_seconds(payload()))
            .await
            .expect("partially sent");

        assert_eq!(response.accepted, ["oncall@example.com"]);
        assert_eq!(response.rejected, ["dba@example.com"]);
    }

    #[tokio::test]
    async fn stalled_smtp_server_yields_smtp_transient_before_the_deadline() {
        let server = SilentServer::start().expect("silent server");
        let started = Instant::now();
        let time_left = Duration::from_millis(1200);

        let err = callee(server.port())
            .handle(event(payload(), time_left, None))
            .await
            .expect_err("server never greets");

        assert_eq!(err.error_type(), "SmtpTransient");
        assert!(
            started.elapsed() < time_left,
            "took {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn deadline_already_past_fails_fast_without_connecting() {
        let sink = SmtpSink::start().expect("sink");

        let err = callee(sink.port())
            .handle(event(payload(), Duration::ZERO, None))
            .await
            .expect_err("no time left");

        assert_eq!(err.error_type(), "SmtpTransient");
        assert_eq!(sink.connections(), 0);
    }

    /// 2026-12-01T02:40:51.583Z, the clock when cargo lambda watch was seen sending 600000.
    const NOW_MS: u64 = 1_796_092_851_583;

    #[rstest::rstest]
    #[case::ten_seconds_ahead(NOW_MS + 10_000, TimeLeft::Until(Duration::from_secs(10)))]
    #[case::longest_timeout_ahead(NOW_MS + 900_000, TimeLeft::Until(Duration::from_secs(900)))]
    #[case::edge_of_clock_tolerance_ahead(NOW_MS + 960_000, TimeLeft::Until(Duration::from_secs(960)))]
    #[case::just_now(NOW_MS, TimeLeft::Until(Duration::ZERO))]
    #[case::passed_a_moment_ago(NOW_MS - 1_500, TimeLeft::Until(Duration::ZERO))]
    #[case::edge_of_clock_tolerance_behind(NOW_MS - 960_000, TimeLeft::Until(Duration::ZERO))]
    #[case::beyond_the_longest_timeout_ahead(NOW_MS + 960_001, TimeLeft::Implausible)]
    #[case::beyond_the_longest_timeout_behind(NOW_MS - 960_001, TimeLeft::Implausible)]
    #[case::cargo_lambda_watch_s_constant(600_000, TimeLeft::Implausible)]
    #[case::zero_as_in_a_default_context(0, TimeLeft::Implausible)]
    #[case::unix_seconds(NOW_MS / 1_000 + 10, TimeLeft::Implausible)]
    #[case::unix_microseconds((NOW_MS + 10_000) * 1_000, TimeLeft::Implausible)]
    #[case::far_future_as_in_lambda_runtime_s_tests(9_999_999_999_999, TimeLeft::Implausible)]
    #[case::largest_value(u64::MAX, TimeLeft::Implausible)]
    fn deadline_header_is_read_by_the_plausibility_rule(
        #[case] deadline_ms: u64,
        #[case] expected: TimeLeft,
    ) {
        let now = UNIX_EPOCH + Duration::from_millis(NOW_MS);
        assert_eq!(time_left(deadline_ms, now), expected);
    }

    #[tokio::test]
    async fn cargo_lambda_watch_deadline_falls_back_to_the_function_timeout_and_sends() {
        let sink = SmtpSink::start().expect("sink");

        let response = callee(sink.port())
            .handle(event_with_deadline_ms(600_000))
            .await
            .expect("sent within the function timeout");

        assert_eq!(response.accepted.len(), 2);
        assert_eq!(sink.messages().len(), 1);
    }

    #[tokio::test]
    async fn fallback_budget_is_the_function_timeout() {
        let server = SilentServer::start().expect("silent server");
        let function_timeout = Duration::from_millis(1200);
        let started = Instant::now();

        let err = callee_with_timeout(server.port(), function_timeout)
            .handle(event_with_deadline_ms(0))
            .await
            .expect_err("server never greets");

        let elapsed = started.elapsed();
        assert_eq!(err.error_type(), "SmtpTransient");
        assert!(err.to_string().contains("after 1 attempt(s)"), "{err}");
        // One attempt ran until the budget less the 200 ms safety margin, and no longer.
        assert!(elapsed >= Duration::from_millis(900), "took {elapsed:?}");
        assert!(elapsed < function_timeout, "took {elapsed:?}");
    }

    #[tokio::test]
    async fn deadline_passed_a_moment_ago_fails_fast_without_connecting() {
        let sink = SmtpSink::start().expect("sink");
        let a_moment_ago = SystemTime::now() - Duration::from_secs(2);
        let deadline_ms = a_moment_ago
            .duration_since(UNIX_EPOCH)
            .expect("after the epoch")
            .as_millis() as u64;

        let err = callee(sink.port())
            .handle(event_with_deadline_ms(deadline_ms))
            .await
            .expect_err("no time left");

        assert_eq!(err.error_type(), "SmtpTransient");
        assert!(err.to_string().contains("after 0 attempt(s)"), "{err}");
        assert_eq!(sink.connections(), 0);
    }

    #[tokio::test]
    async fn unsafe_trace_id_is_left_out_and_mail_still_goes() {
        let sink = SmtpSink::start().expect("sink");

        callee(sink.port())
            .handle(event(
                payload(),
                Duration::from_secs(10),
                Some("Root=1-abc\r\nBcc: attacker@evil.test"),
            ))
            .await
            .expect("sent");

        let messages = sink.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].to.len(), 2, "no smuggled recipient");
        let parsed = MessageParser::new()
            .parse(&messages[0].data)
            .expect("parsable");
        assert!(parsed.header("X-Amzn-Trace-Id").is_none());
        assert!(parsed.header("Bcc").is_none());
    }

    #[tokio::test]
    async fn no_trace_id_means_no_trace_header() {
        let sink = SmtpSink::start().expect("sink");
        callee(sink.port())
            .handle(event(payload(), Duration::from_secs(10), None))
            .await
            .expect("sent");
        let messages = sink.messages();
        let parsed = MessageParser::new()
            .parse(&messages[0].data)
            .expect("parsable");
        assert!(parsed.header("X-Amzn-Trace-Id").is_none());
    }
}
