//! The IAM gateway: a reverse proxy in front of LocalStack that enforces what
//! LocalStack's free edition does not: SigV4 signatures, `sts:AssumeRole`
//! trust and identity policies, and Lambda function policies and identity
//! policies for invokes and every other operation on a function.
//!
//! Every AWS client (the lambdas, the harness, a user's SDK or CLI) uses the
//! gateway's URL as its endpoint. The gateway verifies each signature against
//! the secret it knows for the key (the run's root keys, sessions it saw
//! minted, the functions' execution-role keys it issued), asks [`iam_policy`]
//! what AWS would decide, and either forwards the request unchanged or
//! answers with AWS's own error. S3 requests are decided with the bucket
//! policy (which binds an account root too) and, for an object S3 encrypts
//! with SSE-KMS, the `kms:GenerateDataKey` S3 asks for on the caller's behalf
//! against the key policy. Requests to other services are decided on the
//! caller's identity policies; KMS key policies of direct KMS calls are not
//! read yet, and the log says so. Every
//! request is recorded in a decision log (memory, and JSON lines in a file
//! when configured), so nobody mistakes an unchecked request for a checked one.
//!
//! # Transport
//! With [`GatewayConfig::tls`] one port serves HTTPS and plain HTTP alike;
//! `aws:SecureTransport` is true exactly for a request that came over TLS.
//!
//! # Modes
//! - [`Mode::Enforce`]: denials get AWS's error and are never forwarded.
//! - [`Mode::Audit`]: everything is forwarded; denials are logged as `would_deny`.
//! - [`Mode::Off`]: a plain proxy; nothing is evaluated or logged (overhead is still measured).
//!
//! # Policy cache
//! Roles, identity policies and function policies are cached for
//! [`GatewayConfig::policy_ttl`] and dropped whenever a request passes that
//! may change them: IAM requests other than `Get*`/`List*`, Lambda requests
//! other than `GET`/`HEAD` (invokes excluded), S3 writes of a bucket's
//! policy or encryption. A deploy's changes are made by the emulator's
//! resource handlers, which the executor plugin reports after each run
//! (`POST /_harness/handler-ran`, see `deploy_check.rs`); the gateway then
//! drops only what that resource can hold (`stale.rs`). A gateway without an
//! executor to report them (no issuer token) drops the caches on every
//! CloudFormation request.
//! Changes made behind the gateway's back (straight to the upstream) show
//! after the TTL.
//!
//! # Example
//! ```no_run
//! # async fn run() -> Result<(), iam_gateway::GatewayError> {
//! use iam_gateway::{Gateway, GatewayConfig, Mode};
//!
//! let mut config = GatewayConfig::new("127.0.0.1:0".parse().expect("address"), "http://127.0.0.1:4566");
//! config.mode = Mode::Enforce;
//! let gateway = Gateway::start(config).await?;
//! println!("point AWS_ENDPOINT_URL at {}", gateway.url());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod aws_error;
mod classify;
mod decide;
mod deploy_check;
mod error;
mod explain;
mod faults;
mod issue;
mod keys;
mod lambda_rules;
mod log;
mod policies;
mod proxy;
mod s3;
mod signature;
mod sigv4;
mod stale;
pub mod xml;

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use xray_trace::TraceId;

use sdk_config::RootKeys;
use serde::{Deserialize, Serialize};

pub use self::{
    deploy_check::{CheckAnswer, CheckRequest, DEPLOY_CHECK_PATH, PermissionDecision},
    error::GatewayError,
    explain::{HopExplanation, explain, explain_proposed, format_explanation},
    issue::{ISSUE_PATH, ISSUER_TOKEN_HEADER},
    log::{
        DecidingStatement, DecisionRecord, Ruling, abbreviate_arn, format_chain, read_log,
        read_log_of,
    },
    policies::ProposedPolicies,
    proxy::OverheadStats,
};

/// How long roles and policies stay cached when nothing invalidates them.
pub const DEFAULT_POLICY_TTL: Duration = Duration::from_secs(5);

/// What the gateway does with requests AWS would deny.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Answer with AWS's error; never forward.
    #[default]
    Enforce,
    /// Forward, but log `would_deny`.
    Audit,
    /// Plain proxy: evaluate and log nothing.
    Off,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Enforce => "enforce",
            Self::Audit => "audit",
            Self::Off => "off",
        })
    }
}

