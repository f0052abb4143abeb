//! The whole system on one machine: the emulator, the IAM gateway, the SMTP
//! capture server, the built lambdas and the deployed stacks, brought up in
//! order and timed.
//!
//! [`SystemConfig`] says what to bring up; it is both the command line's
//! options and what the state file records. [`RunningSystem`] describes a
//! system that is up: the state file `harness up` writes for `invoke`, `run`,
//! `deploy`, `iam` and `down` in other processes. [`System`] is a system this
//! process runs; dropping it stops everything it started.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use clap::Parser;
use fault_plan::{FaultBook, SharedFaultBook};
use iam_gateway::{Gateway, GatewayConfig, GatewayHandle, Mode};
use mailer::TlsMode;
use nix::{sys::signal::kill, unistd::Pid};
use scenario::{DeployOverrides, InvocationType, OutcomeStatus, Via};
use sdk_config::RootKeys;
use serde::{Deserialize, Serialize};

use crate::{
    deploy::{self, Accounts, DeployConfig, Deployment},
    deployer::{CiIssuer, DeployAs},
    emulator::{self, Backend, Emulator, EmulatorOptions},
    error::HarnessError,
    observe::{self, Call, Clients, EmailWait, FaultsEndpoint, Mailbox, Observation, Target},
    package::{self, Artifacts, BuildOptions},
    resource_schemas,
    smtp::{CaptureConfig, MailCapture, SmtpCredentials, SmtpSecurity},
    viewer::{self, ViewerHandle, ViewerSources},
};

/// The callee's From address unless told otherwise.
pub const DEFAULT_MAIL_FROM: &str = "alerts@example.com";

/// The domains the callee may send to unless told otherwise.
pub const DEFAULT_ALLOWED_DOMAINS: &str = "example.com";

/// Account C: outside the chain, no stack of its own. Its root key is known
/// to the gateway, so users and tests can try what a stranger may do.
pub const OUTSIDE_ACCOUNT: &str = "333333333333";

/// The ServiceNow hosts `alert.instance_url` may name unless told otherwise: the
/// callee's own default, which every scenario payload's `example.service-now.com` matches.
pub const DEFAULT_INSTANCE_HOSTS: &str = alert_payload::DEFAULT_INSTANCE_HOSTS;

/// The SMTP TLS mode the harness deploys the callee with when the relay
/// serves STARTTLS and AUTH (the host backend, and an attached external one):
/// production's default.
pub const SMTP_TLS: TlsMode = TlsMode::Required;

/// The SMTP TLS mode for backends whose lambdas are not given the run's CA
/// (container and external with `--iam off`: no gateway, no executor the
/// harness configures): they could not verify the relay's certificate, so
/// the relay offers neither STARTTLS nor AUTH and the callee sends in clear.
pub const SMTP_TLS_WITHOUT_CA: TlsMode = TlsMode::None;

fn default_instance_hosts() -> String {
    DEFAULT_INSTANCE_HOSTS.to_owned()
}

/// What to bring up: the options of every command that starts a system, and
/// what a running one records in its state file.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
pub struct SystemConfig {
    /// The emulator backend.
    #[arg(long, value_enum, default_value = "host", env = "HARNESS_BACKEND")]
    pub backend: Backend,
    /// The port AWS clients use: the IAM gateway's, or LocalStack's with `--iam off` (host backend).
    #[arg(long, default_value_t = crate::DEFAULT_GATEWAY_PORT, env = "HARNESS_GATEWAY_PORT")]
    pub gateway_port: u16,
    /// The endpoint of an already-running emulator (external backend).
    #[arg(long, env = "HARNESS_ENDPOINT")]
    pub endpoint: Option<String>,
    /// The LocalStack image (container backend).
    #[arg(long, default_value = crate::emulator::container::DEFAULT_IMAGE, env = "HARNESS_IMAGE")]
    pub image: String,
    /// The SMTP capture port; 0 picks a free one.
    #[arg(long, default_value_t = crate::DEFAULT_SMTP_PORT, env = "HARNESS_SMTP_PORT")]
    pub smtp_port: u16,
    /// The SMTP host the callee is told to use: `127.0.0.1` unless given, or
    /// `host.docker.internal` with `--backend container`.
    #[arg(long)]
    pub smtp_host_for_lambdas: Option<String>,
    /// Account A, where the callee lives.
    #[arg(long, default_value = "111111111111", value_parser = account_id)]
    pub callee_account: String,
    /// Account B, where the caller lives.
    #[arg(long, default_value = "222222222222", value_parser = account_id)]
    pub caller_account: String,
    /// The callee's From address.
    #[arg(long, default_value = DEFAULT_MAIL_FROM)]
    pub mail_from: String,
    /// Domains the callee may send to, comma-separated.
    #[arg(long, default_value = DEFAULT_ALLOWED_DOMAINS)]
    pub allowed_domains: String,
    /// Hosts `alert.instance_url` may name, comma-separated; `*.` and a domain matches
    /// every host below it.
    #[arg(long, default_value = DEFAULT_INSTANCE_HOSTS)]
    // State files written before this option existed ran with the default.
    #[serde(default = "default_instance_hosts")]
    pub allowed_instance_hosts: String,
    /// The cargo profile the lambdas are built with.
    #[arg(long, default_value = "dev", env = "HARNESS_PROFILE")]
    pub profile: String,
    /// IAM enforcement by the gateway in front of the emulator: `enforce`
    /// denies what AWS would deny, `audit` forwards but records it, `off`
    /// runs no gateway (LocalStack's free edition checks no IAM at all).
    #[arg(long, value_enum, default_value = "enforce", env = "HARNESS_IAM")]
    pub iam: Mode,
    /// Whose permissions deploy the stacks: `deploy-role` (the tooling
    /// account's CI role through each account's deploy role, as CI deploys)
    /// or `root` (each account's root; no deploy permission is checked).
    #[arg(
        long,
        value_enum,
        default_value = "deploy-role",
        env = "HARNESS_DEPLOY_AS"
    )]
    #[serde(default)]
    pub deploy_as: DeployAs,
}

