//! The harness: runs the cross-account alerting lambdas on one machine against
//! LocalStack, with the IAM gateway in front of it and an embedded SMTP
//! server; deploys the four stacks into two emulated accounts; observes calls
//! through the chain; and runs scenario suites.
#![warn(missing_docs)]

pub mod breakdown;
pub mod cli;
pub mod compare;
pub mod deploy;
pub mod deployer;
pub mod emulator;
pub mod error;
pub mod observe;
pub mod package;
pub mod plan;
pub mod progress;
pub mod resource_schemas;
pub mod smtp;
mod smtp_faults;
pub mod suite;
pub mod system;
pub mod viewer;
pub mod workspace;

pub use error::HarnessError;

/// The SMTP port the callee sends to by default.
pub const DEFAULT_SMTP_PORT: u16 = 2525;

/// The mail viewer's port by default: Mailpit's, so its users find it where they look.
pub const DEFAULT_UI_PORT: u16 = 8025;

/// LocalStack's usual gateway port.
pub const DEFAULT_GATEWAY_PORT: u16 = 4566;
