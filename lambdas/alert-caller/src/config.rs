//! Typed configuration of the invoker, read once from the environment.

use std::time::Duration;

use crate::error::ConfigError;

/// Environment variable naming the cross-account role to assume in the callee account; unset or
/// empty selects direct mode.
pub const TARGET_ROLE_ARN: &str = "TARGET_ROLE_ARN";
/// Environment variable naming the callee function (name or ARN) to invoke.
pub const TARGET_FUNCTION_ARN: &str = "TARGET_FUNCTION_ARN";
/// Environment variable holding the optional `sts:ExternalId` the role's trust policy demands.
pub const EXTERNAL_ID: &str = "EXTERNAL_ID";
/// Environment variable overriding the STS role session name.
pub const ROLE_SESSION_NAME: &str = "ROLE_SESSION_NAME";
/// Environment variable setting how many attempts (first try included) each AWS call gets.
pub const RETRY_MAX_ATTEMPTS: &str = "RETRY_MAX_ATTEMPTS";
/// Environment variable setting the first retry backoff in milliseconds.
pub const RETRY_INITIAL_BACKOFF_MS: &str = "RETRY_INITIAL_BACKOFF_MS";
/// Environment variable setting how long before expiry (in seconds) assumed credentials are refreshed.
pub const CREDENTIALS_REFRESH_MARGIN_SECS: &str = "CREDENTIALS_REFRESH_MARGIN_SECS";

/// Role session name used when `ROLE_SESSION_NAME` is not set.
pub const DEFAULT_ROLE_SESSION_NAME: &str = "servicenow-invoker";
/// Attempts per AWS call when `RETRY_MAX_ATTEMPTS` is not set (the SDK's standard mode default).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// First retry backoff when `RETRY_INITIAL_BACKOFF_MS` is not set (the SDK's standard mode default).
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Refresh margin when `CREDENTIALS_REFRESH_MARGIN_SECS` is not set.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Retry policy applied to every AWS call the invoker makes (STS and Lambda alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first one included; at least 1.
    pub max_attempts: u32,
    /// Base of the exponential, jittered backoff between attempts.
    pub initial_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
        }
    }
}

/// How the invoker gets permission to invoke the callee in the other account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessMode {
    /// Assume the cross-account role in the callee account, then invoke with its credentials.
    AssumeRole,
    /// Invoke with the function's own credentials, authorised by the callee's function policy
    /// together with this function's identity policy.
    Direct,
}

impl AccessMode {
    /// The mode's name as logged: `assume-role` or `direct`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AssumeRole => "assume-role",
            Self::Direct => "direct",
        }
    }
}

/// Everything the invoker needs to know, read from the environment once per cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// ARN of the role in the callee account that may invoke the callee; `None` for direct mode.
    pub target_role_arn: Option<String>,
    /// Name or ARN of the callee function.
    pub target_function_arn: String,
    /// `sts:ExternalId` sent with AssumeRole when the trust policy requires one (unused in direct mode).
    pub external_id: Option<String>,
    /// Session name of the assumed role, visible in the callee account's CloudTrail (unused in
    /// direct mode).
    pub role_session_name: String,
    /// Retry policy for STS and Lambda calls.
    pub retry: RetryPolicy,
    /// Assumed credentials with less than this left before expiry are replaced.
    pub refresh_margin: Duration,
}

impl Config {
    /// How the invoker reaches the callee: by assuming `target_role_arn` when set, else directly.
    pub fn access_mode(&self) -> AccessMode {
        match self.target_role_arn {
            Some(_) => AccessMode::AssumeRole,
            None => AccessMode::Direct,
        }
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests need not touch the process environment.
    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        // CloudFormation passes an empty string for an unset optional parameter, so empty means unset.
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing { name });

        let max_attempts = match get(RETRY_MAX_ATTEMPTS) {
            None => DEFAULT_MAX_ATTEMPTS,
            Some(value) => match value.trim().parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: RETRY_MAX_ATTEMPTS,
                        value,
                        expected: "a whole number of attempts, at least 1",
                    });
                }
            },
        };
        let initial_backoff = parse_duration(
            get(RETRY_INITIAL_BACKOFF_MS),
            RETRY_INITIAL_BACKOFF_MS,
            Duration::from_millis,
            DEFAULT_INITIAL_BACKOFF,
            "a whole number of milliseconds",
        )?;
        let refresh_margin = parse_duration(
            get(CREDENTIALS_REFRESH_MARGIN_SECS),
            CREDENTIALS_REFRESH_MARGIN_SECS,
            Duration::from_secs,
            DEFAULT_REFRESH_MARGIN,
            "a whole number of seconds",
        )?;

        Ok(Self {
            // Optional: without a role the callee's function policy must name this account.
            target_role_arn: get(TARGET_ROLE_ARN),
            target_function_arn: required(TARGET_FUNCTION_ARN)?,
            external_id: get(EXTERNAL_ID),
            role_session_name: get(ROLE_SESSION_NAME)
                .unwrap_or_else(|| DEFAULT_ROLE_SESSION_NAME.to_owned()),
            retry: RetryPolicy {
                max_attempts,
                initial_backoff,
            },
            refresh_margin,
        })
    }
}

