//! The invoker lambda (caller, account B): assumes the cross-account role in the callee's
//! account with STS and invokes the ServiceNow alerting lambda with the assumed credentials.
//!
//! The incoming payload is forwarded byte-for-byte and the callee's response returned unchanged.
//! Failures surface as stable `errorType`s; see [`error`] for the exact `errorMessage` formats.
#![warn(missing_docs)]

pub mod aws;
pub mod config;
pub mod error;
pub mod invoker;

pub use config::{Config, RetryPolicy};
pub use error::{AwsFault, CalleeFault, CallerError, ConfigError};
pub use invoker::Invoker;
