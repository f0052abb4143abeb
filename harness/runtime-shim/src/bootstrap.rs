//! Starting the function's `bootstrap` so that it can never outlive the shim.

use std::{
    ffi::OsString,
    io,
    net::SocketAddr,
    path::Path,
    process::{ExitStatus, Stdio},
};

use nix::{
    sys::{prctl, signal::Signal},
    unistd,
};
use tokio::process::{Child, Command};
use tracing::debug;

use crate::{error::ShimError, logs::OutputCapture};

/// A running `bootstrap` process and the capture of its output.
pub struct Bootstrap {
    child: Child,
    output: OutputCapture,
}

/// What to start and with which environment.
pub struct BootstrapSpec<'a> {
    /// Path of the executable.
    pub path: &'a Path,
    /// Working directory (the function's code directory).
    pub cwd: &'a Path,
    /// The complete environment of the function; nothing else is inherited.
    pub env: &'a [(OsString, OsString)],
    /// Address of the Runtime API, given as `AWS_LAMBDA_RUNTIME_API`.
    pub runtime_api: SocketAddr,
    /// Copy the function's output to the shim's stderr.
    pub echo_output: bool,
}

impl Bootstrap {
    /// Starts the process; stdout and stderr share one pipe so their order is kept.
    ///
    /// Must be called from a thread that lives as long as the shim: the
    /// parent-death signal fires when the forking *thread* exits.
    pub fn spawn(spec: &BootstrapSpec<'_>) -> Result<Self, ShimError> {
        let (reader, writer) = io::pipe().map_err(ShimError::Capture)?;
        let stderr_writer = writer.try_clone().map_err(ShimError::Capture)?;
        let shim_pid = unistd::getpid();

        let mut command = Command::new(spec.path);
        command
            .current_dir(spec.cwd)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", spec.runtime_api.to_string())
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(stderr_writer)
            .kill_on_drop(true);
        // SAFETY: the closure runs between fork and exec and only makes the
        // async-signal-safe calls prctl(2) and getppid(2).
        unsafe {
            command.pre_exec(move || {
                prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
                // The shim may have died between fork and prctl; then nobody
                // would ever deliver the signal.
                if unistd::getppid() != shim_pid {
                    return Err(io::Error::other("the shim exited while bootstrap started"));
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|source| ShimError::Spawn {
            path: spec.path.to_owned(),
            source,
        })?;
        // The command still holds the pipe's write ends; dropping it leaves the
        // bootstrap as the only writer.
        drop(command);
        let output = OutputCapture::start(reader, spec.echo_output).map_err(ShimError::Capture)?;
        debug!(pid = child.id(), runtime_api = %spec.runtime_api, "bootstrap started");
        Ok(Self { child, output })
    }

    /// Process id, while the process has not been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the process to exit; cancel safe.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// The exit status if the process has already exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills the process and reaps it.
    pub async fn kill(&mut self) {
        // Fails only if the process was already reaped, which is the goal.
        let _ = self.child.kill().await;
    }

    /// Takes the output written since the last call.
    pub fn drain_output(&self) -> Vec<u8> {
        self.output.drain()
    }

    /// Peak resident memory in MB, from `/proc/<pid>/status`.
    pub fn max_memory_mb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        parse_vm_hwm_mb(&status)
    }
}

/// Extracts `VmHWM` (peak RSS, reported in kB) from a `/proc/<pid>/status` text, in MB rounded up.
pub fn parse_vm_hwm_mb(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::rounds_up("VmPeak:\t  10000 kB\nVmHWM:\t    1025 kB\n", Some(2))]
    #[case::exact_megabytes("VmHWM:\t    2048 kB\n", Some(2))]
    #[case::missing_field("VmRSS:\t    2048 kB\n", None)]
    #[case::garbage_number("VmHWM:\t    lots kB\n", None)]
    fn vm_hwm(#[case] status: &str, #[case] expected: Option<u64>) {
        assert_eq!(parse_vm_hwm_mb(status), expected);
    }

    #[tokio::test]
    async fn spawned_process_gets_only_the_given_env_and_shares_one_output_pipe() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("bootstrap");
        std::fs::write(
            &script,
            "#!/bin/sh\necho \"out $FUNCTION_VAR $AWS_LAMBDA_RUNTIME_API ${HOME:-nohome}\"\necho err >&2\n",
        )
        .expect("write script");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let env = vec![
            ("FUNCTION_VAR".into(), "v1".into()),
            ("PATH".into(), "/usr/bin:/bin".into()),
        ];
        let mut bootstrap = Bootstrap::spawn(&BootstrapSpec {
            path: &script,
            cwd: dir.path(),
            env: &env,
            runtime_api: SocketAddr::from(([127, 0, 0, 1], 9001)),
            echo_output: false,
        })
        .expect("spawn");
        let status = bootstrap.wait().await.expect("wait");
        assert!(status.success());
        let output = String::from_utf8(bootstrap.drain_output()).expect("utf8");
        assert_eq!(output, "out v1 127.0.0.1:9001 nohome\nerr\n");
    }

    #[tokio::test]
    async fn missing_executable_is_a_spawn_error_naming_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bootstrap");
        let result = Bootstrap::spawn(&BootstrapSpec {
            path: &path,
            cwd: dir.path(),
            env: &[],
            runtime_api: SocketAddr::from(([127, 0, 0, 1], 9001)),
            echo_output: false,
        });
        let Err(err) = result else {
            panic!("spawning a missing file must fail")
        };
        assert!(err.to_string().contains(&path.display().to_string()));
    }
}
