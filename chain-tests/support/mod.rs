//! One system per test binary, shared by its tests: LocalStack, the IAM
//! gateway, the SMTP capture and the deployed stacks are brought up once, on
//! first use.
//!
//! The system lives on a runtime of its own, because the SDK clients belong to
//! the runtime that made them and each test would otherwise bring its own. It
//! is never dropped (it sits in a static); the harness kills the emulator's
//! process group when the test process exits.

use std::{
    net::TcpListener,
    sync::{LazyLock, OnceLock},
};

use harness::system::{Launch, System, SystemConfig};

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

static SYSTEM: OnceLock<System> = OnceLock::new();

/// A free loopback port (closed again before the gateway binds it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs a future on the shared runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    RUNTIME.block_on(future)
}

/// The shared system, brought up on first use on ephemeral ports.
pub fn system(name: &str) -> &'static System {
    SYSTEM.get_or_init(|| {
        let work_dir = harness::workspace::default_work_dir()
            .with_file_name("harness-tests")
            .join(name);
        let _ = std::fs::remove_dir_all(&work_dir);
        let mut config = SystemConfig::defaults().expect("the default system");
        config.gateway_port = free_port();
        config.smtp_port = 0;
        let launch = Launch {
            work_dir,
            spool: false,
            warm_up: true,
            viewer: None,
            quiet: false,
        };
        block_on(System::up(&config, &launch))
            .unwrap_or_else(|err| panic!("harness up failed: {err}"))
    })
}