/// Parses the command line's defaults into a [`SystemConfig`].
#[derive(Parser)]
struct Defaults {
    #[command(flatten)]
    config: SystemConfig,
}

impl SystemConfig {
    /// The command line's defaults (and `HARNESS_*` variables where set).
    pub fn defaults() -> Result<Self, HarnessError> {
        Defaults::try_parse_from(["harness"])
            .map(|d| d.config)
            .map_err(|e| HarnessError::Config(e.to_string()))
    }

    /// The two accounts.
    pub fn accounts(&self) -> Accounts {
        Accounts {
            callee: self.callee_account.clone(),
            caller: self.caller_account.clone(),
        }
    }

    /// How the stacks are deployed for this system, with the callee sending to
    /// `smtp_port` and, when the relay demands them, STARTTLS and AUTH with
    /// `smtp_credentials`.
    pub fn deploy_config(
        &self,
        smtp_port: u16,
        smtp_credentials: Option<&SmtpCredentials>,
        root_keys: &RootKeys,
        ci_issuer: Option<&CiIssuer>,
        quiet: bool,
    ) -> DeployConfig {
        DeployConfig {
            accounts: self.accounts(),
            templates_dir: crate::workspace::templates_dir(),
            smtp_host: self.smtp_host().to_owned(),
            smtp_port,
            smtp_tls: match smtp_credentials {
                Some(_) => SMTP_TLS,
                None => SMTP_TLS_WITHOUT_CA,
            },
            smtp_credentials: smtp_credentials.cloned(),
            mail_from: self.mail_from.clone(),
            allowed_domains: self.allowed_domains.clone(),
            allowed_instance_hosts: self.allowed_instance_hosts.clone(),
            suffix: None,
            overrides: DeployOverrides::default(),
            root_keys: root_keys.clone(),
            deploy_as: self.deploy_as,
            ci_issuer: ci_issuer.cloned(),
            quiet,
        }
    }

    /// The host the lambdas reach this machine's gateway and SMTP relay at:
    /// loopback, where they run as this machine's processes (host, and an
    /// external emulator on it), or Docker's name for the host from inside
    /// a container.
    pub fn host_for_lambdas(&self) -> &str {
        match self.backend {
            Backend::Container => crate::emulator::container::HOST_ALIAS,
            Backend::Host | Backend::External => "127.0.0.1",
        }
    }

    /// The SMTP host the callee is deployed with.
    pub fn smtp_host(&self) -> &str {
        self.smtp_host_for_lambdas
            .as_deref()
            .unwrap_or_else(|| self.host_for_lambdas())
    }

    /// How far the emulator's clock may lag this machine's, for reading a
    /// call's log events by time. LocalStack stamps a function's log events
    /// when it stores them, after the invocation (its `LogHandler`); a host
    /// emulator does so by this machine's clock, so a call's events are never
    /// older than the call. Reading from a second earlier cost each read the
    /// previous calls' events: 7.1 ms instead of 4.4 ms per warm chain
    /// (measured, `harness bench`). Another machine's or a VM's clock may lag.
    pub fn log_clock_slack(&self) -> Duration {
        match self.backend {
            Backend::Host => Duration::ZERO,
            Backend::Container | Backend::External => Duration::from_secs(1),
        }
    }

