//! The ServiceNow alerting lambda (callee): validates an alert payload, renders it and
//! emails it over SMTP.
//!
//! Success returns [`CalleeResponse`] (`{"message_id", "accepted", "rejected"}`); failure
//! returns a Lambda function error whose `errorType` is one of `ValidationError`,
//! `TemplateError`, `SmtpTransient`, `SmtpPermanent` or `ConfigError` (see
//! [`CalleeError`]).
#![warn(missing_docs)]

mod config;
mod error;
mod handler;

pub use config::{Config, DEFAULT_FUNCTION_TIMEOUT, MAX_FUNCTION_TIMEOUT};
pub use error::CalleeError;
pub use handler::{AlertCallee, CalleeResponse, compose};
