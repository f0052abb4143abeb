//! Errors of the runtime shim.

use std::{io, path::PathBuf};

/// Everything that can go wrong while the shim runs one execution environment.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// A required environment variable is missing or empty.
    #[error("environment variable {name} is not set: the LocalStack executor plugin must pass it")]
    MissingEnv {
        /// Name of the variable.
        name: &'static str,
    },
    /// An environment variable holds a value the shim cannot use.
    #[error("environment variable {name} has an invalid value {value:?}: {reason}")]
    InvalidEnv {
        /// Name of the variable.
        name: &'static str,
        /// The offending value.
        value: String,
        /// What a valid value looks like.
        reason: &'static str,
    },
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address the shim tried to bind.
        addr: String,
        /// Underlying I/O error.
        source: io::Error,
    },
    /// The function's bootstrap could not be started.
    #[error("cannot start bootstrap {path}: {source}")]
    Spawn {
        /// Path of the bootstrap executable.
        path: PathBuf,
        /// Underlying I/O error.
        source: io::Error,
    },
    /// The pipe that captures the bootstrap's output could not be set up.
    #[error("cannot capture the bootstrap's output: {0}")]
    Capture(#[source] io::Error),
    /// A callback to LocalStack's executor endpoint failed.
    #[error("callback {url} to localstack failed: {reason}")]
    Callback {
        /// URL the shim posted to.
        url: String,
        /// Why it failed (transport error or HTTP status).
        reason: String,
    },
    /// The function's initialisation failed, so the environment never became ready.
    #[error("function init failed: {message}")]
    InitFailed {
        /// The error message reported to LocalStack.
        message: String,
    },
}
