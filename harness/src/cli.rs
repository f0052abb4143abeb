//! The `harness` command line: argument parsing and one function per command.

use std::{
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::{
    deploy::{self, Accounts, DeployConfig},
    emulator::Backend,
    invoke::{self, Call, CallOutcome, Clients, Invocation, Mailbox, Via},
    package::{self, BuildOptions},
    smtp::CapturedEmail,
    state::{self, State},
    system::{System, UpOptions},
};

/// Runs the cross-account alerting lambdas on one machine: LocalStack, the
/// four stacks in two accounts, and an SMTP server that captures every email.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about)]
pub struct Cli {
    /// Print one JSON object per command instead of human-readable text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Where the harness keeps its state, logs, zips and captured mail.
    #[arg(long, global = true, env = "HARNESS_WORK_DIR")]
    pub work_dir: Option<PathBuf>,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start everything, deploy, and stay up until Ctrl-C.
    Up(SystemArgs),
    /// Invoke the running system with a payload and show what happened.
    Invoke(InvokeArgs),
    /// Validate the templates and redeploy them into the running system.
    Deploy,
    /// Stop a running `harness up`.
    Down,
    /// Build both lambdas as `bootstrap` zips (the provided.al2023 layout).
    Package(PackageArgs),
    /// IAM: explain the deployed chain's permissions without invoking anything.
    #[command(subcommand)]
    Iam(IamCommand),
    /// Measure: emulator start, four-stack deploy, first and warm chain invokes.
    Bench(BenchArgs),
    /// Run scenario files: bring the system up (or reuse a running `harness up`),
    /// deploy once per distinct set of overrides, check every expectation.
    Run(RunArgs),
}

/// `harness iam` commands.
#[derive(Debug, Subcommand)]
pub enum IamCommand {
    /// Print, hop by hop, whether the deployed chain would be allowed and why.
    Explain,
}

/// Options of `harness bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Warm invokes of the full chain to time.
    #[arg(long, default_value_t = 100)]
    pub iterations: usize,
    /// Backend and system options, as for `harness up`.
    #[command(flatten)]
    pub system: SystemArgs,
}

/// Options of `harness run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario files or directories (default: scenarios/).
    pub paths: Vec<PathBuf>,
    /// Only scenarios whose name contains this.
    #[arg(long)]
    pub filter: Option<String>,
    /// Only scenarios with this tag (repeatable: any of them).
    #[arg(long)]
    pub tag: Vec<String>,
    /// How many scenarios run at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Where per-scenario reports go (default: <work dir>/reports).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Backend and system options, as for `harness up` (ignored when reusing a running one).
    #[command(flatten)]
    pub system: SystemArgs,
}

/// Options shared by every command that brings the system up.
#[derive(Debug, Clone, Args)]
pub struct SystemArgs {
    /// The emulator backend.
    #[arg(long, value_enum, default_value = "host", env = "HARNESS_BACKEND")]
    pub backend: Backend,
    /// The LocalStack gateway port (host backend).
    #[arg(long, default_value_t = crate::DEFAULT_GATEWAY_PORT, env = "HARNESS_GATEWAY_PORT")]
    pub gateway_port: u16,
    /// The endpoint of an already-running emulator (external backend).
    #[arg(long, env = "HARNESS_ENDPOINT")]
    pub endpoint: Option<String>,
    /// The LocalStack image (container backend).
    #[arg(long, default_value = crate::emulator::container::DEFAULT_IMAGE, env = "HARNESS_IMAGE")]
    pub image: String,
    /// The SMTP capture port; 0 picks a free one.
    #[arg(long, default_value_t = crate::DEFAULT_SMTP_PORT, env = "HARNESS_SMTP_PORT")]
    pub smtp_port: u16,
    /// The SMTP host the callee is told to use (container backends need the Docker host's address).
    #[arg(long, default_value = "127.0.0.1")]
    pub smtp_host_for_lambdas: String,
    /// Account A, where the callee lives.
    #[arg(long, default_value = "111111111111")]
    pub callee_account: String,
    /// Account B, where the caller lives.
    #[arg(long, default_value = "222222222222")]
    pub caller_account: String,
    /// The callee's From address.
    #[arg(long, default_value = "alerts@example.com")]
    pub mail_from: String,
    /// Domains the callee may send to, comma-separated.
    #[arg(long, default_value = "example.com")]
    pub allowed_domains: String,
    /// The cargo profile the lambdas are built with.
    #[arg(long, default_value = "dev", env = "HARNESS_PROFILE")]
    pub profile: String,
    /// IAM enforcement by the gateway in front of the emulator: `enforce`
    /// denies what AWS would deny, `audit` forwards but records it, `off`
    /// runs no gateway (LocalStack's free edition checks no IAM at all).
    #[arg(long, value_enum, default_value = "enforce", env = "HARNESS_IAM")]
    pub iam: crate::gateway::Mode,
}

