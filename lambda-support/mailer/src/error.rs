//! Errors of the mailer crate.

/// Why an email was not delivered; [`MailerError::is_transient`] tells whether a retry may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailerError {
    /// The SMTP settings are unusable; fix the configuration.
    #[error("invalid smtp setting {name}: {reason}")]
    Config {
        /// The setting, e.g. `MAIL_FROM` or `SMTP_TLS`.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The email itself cannot be sent as given; detected before connecting.
    #[error("invalid email {field}: {reason}")]
    InvalidEmail {
        /// The offending part, e.g. `to[0]` or `header X-Amzn-Trace-Id`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server or network failed in a way that may pass (4xx, refused, reset); retry later.
    #[error("smtp delivery to {server} failed temporarily after {attempts} attempt(s): {reason}")]
    Transient {
        /// `host:port` of the SMTP server.
        server: String,
        /// Attempts made before giving up.
        attempts: u32,
        /// The SMTP reply code, when the server sent one.
        code: Option<u16>,
        /// The last failure.
        reason: String,
    },
    /// No attempt finished before the deadline (less its safety margin); retry later.
    #[error(
        "smtp delivery to {server} timed out after {attempts} attempt(s) before the invocation deadline"
    )]
    Timeout {
        /// `host:port` of the SMTP server.
        server: String,
        /// Attempts made, including the one cut short.
        attempts: u32,
    },
    /// The server refused for good (5xx) or the session cannot work (TLS); do not retry as is.
    #[error("smtp delivery to {server} was refused permanently: {reason}")]
    Permanent {
        /// `host:port` of the SMTP server.
        server: String,
        /// The SMTP reply code, when the server sent one.
        code: Option<u16>,
        /// What the server or TLS layer said.
        reason: String,
    },
}

impl MailerError {
    /// Whether the failure may pass, so the invocation can be retried.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::Timeout { .. })
    }
}
