//! What actually happened when a scenario ran; the harness fills it in.

use std::{collections::BTreeMap, fmt, time::Duration};

use serde::{Deserialize, Serialize};

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
    /// The log output of each lambda, keyed by lambda name.
    pub logs: BTreeMap<String, String>,
    /// IAM decisions recorded while the scenario ran.
    pub iam: Vec<IamDecision>,
    /// Wall-clock time of the run, serialised as milliseconds.
    #[serde(rename = "duration_ms", with = "duration_ms")]
    pub duration: Duration,
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
            OutcomeStatus::Error => "error",
        }
    }
}

impl fmt::Display for OutcomeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One email as received by the SMTP sink, already parsed by the harness.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedEmail {
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