    /// Whether a container emulator runs the harness's executor plugin: with
    /// the gateway on, to put it in front of the lambdas' calls.
    pub fn container_runs_plugin(&self) -> bool {
        self.backend == Backend::Container && self.iam != Mode::Off
    }

    /// Where the gateway and the SMTP relay listen: loopback, or every
    /// interface for a container, which reaches this host through Docker's
    /// bridge. The gateway still verifies every request's signature, and the
    /// relay demands AUTH over TLS.
    pub fn listen_ip(&self) -> IpAddr {
        match self.backend {
            Backend::Container => IpAddr::from([0, 0, 0, 0]),
            Backend::Host | Backend::External => IpAddr::from([127, 0, 0, 1]),
        }
    }

    /// How the lambdas are built for this system.
    pub fn build_options(&self, work_dir: &Path, quiet: bool) -> BuildOptions {
        BuildOptions {
            profile: self.profile.clone(),
            out_dir: work_dir.join("lambda"),
            // The harness's executor runs on the host, and in a container
            // behind the gateway; LocalStack's own executor needs no shim.
            with_shim: self.backend == Backend::Host || self.container_runs_plugin(),
            quiet,
        }
    }
}

/// A 12-digit AWS account id.
fn account_id(id: &str) -> Result<String, String> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id.to_owned())
    } else {
        Err(format!("an AWS account id has 12 digits, not `{id}`"))
    }
}

/// How this process runs a system, beyond what it is.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Logs, zips, mail spool and state go here.
    pub work_dir: PathBuf,
    /// Also write every captured email to `<work_dir>/mail`, for other processes.
    pub spool: bool,
    /// Make one call through the chain once deployed, and fail if it delivers no email.
    pub warm_up: bool,
    /// Serve the mail viewer here; `None` serves none.
    pub viewer: Option<SocketAddr>,
    /// Suppress progress output.
    pub quiet: bool,
}

/// How long each phase of `up` took.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// A system that is up, as its state file describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningSystem {
    /// The process that runs it.
    pub pid: u32,
    /// The emulator's process group (host backend).
    pub emulator_pgid: Option<i32>,
    /// What was brought up.
    pub config: SystemConfig,
    /// The AWS endpoint clients use (the IAM gateway, when one runs: `https://`).
    pub endpoint: String,
    /// The local CA's certificate (PEM) that signed the gateway's; `None`
    /// without a gateway. Public: clients trust it for `endpoint`.
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// The account roots' secret keys for this run; the file is private to its owner.
    pub root_keys: RootKeys,
    /// The gateway's decision log; `None` without a gateway.
    pub iam_log: Option<PathBuf>,
    /// The SMTP capture server's address.
    pub smtp: SocketAddr,
    /// The SMTP AUTH credentials of this run (the file is private to its
    /// owner); `None` when the relay offers no STARTTLS and AUTH.
    #[serde(default)]
    pub smtp_credentials: Option<SmtpCredentials>,
    /// Where captured emails are spooled; `None` when they stay in memory.
    pub mail_spool: Option<PathBuf>,
    /// The mail viewer's URL; `None` when none is served.
    #[serde(default)]
    pub viewer: Option<String>,
    /// The token that registers a call's faults with the gateway; `None` without a gateway.
    #[serde(default)]
    pub faults_token: Option<String>,
    /// Where the CI role's session is issued (the file is private to its
    /// owner); `None` without a gateway.
    #[serde(default)]
    pub ci_issuer: Option<CiIssuer>,
    /// The default deployment.
    pub deployment: Deployment,
    /// Phase timings of the start.
    pub timings: Timings,
}

/// The state file inside a work directory.
pub fn state_file(work_dir: &Path) -> PathBuf {
    work_dir.join("state.json")
}

