//! What actually happened when a call ran: the harness observes it, the
//! checker compares it with a scenario's expectations, reports record it.

use std::{
    collections::BTreeMap,
    fmt,
    time::{Duration, SystemTime},
};

use mail_parser::MessageParser;
use serde::{Deserialize, Serialize};
use xray_trace::TraceId;

use crate::model::Decision;

/// The observed result of one scenario run; it is serialised into `result.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// How the invocation ended.
    pub status: OutcomeStatus,
    /// The `errorType` of a failed invocation (or the harness's error kind).
    pub error_type: Option<String>,
    /// The `errorMessage` of a failed invocation (or the harness's error text).
    pub error_message: Option<String>,
    /// The JSON response of the invoked lambda; `None` when it returned no body.
    pub response: Option<serde_json::Value>,
    /// Every email the SMTP sink received for this scenario, in arrival order.
    pub emails: Vec<CapturedEmail>,
    /// Emails that arrived while the call was observed carrying no trace id of any call the
    /// harness made (no `X-Amzn-Trace-Id`, or an unknown one): nobody can say where they
    /// came from, so each one fails the scenario.
    #[serde(default)]
    pub stray_emails: Vec<CapturedEmail>,
    /// The log output of each lambda, keyed by lambda name.
    pub logs: BTreeMap<String, String>,
    /// IAM decisions recorded while the scenario ran.
    pub iam: Vec<IamDecision>,
    /// Wall-clock time of the run, serialised as milliseconds.
    #[serde(rename = "duration_ms", with = "duration_ms")]
    pub duration: Duration,
    /// The trace id the call carried; `None` when no call was made.
    #[serde(default)]
    pub trace_id: Option<TraceId>,
    /// When the call was made, in milliseconds since the Unix epoch; `None` when no call was made.
    #[serde(default)]
    pub started_at_ms: Option<u64>,
}

/// How an invocation ended, as classified by the harness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// The invocation succeeded.
    Success,
    /// A handler returned an error.
    FunctionError,
    /// AWS denied access somewhere in the chain.
    Denied,
    /// The Lambda service rejected the request before any handler ran.
    InvalidRequest,
    /// Deploying the scenario's overrides failed; no call was made.
    DeployFailed,
    /// The harness itself failed (deploy, network, timeout): no scenario expects this.
    // The default, so an outcome the harness forgot to fill in can never pass.
    #[default]
    Error,
}

impl OutcomeStatus {
    /// The status in the spelling scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Success => "success",
            OutcomeStatus::FunctionError => "function_error",
            OutcomeStatus::Denied => "denied",
            OutcomeStatus::InvalidRequest => "invalid_request",
            OutcomeStatus::DeployFailed => "deploy_failed",
            OutcomeStatus::Error => "error",
        }
    }
}

impl fmt::Display for OutcomeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One email as the harness's SMTP server received it: the envelope, the
/// parsed message, and the raw bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedEmail {
    /// Arrival order within the capture server, starting at 1.
    #[serde(default)]
    pub seq: u64,
    /// Milliseconds since the Unix epoch when the message was accepted.
    #[serde(default)]
    pub received_at_ms: u64,
    /// The SMTP envelope sender (`MAIL FROM`).
    #[serde(default)]
    pub envelope_from: String,
    /// The SMTP envelope recipients (`RCPT TO`).
    #[serde(default)]
    pub envelope_to: Vec<String>,
    /// The `From` address.
    pub from: String,
    /// The `To` addresses.
    pub to: Vec<String>,
    /// The `Cc` addresses.
    pub cc: Vec<String>,
    /// The decoded subject.
    pub subject: String,
    /// The decoded text part, if any.
    pub text: Option<String>,
    /// The decoded HTML part, if any.
    pub html: Option<String>,
    /// Every header as `(name, decoded value)`, in message order.
    pub headers: Vec<(String, String)>,
    /// The message as received, written to `NN.eml`; left out of `result.json`.
    #[serde(skip)]
    pub raw: Vec<u8>,
}

