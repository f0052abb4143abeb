//! Local harness.
