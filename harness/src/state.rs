//! The state file a running `harness up` writes, so that `invoke`, `deploy`,
//! `run` and `down` in other processes can find it.

use std::path::{Path, PathBuf};

use nix::{sys::signal::kill, unistd::Pid};
use serde::{Deserialize, Serialize};

use crate::{
    deploy::{Accounts, Deployment},
    emulator::Backend,
    error::HarnessError,
    system::Timings,
};

/// What a running `harness up` publishes about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// The `harness up` process.
    pub pid: u32,
    /// The emulator's process group (host backend).
    pub emulator_pgid: Option<i32>,
    /// The backend.
    pub backend: Backend,
    /// The AWS endpoint clients should use (the IAM gateway, when one runs).
    pub endpoint: String,
    /// The emulator's own endpoint, behind the gateway.
    pub emulator_endpoint: String,
    /// The IAM gateway's mode.
    pub iam: crate::gateway::Mode,
    /// The gateway's decision log.
    pub iam_log: Option<PathBuf>,
    /// The SMTP capture address.
    pub smtp: String,
    /// Where captured emails are spooled.
    pub mail_spool: PathBuf,
    /// The accounts.
    pub accounts: Accounts,
    /// The default deployment.
    pub deployment: Deployment,
    /// The cargo profile the lambdas were built with.
    pub profile: String,
    /// The SMTP host the lambdas were told to use.
    pub smtp_host_for_lambdas: String,
    /// The callee's From address.
    pub mail_from: String,
    /// Domains the callee may send to.
    pub allowed_domains: String,
    /// Phase timings of the start.
    pub timings: Timings,
}

/// The state file inside a work directory.
pub fn path(work_dir: &Path) -> PathBuf {
    work_dir.join("state.json")
}

impl State {
    /// Writes the state file atomically.
    pub fn write(&self, work_dir: &Path) -> Result<(), HarnessError> {
        let file = path(work_dir);
        let tmp = file.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(self).map_err(|e| HarnessError::File {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(tmp, file)?;
        Ok(())
    }

    /// Reads the state of a running `harness up`; a stale file (its process
    /// gone) counts as not running.
    pub fn read(work_dir: &Path) -> Result<Self, HarnessError> {
        let file = path(work_dir);
        let text =
            std::fs::read_to_string(&file).map_err(|_| HarnessError::NotRunning(file.clone()))?;
        let state: Self = serde_json::from_str(&text).map_err(|e| HarnessError::File {
            path: file.clone(),
            reason: format!("unreadable state file: {e}"),
        })?;
        if !alive(state.pid) {
            return Err(HarnessError::NotRunning(file));
        }
        Ok(state)
    }

    /// Removes the state file.
    pub fn remove(work_dir: &Path) {
        let _ = std::fs::remove_file(path(work_dir));
    }
}

/// Whether a process exists.
pub fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_of_a_dead_process_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let state = State {
            pid: dead,
            emulator_pgid: None,
            backend: Backend::Host,
            endpoint: "http://127.0.0.1:4566".into(),
            emulator_endpoint: "http://127.0.0.1:4567".into(),
            iam: crate::gateway::Mode::Enforce,
            iam_log: None,
            smtp: "127.0.0.1:2525".into(),
            mail_spool: dir.path().join("mail"),
            accounts: Accounts::default(),
            deployment: Deployment {
                accounts: Accounts::default(),
                stacks: Default::default(),
                callee_function_arn: String::new(),
                callee_function_name: String::new(),
                callee_log_group: String::new(),
                cross_account_role_arn: String::new(),
                caller_function_arn: String::new(),
                caller_function_name: String::new(),
                caller_log_group: String::new(),
                caller_role_arn: String::new(),
                outputs: Default::default(),
            },
            profile: "dev".into(),
            smtp_host_for_lambdas: "127.0.0.1".into(),
            mail_from: "alerts@example.com".into(),
            allowed_domains: "example.com".into(),
            timings: Timings::default(),
        };
        state.write(dir.path()).unwrap();

        assert!(matches!(
            State::read(dir.path()),
            Err(HarnessError::NotRunning(_))
        ));

        let live = State {
            pid: std::process::id(),
            ..state
        };
        live.write(dir.path()).unwrap();
        assert_eq!(State::read(dir.path()).unwrap().pid, std::process::id());
    }

    #[test]
    fn no_state_file_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let err = State::read(dir.path()).unwrap_err();
        assert!(err.to_string().contains("harness up"), "{err}");
    }
}
