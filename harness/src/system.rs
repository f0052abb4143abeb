//! The whole system on one machine: the emulator, the SMTP capture server,
//! the built lambdas and the deployed stacks, brought up in order and timed.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use crate::{
    deploy::{self, Accounts, DeployConfig, Deployment},
    emulator::{Backend, Emulator, EmulatorOptions},
    error::HarnessError,
    gateway::{Gateway, GatewayConfig, GatewayHandle, Mode},
    invoke::{self, Call, CallOutcome, Clients, Invocation, Mailbox, Via},
    package::{self, Artifacts, BuildOptions},
    smtp::{CaptureConfig, CapturedEmail, MailCapture},
};

/// How to bring the system up.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The emulator backend.
    pub backend: Backend,
    /// The LocalStack gateway address (host backend).
    pub gateway: SocketAddr,
    /// The external emulator's endpoint.
    pub endpoint: Option<String>,
    /// The container image.
    pub image: String,
    /// The SMTP capture address; port 0 picks a free one.
    pub smtp: SocketAddr,
    /// The SMTP host the lambdas are told to use.
    pub smtp_host_for_lambdas: String,
    /// The accounts.
    pub accounts: Accounts,
    /// The callee's From address.
    pub mail_from: String,
    /// Domains the callee may send to, comma-separated.
    pub allowed_domains: String,
    /// Cargo profile for the lambdas.
    pub profile: String,
    /// Working directory: logs, zips, mail spool, state.
    pub work_dir: PathBuf,
    /// Also write every captured email to `<work_dir>/mail`.
    pub spool: bool,
    /// Skip the warm-up call.
    pub skip_first_invoke: bool,
    /// The IAM gateway's mode; `Off` runs no gateway at all.
    pub iam: Mode,
    /// Suppress progress output.
    pub quiet: bool,
}

impl UpOptions {
    /// The defaults: host backend on 4566, SMTP on 2525, accounts A and B, example.com mail.
    pub fn defaults(work_dir: PathBuf) -> Self {
        Self {
            backend: Backend::Host,
            gateway: SocketAddr::from(([127, 0, 0, 1], crate::DEFAULT_GATEWAY_PORT)),
            endpoint: None,
            image: crate::emulator::container::DEFAULT_IMAGE.into(),
            smtp: SocketAddr::from(([127, 0, 0, 1], crate::DEFAULT_SMTP_PORT)),
            smtp_host_for_lambdas: "127.0.0.1".into(),
            accounts: Accounts::default(),
            mail_from: "alerts@example.com".into(),
            allowed_domains: "example.com".into(),
            profile: "dev".into(),
            work_dir,
            spool: false,
            skip_first_invoke: false,
            iam: Mode::Enforce,
            quiet: false,
        }
    }
}

/// How long each phase of `up` took.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    /// Building and zipping the lambdas.
    pub build_ms: u64,
    /// Starting the emulator until ready.
    pub emulator_start_ms: u64,
    /// Deploying the four stacks.
    pub deploy_ms: u64,
    /// The first call through the whole chain (cold starts included).
    pub first_invoke_ms: Option<u64>,
}

