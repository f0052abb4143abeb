//! The callee's configuration, read from the environment once per process.

use std::time::Duration;

use alert_payload::{
    Allowlists, DEFAULT_INSTANCE_HOSTS, InstanceHostAllowlist, RecipientAllowlist,
};
use mailer::{SmtpConfig, SmtpCredentials, TlsMode};

use crate::CalleeError;

/// Everything the callee needs besides the payload.
///
/// Environment variables: `MAIL_FROM` (required), `ALLOWED_RECIPIENT_DOMAINS`
/// (comma-separated; unset or empty allows nobody), `ALLOWED_INSTANCE_HOSTS`
/// (comma-separated hosts or `*.domain` patterns `alert.instance_url` may name; unset or
/// empty means `*.service-now.com`), `SMTP_HOST` (required), `SMTP_PORT`
/// (default 2525), `SMTP_TLS` (`none`, `starttls` or `required`; default `required`),
/// `SMTP_USERNAME` and `SMTP_PASSWORD` (optional, both or neither),
/// `AWS_LAMBDA_FUNCTION_TIMEOUT` (whole seconds, 1-900; default 3, see
/// [`Config::function_timeout`]). An empty value counts as unset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Sender mailbox, e.g. `ServiceNow Alerts <alerts@example.com>`.
    pub mail_from: String,
    /// Domains recipients must belong to, and hosts `alert.instance_url` may name.
    pub allowlists: Allowlists,
    /// SMTP server, TLS, credentials and retry policy; its `Debug` redacts the password.
    pub smtp: SmtpConfig,
    /// The function's timeout, the budget an invocation gets when the runtime's deadline
    /// is not one Lambda could have sent (see the handler's deadline rule).
    ///
    /// AWS Lambda does not tell a function its timeout: this comes from
    /// `AWS_LAMBDA_FUNCTION_TIMEOUT`, which LocalStack and AWS's runtime interface
    /// emulator set, and is otherwise [`DEFAULT_FUNCTION_TIMEOUT`], AWS's default timeout.
    pub function_timeout: Duration,
}