/// How to run a gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where to listen, e.g. `127.0.0.1:4566`; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The backend to forward to, e.g. `http://127.0.0.1:4567` (plain HTTP, no path).
    pub upstream: String,
    /// Enforce, audit or off.
    pub mode: Mode,
    /// Append every decision as a JSON line to this file, for other processes ([`read_log`]).
    pub log_file: Option<PathBuf>,
    /// How long fetched roles and policies are reused.
    pub policy_ttl: Duration,
    /// The account roots' secrets; every signature is verified against the
    /// secret of its key (these, or a session the gateway issued or saw issued).
    pub root_keys: RootKeys,
    /// The token the emulator's executor presents at [`ISSUE_PATH`] to get a
    /// function's execution-role credentials; `None` issues none.
    pub issuer_token: Option<String>,
    /// The scenario faults to inject, served at [`fault_plan::FAULTS_PATH`]; `None` injects none.
    pub faults: Option<fault_plan::SharedFaultBook>,
    /// Serve HTTPS with this configuration as well as plain HTTP, on the same
    /// port (told apart by the first byte a client sends). A request that came
    /// over TLS is evaluated with `aws:SecureTransport` true, any other false.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The CloudFormation resource schemas that say which permissions each
    /// resource handler needs; `None` denies every deploy check of a
    /// principal other than the stack account's root.
    pub resource_schemas: Option<Arc<deploy_permissions::Schemas>>,
}

impl GatewayConfig {
    /// Enforcing, no log file, the default policy TTL.
    pub fn new(listen: SocketAddr, upstream: impl Into<String>) -> Self {
        Self {
            listen,
            upstream: upstream.into(),
            mode: Mode::default(),
            log_file: None,
            policy_ttl: DEFAULT_POLICY_TTL,
            root_keys: RootKeys::default(),
            issuer_token: None,
            faults: None,
            tls: None,
            resource_schemas: None,
        }
    }
}

/// Starts gateways.
#[derive(Debug)]
pub struct Gateway;

impl Gateway {
    /// Binds `config.listen` and serves until the returned handle is dropped.
    ///
    /// Must be called inside a Tokio runtime; the server runs on it.
    pub async fn start(config: GatewayConfig) -> Result<GatewayHandle, GatewayError> {
        proxy::start(config).await
    }
}

/// A running gateway. Dropping it stops the server.
pub struct GatewayHandle {
    addr: SocketAddr,
    state: Arc<proxy::State>,
    // Dropping the sender is the shutdown signal every task waits on.
    _shutdown: tokio::sync::watch::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayHandle")
            .field("addr", &self.addr)
            .field("mode", &self.state.mode)
            .finish()
    }
}

impl GatewayHandle {
    /// The address the gateway listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL for AWS clients on this machine: `https://<addr>` when
    /// the gateway serves TLS, `http://<addr>` otherwise, with loopback for
    /// the address when it listens on every interface.
    pub fn url(&self) -> String {
        let scheme = if self.state.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.local_addr())
    }

    /// The plain-HTTP URL of the same port, `http://<addr>`: requests sent there
    /// are evaluated with `aws:SecureTransport` false.
    pub fn plain_url(&self) -> String {
        format!("http://{}", self.local_addr())
    }

    /// Where a client on this machine reaches the gateway.
    fn local_addr(&self) -> SocketAddr {
        match self.addr.ip() {
            ip if ip.is_unspecified() => SocketAddr::new(
                match ip {
                    IpAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
                    IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                },
                self.addr.port(),
            ),
            _ => self.addr,
        }
    }

    /// The file decisions are appended to, if any.
    pub fn log_file(&self) -> Option<&Path> {
        self.state.log.path()
    }

    /// Every decision still in memory, oldest first.
    pub fn decisions(&self) -> Vec<DecisionRecord> {
        self.state.log.all()
    }

    /// The decisions of one `X-Amzn-Trace-Id` root, oldest first.
    pub fn decisions_of(&self, trace: &TraceId) -> Vec<DecisionRecord> {
        self.state.log.of_trace(trace)
    }

    /// Time the gateway added per request (its own work, not the upstream's).
    pub fn overhead(&self) -> OverheadStats {
        self.state.overhead_stats()
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