/// Options of `harness invoke`.
#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The payload file (JSON).
    #[arg(long)]
    pub payload: PathBuf,
    /// Enter through the caller (the full chain) or the callee directly.
    #[arg(long, value_enum, default_value = "caller")]
    pub via: Via,
    /// How to invoke.
    #[arg(long, value_enum, default_value = "request-response")]
    pub invocation_type: Invocation,
    /// How long to wait for emails after the call returns, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub wait_ms: u64,
}

/// Options of `harness package`.
#[derive(Debug, Args)]
pub struct PackageArgs {
    /// The cargo profile.
    #[arg(long, default_value = "release")]
    pub profile: String,
    /// Where `<crate>/bootstrap.zip` go.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

impl SystemArgs {
    /// The options for [`System::up`].
    pub fn up_options(&self, work_dir: PathBuf, quiet: bool) -> Result<UpOptions> {
        Ok(UpOptions {
            backend: self.backend,
            gateway: SocketAddr::from(([127, 0, 0, 1], self.gateway_port)),
            endpoint: self.endpoint.clone(),
            image: self.image.clone(),
            smtp: SocketAddr::from(([127, 0, 0, 1], self.smtp_port)),
            smtp_host_for_lambdas: self.smtp_host_for_lambdas.clone(),
            accounts: Accounts {
                callee: account(&self.callee_account, "--callee-account")?,
                caller: account(&self.caller_account, "--caller-account")?,
            },
            mail_from: self.mail_from.clone(),
            allowed_domains: self.allowed_domains.clone(),
            profile: self.profile.clone(),
            work_dir,
            spool: true,
            skip_first_invoke: false,
            iam: self.iam,
            quiet,
        })
    }
}

fn account(id: &str, flag: &str) -> Result<String> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id.to_string())
    } else {
        bail!("{flag} must be a 12-digit AWS account id, not `{id}`")
    }
}

/// The default work directory: `target/harness` in the workspace.
pub fn default_work_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| package::workspace_root().join("target"))
        .join("harness")
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<std::process::ExitCode> {
    let work_dir = cli.work_dir.clone().unwrap_or_else(default_work_dir);
    match cli.command {
        Command::Up(args) => up(&args, &work_dir, cli.json).await,
        Command::Invoke(args) => invoke_cmd(&args, &work_dir, cli.json).await,
        Command::Deploy => deploy_cmd(&work_dir, cli.json).await,
        Command::Down => down(&work_dir, cli.json),
        Command::Package(args) => package_cmd(&args, cli.json),
        Command::Run(args) => run_cmd(&args, &work_dir, cli.json).await,
        Command::Bench(args) => bench_cmd(&args, &work_dir, cli.json).await,
        Command::Iam(IamCommand::Explain) => iam_explain(&work_dir, cli.json).await,
    }
}

fn print_json(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, value);
    let _ = writeln!(out);
}

async fn up(args: &SystemArgs, work_dir: &Path, json: bool) -> Result<std::process::ExitCode> {
    if let Ok(state) = State::read(work_dir) {
        bail!(
            "a harness is already up (pid {}, endpoint {}); stop it with `harness down`",
            state.pid,
            state.endpoint
        );
    }
    let options = args.up_options(work_dir.to_path_buf(), json)?;
    // Signals are watched from the start, so Ctrl-C during a long build or
    // deploy still tears down whatever was started.
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let system = tokio::select! {
        system = System::up(&options) => system.context("harness up failed")?,
        _ = tokio::signal::ctrl_c() => { eprintln!("interrupted"); return Ok(std::process::ExitCode::from(130)); }
        _ = sigterm.recv() => { eprintln!("terminated"); return Ok(std::process::ExitCode::from(143)); }
    };
    let state = State {
        pid: std::process::id(),
        emulator_pgid: system.emulator.pgid(),
        backend: system.emulator.backend(),
        endpoint: system.endpoint(),
        emulator_endpoint: system.emulator.endpoint().to_string(),
        iam: options.iam,
        iam_log: system.iam_log.clone(),
        smtp: system.capture.addr().to_string(),
        mail_spool: work_dir.join("mail"),
        accounts: options.accounts.clone(),
        deployment: system.deployment.clone(),
        profile: options.profile.clone(),
        smtp_host_for_lambdas: options.smtp_host_for_lambdas.clone(),
        mail_from: options.mail_from.clone(),
        allowed_domains: options.allowed_domains.clone(),
        timings: system.timings.clone(),
    };
    state.write(work_dir)?;
    if json {
        print_json(&json!({ "status": "ready", "state": state }));
    } else {
        print_up(&state);
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm.recv() => {}
    }
    if !json {
        eprintln!("shutting down");
    }
    State::remove(work_dir);
    drop(system);
    Ok(std::process::ExitCode::SUCCESS)
}