/// The running system. Dropping it stops the emulator (and everything it runs).
pub struct System {
    /// The emulator.
    pub emulator: Emulator,
    /// The IAM gateway in front of it, unless `--iam off`.
    pub gateway: Option<GatewayHandle>,
    /// Where the gateway logs its decisions.
    pub iam_log: Option<PathBuf>,
    /// The SMTP capture server.
    pub capture: MailCapture,
    /// The default deployment.
    pub deployment: Deployment,
    /// SDK configs for both accounts.
    pub clients: Clients,
    /// The built lambdas.
    pub artifacts: Artifacts,
    /// The deploy configuration of the default deployment.
    pub deploy_config: DeployConfig,
    /// Phase timings.
    pub timings: Timings,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("emulator", &self.emulator)
            .field("smtp", &self.capture.addr())
            .finish()
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl System {
    /// Starts everything, deploys, and makes one warm-up call.
    pub async fn up(options: &UpOptions) -> Result<Self, HarnessError> {
        std::fs::create_dir_all(&options.work_dir)?;
        // Bind SMTP first: a taken port should fail in a second, not after a build.
        let spool_dir = options.spool.then(|| options.work_dir.join("mail"));
        if let Some(dir) = &spool_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        let capture = MailCapture::start(CaptureConfig {
            bind: options.smtp,
            spool_dir,
        })?;

        let build_started = Instant::now();
        let build = BuildOptions {
            profile: options.profile.clone(),
            out_dir: options.work_dir.join("lambda"),
            with_shim: options.backend == Backend::Host,
            quiet: options.quiet,
        };
        let artifacts = tokio::task::spawn_blocking(move || package::build(&build))
            .await
            .map_err(|e| HarnessError::Build(e.to_string()))??;
        let build_ms = ms(build_started.elapsed());

        // With the IAM gateway, it takes the public port and LocalStack a private
        // one; every client, the lambdas included, goes through the gateway.
        let with_gateway = options.iam != Mode::Off;
        let emulator_gateway = if with_gateway && options.backend == Backend::Host {
            SocketAddr::from(([127, 0, 0, 1], free_port()?))
        } else {
            options.gateway
        };
        let public = if options.backend == Backend::Host {
            options.gateway
        } else {
            SocketAddr::from(([127, 0, 0, 1], 0))
        };
        if with_gateway && options.backend == Backend::Host {
            // Fail fast, naming the public port, before LocalStack starts.
            drop(std::net::TcpListener::bind(public).map_err(|source| {
                HarnessError::PortInUse {
                    what: "the IAM gateway",
                    port: public.port(),
                    source,
                }
            })?);
        }
        let emulator = Emulator::start(&EmulatorOptions {
            backend: options.backend,
            gateway: emulator_gateway,
            endpoint: options.endpoint.clone(),
            image: options.image.clone(),
            runtime_shim: artifacts.runtime_shim.clone().unwrap_or_default(),
            work_dir: options.work_dir.clone(),
            lambda_endpoint: (with_gateway && options.backend == Backend::Host)
                .then(|| format!("http://{public}")),
            quiet: options.quiet,
        })
        .await?;
        let iam_log = with_gateway.then(|| options.work_dir.join("iam-decisions.jsonl"));
        let gateway = if with_gateway {
            if let Some(log) = &iam_log {
                let _ = std::fs::remove_file(log);
            }
            let mut config = GatewayConfig::new(public, emulator.endpoint());
            config.mode = options.iam;
            config.log_file = iam_log.clone();
            Some(Gateway::start(config).await?)
        } else {
            None
        };
        let emulator_start_ms = ms(emulator.started_in);
        let endpoint = match &gateway {
            Some(g) => g.url(),
            None => emulator.endpoint().to_string(),
        };

        let deploy_config = DeployConfig {
            accounts: options.accounts.clone(),
            templates_dir: package::workspace_root().join("cloudformation"),
            smtp_host: options.smtp_host_for_lambdas.clone(),
            smtp_port: capture.addr().port(),
            smtp_tls: "none".into(),
            mail_from: options.mail_from.clone(),
            allowed_domains: options.allowed_domains.clone(),
            lambda_endpoint: None,
            suffix: None,
            overrides: BTreeMap::new(),
            quiet: options.quiet,
        };
        let deploy_started = Instant::now();
        let deployment = deploy::deploy(&endpoint, &artifacts, &deploy_config).await?;
        let deploy_ms = ms(deploy_started.elapsed());

        let clients = Clients::new(&endpoint, &options.accounts).await;
        let mut system = Self {
            emulator,
            gateway,
            iam_log,
            capture,
            deployment,
            clients,
            artifacts,
            deploy_config,
            timings: Timings {
                build_ms,
                emulator_start_ms,
                deploy_ms,
                first_invoke_ms: None,
            },
        };
        if !options.skip_first_invoke {
            let started = Instant::now();
            let (outcome, emails) = system
                .call(
                    Via::Caller,
                    warm_up_payload(&options.allowed_domains),
                    Invocation::RequestResponse,
                )
                .await;
            if outcome.status != invoke::CallStatus::Success || emails.len() != 1 {
                return Err(HarnessError::EmulatorStart(format!(
                    "the warm-up call through the chain did not deliver its email: {:?} {:?}; logs:\n{}",
                    outcome.error_type,
                    outcome.error_message,
                    outcome
                        .logs
                        .iter()
                        .map(|(k, v)| format!("--- {k}\n{v}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )));
            }
            system.timings.first_invoke_ms = Some(ms(started.elapsed()));
        }
        Ok(system)
    }

    /// The mailbox of this process's capture server.
    pub fn mailbox(&self) -> Mailbox {
        Mailbox::InProcess(self.capture.clone())
    }

    /// Makes one call against the default deployment and returns its outcome
    /// and its emails (those that arrived by the time the call returned).
    pub async fn call(
        &self,
        via: Via,
        payload: Vec<u8>,
        invocation: Invocation,
    ) -> (CallOutcome, Vec<CapturedEmail>) {
        let trace_id = invoke::new_trace_id();
        let outcome = invoke::call(
            &self.clients,
            &self.deployment,
            &Call {
                via,
                payload,
                invocation,
                trace_id: trace_id.clone(),
            },
        )
        .await;
        let emails = self.mailbox().emails_of(&trace_id, 0, Duration::ZERO).await;
        (outcome, emails)
    }

    /// The AWS endpoint every client uses: the IAM gateway, or the emulator itself.
    pub fn endpoint(&self) -> String {
        match &self.gateway {
            Some(g) => g.url(),
            None => self.emulator.endpoint().to_string(),
        }
    }

    /// How the scenario runner reaches this system.
    pub fn target(&self) -> crate::runner::Target {
        crate::runner::Target {
            endpoint: self.endpoint(),
            iam_log: self.iam_log.clone(),
            clients: self.clients.clone(),
            mailbox: self.mailbox(),
            deployment: self.deployment.clone(),
            deploy_config: self.deploy_config.clone(),
            artifacts: self.artifacts.clone(),
        }
    }

    /// Deploys a variant of the stacks with parameter overrides, next to the defaults.
    pub async fn deploy_variant(
        &self,
        suffix: &str,
        overrides: BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Deployment, HarnessError> {
        let mut config = self.deploy_config.clone();
        config.suffix = Some(suffix.to_string());
        config.overrides = overrides;
        deploy::deploy(&self.endpoint(), &self.artifacts, &config).await
    }
}

/// A free loopback port (closed again before its user binds it).
fn free_port() -> Result<u16, HarnessError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A valid payload for the warm-up call; its email goes to a harness address
/// at the first allowed domain.
pub fn warm_up_payload(allowed_domains: &str) -> Vec<u8> {
    let domain = allowed_domains
        .split(',')
        .map(str::trim)
        .find(|d| !d.is_empty())
        .unwrap_or("example.com");
    serde_json::to_vec(&serde_json::json!({
        "alert": {
            "number": "INC0000000",
            "sys_id": "00000000000000000000000000000000",
            "short_description": "harness warm-up",
            "priority": 5,
            "state": "New"
        },
        "recipients": { "to": [format!("harness-warmup@{domain}")] }
    }))
    .unwrap_or_default()
}
