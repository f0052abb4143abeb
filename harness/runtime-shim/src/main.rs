//! `runtime-shim`: one Lambda execution environment as a native process.
//!
//! Contract with the parent (the LocalStack executor plugin):
//! - the environment is the function's environment plus `SHIM_*` settings (see `Config`);
//! - the first stdout line is `listening <ip:port>`, the executor-side address;
//! - stdin is a pipe the parent holds: end of file means the parent is gone and the shim exits;
//! - SIGTERM or SIGINT end the shim; the bootstrap is killed on every exit path.

use std::{
    io::{IsTerminal, Read, Write},
    process::ExitCode,
};

use anyhow::Context;
use runtime_shim::Config;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // A panic must not leave a half-dead shim holding a live bootstrap:
    // aborting fires the bootstrap's parent-death signal.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::abort();
    }));

    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("runtime-shim: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let config = Config::from_env().context("invalid shim environment")?;
    let default_level = if config.debug { "debug" } else { "warn" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // LocalStack copies stderr into its own log, where colour codes are noise.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_env("SHIM_LOG").unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .init();

    // One thread only: the bootstrap's parent-death signal is tied to the
    // thread that forks it, and this one lives as long as the process.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the async runtime")?;
    let result = runtime.block_on(async {
        let shutdown = shutdown_requested().context("cannot install signal handlers")?;
        runtime_shim::run(config, announce, shutdown)
            .await
            .context("execution environment failed")
    });
    // The stdin watcher thread may still block in read(); do not wait for it.
    runtime.shutdown_background();
    result
}

fn announce(addr: std::net::SocketAddr) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "listening {addr}");
    let _ = stdout.flush();
}

/// Resolves on SIGTERM, SIGINT or end of file on stdin.
fn shutdown_requested() -> std::io::Result<impl std::future::Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 256];
            // Anything read is ignored; only end of file (the parent is gone) matters.
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            let _ = eof_tx.send(());
        })?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = eof_rx => {}
        }
    })
}
