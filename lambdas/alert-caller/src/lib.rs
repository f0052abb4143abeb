//! The invoker lambda (caller, account B): invokes the ServiceNow alerting lambda in account A.
//!
//! Two access modes, chosen by `TARGET_ROLE_ARN` (see [`config::AccessMode`]):
//! - assume-role: assume the cross-account role in the callee's account with STS, then invoke
//!   with the assumed credentials (authorised by that role's identity policy);
//! - direct (`TARGET_ROLE_ARN` unset or empty): invoke with the function's own credentials, which
//!   needs both the callee's function policy and this function's identity policy to allow it.
//!
//! The incoming payload is forwarded byte-for-byte and the callee's response returned unchanged.
//! Failures surface as stable `errorType`s; see [`error`] for the exact `errorMessage` formats.
#![warn(missing_docs)]

pub mod aws;
pub mod config;
pub mod error;
pub mod invoker;

pub use config::{AccessMode, Config, RetryPolicy};
pub use error::{AwsFault, CalleeFault, CallerError, ConfigError, DENIAL_ERROR_TYPES};
pub use invoker::Invoker;
