//! Log setup shared by the lambdas.
#![warn(missing_docs)]

/// Plain-text (or JSON) logs for CloudWatch: like the runtime's default
/// subscriber, honouring AWS_LAMBDA_LOG_LEVEL, RUST_LOG and
/// AWS_LAMBDA_LOG_FORMAT, but without ANSI colour codes, which CloudWatch
/// would show as garbage.
pub fn init() {
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
