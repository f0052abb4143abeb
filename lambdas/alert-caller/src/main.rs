//! Entry point of the invoker lambda: tracing, configuration, clients, then the runtime loop.
// The SDK and runtime futures nest deeply enough to exceed the default layout depth of 128.
#![recursion_limit = "256"]

use alert_caller::{CallerError, Config, Invoker, aws};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Detached: the first TLS handshake waits for the seed if it comes sooner.
    let _seeding = cold_start::seed_random_in_background();
    lambda_tracing::init();

    match Config::from_env() {
        Ok(config) => {
            let sdk_config = aws::load_sdk_config(&config.retry).await;
            let invoker = Invoker::new(config, sdk_config);
            let invoker = &invoker;
            run(service_fn(move |event| invoker.handle(event))).await
        }
        Err(error) => {
            // Keep serving so every invocation reports errorType ConfigError instead of the
            // runtime dying at init with an opaque exit error.
            tracing::error!(variable = error.variable(), error = %error, "invalid configuration");
            let error = &error;
            run(service_fn(
                move |_: LambdaEvent<Box<RawValue>>| async move {
                    Err::<Box<RawValue>, _>(CallerError::from(error.clone()))
                },
            ))
            .await
        }
    }
}
