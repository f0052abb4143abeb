//! Emulator backends behind one interface: `host` (LocalStack as a local
//! process, the default), `container` (testcontainers) and `external` (an
//! emulator someone else runs).

pub mod container;
pub mod host;
pub mod venv;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use crate::error::HarnessError;

/// How many times faster than AWS the harness runs Lambda's retries of a failed
/// `Event` invocation.
///
/// AWS retries such an invocation twice, about a minute and then two minutes
/// later. LocalStack waits `n × LAMBDA_RETRY_BASE_DELAY` seconds before the
/// nth retry (60 unless set, as AWS); the harness sets that base to
/// [`AWS_EVENT_RETRY_BASE_DELAY_SECS`] divided by this, so 1 s and then 2 s. It
/// cannot go further: LocalStack takes the base in whole seconds and releases
/// delayed events on a 1 s tick, so a base of 0 would retry at once.
pub const EVENT_RETRY_TIME_SCALE: u64 = 60;

/// AWS's wait before the first retry of a failed `Event` invocation (the second waits twice as long).
pub const AWS_EVENT_RETRY_BASE_DELAY_SECS: u64 = 60;

/// LocalStack's variable for the base delay between retries of a failed `Event` invocation.
pub const RETRY_BASE_DELAY_ENV: &str = "LAMBDA_RETRY_BASE_DELAY";

const _: () = assert!(
    AWS_EVENT_RETRY_BASE_DELAY_SECS.is_multiple_of(EVENT_RETRY_TIME_SCALE)
        && AWS_EVENT_RETRY_BASE_DELAY_SECS / EVENT_RETRY_TIME_SCALE >= 1,
    "LocalStack takes a whole, non-zero number of seconds"
);

/// The value of [`RETRY_BASE_DELAY_ENV`] for LocalStack: AWS's delay scaled by [`EVENT_RETRY_TIME_SCALE`].
pub fn retry_base_delay_secs() -> String {
    (AWS_EVENT_RETRY_BASE_DELAY_SECS / EVENT_RETRY_TIME_SCALE).to_string()
}

/// LocalStack's variable that chooses the Lambda runtime executor, and the
/// harness plugin's name for it (`harness/localstack-plugin/pyproject.toml`).
pub const EXECUTOR_ENV: &str = "LAMBDA_RUNTIME_EXECUTOR";
/// See [`EXECUTOR_ENV`].
pub const EXECUTOR: &str = "native";

/// The plugin's variable for the runtime shim's path.
pub const SHIM_ENV: &str = "HARNESS_RUNTIME_SHIM";

/// The plugin's variable for CloudFormation's poll of in-progress resources,
/// and the harness's value: LocalStack polls every 5 s, and a new function is
/// in progress for milliseconds.
pub const CFN_POLL_ENV: &str = "HARNESS_CFN_POLL_SECONDS";
/// See [`CFN_POLL_ENV`].
pub const CFN_POLL_SECONDS: &str = "0.1";

/// Which emulator backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// LocalStack from PyPI as a local process; lambdas as native processes.
    Host,
    /// LocalStack in Docker through testcontainers.
    Container,
    /// An already-running emulator at `--endpoint`.
    External,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Host => "host",
            Self::Container => "container",
            Self::External => "external",
        })
    }
}

/// Everything needed to start (or reach) an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// The backend.
    pub backend: Backend,
    /// Gateway address for the host backend.
    pub gateway: SocketAddr,
    /// Endpoint of an external emulator.
    pub endpoint: Option<String>,
    /// Image for the container backend.
    pub image: String,
    /// The runtime shim (host backend, and container with `container_plugin`).
    pub runtime_shim: PathBuf,
    /// Run the harness's executor plugin in the container (container backend),
    /// to be attached to the gateway like an external emulator.
    pub container_plugin: bool,
    /// Working directory for logs and LocalStack files.
    pub work_dir: PathBuf,
    /// The endpoint lambdas should use for AWS, when not the emulator itself.
    pub lambda_endpoint: Option<String>,
    /// The CA certificate (PEM file) the lambdas trust for `lambda_endpoint`.
    pub lambda_ca_file: Option<PathBuf>,
    /// Where the executor gets each function's execution-role keys, and its
    /// token (the IAM gateway issues them; host backend).
    pub credentials_issuer: Option<(String, String)>,
    /// Suppress progress output.
    pub quiet: bool,
}

