//! SMTP connection settings and the retry policy.

use std::{fmt, str::FromStr, time::Duration};

use crate::MailerError;

/// Default SMTP port: 2525, the port the callee's security group opens.
pub const DEFAULT_SMTP_PORT: u16 = 2525;

/// How the SMTP session is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plain text throughout; only for local test servers.
    None,
    /// Upgrade with STARTTLS when the server offers it, otherwise continue in plain text.
    StartTls,
    /// STARTTLS is mandatory: a server that does not offer it is a permanent failure.
    #[default]
    Required,
}

impl FromStr for TlsMode {
    type Err = MailerError;

    /// Parses `none`, `starttls` or `required` (any case), as in `SMTP_TLS`.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "starttls" => Ok(Self::StartTls),
            "required" => Ok(Self::Required),
            _ => Err(MailerError::Config {
                name: "SMTP_TLS",
                reason: format!("{value:?} is not one of none, starttls, required"),
            }),
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::StartTls => "starttls",
            Self::Required => "required",
        })
    }
}

/// SMTP AUTH credentials; `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpCredentials {
    /// Login name.
    pub username: String,
    password: String,
}

impl SmtpCredentials {
    /// Pairs a username with its password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    pub(crate) fn to_lettre(&self) -> lettre::transport::smtp::authentication::Credentials {
        lettre::transport::smtp::authentication::Credentials::new(
            self.username.clone(),
            self.password.clone(),
        )
    }
}

impl fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Where and how to reach the SMTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Host name or IP address.
    pub host: String,
    /// TCP port, [`DEFAULT_SMTP_PORT`] unless configured.
    pub port: u16,
    /// Session protection.
    pub tls: TlsMode,
    /// AUTH credentials, when the server needs them.
    pub credentials: Option<SmtpCredentials>,
    /// Attempts, backoff and deadline margin.
    pub retry: RetryPolicy,
}

impl SmtpConfig {
    /// Settings for `host` with the defaults: port 2525, TLS required, no AUTH.
    pub fn new(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: DEFAULT_SMTP_PORT,
            tls: TlsMode::default(),
            credentials: None,
            retry: RetryPolicy::default(),
        }
    }

    /// `host:port`, as shown in errors and logs.
    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// How often and how long to try, all inside the caller's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most attempts per send, the first included.
    pub max_attempts: u32,
    /// Pause after the first transient failure; doubled after each further one.
    pub backoff: Duration,
    /// Time kept free before the deadline so the caller can still report the error.
    pub safety_margin: Duration,
    /// An attempt with less time than this left is not started.
    pub min_attempt: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: Duration::from_millis(200),
            // Lambda kills the process at the deadline; half a second is ample to
            // serialise and post an error response.
            safety_margin: Duration::from_millis(500),
            min_attempt: Duration::from_millis(100),
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::none("none", TlsMode::None)]
    #[case::starttls("starttls", TlsMode::StartTls)]
    #[case::required("required", TlsMode::Required)]
    #[case::case_insensitive("STARTTLS", TlsMode::StartTls)]
    #[case::surrounding_space(" none ", TlsMode::None)]
    fn tls_mode_parses(#[case] raw: &str, #[case] expected: TlsMode) {
        assert_eq!(raw.parse::<TlsMode>(), Ok(expected));
    }

    #[rstest]
    #[case::empty("")]
    #[case::ssl_is_not_a_mode("ssl")]
    #[case::boolean("true")]
    fn tls_mode_rejects_unknown_values(#[case] raw: &str) {
        let err = raw.parse::<TlsMode>().expect_err("not a mode");
        assert!(
            matches!(
                err,
                MailerError::Config {
                    name: "SMTP_TLS",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn tls_defaults_to_required() {
        assert_eq!(SmtpConfig::new("smtp.example.com").tls, TlsMode::Required);
        assert_eq!(SmtpConfig::new("smtp.example.com").port, 2525);
    }

    #[test]
    fn debug_output_redacts_the_password() {
        let mut config = SmtpConfig::new("smtp.example.com");
        config.credentials = Some(SmtpCredentials::new("alerts", "hunter2-secret"));
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(shown.contains("alerts"), "{shown}");
    }
}
