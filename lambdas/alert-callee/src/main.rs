//! Lambda entry point for the ServiceNow alerting callee.

use std::sync::Arc;

use alert_callee::{AlertCallee, Config};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // Detached: the first TLS handshake waits for the seed if it comes sooner.
    let _seeding = cold_start::seed_random_in_background();
    lambda_tracing::init();

    let callee = Arc::new(AlertCallee::new(Config::from_env()));
    if let Some(error) = callee.startup_error() {
        // Keep serving: each invocation answers ConfigError so callers see the cause.
        tracing::error!(error = %error, "callee is misconfigured");
    }

    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let callee = Arc::clone(&callee);
        async move { callee.handle(event).await }
    }))
    .await
}