/// The function timeout assumed when `AWS_LAMBDA_FUNCTION_TIMEOUT` is unset: 3 s, the
/// timeout AWS Lambda gives a function that configures none.
pub const DEFAULT_FUNCTION_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest timeout AWS Lambda allows a function: 900 s.
pub const MAX_FUNCTION_TIMEOUT: Duration = Duration::from_secs(900);

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, CalleeError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CalleeError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| {
            get(name).ok_or(CalleeError::Config {
                name,
                reason: "is required".to_owned(),
            })
        };

        let mail_from = required("MAIL_FROM")?;
        let recipients =
            RecipientAllowlist::from_csv(&get("ALLOWED_RECIPIENT_DOMAINS").unwrap_or_default())
                .map_err(CalleeError::from)?;
        let instance_hosts = InstanceHostAllowlist::from_csv(
            &get("ALLOWED_INSTANCE_HOSTS").unwrap_or_else(|| DEFAULT_INSTANCE_HOSTS.to_owned()),
        )
        .map_err(CalleeError::from)?;

        let mut smtp = SmtpConfig::new(required("SMTP_HOST")?);
        if let Some(port) = get("SMTP_PORT") {
            smtp.port = port
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| CalleeError::Config {
                    name: "SMTP_PORT",
                    reason: format!("{port:?} is not a port number (1-65535)"),
                })?;
        }
        if let Some(tls) = get("SMTP_TLS") {
            smtp.tls = tls.parse::<TlsMode>().map_err(CalleeError::from)?;
        }
        smtp.credentials = match (get("SMTP_USERNAME"), get("SMTP_PASSWORD")) {
            (Some(username), Some(password)) => Some(SmtpCredentials::new(username, password)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(CalleeError::Config {
                    name: "SMTP_PASSWORD",
                    reason: "is required when SMTP_USERNAME is set".to_owned(),
                });
            }
            (None, Some(_)) => {
                return Err(CalleeError::Config {
                    name: "SMTP_USERNAME",
                    reason: "is required when SMTP_PASSWORD is set".to_owned(),
                });
            }
        };

        let function_timeout = match get("AWS_LAMBDA_FUNCTION_TIMEOUT") {
            None => DEFAULT_FUNCTION_TIMEOUT,
            Some(secs) => secs
                .trim()
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs)
                .filter(|t| !t.is_zero() && *t <= MAX_FUNCTION_TIMEOUT)
                .ok_or_else(|| CalleeError::Config {
                    name: "AWS_LAMBDA_FUNCTION_TIMEOUT",
                    reason: format!("{secs:?} is not a function timeout (1-900 seconds)"),
                })?,
        };

        Ok(Self {
            mail_from,
            allowlists: Allowlists {
                recipients,
                instance_hosts,
            },
            smtp,
            function_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rstest::rstest;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    const MINIMAL: [(&str, &str); 2] = [
        ("MAIL_FROM", "alerts@example.com"),
        ("SMTP_HOST", "smtp.example.com"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut vars = MINIMAL.to_vec();
        vars.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        vars.extend_from_slice(extra);
        vars
    }

    #[test]
    fn minimal_environment_takes_the_defaults() {
        let config = Config::from_lookup(lookup(&MINIMAL)).expect("valid");
        assert_eq!(config.mail_from, "alerts@example.com");
        assert_eq!(config.smtp.host, "smtp.example.com");
        assert_eq!(config.smtp.port, 2525);
        assert_eq!(config.smtp.tls, TlsMode::Required);
        assert_eq!(config.smtp.credentials, None);
        assert_eq!(config.function_timeout, Duration::from_secs(3));
        assert!(
            config.allowlists.recipients.is_empty(),
            "unset allowlist allows nobody"
        );
        assert_eq!(
            config.allowlists.instance_hosts,
            InstanceHostAllowlist::service_now(),
            "unset instance hosts are ServiceNow's"
        );
    }

    #[test]
    fn full_environment_is_read() {
        let vars = with(&[
            ("ALLOWED_RECIPIENT_DOMAINS", "example.com, Example.org"),
            ("ALLOWED_INSTANCE_HOSTS", "snow.example.com, *.example.org"),
            ("SMTP_PORT", "587"),
            ("SMTP_TLS", "none"),
            ("SMTP_USERNAME", "alerts"),
            ("SMTP_PASSWORD", "hunter2-secret"),
            ("AWS_LAMBDA_FUNCTION_TIMEOUT", "900"),
        ]);
        let config = Config::from_lookup(lookup(&vars)).expect("valid");
        assert_eq!(config.function_timeout, Duration::from_secs(900));
        assert_eq!(config.smtp.port, 587);
        assert_eq!(config.smtp.tls, TlsMode::None);
        assert_eq!(
            config.allowlists.recipients.domains(),
            ["example.com", "example.org"]
        );
        assert!(
            config
                .allowlists
                .instance_hosts
                .allows_host("a.example.org")
        );
        assert!(
            !config
                .allowlists
                .instance_hosts
                .allows_host("acme.service-now.com")
        );
        assert_eq!(
            config.smtp.credentials,
            Some(SmtpCredentials::new("alerts", "hunter2-secret"))
        );
        assert!(
            !format!("{config:?}").contains("hunter2-secret"),
            "password in Debug"
        );
    }

    #[rstest]
    #[case::mail_from_missing(&[("MAIL_FROM", "")], "MAIL_FROM")]
    #[case::smtp_host_missing(&[("SMTP_HOST", " ")], "SMTP_HOST")]
    #[case::port_not_a_number(&[("SMTP_PORT", "smtp")], "SMTP_PORT")]
    #[case::port_zero(&[("SMTP_PORT", "0")], "SMTP_PORT")]
    #[case::port_too_large(&[("SMTP_PORT", "65536")], "SMTP_PORT")]
    #[case::tls_unknown(&[("SMTP_TLS", "ssl")], "SMTP_TLS")]
    #[case::username_without_password(&[("SMTP_USERNAME", "alerts")], "SMTP_PASSWORD")]
    #[case::password_without_username(&[("SMTP_PASSWORD", "secret")], "SMTP_USERNAME")]
    #[case::allowlist_entry_not_a_domain(&[("ALLOWED_RECIPIENT_DOMAINS", "oncall@example.com")], "ALLOWED_RECIPIENT_DOMAINS")]
    #[case::function_timeout_not_seconds(&[("AWS_LAMBDA_FUNCTION_TIMEOUT", "3s")], "AWS_LAMBDA_FUNCTION_TIMEOUT")]
    #[case::function_timeout_zero(&[("AWS_LAMBDA_FUNCTION_TIMEOUT", "0")], "AWS_LAMBDA_FUNCTION_TIMEOUT")]
    #[case::function_timeout_beyond_lambda_s_limit(&[("AWS_LAMBDA_FUNCTION_TIMEOUT", "901")], "AWS_LAMBDA_FUNCTION_TIMEOUT")]
    #[case::instance_host_not_a_host(&[("ALLOWED_INSTANCE_HOSTS", "https://acme.service-now.com")], "ALLOWED_INSTANCE_HOSTS")]
    fn invalid_setting_is_a_config_error_naming_it(
        #[case] vars: &[(&'static str, &'static str)],
        #[case] expected: &str,
    ) {
        let err = Config::from_lookup(lookup(&with(vars))).expect_err("invalid");
        assert!(
            matches!(&err, CalleeError::Config { name, .. } if *name == expected),
            "{err}"
        );
        assert_eq!(err.error_type(), "ConfigError");
        assert!(err.to_string().contains(expected), "{err}");
    }

    #[test]
    fn password_never_appears_in_config_errors() {
        let vars = with(&[("SMTP_PASSWORD", "hunter2-secret")]);
        let err = Config::from_lookup(lookup(&vars)).expect_err("username missing");
        assert!(!err.to_string().contains("hunter2-secret"), "{err}");
    }
}