impl CapturedEmail {
    /// Parses a raw RFC 5322 message received with this envelope as the
    /// `seq`-th message. A message mail-parser cannot read keeps its envelope
    /// and raw bytes, with every parsed field empty.
    pub fn parse(raw: &[u8], envelope_from: &str, envelope_to: &[String], seq: u64) -> Self {
        let received_at_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let envelope = Self {
            seq,
            received_at_ms,
            envelope_from: envelope_from.to_owned(),
            envelope_to: envelope_to.to_vec(),
            raw: raw.to_vec(),
            ..Self::default()
        };
        // As a mail reader parses it: every unstructured header decoded, custom ones included
        // (mail-parser applies its default only once some header has its own parser).
        let parser = MessageParser::new()
            .with_minimal_headers()
            .with_message_ids()
            .default_header_text();
        let Some(message) = parser.parse(raw) else {
            return envelope;
        };
        let addresses = |list: Option<&mail_parser::Address<'_>>| -> Vec<String> {
            list.map(|l| {
                l.iter()
                    .filter_map(|m| m.address().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
        };
        let raw_message = message.raw_message();
        let headers = message
            .headers()
            .iter()
            .map(|h| {
                let value = h.value().as_text().map(str::to_owned).unwrap_or_else(|| {
                    let raw = raw_message
                        .get(h.offset_start() as usize..h.offset_end() as usize)
                        .unwrap_or_default();
                    String::from_utf8_lossy(raw).trim().to_owned()
                });
                (h.name().to_owned(), value)
            })
            .collect();
        Self {
            from: addresses(message.from())
                .into_iter()
                .next()
                .unwrap_or_default(),
            to: addresses(message.to()),
            cc: addresses(message.cc()),
            subject: message.subject().unwrap_or_default().to_owned(),
            text: message.body_text(0).map(|t| t.into_owned()),
            html: message.body_html(0).map(|t| t.into_owned()),
            headers,
            ..envelope
        }
    }

    /// The value of the first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether this email belongs to the call tagged `trace` (its `X-Amzn-Trace-Id`).
    pub fn is_of(&self, trace: &TraceId) -> bool {
        self.header(xray_trace::HEADER)
            .is_some_and(|header| trace.tags(header))
    }

    /// The values of every header named `name`, compared case-insensitively.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// An IAM decision recorded by the harness's gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamDecision {
    /// The calling principal's ARN.
    pub principal: String,
    /// The IAM action, e.g. `sts:AssumeRole`.
    pub action: String,
    /// The resource ARN.
    pub resource: String,
    /// Allowed or denied.
    pub decision: Decision,
    /// Why, e.g. which statement matched.
    pub explanation: String,
}

impl fmt::Display for IamDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} by {} on {}",
            self.decision, self.action, self.principal, self.resource
        )
    }
}

/// Serde for a [`Duration`] as (fractional) milliseconds, which people read in JSON.
mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(duration.as_secs_f64() * 1000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let millis = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(millis / 1000.0).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_round_trips_through_json_with_duration_in_milliseconds() {
        let outcome = Outcome {
            status: OutcomeStatus::FunctionError,
            error_type: Some("CalleeFailed".to_owned()),
            duration: Duration::from_millis(1500),
            ..Outcome::default()
        };

        let json = serde_json::to_value(&outcome).expect("outcome serialises");

        assert_eq!(json["duration_ms"], serde_json::json!(1500.0));
        assert_eq!(json["status"], "function_error");
        let back: Outcome = serde_json::from_value(json).expect("outcome deserialises");
        assert_eq!(back, outcome);
    }

    #[test]
    fn default_outcome_is_an_error_so_it_cannot_pass_by_accident() {
        assert_eq!(Outcome::default().status, OutcomeStatus::Error);
    }

    #[test]
    fn header_values_ignore_name_case() {
        let email = CapturedEmail {
            headers: vec![
                ("X-ServiceNow-Number".to_owned(), "INC0012345".to_owned()),
                ("Subject".to_owned(), "hi".to_owned()),
            ],
            ..CapturedEmail::default()
        };

        let values: Vec<_> = email.header_values("x-servicenow-number").collect();

        assert_eq!(values, ["INC0012345"]);
    }
}
