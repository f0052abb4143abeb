//! The `host` backend: LocalStack as a plain local process, functions as
//! native processes through the project's executor plugin and runtime shim.

use std::{
    net::{SocketAddr, TcpListener},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Mutex, mpsc},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};

use super::venv;
use crate::error::HarnessError;

/// The AWS services the harness needs from LocalStack.
pub const SERVICES: &str = "sts,iam,s3,kms,lambda,cloudformation,logs,ec2";

/// How to start LocalStack on this machine.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The gateway address, e.g. `127.0.0.1:4566`.
    pub gateway: SocketAddr,
    /// The runtime shim binary the executor plugin starts per environment.
    pub runtime_shim: PathBuf,
    /// Where LocalStack keeps its files and log for this run.
    pub work_dir: PathBuf,
    /// When set, lambdas get this as `AWS_ENDPOINT_URL` instead of LocalStack's own.
    pub lambda_endpoint: Option<String>,
    /// When set, lambdas trust only this CA certificate (PEM) for TLS (`SSL_CERT_FILE`).
    pub lambda_ca_file: Option<PathBuf>,
    /// Where the executor gets execution-role keys, and its token.
    pub credentials_issuer: Option<(String, String)>,
    /// Suppress progress output.
    pub quiet: bool,
}

/// A LocalStack process group. Dropping it kills the whole group.
#[derive(Debug)]
pub struct HostEmulator {
    // Fields drop in order: the processes stop before their files go.
    group: ProcessGroup,
    log: PathBuf,
    _tmp: RemovedOnDrop,
}

/// A directory removed when dropped: LocalStack's temporary directory, where
/// it unzips every function's code and never cleans up (1 GB a suite run).
#[derive(Debug)]
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A process the harness started in a process group of its own, with
/// everything it starts. Dropping it stops the whole group (SIGTERM, then
/// SIGKILL), and any descendant that moved to a group of its own; a harness
/// killed outright takes the leader with it (`PR_SET_PDEATHSIG`), and a normal
/// exit that never dropped it still kills the group.
#[derive(Debug)]
pub struct ProcessGroup {
    pgid: Pid,
    exited: Mutex<mpsc::Receiver<std::process::ExitStatus>>,
    /// How long the group gets between SIGTERM and SIGKILL; zero kills at once.
    grace: Duration,
}

impl ProcessGroup {
    /// Starts `cmd` as the leader of a new process group.
    pub fn spawn(mut cmd: Command) -> std::io::Result<Self> {
        // Its own process group, so one signal reaches it and everything it
        // starts, and Ctrl-C in the terminal reaches only us.
        cmd.process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // If the harness dies without cleaning up (SIGKILL), the kernel
                // kills the leader; LocalStack's shims then see their stdin close
                // and exit too.
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        // PR_SET_PDEATHSIG fires when the *thread* that forked exits, so fork from
        // a thread that lives exactly as long as the child.
        let (pid_tx, pid_rx) = mpsc::channel();
        let (exit_tx, exit_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("process-group".into())
            .spawn(move || match cmd.spawn() {
                Ok(mut child) => {
                    let _ = pid_tx.send(Ok(child.id()));
                    if let Ok(status) = child.wait() {
                        let _ = exit_tx.send(status);
                    }
                }
                Err(err) => {
                    let _ = pid_tx.send(Err(err));
                }
            })?;
        let pid = pid_rx.recv().map_err(std::io::Error::other)??;
        exit_guard::register(pid as i32);
        Ok(Self {
            pgid: Pid::from_raw(pid as i32),
            exited: Mutex::new(exit_rx),
            grace: Duration::from_secs(2),
        })
    }

    /// Stops the group with SIGKILL at once when dropped, for a program that
    /// holds nothing worth a graceful stop and would only spend the grace.
    pub fn killed_at_once(mut self) -> Self {
        self.grace = Duration::ZERO;
        self
    }

    /// The process group id, which is the leader's pid.
    pub fn pgid(&self) -> i32 {
        self.pgid.as_raw()
    }

    /// How the leader exited, if it has.
    pub fn exited(&self) -> Option<std::process::ExitStatus> {
        self.exited.lock().ok()?.try_recv().ok()
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        exit_guard::unregister(self.pgid.as_raw());
        // Found before the leader dies: orphans are re-parented and lost.
        let strays = descendants_in_other_groups(self.pgid.as_raw());
        stop_group(self.pgid, self.grace);
        for group in strays {
            stop_group(Pid::from_raw(group), Duration::from_secs(1));
        }
        // Reap: the supervising thread's wait() returns once the leader died.
        if let Ok(exited) = self.exited.lock() {
            let _ = exited.recv_timeout(Duration::from_secs(5));
        }
    }
}

/// The process groups, other than `pgid`, of the descendants of `pgid`'s
/// leader: a child may start its own group (cargo-lambda's watcher does), and
/// a signal to the leader's group would miss it.
fn descendants_in_other_groups(pgid: i32) -> Vec<i32> {
    let mut parents = std::collections::HashMap::<i32, Vec<(i32, i32)>>::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((ppid, group)) = parent_and_group(&stat) {
            parents.entry(ppid).or_default().push((pid, group));
        }
    }
    let mut groups = Vec::new();
    let mut queue = vec![pgid];
    while let Some(parent) = queue.pop() {
        for &(child, group) in parents.get(&parent).into_iter().flatten() {
            if group != pgid && !groups.contains(&group) {
                groups.push(group);
            }
            queue.push(child);
        }
    }
    groups
}

