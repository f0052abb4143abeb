//! SMTP delivery.
