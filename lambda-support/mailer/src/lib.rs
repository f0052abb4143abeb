//! SMTP delivery of alert emails with lettre.
//!
//! A [`Mailer`] sends an [`OutgoingEmail`] as multipart/alternative (text + HTML, UTF-8,
//! CRLF line endings) and returns a [`Delivery`] with per-recipient results. Every send
//! ends before the caller's deadline; failures are classified by
//! [`MailerError::is_transient`], and only transient ones are retried.
//!
//! # Example
//! ```no_run
//! use std::time::{Duration, Instant};
//!
//! use mailer::{Mailer, MessageId, OutgoingEmail, SmtpConfig, TlsMode};
//!
//! # async fn run() -> Result<(), mailer::MailerError> {
//! let mut config = SmtpConfig::new("127.0.0.1");
//! config.tls = TlsMode::None;
//! let mailer = Mailer::new(config, "Alerts <alerts@example.com>")?;
//! let email = OutgoingEmail {
//!     to: vec!["oncall@example.com".into()],
//!     cc: vec![],
//!     subject: "[P1] INC0012345: Database cluster unreachable".into(),
//!     text: "text".into(),
//!     html: "<p>html</p>".into(),
//!     message_id: MessageId::derive(["INC0012345"]),
//!     headers: vec![("X-ServiceNow-Number".into(), "INC0012345".into())],
//! };
//! let delivery = mailer.send(&email, Instant::now() + Duration::from_secs(10)).await?;
//! println!("accepted: {:?}", delivery.accepted);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod config;
mod error;
mod message;
mod send;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use config::{DEFAULT_SMTP_PORT, RetryPolicy, SmtpConfig, SmtpCredentials, TlsMode};
pub use error::MailerError;
pub use message::{
    HEADER_TRACE_ID, MESSAGE_ID_DOMAIN, MessageId, OutgoingEmail, normalize_line_endings,
};
pub use send::{Delivery, Mailer, RejectedRecipient};
