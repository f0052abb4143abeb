//! Errors of the callee, each with the stable `errorType` callers can branch on.

use alert_payload::NotificationError;
use lambda_runtime::Diagnostic;
use mailer::MailerError;

/// Why an invocation failed; [`CalleeError::error_type`] is its Lambda `errorType`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalleeError {
    /// The function's environment is incomplete or invalid; every invocation fails alike.
    #[error("invalid configuration {name}: {reason}")]
    Config {
        /// The environment variable at fault, e.g. `MAIL_FROM`.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The payload broke the contract; the message names the field. Nothing was sent.
    #[error("{0}")]
    Validation(String),
    /// A template failed to render. Nothing was sent.
    #[error("{0}")]
    Template(String),
    /// SMTP failed in a way that may pass (4xx, network, timeout); retrying may succeed.
    #[error("{0}")]
    SmtpTransient(String),
    /// The SMTP server refused for good (5xx, TLS); retrying as is will fail again.
    #[error("{0}")]
    SmtpPermanent(String),
}

impl CalleeError {
    /// The Lambda `errorType`: `ConfigError`, `ValidationError`, `TemplateError`,
    /// `SmtpTransient` or `SmtpPermanent`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Config { .. } => "ConfigError",
            Self::Validation(_) => "ValidationError",
            Self::Template(_) => "TemplateError",
            Self::SmtpTransient(_) => "SmtpTransient",
            Self::SmtpPermanent(_) => "SmtpPermanent",
        }
    }
}

impl From<NotificationError> for CalleeError {
    fn from(error: NotificationError) -> Self {
        match error {
            NotificationError::Validation { .. } => Self::Validation(error.to_string()),
            NotificationError::Template { .. } => Self::Template(error.to_string()),
            NotificationError::Allowlist { .. } => Self::Config {
                name: "ALLOWED_RECIPIENT_DOMAINS",
                reason: error.to_string(),
            },
            NotificationError::InstanceAllowlist { .. } => Self::Config {
                name: "ALLOWED_INSTANCE_HOSTS",
                reason: error.to_string(),
            },
        }
    }
}

impl From<MailerError> for CalleeError {
    fn from(error: MailerError) -> Self {
        match &error {
            MailerError::Config { name, reason } => Self::Config {
                name,
                reason: reason.clone(),
            },
            // The payload was validated already, so this is a field that passed the
            // notification rules yet is unsendable: still the caller's input at fault.
            MailerError::InvalidEmail { .. } => Self::Validation(error.to_string()),
            MailerError::Transient { .. } | MailerError::Timeout { .. } => {
                Self::SmtpTransient(error.to_string())
            }
            MailerError::Permanent { .. } => Self::SmtpPermanent(error.to_string()),
        }
    }
}

impl From<CalleeError> for Diagnostic {
    fn from(error: CalleeError) -> Self {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::config(CalleeError::Config { name: "MAIL_FROM", reason: "is required".into() }, "ConfigError")]
    #[case::validation(CalleeError::Validation("invalid alert.number: is required".into()), "ValidationError")]
    #[case::template(CalleeError::Template("template incident/html failed: x".into()), "TemplateError")]
    #[case::smtp_transient(CalleeError::SmtpTransient("timed out".into()), "SmtpTransient")]
    #[case::smtp_permanent(CalleeError::SmtpPermanent("refused".into()), "SmtpPermanent")]
    fn diagnostic_carries_the_stable_error_type(
        #[case] error: CalleeError,
        #[case] error_type: &str,
    ) {
        let message = error.to_string();
        let diagnostic = Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, error_type);
        assert_eq!(diagnostic.error_message, message);
    }

    #[rstest]
    #[case::transient(MailerError::Transient { server: "s:1".into(), attempts: 3, code: Some(451), reason: "busy".into() }, "SmtpTransient")]
    #[case::timeout(MailerError::Timeout { server: "s:1".into(), attempts: 1 }, "SmtpTransient")]
    #[case::permanent(MailerError::Permanent { server: "s:1".into(), code: Some(550), reason: "no".into() }, "SmtpPermanent")]
    #[case::config(MailerError::Config { name: "MAIL_FROM", reason: "bad".into() }, "ConfigError")]
    #[case::invalid_email(MailerError::InvalidEmail { field: "to[0]".into(), reason: "bad".into() }, "ValidationError")]
    fn mailer_errors_map_to_error_types(#[case] error: MailerError, #[case] error_type: &str) {
        assert_eq!(CalleeError::from(error).error_type(), error_type);
    }

    #[test]
    fn diagnostic_serialises_with_lambda_field_names() {
        let diagnostic = Diagnostic::from(CalleeError::Validation(
            "invalid alert.priority: must be between 1 and 5, got 9".into(),
        ));
        let json = serde_json::to_value(&diagnostic).expect("serialisable");
        assert_eq!(
            json,
            serde_json::json!({
                "errorType": "ValidationError",
                "errorMessage": "invalid alert.priority: must be between 1 and 5, got 9"
            })
        );
    }
}
