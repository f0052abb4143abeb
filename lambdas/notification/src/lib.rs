//! Alert payload, validation and rendering.
