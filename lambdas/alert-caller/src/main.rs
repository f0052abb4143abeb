//! Entry point of the invoker lambda: tracing, configuration, clients, then the runtime loop.
// The SDK and runtime futures nest deeply enough to exceed the default layout depth of 128.
#![recursion_limit = "256"]

use alert_caller::{CallerError, Config, Invoker, aws};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::value::RawValue;

/// Plain-text (or JSON) logs for CloudWatch: like the runtime's default
/// subscriber, honouring AWS_LAMBDA_LOG_LEVEL, RUST_LOG and
/// AWS_LAMBDA_LOG_FORMAT, but without ANSI colour codes, which CloudWatch
/// would show as garbage.
fn init_tracing() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<tracing_subscriber::filter::LevelFilter>().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .with_env_filter(
            tracing_subscriber::EnvFilter::builder()
                .with_default_directive(level.into())
                .from_env_lossy(),
        );
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();

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