enum Running {
    Host(host::HostEmulator),
    // Held only so that dropping the Emulator removes the container.
    Container(#[expect(dead_code, reason = "kept for its Drop")] Box<container::ContainerEmulator>),
    External,
}

/// A running emulator. Dropping it stops whatever this process started.
pub struct Emulator {
    running: Running,
    endpoint: String,
    /// How long the start took.
    pub started_in: Duration,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl Emulator {
    /// Starts the chosen backend and waits until it is ready.
    pub async fn start(options: &EmulatorOptions) -> Result<Self, HarnessError> {
        let started = std::time::Instant::now();
        let (running, endpoint) = match options.backend {
            Backend::Host => {
                let (emu, endpoint) = host::HostEmulator::start(&host::HostOptions {
                    gateway: options.gateway,
                    runtime_shim: options.runtime_shim.clone(),
                    work_dir: options.work_dir.clone(),
                    lambda_endpoint: options.lambda_endpoint.clone(),
                    lambda_ca_file: options.lambda_ca_file.clone(),
                    credentials_issuer: options.credentials_issuer.clone(),
                    quiet: options.quiet,
                })
                .await?;
                (Running::Host(emu), endpoint)
            }
            Backend::Container => {
                let plugin = if options.container_plugin {
                    let quiet = options.quiet;
                    let python_dir = tokio::task::spawn_blocking(move || venv::plugin_tree(quiet))
                        .await
                        .map_err(|e| HarnessError::EmulatorStart(e.to_string()))??;
                    Some(container::ContainerPlugin {
                        python_dir,
                        runtime_shim: options.runtime_shim.clone(),
                    })
                } else {
                    None
                };
                let (emu, endpoint) =
                    container::ContainerEmulator::start(&options.image, plugin.as_ref()).await?;
                (Running::Container(Box::new(emu)), endpoint)
            }
            Backend::External => {
                let endpoint = options.endpoint.clone().ok_or_else(|| {
                    HarnessError::EmulatorStart(
                        "--backend external needs --endpoint URL".to_string(),
                    )
                })?;
                let health = format!("{}/_localstack/health", endpoint.trim_end_matches('/'));
                reqwest::get(&health).await.map_err(|e| {
                    HarnessError::EmulatorStart(format!("{health} did not answer: {e}"))
                })?;
                (
                    Running::External,
                    endpoint.trim_end_matches('/').to_string(),
                )
            }
        };
        Ok(Self {
            running,
            endpoint,
            started_in: started.elapsed(),
        })
    }

    /// The emulator's AWS endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The process group of a host emulator, if this process started one.
    pub fn pgid(&self) -> Option<i32> {
        match &self.running {
            Running::Host(h) => Some(h.pgid()),
            _ => None,
        }
    }

    /// Which backend runs.
    pub fn backend(&self) -> Backend {
        match self.running {
            Running::Host(_) => Backend::Host,
            Running::Container(_) => Backend::Container,
            Running::External => Backend::External,
        }
    }
}

/// Where an external emulator's functions must send their AWS calls, which CA
/// they trust, and where they get execution-role credentials: what the
/// harness sets in the environment of a host emulator it starts.
#[derive(Debug, Clone, Serialize)]
pub struct Attach {
    /// The IAM gateway's URL, the functions' `AWS_ENDPOINT_URL`.
    pub lambda_endpoint: String,
    /// The local CA that signed the gateway's certificate.
    pub ca_pem: String,
    /// The gateway's credentials issuer.
    pub credentials_url: String,
    /// The secret the executor presents to the issuer.
    pub credentials_token: String,
}

/// The route of the harness's executor plugin that takes an [`Attach`]
/// (`harness/localstack-plugin/localstack_native_executor/attach.py`).
pub const ATTACH_PATH: &str = "/_harness/attach";

/// Attaches the external emulator at `endpoint` to this harness, so that the
/// functions it runs call the IAM gateway. Fails, saying why, when it cannot:
/// the emulator does not run the harness's executor plugin, or it already
/// runs functions (or serves another live harness) that would bypass the gateway.
pub async fn attach(endpoint: &str, settings: &Attach) -> Result<(), HarnessError> {
    let url = format!("{}{ATTACH_PATH}", endpoint.trim_end_matches('/'));
    let refused = |reason: String| {
        HarnessError::Config(format!(
            "cannot put the IAM gateway in front of the functions of the emulator at {endpoint}: {reason}. Use an emulator that runs the harness's executor plugin (harness/localstack-plugin, LAMBDA_RUNTIME_EXECUTOR=native), freshly started, or --iam off"
        ))
    };
    let answer = reqwest::Client::new()
        .post(&url)
        .json(settings)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| refused(format!("POST {url} failed: {e}")))?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let body = answer.text().await.unwrap_or_default();
    // The plugin answers `{"__type": ..., "message": ...}`; anything else is
    // the emulator's own answer to a path it does not know.
    let plugin_says = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .filter(|v| v.get("__type").is_some())
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned));
    Err(refused(match plugin_says {
        Some(message) => format!("POST {url} answered {status}: {message}"),
        None => format!(
            "POST {url} answered {status}, not as the harness's executor plugin does, so the emulator does not run it"
        ),
    }))
}