fn print_up(state: &State) {
    let d = &state.deployment;
    let t = &state.timings;
    println!("harness is up ({:?} backend)", state.backend);
    println!("  endpoint        {}", state.endpoint);
    match &state.iam_log {
        Some(log) => println!(
            "  iam             {} by the gateway in front of {} (decisions in {})",
            state.iam,
            state.emulator_endpoint,
            log.display()
        ),
        None => println!("  iam             off: no gateway, nothing is checked"),
    }
    println!(
        "  smtp capture    {} (spool {})",
        state.smtp,
        state.mail_spool.display()
    );
    println!("  account A       {} (callee)", state.accounts.callee);
    println!("    function      {}", d.callee_function_arn);
    println!("    invoke role   {}", d.cross_account_role_arn);
    println!("  account B       {} (caller)", state.accounts.caller);
    println!("    function      {}", d.caller_function_arn);
    println!("    exec role     {}", d.caller_role_arn);
    println!("  timings");
    println!("    build         {:>7} ms", t.build_ms);
    println!("    emulator      {:>7} ms", t.emulator_start_ms);
    println!("    deploy        {:>7} ms", t.deploy_ms);
    if let Some(first) = t.first_invoke_ms {
        println!("    first invoke  {first:>7} ms");
    }
    println!("try: harness invoke --payload scenarios/payloads/p1.json");
    println!("stop with Ctrl-C or `harness down`");
}

async fn invoke_cmd(
    args: &InvokeArgs,
    work_dir: &Path,
    json: bool,
) -> Result<std::process::ExitCode> {
    let state = State::read(work_dir)?;
    let payload = std::fs::read(&args.payload)
        .with_context(|| format!("cannot read the payload file {}", args.payload.display()))?;
    let clients = Clients::new(&state.endpoint, &state.accounts).await;
    let trace_id = invoke::new_trace_id();
    let outcome = invoke::call(
        &clients,
        &state.deployment,
        &Call {
            via: args.via,
            payload,
            invocation: args.invocation_type,
            trace_id: trace_id.clone(),
        },
    )
    .await;
    let wait = Duration::from_millis(args.wait_ms);
    let at_least = if wait.is_zero() { 0 } else { 1 };
    let emails = Mailbox::Spool(state.mail_spool.clone())
        .emails_of(&trace_id, at_least, wait)
        .await;
    let decisions = state
        .iam_log
        .as_deref()
        .map(|log| invoke::decisions_of(log, &trace_id))
        .unwrap_or_default();
    if json {
        let mut value = invoke_json(&outcome, &emails);
        value["iam"] = serde_json::to_value(&decisions).unwrap_or_default();
        print_json(&value);
    } else {
        print_invoke(&outcome, &emails);
        print_chain(&state, &decisions, &emails);
    }
    Ok(match outcome.status {
        invoke::CallStatus::Success => std::process::ExitCode::SUCCESS,
        _ => std::process::ExitCode::from(1),
    })
}

