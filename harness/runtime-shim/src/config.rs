//! The shim's configuration, read once from the environment LocalStack gives the function.

use std::{ffi::OsString, net::SocketAddr, path::PathBuf, time::Duration};

use crate::{error::ShimError, protocol::MAX_RESPONSE_BYTES};

/// Prefix of the variables meant for the shim itself; they are not passed on to `bootstrap`.
pub const SHIM_ENV_PREFIX: &str = "SHIM_";

/// Timeout AWS applies when a function does not configure one.
const DEFAULT_TIMEOUT_SECS: u64 = 3;
/// Memory size AWS applies when a function does not configure one.
const DEFAULT_MEMORY_MB: u64 = 128;

/// Settings of one execution environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Base URL of LocalStack's executor endpoint, without trailing slash (`LOCALSTACK_RUNTIME_ENDPOINT`).
    pub runtime_endpoint: String,
    /// Id of this execution environment (`LOCALSTACK_RUNTIME_ID`).
    pub runtime_id: String,
    /// Directory holding the unzipped function code; `bootstrap` runs here (`LAMBDA_TASK_ROOT`).
    pub task_root: PathBuf,
    /// Function timeout (`AWS_LAMBDA_FUNCTION_TIMEOUT`, seconds).
    pub timeout: Duration,
    /// Function version shown in the `START` log line (`AWS_LAMBDA_FUNCTION_VERSION`).
    pub function_version: String,
    /// Configured memory in MB, shown in the `REPORT` log line (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub memory_size_mb: u64,
    /// Address of the executor-side server LocalStack posts invocations to (`SHIM_LISTEN_ADDR`).
    pub listen: SocketAddr,
    /// Echo the function's output to the shim's stderr (`SHIM_DEBUG=1`).
    pub debug: bool,
    /// The environment `bootstrap` gets: the shim's own, minus what only the
    /// shim may see ([`is_for_function`]).
    pub function_env: Vec<(OsString, OsString)>,
    /// Largest response body the function may post (`LOCALSTACK_MAX_PAYLOAD_SIZE`,
    /// which LocalStack sets from its `LAMBDA_LIMITS_MAX_FUNCTION_PAYLOAD_SIZE_BYTES`;
    /// AWS's [`MAX_RESPONSE_BYTES`] when unset).
    pub max_response_bytes: usize,
    /// The harness's IAM gateway, which serves scenario faults: the function's
    /// `AWS_ENDPOINT_URL`, as a plain `http://` URL; `None` asks nobody.
    pub faults_endpoint: Option<String>,
}

