//! Errors of the notification crate.

/// Everything that can go wrong between a raw payload and a rendered email.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// A payload field broke a rule of the contract; nothing may be sent.
    #[error("invalid {field}: {reason}")]
    Validation {
        /// Path of the offending field, e.g. `alert.short_description` or `recipients.to[2]`.
        field: String,
        /// What is wrong with it, lowercase.
        reason: String,
    },
    /// An entry of the recipient domain allowlist is not a domain name.
    #[error(
        "allowed recipient domain {entry:?} is not a domain name; list bare domains such as example.com"
    )]
    Allowlist {
        /// The offending entry as configured.
        entry: String,
    },
    /// An entry of the instance host allowlist is neither a host name nor `*.` and a domain.
    #[error(
        "allowed instance host {entry:?} is not a host name; list hosts such as acme.service-now.com or patterns such as *.service-now.com"
    )]
    InstanceAllowlist {
        /// The offending entry as configured.
        entry: String,
    },
    /// A template failed to register or to render.
    #[error("template {template} failed: {reason}")]
    Template {
        /// Name of the template, e.g. `incident/html`.
        template: String,
        /// What handlebars reported, lowercase.
        reason: String,
    },
}

impl NotificationError {
    /// Builds a [`NotificationError::Validation`] for `field`.
    pub fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The payload field path for a validation error, `None` for any other error.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Validation { field, .. } => Some(field),
            _ => None,
        }
    }
}
