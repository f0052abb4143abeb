//! `harness invoke`: call the running system with a payload and show
//! everything observed: response or error, logs, IAM chain, emails.

use std::{
    collections::BTreeMap, fmt, io::Read as _, path::PathBuf, process::ExitCode, time::Duration,
};

use anyhow::{Context as _, Result};
use clap::Args;
use iam_gateway::{DecisionRecord, Mode};
use scenario::{CapturedEmail, InvocationType, Outcome, OutcomeStatus, Via};
use serde::Serialize;
use xray_trace::TraceId;

use super::{Context, output::Output};
use crate::{
    deploy::Accounts,
    observe::{self, Call, EmailWait},
    system::RunningSystem,
};

/// Options of `harness invoke`.
#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The payload file (JSON); `-` reads it from stdin.
    #[arg(long)]
    pub payload: PathBuf,
    /// Enter through the caller (the full chain) or the callee directly.
    #[arg(long, value_enum, default_value = "caller")]
    pub via: Via,
    /// How to invoke.
    #[arg(long, value_enum, default_value = "request-response")]
    pub invocation_type: InvocationType,
    /// How long to wait for emails after the call returns, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub wait_ms: u64,
}

/// How an invoke ended, in the words of `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvokeStatus {
    /// The entry lambda answered normally.
    Success,
    /// A lambda returned an error (a denial the caller reports is its function error too).
    FunctionError,
    /// The call itself failed: denied, rejected by Lambda, or not made.
    Error,
}

/// One email as `invoke` shows it.
#[derive(Debug, Serialize)]
pub struct EmailView {
    from: String,
    to: Vec<String>,
    cc: Vec<String>,
    subject: String,
    text: Option<String>,
    html: Option<String>,
    headers: Vec<(String, String)>,
}

impl From<&CapturedEmail> for EmailView {
    fn from(email: &CapturedEmail) -> Self {
        Self {
            from: email.from.clone(),
            to: email.to.clone(),
            cc: email.cc.clone(),
            subject: email.subject.clone(),
            text: email.text.clone(),
            html: email.html.clone(),
            headers: email.headers.clone(),
        }
    }
}

/// What `invoke` observed.
#[derive(Debug, Serialize)]
pub struct Invoked {
    status: InvokeStatus,
    response: Option<serde_json::Value>,
    error_type: Option<String>,
    error_message: Option<String>,
    logs: BTreeMap<String, String>,
    trace_id: Option<TraceId>,
    duration_ms: f64,
    emails: Vec<EmailView>,
    /// Every request of the call the gateway saw.
    iam: Vec<DecisionRecord>,
    #[serde(skip)]
    outcome_status: OutcomeStatus,
    #[serde(skip)]
    gateway: Option<Mode>,
    #[serde(skip)]
    accounts: Accounts,
}

impl Invoked {
    fn new(
        outcome: Outcome,
        requests: Vec<DecisionRecord>,
        gateway: Option<Mode>,
        accounts: Accounts,
    ) -> Self {
        // A denial reported by the caller lambda is still that lambda's function error.
        let function_error = outcome.status == OutcomeStatus::FunctionError
            || (outcome.status == OutcomeStatus::Denied && outcome.response.is_some());
        let status = match outcome.status {
            OutcomeStatus::Success => InvokeStatus::Success,
            _ if function_error => InvokeStatus::FunctionError,
            _ => InvokeStatus::Error,
        };
        Self {
            status,
            response: outcome.response,
            error_type: outcome.error_type,
            error_message: outcome.error_message,
            logs: outcome.logs,
            trace_id: outcome.trace_id,
            duration_ms: outcome.duration.as_secs_f64() * 1000.0,
            emails: outcome.emails.iter().map(EmailView::from).collect(),
            iam: requests,
            outcome_status: outcome.status,
            gateway,
            accounts,
        }
    }
}

