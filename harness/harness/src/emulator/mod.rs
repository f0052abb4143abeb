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
    /// The runtime shim (host backend).
    pub runtime_shim: PathBuf,
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
                let (emu, endpoint) = container::ContainerEmulator::start(&options.image).await?;
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