/// The parent pid and process group of a `/proc/<pid>/stat` line.
fn parent_and_group(stat: &str) -> Option<(i32, i32)> {
    // The command name, in parentheses, may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let group = fields.next()?.parse().ok()?;
    Some((ppid, group))
}

impl HostEmulator {
    /// Creates or reuses the venv, then starts LocalStack and waits until it is ready.
    pub async fn start(options: &HostOptions) -> Result<(Self, String), HarnessError> {
        // Fail fast, naming the port, instead of letting LocalStack die obscurely.
        drop(
            TcpListener::bind(options.gateway).map_err(|source| HarnessError::PortInUse {
                what: "the LocalStack gateway",
                port: options.gateway.port(),
                source,
            })?,
        );
        if !options.runtime_shim.exists() {
            return Err(HarnessError::Build(format!(
                "the runtime shim {} does not exist",
                options.runtime_shim.display()
            )));
        }
        let quiet = options.quiet;
        let venv = tokio::task::spawn_blocking(move || venv::ensure(quiet))
            .await
            .map_err(|e| HarnessError::EmulatorStart(e.to_string()))??;
        let emulator = spawn(&venv.python(), options)?;
        let endpoint = format!("http://{}", options.gateway);
        emulator.wait_ready(&endpoint).await?;
        Ok((emulator, endpoint))
    }

    /// The process group id (for the state file).
    pub fn pgid(&self) -> i32 {
        self.group.pgid()
    }

    async fn wait_ready(&self, endpoint: &str) -> Result<(), HarnessError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| HarnessError::EmulatorStart(e.to_string()))?;
        let health = format!("{endpoint}/_localstack/health");
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Some(status) = self.group.exited() {
                return Err(HarnessError::EmulatorStart(format!(
                    "LocalStack exited ({status}) during start; last lines of {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 25)
                )));
            }
            if let Ok(resp) = client.get(&health).send().await
                && resp.status().is_success()
                && let Ok(body) = resp.json::<serde_json::Value>().await
                && ready(&body)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(HarnessError::EmulatorStart(format!(
            "LocalStack did not answer {health} within 90 s; last lines of {}:\n{}",
            self.log.display(),
            tail(&self.log, 25)
        )))
    }
}

