//! What the viewer's tests share: a whole system with its mail viewer on
//! ephemeral ports, owned by the test and stopped when it ends, pass or fail;
//! and the Node projects beside these tests.

#![allow(dead_code)] // each test binary uses its own part

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
};

use harness::system::{Launch, System, SystemConfig};

/// A system this test brought up, on its own runtime. Dropping it stops
/// everything (emulator, gateway, capture, viewer).
pub struct Running {
    system: Option<System>,
    runtime: tokio::runtime::Runtime,
    /// The work directory: state, logs, decision log, reports.
    pub work_dir: PathBuf,
}

impl Running {
    /// Brings a system up with its viewer, every port ephemeral.
    pub fn up(name: &str) -> Self {
        let runtime = runtime();
        let work_dir = work_dir(name);
        let mut config = SystemConfig::defaults().expect("the default system");
        config.gateway_port = free_port();
        config.smtp_port = 0;
        let launch = Launch {
            work_dir: work_dir.clone(),
            spool: false,
            warm_up: true,
            viewer: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            quiet: false,
        };
        let system = runtime
            .block_on(System::up(&config, &launch))
            .unwrap_or_else(|err| panic!("harness up failed: {err}"));
        Self {
            system: Some(system),
            runtime,
            work_dir,
        }
    }

    /// The system.
    pub fn system(&self) -> &System {
        self.system.as_ref().expect("the system is up")
    }

    /// The viewer's URL.
    pub fn viewer_url(&self) -> String {
        self.system()
            .running
            .viewer
            .clone()
            .expect("the system serves a viewer")
    }

    /// Runs a future on the system's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _inside = self.runtime.enter();
        drop(self.system.take());
    }
}

/// A runtime for a test's system, as `harness up` has.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The test's own, emptied work directory under `target/harness-tests`.
pub fn work_dir(name: &str) -> PathBuf {
    let dir = harness::workspace::default_work_dir()
        .with_file_name("harness-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A port free right now, for a service that must be told its port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The Node project `tests/<name>/`, its pinned packages installed
/// (`npm ci`, once); `None`, with the reason printed, when there is no node.
pub fn node_project(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name);
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => {
            eprintln!("skipped: `node` is not installed (Debian: apt-get install nodejs npm)");
            return None;
        }
    }
    if !dir.join("node_modules").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .unwrap_or_else(|err| panic!("cannot run `npm ci` in {}: {err}", dir.display()));
        assert!(status.success(), "`npm ci` failed in {}", dir.display());
    }
    Some(dir)
}

/// An alert payload whose email goes to `to`.
pub fn alert(number: &str, short_description: &str, description: &str, to: &str) -> Vec<u8> {
    serde_json::json!({
        "alert": {
            "number": number,
            "sys_id": format!("{:0>32}", number.trim_start_matches("INC")),
            "short_description": short_description,
            "description": description,
            "priority": 2,
            "state": "New"
        },
        "recipients": { "to": [to] }
    })
    .to_string()
    .into_bytes()
}
