//! Placeholder until the end-to-end tests land.
#[test] fn workspace_builds() {}