fn parse_duration(
    raw: Option<String>,
    name: &'static str,
    unit: fn(u64) -> Duration,
    default: Duration,
    expected: &'static str,
) -> Result<Duration, ConfigError> {
    match raw {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse::<u64>()
            .map(unit)
            .map_err(|_| ConfigError::Invalid {
                name,
                value,
                expected,
            }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rstest::rstest;

    use super::*;

    const ROLE: &str = "arn:aws:iam::111111111111:role/servicenow-invoke";
    const FUNCTION: &str = "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert";

    fn lookup_in(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn only_required_variables_gives_documented_defaults() {
        let lookup = lookup_in(&[(TARGET_ROLE_ARN, ROLE), (TARGET_FUNCTION_ARN, FUNCTION)]);

        let config = Config::from_lookup(lookup).expect("valid config");

        assert_eq!(
            config,
            Config {
                target_role_arn: Some(ROLE.to_owned()),
                target_function_arn: FUNCTION.to_owned(),
                external_id: None,
                role_session_name: "servicenow-invoker".to_owned(),
                retry: RetryPolicy {
                    max_attempts: 3,
                    initial_backoff: Duration::from_secs(1),
                },
                refresh_margin: Duration::from_secs(300),
            }
        );
    }

    #[test]
    fn every_optional_variable_is_honoured() {
        let lookup = lookup_in(&[
            (TARGET_ROLE_ARN, ROLE),
            (TARGET_FUNCTION_ARN, FUNCTION),
            (EXTERNAL_ID, "ext-42"),
            (ROLE_SESSION_NAME, "alerts"),
            (RETRY_MAX_ATTEMPTS, "5"),
            (RETRY_INITIAL_BACKOFF_MS, "20"),
            (CREDENTIALS_REFRESH_MARGIN_SECS, "60"),
        ]);

        let config = Config::from_lookup(lookup).expect("valid config");

        assert_eq!(config.external_id.as_deref(), Some("ext-42"));
        assert_eq!(config.role_session_name, "alerts");
        assert_eq!(
            config.retry,
            RetryPolicy {
                max_attempts: 5,
                initial_backoff: Duration::from_millis(20),
            }
        );
        assert_eq!(config.refresh_margin, Duration::from_secs(60));
    }

    #[rstest]
    #[case::function_arn_is_required(&[(TARGET_ROLE_ARN, ROLE)], TARGET_FUNCTION_ARN)]
    #[case::function_arn_is_required_in_direct_mode(&[], TARGET_FUNCTION_ARN)]
    #[case::empty_counts_as_missing(&[(TARGET_ROLE_ARN, ROLE), (TARGET_FUNCTION_ARN, " ")], TARGET_FUNCTION_ARN)]
    #[case::max_attempts_must_be_a_number(&[(TARGET_ROLE_ARN, ROLE), (TARGET_FUNCTION_ARN, FUNCTION), (RETRY_MAX_ATTEMPTS, "three")], RETRY_MAX_ATTEMPTS)]
    #[case::max_attempts_must_be_positive(&[(TARGET_ROLE_ARN, ROLE), (TARGET_FUNCTION_ARN, FUNCTION), (RETRY_MAX_ATTEMPTS, "0")], RETRY_MAX_ATTEMPTS)]
    #[case::backoff_must_be_milliseconds(&[(TARGET_ROLE_ARN, ROLE), (TARGET_FUNCTION_ARN, FUNCTION), (RETRY_INITIAL_BACKOFF_MS, "1.5s")], RETRY_INITIAL_BACKOFF_MS)]
    #[case::margin_must_be_seconds(&[(TARGET_ROLE_ARN, ROLE), (TARGET_FUNCTION_ARN, FUNCTION), (CREDENTIALS_REFRESH_MARGIN_SECS, "-1")], CREDENTIALS_REFRESH_MARGIN_SECS)]
    fn bad_environment_is_rejected_naming_the_variable(
        #[case] pairs: &[(&str, &str)],
        #[case] variable: &str,
    ) {
        let result = Config::from_lookup(lookup_in(pairs));

        let error = result.expect_err("config must be rejected");
        assert_eq!(error.variable(), variable);
        assert!(
            error.to_string().contains(variable),
            "message {error:?} must name {variable}"
        );
    }

    #[test]
    fn empty_external_id_means_none() {
        let lookup = lookup_in(&[
            (TARGET_ROLE_ARN, ROLE),
            (TARGET_FUNCTION_ARN, FUNCTION),
            (EXTERNAL_ID, ""),
        ]);

        let config = Config::from_lookup(lookup).expect("valid config");

        assert_eq!(config.external_id, None);
    }

    #[rstest]
    #[case::unset_role_means_direct_mode(&[(TARGET_FUNCTION_ARN, FUNCTION)], None, AccessMode::Direct)]
    #[case::empty_role_means_direct_mode(&[(TARGET_ROLE_ARN, ""), (TARGET_FUNCTION_ARN, FUNCTION)], None, AccessMode::Direct)]
    #[case::blank_role_means_direct_mode(&[(TARGET_ROLE_ARN, "  "), (TARGET_FUNCTION_ARN, FUNCTION)], None, AccessMode::Direct)]
    #[case::set_role_means_assume_role_mode(&[(TARGET_ROLE_ARN, ROLE), (TARGET_FUNCTION_ARN, FUNCTION)], Some(ROLE), AccessMode::AssumeRole)]
    fn target_role_is_optional_and_selects_the_access_mode(
        #[case] pairs: &[(&str, &str)],
        #[case] role: Option<&str>,
        #[case] mode: AccessMode,
    ) {
        let config = Config::from_lookup(lookup_in(pairs)).expect("valid config");

        assert_eq!(config.target_role_arn.as_deref(), role);
        assert_eq!(config.access_mode(), mode);
        assert_eq!(config.target_function_arn, FUNCTION);
    }
}