/// The `--json` shape of `harness invoke`.
pub fn invoke_json(outcome: &CallOutcome, emails: &[CapturedEmail]) -> serde_json::Value {
    // A denial reported by the caller lambda is still that lambda's function error.
    let function_error = outcome.status == invoke::CallStatus::FunctionError
        || (outcome.status == invoke::CallStatus::Denied && outcome.response.is_some());
    let status = match outcome.status {
        invoke::CallStatus::Success => "success",
        _ if function_error => "function_error",
        _ => "error",
    };
    json!({
        "status": status,
        "response": outcome.response,
        "error_type": outcome.error_type,
        "error_message": outcome.error_message,
        "logs": outcome.logs,
        "trace_id": outcome.trace_id,
        "duration_ms": outcome.duration.as_secs_f64() * 1000.0,
        "emails": emails.iter().map(|e| json!({
            "from": e.from,
            "to": e.to,
            "cc": e.cc,
            "subject": e.subject,
            "text": e.text,
            "html": e.html,
            "headers": e.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn print_invoke(outcome: &CallOutcome, emails: &[CapturedEmail]) {
    println!(
        "status: {:?} ({:.1} ms)",
        outcome.status,
        outcome.duration.as_secs_f64() * 1000.0
    );
    match outcome.status {
        invoke::CallStatus::Success => {
            if let Some(response) = &outcome.response {
                println!(
                    "response: {}",
                    serde_json::to_string_pretty(response).unwrap_or_default()
                );
            }
        }
        _ => {
            println!(
                "error: {}: {}",
                outcome.error_type.as_deref().unwrap_or("?"),
                outcome.error_message.as_deref().unwrap_or("")
            );
        }
    }
    for (function, logs) in &outcome.logs {
        println!("--- logs: {function}");
        println!("{}", logs.trim_end());
    }
    println!("--- emails: {}", emails.len());
    for email in emails {
        println!("from:    {}", email.from);
        println!("to:      {}", email.to.join(", "));
        if !email.cc.is_empty() {
            println!("cc:      {}", email.cc.join(", "));
        }
        println!("subject: {}", email.subject);
        println!();
        println!("{}", email.text.trim_end());
        println!();
    }
}

/// Letters for the two accounts, as the decision chain shows them.
fn account_letters(accounts: &Accounts) -> std::collections::BTreeMap<String, String> {
    [
        (accounts.callee.clone(), "A".to_string()),
        (accounts.caller.clone(), "B".to_string()),
    ]
    .into()
}

fn print_chain(
    state: &State,
    decisions: &[crate::gateway::DecisionRecord],
    emails: &[CapturedEmail],
) {
    if state.iam_log.is_none() {
        println!("--- iam: off (no gateway; LocalStack checked nothing)");
        return;
    }
    println!("--- iam ({})", state.iam);
    let chain = crate::gateway::format_chain(decisions, &account_letters(&state.accounts));
    if chain.trim().is_empty() {
        println!("(no evaluated request carried this call's trace id)");
    } else {
        println!("{}", chain.trim_end());
    }
    if !emails.is_empty() {
        println!(
            "  → SMTP 250 ({} email{})",
            emails.len(),
            if emails.len() == 1 { "" } else { "s" }
        );
    }
}

async fn iam_explain(work_dir: &Path, json: bool) -> Result<std::process::ExitCode> {
    let state = State::read(work_dir)?;
    let hops = crate::gateway::explain(
        &state.emulator_endpoint,
        &state.deployment.caller_function_arn,
    )
    .await?;
    let allowed = hops.iter().all(|h| h.allowed);
    if json {
        print_json(&json!({
            "allowed": allowed,
            "hops": hops.iter().map(|h| h.to_record()).collect::<Vec<_>>(),
        }));
    } else {
        print!(
            "{}",
            crate::gateway::format_explanation(&hops, &account_letters(&state.accounts))
        );
        println!(
            "{}",
            if allowed {
                "the chain would be allowed"
            } else {
                "the chain would be denied"
            }
        );
    }
    Ok(if allowed {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

async fn deploy_cmd(work_dir: &Path, json: bool) -> Result<std::process::ExitCode> {
    let state = State::read(work_dir)?;
    let config = deploy_config_from_state(&state, json);
    deploy::validate(&state.endpoint, &config).await?;
    let build = BuildOptions {
        profile: state.profile.clone(),
        out_dir: work_dir.join("lambda"),
        with_shim: false,
        quiet: json,
    };
    let artifacts = tokio::task::spawn_blocking(move || package::build(&build)).await??;
    let started = Instant::now();
    let deployment = deploy::deploy(&state.endpoint, &artifacts, &config).await?;
    let elapsed = started.elapsed();
    let mut state = state;
    state.deployment = deployment;
    state.write(work_dir)?;
    if json {
        print_json(
            &json!({"status": "deployed", "deploy_ms": elapsed.as_millis() as u64, "deployment": state.deployment}),
        );
    } else {
        println!("redeployed in {:.1} s", elapsed.as_secs_f64());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn down(work_dir: &Path, json: bool) -> Result<std::process::ExitCode> {
    let state = match State::read(work_dir) {
        Ok(state) => state,
        Err(crate::HarnessError::NotRunning(_)) => {
            if json {
                print_json(&json!({"status": "not_running"}));
            } else {
                println!("no harness is running");
            }
            return Ok(std::process::ExitCode::SUCCESS);
        }
        Err(err) => return Err(err.into()),
    };
    use nix::{sys::signal::Signal, unistd::Pid};
    let pid = Pid::from_raw(state.pid as i32);
    let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(20);
    while state::alive(state.pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if state::alive(state.pid) {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    }
    // Whatever the up process could not stop, stop here.
    if let Some(pgid) = state.emulator_pgid {
        crate::emulator::host::stop_group(Pid::from_raw(pgid), Duration::from_secs(2));
    }
    State::remove(work_dir);
    if json {
        print_json(&json!({"status": "stopped", "pid": state.pid}));
    } else {
        println!("stopped harness (pid {})", state.pid);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn package_cmd(args: &PackageArgs, json: bool) -> Result<std::process::ExitCode> {
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| package::workspace_root().join("target").join("lambda"));
    let artifacts = package::build(&BuildOptions {
        profile: args.profile.clone(),
        out_dir,
        with_shim: false,
        quiet: json,
    })?;
    if json {
        print_json(&json!({
            "alert-callee": artifacts.callee.zip,
            "alert-caller": artifacts.caller.zip,
        }));
    } else {
        println!("{}", artifacts.callee.zip.display());
        println!("{}", artifacts.caller.zip.display());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn run_cmd(args: &RunArgs, work_dir: &Path, json: bool) -> Result<std::process::ExitCode> {
    use std::io::IsTerminal;

    let paths = if args.paths.is_empty() {
        let local = PathBuf::from("scenarios");
        vec![if local.is_dir() {
            local
        } else {
            package::workspace_root().join("scenarios")
        }]
    } else {
        args.paths.clone()
    };
    let filter = scenario::Filter {
        name_contains: args.filter.clone(),
        tags: args.tag.clone(),
    };
    // Every file is checked before anything starts.
    let scenarios = match crate::runner::load(&paths, &filter) {
        Ok(s) => s,
        Err(err) => {
            if json {
                print_json(&json!({"status": "invalid_scenarios", "error": err.to_string()}));
            } else {
                eprintln!("{err}");
            }
            return Ok(std::process::ExitCode::from(2));
        }
    };
    if scenarios.is_empty() {
        bail!("no scenario matches the filter");
    }

    let started = Instant::now();
    let (target, own_system, system_timings) = match State::read(work_dir) {
        Ok(state) => {
            if !json {
                eprintln!("reusing the running harness (pid {})", state.pid);
            }
            (target_from_state(&state, work_dir, json).await?, None, None)
        }
        Err(_) => {
            let mut options = args.system.up_options(work_dir.to_path_buf(), json)?;
            options.spool = false;
            options.skip_first_invoke = true;
            let system = System::up(&options)
                .await
                .context("bringing the system up failed")?;
            let timings = system.timings.clone();
            (system.target(), Some(system), Some(timings))
        }
    };
    let setup = started.elapsed();

    let variants_started = Instant::now();
    let variants = crate::runner::deploy_variants(&target, &scenarios).await;
    let variants_elapsed = variants_started.elapsed();

    let color = !json && std::io::stdout().is_terminal();
    let scenarios_started = Instant::now();
    let finished = crate::runner::run(&target, &variants, &scenarios, args.jobs, |s, f| {
        if json {
            return;
        }
        let result = scenario::ScenarioResult {
            scenario: s,
            outcome: &f.outcome,
            verdict: &f.verdict,
        };
        if result.passed() {
            println!("PASS  {} ({} ms)", s.name, f.outcome.duration.as_millis());
        } else {
            println!("{}", scenario::render_failure(&result, color));
            for (lambda, logs) in &f.outcome.logs {
                println!("  --- logs: {lambda}");
                for line in logs.lines() {
                    println!("  | {line}");
                }
            }
            if !f.outcome.iam.is_empty() {
                println!("  --- iam decisions");
                for d in &f.outcome.iam {
                    println!(
                        "  | {} → {} → {}  {}",
                        d.principal, d.action, d.resource, d.explanation
                    );
                }
            }
        }
    })
    .await;
    let scenarios_elapsed = scenarios_started.elapsed();

    let results: Vec<scenario::ScenarioResult<'_>> = finished
        .iter()
        .map(|f| scenario::ScenarioResult {
            scenario: &scenarios[f.index],
            outcome: &f.outcome,
            verdict: &f.verdict,
        })
        .collect();
    let report_dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| work_dir.join("reports"));
    for result in &results {
        scenario::write_report(&report_dir, result.scenario, result.outcome, result.verdict)
            .with_context(|| format!("writing the report of {}", result.scenario.name))?;
    }
    if let Some(junit) = &args.junit {
        scenario::write_junit(junit, "scenarios", &results)
            .with_context(|| format!("writing {}", junit.display()))?;
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    if json {
        print_json(&json!({
            "status": if failed == 0 { "passed" } else { "failed" },
            "passed": results.len() - failed,
            "failed": failed,
            "total": results.len(),
            "timings_ms": {
                "system_setup": setup.as_millis() as u64,
                "system": system_timings,
                "variant_deploys": variants_elapsed.as_millis() as u64,
                "scenarios": scenarios_elapsed.as_millis() as u64,
            },
            "jobs": args.jobs,
            "scenarios": results.iter().map(|r| json!({
                "name": r.scenario.name,
                "passed": r.passed(),
                "duration_ms": r.outcome.duration.as_millis() as u64,
                "mismatches": r.verdict.mismatches,
            })).collect::<Vec<_>>(),
        }));
    } else {
        println!();
        scenario::write_summary(&mut std::io::stdout(), &results, color)?;
        match &system_timings {
            Some(t) => println!(
                "system (excluded): build {} ms, emulator start {} ms, default deploy {} ms",
                t.build_ms, t.emulator_start_ms, t.deploy_ms
            ),
            None => println!("system: reused a running harness"),
        }
        println!(
            "variant deploys: {} ms; scenarios: {} ms with --jobs {}; reports in {}",
            variants_elapsed.as_millis(),
            scenarios_elapsed.as_millis(),
            args.jobs,
            report_dir.display()
        );
    }
    drop(own_system);
    Ok(if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

async fn bench_cmd(
    args: &BenchArgs,
    work_dir: &Path,
    json: bool,
) -> Result<std::process::ExitCode> {
    let mut options = args
        .system
        .up_options(work_dir.with_file_name("harness-bench"), json)?;
    options.smtp.set_port(0);
    // Warm the venv first: its one-time creation is not part of the start time.
    tokio::task::spawn_blocking(move || crate::emulator::venv::ensure(json)).await??;
    let system = System::up(&options)
        .await
        .context("bringing the system up failed")?;
    let payload = crate::system::warm_up_payload(&options.allowed_domains);
    let mut samples = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let started = Instant::now();
        let (outcome, emails) = system
            .call(Via::Caller, payload.clone(), Invocation::RequestResponse)
            .await;
        let elapsed = started.elapsed();
        if outcome.status != invoke::CallStatus::Success || emails.len() != 1 {
            bail!(
                "a warm invoke failed: {:?} {:?}",
                outcome.error_type,
                outcome.error_message
            );
        }
        samples.push(elapsed.as_secs_f64() * 1000.0);
    }
    let stats = LatencyStats::of(&mut samples);
    let t = &system.timings;
    let overhead = system.gateway.as_ref().map(|g| g.overhead());
    if json {
        print_json(&json!({
            "iam": options.iam.to_string(),
            "gateway_overhead_us": overhead.map(|o| json!({"requests": o.requests, "median": o.median_us, "p90": o.p90_us, "max": o.max_us})),
            "emulator_ready_ms": t.emulator_start_ms,
            "deploy_four_stacks_ms": t.deploy_ms,
            "first_invoke_ms": t.first_invoke_ms,
            "warm_chain_invoke_ms": stats,
            "profile": options.profile,
        }));
    } else {
        println!(
            "emulator ready (warm cache)   {:>8} ms",
            t.emulator_start_ms
        );
        println!("four stacks deployed          {:>8} ms", t.deploy_ms);
        println!(
            "first invoke (cold chain)     {:>8} ms",
            t.first_invoke_ms.unwrap_or_default()
        );
        println!(
            "warm chain invoke, n={:<4}     median {:.1} ms, p90 {:.1} ms, min {:.1} ms, max {:.1} ms",
            samples.len(),
            stats.median,
            stats.p90,
            stats.min,
            stats.max
        );
        println!(
            "(caller → STS → callee → SMTP; lambdas built with profile {}; --iam {})",
            options.profile, options.iam
        );
        if let Some(o) = overhead {
            println!(
                "gateway's own time per request  median {} µs, p90 {} µs, max {} µs (n={})",
                o.median_us, o.p90_us, o.max_us, o.requests
            );
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Order statistics of latency samples, in milliseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct LatencyStats {
    /// The median.
    pub median: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The fastest.
    pub min: f64,
    /// The slowest.
    pub max: f64,
}

impl LatencyStats {
    /// Sorts the samples and reads the statistics off them.
    pub fn of(samples: &mut [f64]) -> Self {
        samples.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| {
            if samples.is_empty() {
                0.0
            } else {
                samples[((samples.len() - 1) as f64 * q).round() as usize]
            }
        };
        Self {
            median: at(0.5),
            p90: at(0.9),
            min: at(0.0),
            max: at(1.0),
        }
    }
}

/// Reaches a running `harness up`: its endpoint, mail spool and deployment;
/// the lambdas are rebuilt (a no-op when unchanged) for variant deploys.
async fn target_from_state(
    state: &State,
    work_dir: &Path,
    quiet: bool,
) -> Result<crate::runner::Target> {
    let build = BuildOptions {
        profile: state.profile.clone(),
        out_dir: work_dir.join("lambda"),
        with_shim: false,
        quiet,
    };
    let artifacts = tokio::task::spawn_blocking(move || package::build(&build)).await??;
    Ok(crate::runner::Target {
        endpoint: state.endpoint.clone(),
        iam_log: state.iam_log.clone(),
        clients: Clients::new(&state.endpoint, &state.accounts).await,
        mailbox: Mailbox::Spool(state.mail_spool.clone()),
        deployment: state.deployment.clone(),
        deploy_config: deploy_config_from_state(state, quiet),
        artifacts,
    })
}

fn deploy_config_from_state(state: &State, quiet: bool) -> DeployConfig {
    DeployConfig {
        accounts: state.accounts.clone(),
        templates_dir: package::workspace_root().join("cloudformation"),
        smtp_host: state.smtp_host_for_lambdas.clone(),
        smtp_port: state
            .smtp
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(crate::DEFAULT_SMTP_PORT),
        smtp_tls: "none".into(),
        mail_from: state.mail_from.clone(),
        allowed_domains: state.allowed_domains.clone(),
        lambda_endpoint: None,
        suffix: None,
        overrides: Default::default(),
        quiet,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use rstest::rstest;

    use super::*;

    #[test]
    fn latency_stats_are_order_statistics() {
        let mut samples = vec![5.0, 1.0, 4.0, 2.0, 3.0];
        let stats = LatencyStats::of(&mut samples);
        assert_eq!((stats.min, stats.median, stats.max), (1.0, 3.0, 5.0));
        assert_eq!(stats.p90, 5.0);
    }

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[rstest]
    #[case::twelve_digits("111111111111", true)]
    #[case::too_short("11111111111", false)]
    #[case::letters("11111111111a", false)]
    fn accounts_are_twelve_digits(#[case] id: &str, #[case] ok: bool) {
        assert_eq!(account(id, "--callee-account").is_ok(), ok);
    }

    #[test]
    fn invoke_json_has_the_documented_shape() {
        let outcome = CallOutcome {
            status: invoke::CallStatus::FunctionError,
            response: Some(json!({"errorType": "CalleeFailed"})),
            error_type: Some("CalleeFailed".into()),
            error_message: Some("ValidationError: alert.number is required".into()),
            logs: [("servicenow-invoker".to_string(), "START".to_string())].into(),
            trace_id: "Root=1-a-b".into(),
            duration: Duration::from_millis(12),
        };

        let value = invoke_json(&outcome, &[]);

        assert_eq!(value["status"], "function_error");
        assert_eq!(value["error_type"], "CalleeFailed");
        assert_eq!(value["logs"]["servicenow-invoker"], "START");
        assert_eq!(value["emails"], json!([]));
        for key in ["response", "error_message"] {
            assert!(value.get(key).is_some(), "missing {key}");
        }
    }
}