/// Whether a variable of the shim's environment is passed to the function.
///
/// Not: the `SHIM_*` settings, and everything that names the emulator itself
/// (`LOCALSTACK_RUNTIME_ENDPOINT`, `LOCALSTACK_HOSTNAME`, `EDGE_PORT`, ...).
/// A function in AWS has none of them, and with them it could reach the
/// emulator around the IAM gateway that its `AWS_ENDPOINT_URL` names.
pub fn is_for_function(name: &str) -> bool {
    !(name.starts_with(SHIM_ENV_PREFIX) || name.starts_with("LOCALSTACK_") || name == "EDGE_PORT")
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ShimError> {
        let mut config = Self::from_lookup(|name| std::env::var(name).ok())?;
        // LocalStack starts the shim with exactly the function's environment,
        // so passing it on keeps the function's view identical to AWS's.
        config.function_env = std::env::vars_os()
            .filter(|(name, _)| is_for_function(&name.to_string_lossy()))
            .collect();
        Ok(config)
    }

    /// Reads the configuration through `lookup`, which maps a variable name to its value; `function_env` stays empty.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ShimError> {
        let get = |name: &'static str| lookup(name).filter(|value| !value.is_empty());
        let required = |name: &'static str| get(name).ok_or(ShimError::MissingEnv { name });

        let runtime_endpoint = required("LOCALSTACK_RUNTIME_ENDPOINT")?;
        if !runtime_endpoint.starts_with("http://") {
            return Err(ShimError::InvalidEnv {
                name: "LOCALSTACK_RUNTIME_ENDPOINT",
                value: runtime_endpoint,
                reason: "expected an http:// URL",
            });
        }
        let runtime_endpoint = runtime_endpoint.trim_end_matches('/').to_owned();

        let runtime_id = required("LOCALSTACK_RUNTIME_ID")?;
        if !is_path_segment(&runtime_id) {
            return Err(ShimError::InvalidEnv {
                name: "LOCALSTACK_RUNTIME_ID",
                value: runtime_id,
                reason: "expected letters, digits, '-' or '_'",
            });
        }

        let task_root = PathBuf::from(required("LAMBDA_TASK_ROOT")?);

        let timeout_secs = match get("AWS_LAMBDA_FUNCTION_TIMEOUT") {
            None => DEFAULT_TIMEOUT_SECS,
            Some(value) => match value.parse::<u64>() {
                Ok(secs) if secs > 0 => secs,
                _ => {
                    return Err(ShimError::InvalidEnv {
                        name: "AWS_LAMBDA_FUNCTION_TIMEOUT",
                        value,
                        reason: "expected a positive number of seconds",
                    });
                }
            },
        };

        let memory_size_mb = match get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
            None => DEFAULT_MEMORY_MB,
            Some(value) => value.parse::<u64>().map_err(|_| ShimError::InvalidEnv {
                name: "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                value,
                reason: "expected a number of megabytes",
            })?,
        };

        let listen = match get("SHIM_LISTEN_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 0)),
            Some(value) => value.parse().map_err(|_| ShimError::InvalidEnv {
                name: "SHIM_LISTEN_ADDR",
                value,
                reason: "expected ip:port, e.g. 127.0.0.1:0",
            })?,
        };

        let max_response_bytes = match get("LOCALSTACK_MAX_PAYLOAD_SIZE") {
            None => MAX_RESPONSE_BYTES,
            Some(value) => match value.parse::<usize>() {
                Ok(bytes) if bytes > 0 => bytes,
                _ => {
                    return Err(ShimError::InvalidEnv {
                        name: "LOCALSTACK_MAX_PAYLOAD_SIZE",
                        value,
                        reason: "expected a positive number of bytes",
                    });
                }
            },
        };

        Ok(Self {
            runtime_endpoint,
            runtime_id,
            task_root,
            timeout: Duration::from_secs(timeout_secs),
            function_version: get("AWS_LAMBDA_FUNCTION_VERSION")
                .unwrap_or_else(|| "$LATEST".into()),
            memory_size_mb,
            listen,
            debug: get("SHIM_DEBUG").as_deref() == Some("1"),
            function_env: Vec::new(),
            max_response_bytes,
            // The gateway serves plain HTTP and HTTPS on one port; the shim
            // asks over plain HTTP, with no trust store to set up.
            faults_endpoint: get("AWS_ENDPOINT_URL").and_then(|url| {
                url.strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"))
                    .map(|rest| format!("http://{}", rest.trim_end_matches('/')))
            }),
        })
    }

    /// Path of the function's `bootstrap` executable.
    pub fn bootstrap_path(&self) -> PathBuf {
        self.task_root.join("bootstrap")
    }
}

