//! ServiceNow alert payload: the typed contract, its validation and its rendering.
//!
//! A raw JSON payload becomes an [`AlertPayload`] only if every rule holds (see
//! [`AlertPayload::from_slice`], and [`strict_json`] for the body itself); a [`Renderer`] then turns it into a [`RenderedEmail`].
//! Validation errors name the offending field path, e.g. `alert.short_description`.
//!
//! # Example
//! ```
//! use alert_payload::{AlertPayload, Allowlists, RecipientAllowlist, Renderer};
//!
//! let allow = Allowlists::new(RecipientAllowlist::from_csv("example.com").unwrap());
//! let raw = serde_json::json!({
//!     "alert": {"number": "INC0012345", "sys_id": "9d385017c611228701d22104cc95c371",
//!               "short_description": "Disk full", "priority": 1, "state": "New"},
//!     "recipients": {"to": ["oncall@example.com"]}
//! });
//! let payload = AlertPayload::from_value(&raw, &allow).unwrap();
//! let email = Renderer::new().unwrap().render(&payload).unwrap();
//! assert_eq!(email.subject, "[P1] INC0012345: Disk full");
//! ```
#![warn(missing_docs)]

mod allowlist;
mod error;
pub mod header_line;
mod payload;
mod render;
pub mod strict_json;

pub use allowlist::{
    Allowlists, DEFAULT_INSTANCE_HOSTS, InstanceHostAllowlist, RecipientAllowlist,
};
pub use error::NotificationError;
pub use payload::{
    Alert, AlertPayload, HEADER_NUMBER, HEADER_PRIORITY, MAX_ADDRESS_CHARS, MAX_ASSIGNED_TO_CHARS,
    MAX_ASSIGNMENT_GROUP_CHARS, MAX_CATEGORY_CHARS, MAX_INSTANCE_URL_CHARS, MAX_NUMBER_CHARS,
    MAX_PAYLOAD_BYTES, MAX_RECIPIENTS, MAX_SHORT_DESCRIPTION_CHARS, MAX_STATE_CHARS,
    MAX_TIMESTAMP_CHARS, Recipients, TemplateKind,
};
pub use render::{RenderedEmail, Renderer};
