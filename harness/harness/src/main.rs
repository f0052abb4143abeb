use std::process::ExitCode;

use clap::Parser;
use harness::cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HARNESS_LOG")
                // `render` runs the callee's code, whose own rejection warning
                // would repeat the error the command prints.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,alert_callee=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:?}");
            ExitCode::FAILURE
        }
    }
}