/// True if `value` can be put into a URL path segment as is.
pub fn is_path_segment(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rstest::rstest;

    use super::*;

    #[test]
    fn the_function_sees_nothing_that_names_the_emulator() {
        for hidden in [
            "SHIM_DEBUG",
            "LOCALSTACK_RUNTIME_ENDPOINT",
            "LOCALSTACK_RUNTIME_ID",
            "LOCALSTACK_HOSTNAME",
            "EDGE_PORT",
        ] {
            assert!(!is_for_function(hidden), "{hidden}");
        }
        for kept in [
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_LAMBDA_FUNCTION_NAME",
            "SMTP_HOST",
            "PATH",
        ] {
            assert!(is_for_function(kept), "{kept}");
        }
    }

    fn base_env() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            (
                "LOCALSTACK_RUNTIME_ENDPOINT",
                "http://127.0.0.1:4566/_localstack_lambda/abc/",
            ),
            ("LOCALSTACK_RUNTIME_ID", "abc123"),
            ("LAMBDA_TASK_ROOT", "/code"),
        ])
    }

    fn config_with(changes: &[(&'static str, Option<&'static str>)]) -> Result<Config, ShimError> {
        let mut env = base_env();
        for (name, value) in changes {
            match value {
                Some(value) => env.insert(name, value),
                None => env.remove(name),
            };
        }
        Config::from_lookup(|name| env.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn minimal_env_gets_aws_defaults() {
        let config = config_with(&[]).expect("valid config");
        assert_eq!(
            config.runtime_endpoint,
            "http://127.0.0.1:4566/_localstack_lambda/abc"
        );
        assert_eq!(config.timeout, Duration::from_secs(3));
        assert_eq!(config.memory_size_mb, 128);
        assert_eq!(config.function_version, "$LATEST");
        assert_eq!(config.listen.port(), 0);
        assert!(!config.debug);
        assert_eq!(config.max_response_bytes, 6_291_556);
        assert_eq!(config.bootstrap_path(), PathBuf::from("/code/bootstrap"));
    }

    #[test]
    fn explicit_values_are_used() {
        let config = config_with(&[
            ("AWS_LAMBDA_FUNCTION_TIMEOUT", Some("30")),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", Some("512")),
            ("AWS_LAMBDA_FUNCTION_VERSION", Some("7")),
            ("SHIM_LISTEN_ADDR", Some("127.0.0.1:9563")),
            ("SHIM_DEBUG", Some("1")),
            ("LOCALSTACK_MAX_PAYLOAD_SIZE", Some("1000")),
        ])
        .expect("valid config");
        assert_eq!(config.max_response_bytes, 1000);
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.memory_size_mb, 512);
        assert_eq!(config.function_version, "7");
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 9563)));
        assert!(config.debug);
    }

    #[rstest]
    #[case::endpoint_is_required(
        "LOCALSTACK_RUNTIME_ENDPOINT",
        None,
        "LOCALSTACK_RUNTIME_ENDPOINT"
    )]
    #[case::endpoint_must_be_http("LOCALSTACK_RUNTIME_ENDPOINT", Some("ftp://x"), "http://")]
    #[case::runtime_id_is_required("LOCALSTACK_RUNTIME_ID", None, "LOCALSTACK_RUNTIME_ID")]
    #[case::runtime_id_must_fit_a_path("LOCALSTACK_RUNTIME_ID", Some("a/b"), "letters")]
    #[case::task_root_is_required("LAMBDA_TASK_ROOT", None, "LAMBDA_TASK_ROOT")]
    #[case::timeout_must_be_a_number("AWS_LAMBDA_FUNCTION_TIMEOUT", Some("3s"), "seconds")]
    #[case::timeout_must_be_positive("AWS_LAMBDA_FUNCTION_TIMEOUT", Some("0"), "positive")]
    #[case::memory_must_be_a_number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", Some("lots"), "megabytes")]
    #[case::payload_size_must_be_a_number("LOCALSTACK_MAX_PAYLOAD_SIZE", Some("6MB"), "bytes")]
    #[case::payload_size_must_be_positive("LOCALSTACK_MAX_PAYLOAD_SIZE", Some("0"), "positive")]
    #[case::listen_must_be_a_socket_address("SHIM_LISTEN_ADDR", Some("localhost"), "ip:port")]
    fn invalid_env_is_rejected(
        #[case] name: &'static str,
        #[case] value: Option<&'static str>,
        #[case] message_part: &str,
    ) {
        let err = config_with(&[(name, value)]).expect_err("config must be rejected");
        let message = err.to_string();
        assert!(message.contains(name), "{message} names {name}");
        assert!(
            message.contains(message_part),
            "{message} mentions {message_part}"
        );
    }

    #[rstest]
    #[case::uuid("0c8a6f63-58c4-4a8e-9f2e-3f0b6c1a2d11", true)]
    #[case::hex("8e1b0f6a", true)]
    #[case::empty("", false)]
    #[case::slash("a/b", false)]
    #[case::dot_dot("..", false)]
    #[case::space("a b", false)]
    fn path_segments(#[case] value: &str, #[case] expected: bool) {
        assert_eq!(is_path_segment(value), expected);
    }
}