impl RunningSystem {
    /// Writes the state file atomically.
    pub fn write(&self, work_dir: &Path) -> Result<(), HarnessError> {
        let file = state_file(work_dir);
        let tmp = file.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(self).map_err(|e| HarnessError::File {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        // Owner-only: the file holds this run's root keys.
        {
            use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(&json)?;
        }
        std::fs::rename(tmp, file)?;
        Ok(())
    }

    /// Reads the state of a running `harness up`; a stale file (its process
    /// gone) counts as not running.
    pub fn read(work_dir: &Path) -> Result<Self, HarnessError> {
        let file = state_file(work_dir);
        let text =
            std::fs::read_to_string(&file).map_err(|_| HarnessError::NotRunning(file.clone()))?;
        let state: Self = serde_json::from_str(&text).map_err(|e| HarnessError::File {
            path: file.clone(),
            reason: format!("unreadable state file: {e}"),
        })?;
        if !alive(state.pid) {
            return Err(HarnessError::NotRunning(file));
        }
        Ok(state)
    }

    /// Removes the state file.
    pub fn remove(work_dir: &Path) {
        let _ = std::fs::remove_file(state_file(work_dir));
    }

    /// The endpoint as SDK clients reach it, trusting the run's CA.
    pub fn aws_endpoint(&self) -> sdk_config::Endpoint {
        aws_endpoint(&self.endpoint, self.ca_pem.as_deref())
    }

    /// How the default stacks were deployed; variants start from it.
    pub fn deploy_config(&self, quiet: bool) -> DeployConfig {
        self.config.deploy_config(
            self.smtp.port(),
            self.smtp_credentials.as_ref(),
            &self.root_keys,
            self.ci_issuer.as_ref(),
            quiet,
        )
    }

    /// Where this system takes a call's faults, if it runs a gateway.
    pub fn faults_endpoint(&self) -> Option<FaultsEndpoint> {
        self.faults_token.as_ref().map(|token| FaultsEndpoint {
            // The gateway serves plain HTTP on its HTTPS port too.
            gateway: match self.endpoint.strip_prefix("https://") {
                Some(rest) => format!("http://{rest}"),
                None => self.endpoint.clone(),
            },
            token: token.clone(),
        })
    }

    /// Reaches this system from another process: SDK clients for its endpoint,
    /// its mail spool and its decision log.
    pub async fn connect(&self) -> Result<Target, HarnessError> {
        let spool = self.mail_spool.clone().ok_or_else(|| {
            HarnessError::Config(format!(
                "the running harness (pid {}) keeps its emails in memory; only `harness up` spools them for other processes",
                self.pid
            ))
        })?;
        Ok(Target {
            clients: Clients::new(
                &self.aws_endpoint(),
                &self.config.accounts(),
                &self.root_keys,
                self.config.log_clock_slack(),
            )
            .await,
            mailbox: Mailbox::Spool(spool),
            iam_log: self.iam_log.clone(),
            faults: self.faults_endpoint(),
        })
    }
}

/// The SDK's endpoint for `url`, trusting `ca_pem` when there is one.
fn aws_endpoint(url: &str, ca_pem: Option<&str>) -> sdk_config::Endpoint {
    match ca_pem {
        Some(pem) => sdk_config::Endpoint::trusting(url, pem),
        None => sdk_config::Endpoint::new(url),
    }
}

/// The local CA's certificate in a work directory: what the lambdas and a
/// user's AWS CLI (`harness env`) trust.
pub fn ca_file(work_dir: &Path) -> PathBuf {
    work_dir.join("ca.pem")
}

fn tls_error(err: local_ca::CaError) -> HarnessError {
    HarnessError::Config(format!("the harness's local CA: {err}"))
}

/// Whether a process exists.
pub fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

/// A system this process runs. Dropping it stops the emulator (and everything it runs).
pub struct System {
    /// What is up, as the state file records it.
    pub running: RunningSystem,
    /// The emulator.
    pub emulator: Emulator,
    /// The IAM gateway in front of it, unless `--iam off`.
    pub gateway: Option<GatewayHandle>,
    /// The SMTP capture server.
    pub capture: MailCapture,
    /// SDK configs for both accounts.
    pub clients: Clients,
    /// The built lambdas.
    pub artifacts: Artifacts,
    /// The mail viewer, when one is served.
    pub viewer: Option<ViewerHandle>,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("endpoint", &self.running.endpoint)
            .field("smtp", &self.running.smtp)
            .finish()
    }
}

/// The names a server certificate of this run is valid for: `host`, as the
/// lambdas reach the server, and loopback, as this machine's clients do.
fn certificate_names(host: &str) -> Vec<&str> {
    let mut names = vec![host];
    names.extend(
        ["127.0.0.1", "localhost"]
            .into_iter()
            .filter(|n| *n != host),
    );
    names
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl System {
    /// Starts everything, deploys, and (with `launch.warm_up`) makes one call through the chain.
    pub async fn up(config: &SystemConfig, launch: &Launch) -> Result<Self, HarnessError> {
        std::fs::create_dir_all(&launch.work_dir)?;
        // Bind SMTP first: a taken port should fail in a second, not after a build.
        let mail_spool = launch.spool.then(|| launch.work_dir.join("mail"));
        if let Some(dir) = &mail_spool {
            let _ = std::fs::remove_dir_all(dir);
        }
        // One fault book: the gateway serves it (and injects STS and Lambda
        // faults), the capture server injects SMTP faults from it.
        let with_gateway = config.iam != Mode::Off;
        let faults = with_gateway.then(|| {
            SharedFaultBook(std::sync::Arc::new(FaultBook::new(
                sdk_config::random_secret(),
            )))
        });
        let host = config.backend == Backend::Host;
        // With the gateway on, it stands in front of the lambdas' calls on
        // every backend: the harness configures their executor, in a host
        // emulator it starts, or in a container or an external emulator it
        // attaches to the gateway.
        let listen_ip = config.listen_ip();
        let lambda_host = config.host_for_lambdas();
        // A fresh CA per run: it signs the gateway's and the SMTP relay's
        // certificates, its key stays in this process, and its certificate is
        // what every client trusts. The lambdas get it from a host emulator's
        // environment, or from the attach of an external one.
        let ca = local_ca::LocalCa::generate().map_err(tls_error)?;
        let smtp_security = if host || with_gateway {
            Some(SmtpSecurity {
                tls: ca
                    .server_config(&certificate_names(config.smtp_host()))
                    .map_err(tls_error)?,
                credentials: SmtpCredentials::generate(),
            })
        } else {
            None
        };
        let smtp_credentials = smtp_security.as_ref().map(|s| s.credentials.clone());
        let capture = MailCapture::start(CaptureConfig {
            bind: SocketAddr::from((listen_ip, config.smtp_port)),
            spool_dir: mail_spool.clone(),
            faults: faults.clone(),
            security: smtp_security,
        })?;
        let viewer_listener = launch.viewer.map(viewer::bind).transpose()?;

        let build_started = Instant::now();
        let build = config.build_options(&launch.work_dir, launch.quiet);
        let artifacts = tokio::task::spawn_blocking(move || package::build(&build))
            .await
            .map_err(|e| HarnessError::Build(e.to_string()))??;
        let build_ms = ms(build_started.elapsed());

        // With the IAM gateway, it takes the public port and LocalStack a private
        // one; every client, the lambdas included, goes through the gateway.
        let public = if host || with_gateway {
            // Port 0 means any free port, as for the SMTP capture.
            let port = match config.gateway_port {
                0 => free_port()?,
                port => port,
            };
            SocketAddr::from((listen_ip, port))
        } else {
            SocketAddr::from(([127, 0, 0, 1], 0))
        };
        // The gateway as the lambdas reach it.
        let lambda_gateway = format!("{lambda_host}:{}", public.port());
        let lambda_endpoint = format!("https://{lambda_gateway}");
        let emulator_gateway = if with_gateway && host {
            SocketAddr::from(([127, 0, 0, 1], free_port()?))
        } else {
            public
        };
        if with_gateway {
            // Fail fast, naming the public port, before LocalStack starts.
            drop(std::net::TcpListener::bind(public).map_err(|source| {
                HarnessError::PortInUse {
                    what: "the IAM gateway",
                    port: public.port(),
                    source,
                }
            })?);
        }
        // Fresh root keys per run; the gateway verifies every signature against
        // them and issues the functions' execution-role keys to the executor,
        // which proves itself with `issuer_token`.
        let accounts = config.accounts();
        let root_keys = RootKeys::generate([
            accounts.callee.as_str(),
            accounts.caller.as_str(),
            OUTSIDE_ACCOUNT,
        ]);
        let ca_file = if host {
            let file = ca_file(&launch.work_dir);
            std::fs::write(&file, ca.certificate_pem())?;
            Some(file)
        } else {
            None
        };
        let tls = if with_gateway {
            let server = ca
                .server_config(&certificate_names(lambda_host))
                .map_err(tls_error)?;
            Some((ca.certificate_pem(), server))
        } else {
            None
        };
        let issuer_token = sdk_config::random_secret();
        let issuer = with_gateway.then(|| {
            (
                format!("http://{lambda_gateway}{}", iam_gateway::ISSUE_PATH),
                issuer_token.clone(),
            )
        });
        let emulator = Emulator::start(&EmulatorOptions {
            backend: config.backend,
            gateway: emulator_gateway,
            endpoint: config.endpoint.clone(),
            image: config.image.clone(),
            runtime_shim: artifacts.runtime_shim.clone().unwrap_or_default(),
            container_plugin: config.container_runs_plugin(),
            work_dir: launch.work_dir.clone(),
            lambda_endpoint: tls.as_ref().map(|_| lambda_endpoint.clone()),
            lambda_ca_file: ca_file,
            credentials_issuer: issuer.clone(),
            quiet: launch.quiet,
        })
        .await?;
        let iam_log = with_gateway.then(|| launch.work_dir.join("iam-decisions.jsonl"));
        let gateway = match &iam_log {
            Some(log) => {
                let _ = std::fs::remove_file(log);
                let mut gateway = GatewayConfig::new(public, emulator.endpoint());
                gateway.mode = config.iam;
                gateway.log_file = Some(log.clone());
                gateway.root_keys = root_keys.clone();
                gateway.issuer_token = issuer.as_ref().map(|(_, token)| token.clone());
                gateway.faults = faults.clone();
                gateway.tls = tls.as_ref().map(|(_, server)| server.clone());
                gateway.resource_schemas = Some(resource_schemas::ensure(launch.quiet)?);
                Some(Gateway::start(gateway).await?)
            }
            None => None,
        };
        if let (
            Backend::External | Backend::Container,
            Some((ca_pem, _)),
            Some((issue_url, token)),
        ) = (config.backend, &tls, &issuer)
        {
            // Before anything is deployed: every function must start with them.
            emulator::attach(
                emulator.endpoint(),
                &emulator::Attach {
                    lambda_endpoint,
                    ca_pem: ca_pem.clone(),
                    credentials_url: issue_url.clone(),
                    credentials_token: token.clone(),
                },
            )
            .await?;
        }
        let emulator_start_ms = ms(emulator.started_in);
        let endpoint = match &gateway {
            Some(g) => g.url(),
            None => emulator.endpoint().to_owned(),
        };
        let ca_pem = tls.map(|(pem, _)| pem);
        let aws_endpoint = aws_endpoint(&endpoint, ca_pem.as_deref());

        let ci_issuer = gateway
            .as_ref()
            .zip(issuer.as_ref())
            .map(|(gateway, (_, token))| CiIssuer {
                url: format!("{}{}", gateway.plain_url(), iam_gateway::ISSUE_PATH),
                token: token.clone(),
            });
        let deploy_started = Instant::now();
        let deployment = deploy::deploy(
            &aws_endpoint,
            &artifacts,
            &config.deploy_config(
                capture.addr().port(),
                smtp_credentials.as_ref(),
                &root_keys,
                ci_issuer.as_ref(),
                launch.quiet,
            ),
        )
        .await?;
        let deploy_ms = ms(deploy_started.elapsed());

        let clients = Clients::new(
            &aws_endpoint,
            &accounts,
            &root_keys,
            config.log_clock_slack(),
        )
        .await;
        let mut system = Self {
            running: RunningSystem {
                pid: std::process::id(),
                emulator_pgid: emulator.pgid(),
                config: config.clone(),
                endpoint,
                ca_pem,
                root_keys,
                iam_log,
                smtp: capture.addr(),
                smtp_credentials,
                mail_spool,
                viewer: None,
                faults_token: faults.as_ref().map(|book| book.token().to_owned()),
                ci_issuer,
                deployment,
                timings: Timings {
                    build_ms,
                    emulator_start_ms,
                    deploy_ms,
                    first_invoke_ms: None,
                },
            },
            emulator,
            gateway,
            capture,
            clients,
            artifacts,
            viewer: None,
        };
        if let Some(listener) = viewer_listener {
            let handle = viewer::start(
                listener,
                ViewerSources {
                    capture: system.capture.clone(),
                    iam_log: system.running.iam_log.clone(),
                    clients: system.clients.clone(),
                    deployment: system.running.deployment.clone(),
                    reports_dir: crate::workspace::reports_dir(&launch.work_dir),
                },
            )?;
            system.running.viewer = Some(handle.url());
            system.viewer = Some(handle);
        }
        if launch.warm_up {
            let started = Instant::now();
            let outcome = system
                .call(warm_up_call(&config.allowed_domains), EmailWait::NONE)
                .await?
                .outcome;
            if outcome.status != OutcomeStatus::Success || outcome.emails.len() != 1 {
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
            system.running.timings.first_invoke_ms = Some(ms(started.elapsed()));
        }
        Ok(system)
    }

    /// How calls reach this system: its clients, its capture server, its decision log.
    pub fn target(&self) -> Target {
        Target {
            clients: self.clients.clone(),
            mailbox: Mailbox::InProcess(self.capture.clone()),
            iam_log: self.running.iam_log.clone(),
            faults: self.running.faults_endpoint(),
        }
    }

    /// Makes one call against the default deployment and observes it.
    pub async fn call(&self, call: Call, wait: EmailWait) -> Result<Observation, HarnessError> {
        Ok(observe::observe(&self.target(), &self.running.deployment, &call, wait).await?)
    }
}

/// A free loopback port (closed again before its user binds it).
fn free_port() -> Result<u16, HarnessError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The warm-up call: a valid alert through the whole chain (caller, STS,
/// callee, SMTP), which leaves an environment of each lambda warm.
pub fn warm_up_call(allowed_domains: &str) -> Call {
    Call::new(
        Via::Caller,
        warm_up_payload(allowed_domains),
        InvocationType::RequestResponse,
    )
}

/// A valid payload for the warm-up call; its email goes to a harness address
/// at the first allowed domain.
pub fn warm_up_payload(allowed_domains: &str) -> Vec<u8> {
    let domain = allowed_domains
        .split(',')
        .map(str::trim)
        .find(|d| !d.is_empty())
        .unwrap_or("example.com");
    serde_json::json!({
        "alert": {
            "number": "INC0000000",
            "sys_id": "00000000000000000000000000000000",
            "short_description": "harness warm-up",
            "priority": 5,
            "state": "New"
        },
        "recipients": { "to": [format!("harness-warmup@{domain}")] }
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
impl RunningSystem {
    /// A plausible state of process `pid`, for tests.
    pub(crate) fn example(pid: u32) -> RunningSystem {
        RunningSystem {
            pid,
            emulator_pgid: None,
            config: SystemConfig::defaults().expect("defaults"),
            endpoint: "https://127.0.0.1:4566".into(),
            ca_pem: Some("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".into()),
            root_keys: RootKeys::generate(["111111111111", "222222222222", OUTSIDE_ACCOUNT]),
            iam_log: None,
            smtp: "127.0.0.1:2525".parse().expect("address"),
            smtp_credentials: Some(SmtpCredentials::generate()),
            mail_spool: None,
            viewer: None,
            faults_token: None,
            ci_issuer: Some(CiIssuer {
                url: "http://127.0.0.1:4566/_harness/execution-role-credentials".into(),
                token: "issuer-token-for-tests".into(),
            }),
            deployment: Deployment {
                accounts: Accounts::default(),
                stacks: Default::default(),
                callee_function_arn: String::new(),
                callee_function_name: String::new(),
                callee_log_group: String::new(),
                cross_account_role_arn: String::new(),
                caller_function_arn: String::new(),
                caller_function_name: String::new(),
                caller_log_group: String::new(),
                caller_role_arn: String::new(),
                outputs: Default::default(),
                deployers: Default::default(),
            },
            timings: Timings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn running(pid: u32) -> RunningSystem {
        RunningSystem::example(pid)
    }

    #[test]
    fn a_state_of_a_dead_process_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        running(dead).write(dir.path()).unwrap();

        assert!(matches!(
            RunningSystem::read(dir.path()),
            Err(HarnessError::NotRunning(_))
        ));

        let live = running(std::process::id());
        live.write(dir.path()).unwrap();
        assert_eq!(RunningSystem::read(dir.path()).unwrap(), live);
    }

    #[rstest]
    #[case::host(Backend::Host, None, "127.0.0.1", "127.0.0.1", [127, 0, 0, 1])]
    #[case::external(Backend::External, None, "127.0.0.1", "127.0.0.1", [127, 0, 0, 1])]
    #[case::container(
        Backend::Container,
        None,
        "host.docker.internal",
        "host.docker.internal",
        [0, 0, 0, 0]
    )]
    #[case::container_smtp_given(
        Backend::Container,
        Some("172.17.0.1"),
        "host.docker.internal",
        "172.17.0.1",
        [0, 0, 0, 0]
    )]
    fn the_lambdas_reach_the_gateway_and_relay_from_where_they_run(
        #[case] backend: Backend,
        #[case] smtp_given: Option<&str>,
        #[case] gateway_host: &str,
        #[case] smtp_host: &str,
        #[case] listen: [u8; 4],
    ) {
        let mut config = SystemConfig::defaults().expect("defaults");
        config.backend = backend;
        config.smtp_host_for_lambdas = smtp_given.map(str::to_owned);
        assert_eq!(config.host_for_lambdas(), gateway_host);
        assert_eq!(config.smtp_host(), smtp_host);
        assert_eq!(config.listen_ip(), IpAddr::from(listen));
    }

    #[rstest]
    #[case::host_stamps_by_this_clock(Backend::Host, 0)]
    #[case::container(Backend::Container, 1000)]
    #[case::external(Backend::External, 1000)]
    fn logs_are_read_with_slack_only_for_another_clock(
        #[case] backend: Backend,
        #[case] slack_ms: u64,
    ) {
        let mut config = SystemConfig::defaults().expect("defaults");
        config.backend = backend;
        assert_eq!(config.log_clock_slack(), Duration::from_millis(slack_ms));
    }

    #[rstest]
    #[case(Backend::Host, Mode::Enforce, true)]
    #[case(Backend::Container, Mode::Enforce, true)]
    #[case(Backend::Container, Mode::Audit, true)]
    #[case(Backend::Container, Mode::Off, false)]
    #[case(Backend::External, Mode::Enforce, false)]
    fn the_shim_is_built_where_the_harness_executor_runs_from_this_build(
        #[case] backend: Backend,
        #[case] iam: Mode,
        #[case] with_shim: bool,
    ) {
        let mut config = SystemConfig::defaults().expect("defaults");
        config.backend = backend;
        config.iam = iam;
        let build = config.build_options(Path::new("/work"), true);
        assert_eq!(build.with_shim, with_shim);
    }

    #[test]
    fn the_state_file_holding_root_keys_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        running(std::process::id()).write(dir.path()).unwrap();
        let mode = std::fs::metadata(state_file(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn no_state_file_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let err = RunningSystem::read(dir.path()).unwrap_err();
        assert!(err.to_string().contains("harness up"), "{err}");
    }

    #[test]
    fn the_default_deploy_sends_over_required_starttls_with_the_runs_credentials() {
        let config = SystemConfig::defaults().expect("defaults");
        let credentials = SmtpCredentials::generate();

        let keys = RootKeys::generate(["111111111111", "222222222222"]);
        let deploy = config.deploy_config(40125, Some(&credentials), &keys, None, true);

        assert_eq!(deploy.smtp_port, 40125);
        assert_eq!(deploy.smtp_tls, TlsMode::Required);
        assert_eq!(deploy.smtp_credentials, Some(credentials));
        assert_eq!(deploy.accounts, Accounts::default());
        assert_eq!(deploy.root_keys, keys);
        assert!(deploy.overrides.is_empty() && deploy.suffix.is_none());
    }

    #[test]
    fn without_relay_security_the_deploy_sends_in_clear_without_auth() {
        let config = SystemConfig::defaults().expect("defaults");
        let keys = RootKeys::generate(["111111111111", "222222222222"]);

        let deploy = config.deploy_config(40125, None, &keys, None, true);

        assert_eq!(deploy.smtp_tls, TlsMode::None);
        assert_eq!(deploy.smtp_credentials, None);
    }

    #[test]
    fn the_smtp_password_never_shows_in_debug_output() {
        let state = running(std::process::id());
        let password = state
            .smtp_credentials
            .clone()
            .expect("credentials")
            .password;

        let shown = format!("{state:?} {:?}", state.deploy_config(true));

        assert!(!shown.contains(&password), "{shown}");
        assert!(!shown.contains("issuer-token-for-tests"), "{shown}");
    }

    #[test]
    fn deploys_go_through_the_deploy_roles_unless_told_root() {
        let state = running(std::process::id());
        let deploy = state.deploy_config(true);
        assert_eq!(deploy.deploy_as, DeployAs::DeployRole);
        assert_eq!(deploy.ci_issuer, state.ci_issuer);
        let mut config = SystemConfig::defaults().expect("defaults");
        config.deploy_as = DeployAs::Root;
        let keys = RootKeys::generate(["111111111111"]);
        assert_eq!(
            config.deploy_config(1, None, &keys, None, true).deploy_as,
            DeployAs::Root
        );
    }

    #[rstest]
    #[case::twelve_digits("111111111111", true)]
    #[case::too_short("11111111111", false)]
    #[case::letters("11111111111a", false)]
    fn accounts_are_twelve_digits(#[case] id: &str, #[case] ok: bool) {
        assert_eq!(account_id(id).is_ok(), ok);
    }

    #[test]
    fn the_warm_up_payload_goes_to_the_first_allowed_domain() {
        let payload: serde_json::Value =
            serde_json::from_slice(&warm_up_payload(" , corp.test,example.com")).unwrap();
        assert_eq!(payload["recipients"]["to"][0], "harness-warmup@corp.test");
    }
}
