//! The harness: runs the cross-account alerting lambdas on one machine against
//! LocalStack and an embedded SMTP server, deploys the four stacks into two
//! emulated accounts, and invokes the chain.
#![warn(missing_docs)]

pub mod aws;
pub mod cli;
pub mod deploy;
pub mod emulator;
pub mod error;
pub mod gateway;
pub mod invoke;
pub mod package;
pub mod progress;
pub mod runner;
pub mod smtp;
pub mod state;
pub mod system;

pub use error::HarnessError;

/// The SMTP port the callee sends to by default.
pub const DEFAULT_SMTP_PORT: u16 = 2525;

/// LocalStack's usual gateway port.
pub const DEFAULT_GATEWAY_PORT: u16 = 4566;