impl Output for Invoked {
    fn text(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(
            out,
            "status: {:?} ({:.1} ms)",
            self.outcome_status, self.duration_ms
        )?;
        if self.status == InvokeStatus::Success {
            if let Some(response) = &self.response {
                let pretty = serde_json::to_string_pretty(response).map_err(|_| fmt::Error)?;
                writeln!(out, "response: {pretty}")?;
            }
        } else {
            writeln!(
                out,
                "error: {}: {}",
                self.error_type.as_deref().unwrap_or("?"),
                self.error_message.as_deref().unwrap_or("")
            )?;
        }
        for (function, logs) in &self.logs {
            writeln!(out, "--- logs: {function}")?;
            writeln!(out, "{}", logs.trim_end())?;
        }
        writeln!(out, "--- emails: {}", self.emails.len())?;
        for email in &self.emails {
            writeln!(out, "from:    {}", email.from)?;
            writeln!(out, "to:      {}", email.to.join(", "))?;
            if !email.cc.is_empty() {
                writeln!(out, "cc:      {}", email.cc.join(", "))?;
            }
            writeln!(out, "subject: {}", email.subject)?;
            writeln!(out)?;
            writeln!(out, "{}", email.text.as_deref().unwrap_or("").trim_end())?;
            writeln!(out)?;
        }
        let Some(mode) = self.gateway else {
            return writeln!(out, "--- iam: off (no gateway; LocalStack checked nothing)");
        };
        writeln!(out, "--- iam ({mode})")?;
        let chain = iam_gateway::format_chain(&self.iam, &self.accounts.letters());
        if chain.trim().is_empty() {
            writeln!(out, "(no evaluated request carried this call's trace id)")?;
        } else {
            writeln!(out, "{}", chain.trim_end())?;
        }
        if !self.emails.is_empty() {
            writeln!(
                out,
                "  → SMTP 250 ({} email{})",
                self.emails.len(),
                if self.emails.len() == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }

    fn exit_code(&self) -> ExitCode {
        super::output::status(self.status == InvokeStatus::Success)
    }
}

/// Reads the payload (a file, or stdin for `-`), calls the running system and observes the call.
pub async fn invoke(args: &InvokeArgs, context: &Context) -> Result<Invoked> {
    let state = RunningSystem::read(&context.work_dir)?;
    let payload = read_payload(&args.payload)?;
    let target = state.connect().await?;
    let wait = EmailWait {
        at_least: usize::from(args.wait_ms > 0),
        within: Duration::from_millis(args.wait_ms),
    };
    let call = Call::new(args.via, payload, args.invocation_type);
    let observation = observe::observe(&target, &state.deployment, &call, wait).await?;
    Ok(Invoked::new(
        observation.outcome,
        observation.requests,
        state.iam_log.is_some().then_some(state.config.iam),
        state.config.accounts(),
    ))
}

/// The payload bytes from a file, or from stdin when the path is `-`.
pub fn read_payload(path: &std::path::Path) -> Result<Vec<u8>> {
    read_input(path, "payload")
}

/// The bytes of `what` from a file, or from stdin when the path is `-`.
pub fn read_input(path: &std::path::Path, what: &str) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read the {what} from stdin"))?;
        Ok(bytes)
    } else {
        std::fs::read(path)
            .with_context(|| format!("cannot read the {what} file {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    #[test]
    fn invoke_json_has_the_documented_shape() {
        let outcome = Outcome {
            status: OutcomeStatus::FunctionError,
            response: Some(json!({"errorType": "CalleeFailed"})),
            error_type: Some("CalleeFailed".into()),
            error_message: Some("ValidationError: alert.number is required".into()),
            logs: [("servicenow-invoker".to_owned(), "START".to_owned())].into(),
            duration: Duration::from_millis(12),
            ..Outcome::default()
        };

        let value = serde_json::to_value(Invoked::new(
            outcome,
            vec![],
            Some(Mode::Enforce),
            Accounts::default(),
        ))
        .unwrap();

        assert_eq!(value["status"], "function_error");
        assert_eq!(value["error_type"], "CalleeFailed");
        assert_eq!(value["logs"]["servicenow-invoker"], "START");
        assert_eq!(value["emails"], json!([]));
        assert_eq!(value["duration_ms"], json!(12.0));
        for key in ["response", "error_message", "trace_id", "iam"] {
            assert!(value.get(key).is_some(), "missing {key}");
        }
    }

    #[test]
    fn a_denial_without_a_function_response_is_an_error() {
        let outcome = Outcome {
            status: OutcomeStatus::Denied,
            error_type: Some("AccessDeniedException".into()),
            ..Outcome::default()
        };

        let invoked = Invoked::new(outcome, vec![], None, Accounts::default());

        assert_eq!(invoked.status, InvokeStatus::Error);
        assert_eq!(invoked.exit_code(), ExitCode::from(1));
    }

    #[test]
    fn a_missing_payload_file_is_named() {
        let err = read_payload(std::path::Path::new("/nonexistent/p1.json")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/p1.json"), "{err}");
    }
}
