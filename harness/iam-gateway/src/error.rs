//! Errors of the IAM gateway.

use std::path::PathBuf;

use iam_policy::PolicyError;

/// Everything that can go wrong while starting the gateway, fetching what it
/// evaluates, explaining the chain, or reading its decision log. A request
/// whose evaluation fails with one of these is denied, never forwarded.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The listening port is taken.
    #[error(
        "port {port} is already in use: the IAM gateway cannot listen there (stop whatever holds it, or choose another port)"
    )]
    PortInUse {
        /// The port.
        port: u16,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
    /// The upstream is not a plain `http://host:port` URL.
    #[error("the IAM gateway's upstream `{upstream}` {reason}; give it as http://host:port")]
    BadUpstream {
        /// The URL as given.
        upstream: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A call to the upstream's AWS API failed.
    #[error("{operation} failed")]
    Aws {
        /// The operation, e.g. `iam:GetRole`.
        operation: &'static str,
        /// The SDK error, with AWS's code and message.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The upstream answered, but without what the gateway needs.
    #[error("{operation} answered without {missing}")]
    IncompleteAnswer {
        /// The operation.
        operation: &'static str,
        /// What was missing, e.g. `the Role of arn:aws:iam::…`.
        missing: String,
    },
    /// An ARN, policy or principal the evaluator cannot read.
    #[error("{what} cannot be evaluated")]
    Policy {
        /// What was being read, e.g. `the trust policy of arn:aws:iam::…`.
        what: String,
        /// The evaluator's reason.
        #[source]
        source: PolicyError,
    },
    /// A policy document that is neither JSON nor URL-encoded JSON.
    #[error("{what}: the policy document is neither JSON nor URL-encoded JSON")]
    PolicyEncoding {
        /// Which policy.
        what: String,
    },
    /// What `explain` was given, or found in the caller's configuration, is not usable.
    #[error("{0}")]
    Explain(String),
    /// The decision log could not be created, written or read.
    #[error("the decision log {path}: {action}")]
    Log {
        /// The log file (or its directory).
        path: PathBuf,
        /// What failed, e.g. `cannot be read`.
        action: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Any other I/O error while serving.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl GatewayError {
    /// Wraps an SDK error with the operation that failed; the source keeps AWS's code and message.
    pub fn aws<E>(operation: &'static str, err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Self::Aws {
            operation,
            source: Box::new(err),
        }
    }

    /// The whole cause chain on one line, as the gateway logs and explains it.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}
