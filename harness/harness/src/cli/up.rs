//! `harness up`: bring the system up, publish its state file, and stay up until Ctrl-C.

use std::{fmt, net::SocketAddr, process::ExitCode};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::{Context, output::Output};
use crate::system::{Launch, RunningSystem, System, SystemConfig};

/// `harness up`'s options: the system, and where to serve the mail viewer.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// What to bring up.
    #[command(flatten)]
    pub system: SystemConfig,
    /// The mail viewer's port on 127.0.0.1 (Mailpit's by default); 0 serves no viewer.
    #[arg(long, default_value_t = crate::DEFAULT_UI_PORT, env = "HARNESS_UI_PORT")]
    pub ui_port: u16,
}

/// What `up` prints once the system is ready.
#[derive(Debug, Serialize)]
pub struct Ready<'a> {
    status: &'static str,
    state: &'a RunningSystem,
}

impl Output for Ready<'_> {
    fn text(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        let state = self.state;
        let d = &state.deployment;
        let t = &state.timings;
        let letters = state.config.accounts().letters();
        let letter = |account: &str| letters.get(account).cloned().unwrap_or_default();
        writeln!(out, "harness is up ({:?} backend)", state.config.backend)?;
        writeln!(out, "  endpoint        {}", state.endpoint)?;
        match &state.iam_log {
            Some(log) => writeln!(
                out,
                "  iam             {} by the gateway, every client's only way in (decisions in {})",
                state.config.iam,
                log.display()
            )?,
            None => writeln!(out, "  iam             off: no gateway, nothing is checked")?,
        }
        let spool = state.mail_spool.as_ref().map_or_else(
            || "in memory".to_owned(),
            |s| format!("spool {}", s.display()),
        );
        writeln!(out, "  smtp capture    {} ({spool})", state.smtp)?;
        match &state.viewer {
            Some(url) => writeln!(
                out,
                "  mail viewer     {url} (Mailpit API under {url}api/v1)"
            )?,
            None => writeln!(out, "  mail viewer     off (--ui-port 0)")?,
        }
        let accounts = [
            (
                &d.accounts.callee,
                "callee",
                &d.callee_function_arn,
                "invoke role",
                &d.cross_account_role_arn,
            ),
            (
                &d.accounts.caller,
                "caller",
                &d.caller_function_arn,
                "exec role  ",
                &d.caller_role_arn,
            ),
        ];
        let deployers = [&d.deployers.callee, &d.deployers.caller];
        let deployed_by = match d.deployers.ci_role_arn {
            Some(_) => "deploy role",
            None => "deployed by",
        };
        for ((account, lambda, function, role, role_arn), deployer) in
            accounts.into_iter().zip(deployers)
        {
            writeln!(
                out,
                "  account {}       {account} ({lambda})",
                letter(account)
            )?;
            writeln!(out, "    function      {function}")?;
            writeln!(out, "    {role}   {role_arn}")?;
            writeln!(out, "    {deployed_by}   {deployer}")?;
        }
        match &d.deployers.ci_role_arn {
            Some(ci) => {
                writeln!(
                    out,
                    "  account C       {} (tooling)",
                    crate::deployer::TOOLING_ACCOUNT
                )?;
                writeln!(out, "    CI role       {ci}")?;
            }
            None => writeln!(
                out,
                "  deployed as     each account's root (--deploy-as root)"
            )?,
        }
        writeln!(out, "  timings")?;
        writeln!(out, "    build         {:>7} ms", t.build_ms)?;
        writeln!(out, "    emulator      {:>7} ms", t.emulator_start_ms)?;
        writeln!(out, "    deploy        {:>7} ms", t.deploy_ms)?;
        if let Some(first) = t.first_invoke_ms {
            writeln!(out, "    first invoke  {first:>7} ms")?;
        }
        writeln!(
            out,
            "try: harness invoke --payload scenarios/payloads/p1.json"
        )?;
        writeln!(out, "stop with Ctrl-C or `harness down`")
    }
}

/// Brings the system up, writes the state file, prints [`Ready`], and waits
/// for Ctrl-C or SIGTERM; everything started stops on the way out.
pub async fn up(args: &UpArgs, context: &Context) -> Result<ExitCode> {
    let config = &args.system;
    if let Ok(state) = RunningSystem::read(&context.work_dir) {
        bail!(
            "a harness is already up (pid {}, endpoint {}); stop it with `harness down`",
            state.pid,
            state.endpoint
        );
    }
    let launch = Launch {
        work_dir: context.work_dir.clone(),
        spool: true,
        warm_up: true,
        viewer: (args.ui_port != 0).then(|| SocketAddr::from(([127, 0, 0, 1], args.ui_port))),
        quiet: context.json,
    };
    // Signals are watched from the start, so Ctrl-C during a long build or
    // deploy still tears down whatever was started.
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let system = tokio::select! {
        system = System::up(config, &launch) => system.context("harness up failed")?,
        _ = tokio::signal::ctrl_c() => { eprintln!("interrupted"); return Ok(ExitCode::from(130)); }
        _ = sigterm.recv() => { eprintln!("terminated"); return Ok(ExitCode::from(143)); }
    };
    system.running.write(&context.work_dir)?;
    super::output::emit(
        &Ready {
            status: "ready",
            state: &system.running,
        },
        context.json,
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm.recv() => {}
    }
    if !context.json {
        eprintln!("shutting down");
    }
    RunningSystem::remove(&context.work_dir);
    drop(system);
    Ok(ExitCode::SUCCESS)
}
