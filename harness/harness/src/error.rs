//! Errors of the harness library.

use std::path::PathBuf;

/// Everything that can go wrong while bringing the system up, deploying or invoking.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A port the harness needs is taken.
    #[error(
        "port {port} is already in use: {what} cannot listen there (stop whatever holds it, or choose another port)"
    )]
    PortInUse {
        /// What wanted the port.
        what: &'static str,
        /// The port.
        port: u16,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
    /// python3 could not be found or run.
    #[error(
        "python3 was not found ({tried}): the host backend runs LocalStack from PyPI and needs Python 3.11 or later with the venv module; install python3, set HARNESS_PYTHON, or use --backend container|external"
    )]
    PythonMissing {
        /// The interpreter that was tried.
        tried: String,
    },
    /// Creating the LocalStack virtual environment failed.
    #[error("could not create the LocalStack venv at {path}: {reason}")]
    Venv {
        /// The venv directory.
        path: PathBuf,
        /// What failed, with the tail of pip's output.
        reason: String,
    },
    /// The emulator did not start or answer.
    #[error("the emulator did not become ready: {0}")]
    EmulatorStart(String),
    /// No Docker engine is reachable for the container backend.
    #[error(
        "the container backend needs a Docker engine, and none answered ({0}); use --backend host (the default) on machines without Docker"
    )]
    DockerUnavailable(String),
    /// Building or packaging a lambda failed.
    #[error("could not build the lambdas: {0}")]
    Build(String),
    /// A CloudFormation stack failed to deploy.
    #[error("stack {stack} failed ({status}):\n{events}")]
    StackFailed {
        /// The stack name.
        stack: String,
        /// Its final status.
        status: String,
        /// The failing resources and their reasons.
        events: String,
    },
    /// An AWS call failed.
    #[error("{operation} failed: {message}")]
    Aws {
        /// The operation, e.g. `s3:PutObject`.
        operation: String,
        /// The error with its cause chain.
        message: String,
    },
    /// No running `harness up` was found.
    #[error("no running harness found (state file {0}); start one with `harness up`")]
    NotRunning(PathBuf),
    /// A file could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Scenario files that cannot be run: each error names its file, line and key.
    #[error(transparent)]
    Scenarios(#[from] scenario::ScenarioError),
    /// The SMTP capture server failed.
    #[error("SMTP capture: {0}")]
    Smtp(String),
    /// Options that cannot work together, or a system that cannot do what was asked.
    #[error("{0}")]
    Config(String),
    /// The IAM gateway failed to start or to answer.
    #[error(transparent)]
    Gateway(#[from] iam_gateway::GatewayError),
    /// Part of a call's observation could not be read.
    #[error(transparent)]
    Observe(#[from] crate::observe::ObserveError),
    /// An I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl HarnessError {
    /// Wraps an SDK error with the operation that failed, keeping AWS's code and message.
    pub fn aws<E>(operation: &str, err: E) -> Self
    where
        E: std::error::Error + 'static,
    {
        Self::Aws {
            operation: operation.to_string(),
            message: aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
        }
    }
}
