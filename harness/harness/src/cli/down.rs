//! `harness down`: stop a running `harness up` and whatever it started.

use std::{
    fmt,
    time::{Duration, Instant},
};

use anyhow::Result;
use nix::{sys::signal::Signal, unistd::Pid};
use serde::Serialize;

use super::{Context, output::Output};
use crate::{
    HarnessError,
    system::{RunningSystem, alive},
};

/// What `down` did.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Stopped {
    /// A harness was running and is stopped.
    Stopped {
        /// Its process id.
        pid: u32,
    },
    /// No harness was running.
    NotRunning,
}

impl Output for Stopped {
    fn text(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        match self {
            Self::Stopped { pid } => writeln!(out, "stopped harness (pid {pid})"),
            Self::NotRunning => writeln!(out, "no harness is running"),
        }
    }
}

/// Stops the `harness up` of this work directory: SIGTERM, then SIGKILL after
/// 20 s, then its emulator's process group, whatever survived.
pub fn down(context: &Context) -> Result<Stopped> {
    let state = match RunningSystem::read(&context.work_dir) {
        Ok(state) => state,
        Err(HarnessError::NotRunning(_)) => return Ok(Stopped::NotRunning),
        Err(err) => return Err(err.into()),
    };
    let pid = Pid::from_raw(state.pid as i32);
    let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(state.pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(state.pid) {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    }
    if let Some(pgid) = state.emulator_pgid {
        crate::emulator::host::stop_group(Pid::from_raw(pgid), Duration::from_secs(2));
    }
    RunningSystem::remove(&context.work_dir);
    Ok(Stopped::Stopped { pid: state.pid })
}