/// Every service the harness needs reports `available` (or `running`).
fn ready(health: &serde_json::Value) -> bool {
    SERVICES.split(',').all(|s| {
        matches!(
            health["services"][s].as_str(),
            Some("available") | Some("running")
        )
    })
}

fn spawn(python: &Path, options: &HostOptions) -> Result<HostEmulator, HarnessError> {
    let fs_root = options.work_dir.join("localstack");
    let _ = std::fs::remove_dir_all(&fs_root);
    std::fs::create_dir_all(&fs_root)?;
    // Python's temporary directory (`tempfile.gettempdir()`), where LocalStack
    // keeps function code under `lambda/`: inside this run's directory, and
    // removed when the emulator stops, instead of piling up in /tmp.
    let tmp = fs_root.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    let log = options.work_dir.join("localstack.log");
    let log_file = std::fs::File::create(&log)?;
    let err_file = log_file.try_clone()?;

    let mut cmd = Command::new(python);
    cmd.args(["-m", "localstack.runtime.main"])
        .env("GATEWAY_LISTEN", options.gateway.to_string())
        .env("SERVICES", SERVICES)
        .env("EAGER_SERVICE_LOADING", "1")
        .env("DNS_ADDRESS", "0")
        .env("SKIP_SSL_CERT_DOWNLOAD", "1")
        .env("DISABLE_EVENTS", "1")
        // LocalStack's own calls (each invocation's PutLogEvents, the
        // CloudFormation handlers' calls) go through its handler chain in
        // memory instead of over HTTP to itself: a quarter of its busy time in
        // a warm chain was its log thread's HTTP client (py-spy), and the
        // chain went from 28.1/24.0 to 23.6/20.4 ms (`harness bench`, A/B).
        // None of those calls reached the IAM gateway either way.
        .env("IN_MEMORY_CLIENT", "1")
        .env("FILESYSTEM_ROOT", &fs_root)
        .env("TMPDIR", &tmp)
        .env(super::EXECUTOR_ENV, super::EXECUTOR)
        .env(super::SHIM_ENV, &options.runtime_shim)
        .env(super::CFN_POLL_ENV, super::CFN_POLL_SECONDS)
        // A failed Event invocation is retried after 1 s and 2 s instead of AWS's
        // 1 and 2 minutes, so a scenario's `within_ms` can see the retries.
        .env(super::RETRY_BASE_DELAY_ENV, super::retry_base_delay_secs())
        .env_remove("AWS_ENDPOINT_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(err_file));
    if let Some(endpoint) = &options.lambda_endpoint {
        cmd.env("HARNESS_LAMBDA_ENDPOINT_URL", endpoint);
    }
    if let Some(ca_file) = &options.lambda_ca_file {
        cmd.env("HARNESS_LAMBDA_CA_FILE", ca_file);
    }
    if let Some((url, token)) = &options.credentials_issuer {
        cmd.env("HARNESS_CREDENTIALS_URL", url)
            .env("HARNESS_CREDENTIALS_TOKEN", token);
    }
    // Killed at once when stopped: an idle LocalStack was measured to take
    // 3.3 s to exit on SIGTERM, and it keeps nothing this run needs (its files
    // are this run's, and its functions die with its group).
    let group = ProcessGroup::spawn(cmd)
        .map_err(|e| {
            HarnessError::EmulatorStart(format!("cannot start {}: {e}", python.display()))
        })?
        .killed_at_once();
    Ok(HostEmulator {
        group,
        log,
        _tmp: RemovedOnDrop(tmp),
    })
}

/// Stops a process group: SIGTERM, then SIGKILL after a grace period; with
/// no grace, SIGKILL at once.
pub fn stop_group(pgid: Pid, grace: Duration) {
    if grace.is_zero() {
        let _ = killpg(pgid, Signal::SIGKILL);
        return;
    }
    if killpg(pgid, Signal::SIGTERM).is_err() {
        return;
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        // Signal 0 probes whether any process of the group is left.
        if killpg(pgid, None).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = killpg(pgid, Signal::SIGKILL);
}

/// Kills the emulator groups still alive when the process exits normally,
/// e.g. a test binary whose shared system sits in a static and is never dropped.
mod exit_guard {
    use std::sync::{Mutex, Once};

    static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
    static REGISTER: Once = Once::new();

    extern "C" fn kill_remaining() {
        let groups = GROUPS.lock().map(|g| g.clone()).unwrap_or_default();
        for pgid in groups {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    pub(super) fn register(pgid: i32) {
        REGISTER.call_once(|| {
            // SAFETY: registers a plain extern "C" function with no captured state.
            unsafe { nix::libc::atexit(kill_remaining) };
        });
        if let Ok(mut groups) = GROUPS.lock() {
            groups.push(pgid);
        }
    }

    pub(super) fn unregister(pgid: i32) {
        if let Ok(mut groups) = GROUPS.lock() {
            groups.retain(|g| *g != pgid);
        }
    }
}

/// The last `n` lines of a log file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_and_group_are_read_past_a_command_name_with_parentheses() {
        let stat = "4242 (cargo (watch) x) S 4000 3999 3999 0 -1 4194560 100";
        assert_eq!(parent_and_group(stat), Some((4000, 3999)));
        assert_eq!(parent_and_group("4242 (truncated"), None);
    }

    #[test]
    fn a_group_killed_at_once_does_not_wait_out_a_sigterm_it_ignores() {
        let stopped_in = |group: ProcessGroup| {
            // Until the shell has set its trap, SIGTERM would still end it.
            std::thread::sleep(Duration::from_millis(200));
            let started = Instant::now();
            drop(group);
            started.elapsed()
        };
        let ignoring_term = || {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "trap '' TERM; while :; do sleep 1; done"]);
            ProcessGroup::spawn(cmd).expect("spawn")
        };
        let graceful = stopped_in(ignoring_term());
        assert!(graceful >= Duration::from_secs(2), "{graceful:?}");
        let at_once = stopped_in(ignoring_term().killed_at_once());
        assert!(at_once < Duration::from_secs(1), "{at_once:?}");
    }

    #[test]
    fn dropping_a_group_stops_its_descendants_in_other_groups_too() {
        // A shell that starts a child in a group of its own, as cargo-lambda's watcher does.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "setsid sleep 300 & echo $! ; wait"]);
        let (read, write) = std::io::pipe().expect("pipe");
        cmd.stdout(write);
        let group = ProcessGroup::spawn(cmd).expect("spawn");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(read), &mut line).expect("pid");
        let sleeper: i32 = line.trim().parse().expect("a pid");
        let deadline = Instant::now() + Duration::from_secs(5);
        while descendants_in_other_groups(group.pgid()).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !descendants_in_other_groups(group.pgid()).is_empty(),
            "setsid did not start a group"
        );

        drop(group);

        let gone = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    s.rsplit_once(')')
                        .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
                })
                .unwrap_or(true)
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone(sleeper) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            gone(sleeper),
            "the child in its own group outlived the drop"
        );
    }

    #[test]
    fn ready_needs_every_service() {
        let mut health = serde_json::json!({"services": {}});
        for s in SERVICES.split(',') {
            health["services"][s] = "available".into();
        }
        assert!(ready(&health));
        health["services"]["lambda"] = "disabled".into();
        assert!(!ready(&health));
    }

    #[tokio::test]
    async fn a_taken_gateway_port_is_named() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let options = HostOptions {
            gateway: addr,
            runtime_shim: PathBuf::from("/bin/true"),
            work_dir: std::env::temp_dir(),
            lambda_endpoint: None,
            lambda_ca_file: None,
            credentials_issuer: None,
            quiet: true,
        };

        let err = HostEmulator::start(&options).await.unwrap_err();

        let msg = err.to_string();
        assert!(msg.contains(&format!("port {}", addr.port())), "{msg}");
        assert!(msg.contains("LocalStack gateway"), "{msg}");
    }
}
