//! The `harness` command line: argument parsing and dispatch. Each command
//! lives in its own module and returns an [`output::Output`], which
//! [`output::emit`] prints as text or JSON.

mod bench;
mod deploy;
mod down;
mod env;
mod iam;
mod invoke;
pub mod output;
mod package;
mod render;
mod run;
mod up;

use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use self::{
    bench::BenchArgs, env::EnvArgs, invoke::InvokeArgs, package::PackageArgs, render::RenderArgs,
    run::RunArgs, up::UpArgs,
};

/// Runs the cross-account alerting lambdas on one machine: LocalStack, the
/// four stacks in two accounts, and an SMTP server that captures every email.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about)]
pub struct Cli {
    /// Print one JSON object per command instead of human-readable text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Where the harness keeps its state, logs, zips and captured mail
    /// (default: target/harness in the workspace).
    #[arg(long, global = true, env = "HARNESS_WORK_DIR")]
    pub work_dir: Option<PathBuf>,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start everything, deploy, serve the mail viewer, and stay up until Ctrl-C.
    Up(UpArgs),
    /// Invoke the running system with a payload and show what happened.
    Invoke(InvokeArgs),
    /// Validate a payload as the callee does and show the email it would send (no emulator).
    Render(RenderArgs),
    /// Validate the templates and redeploy them into the running system, or
    /// (`--plan`) show what that would change and whether the chain and the
    /// deploy stay allowed, changing nothing.
    Deploy(deploy::DeployArgs),
    /// Stop a running `harness up`.
    Down,
    /// Print shell exports that make your own AWS CLI or SDK act as one
    /// account's root through the IAM gateway: `eval "$(harness env --account B)"`.
    Env(EnvArgs),
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
    /// Merge the JUnit reports of `run --shard` jobs into one.
    JunitMerge(run::JunitMergeArgs),
}

/// `harness iam` commands.
#[derive(Debug, Subcommand)]
pub enum IamCommand {
    /// Print, hop by hop, whether the deployed chain would be allowed and why.
    Explain,
    /// Evaluate policies offline as `aws iam simulate-custom-policy` does,
    /// with the evaluator the gateway uses (`--cli-input-json file://input.json`).
    Simulate(iam::SimulateArgs),
}

/// What every command knows: where the work directory is, and how to print.
#[derive(Debug, Clone)]
pub struct Context {
    /// The work directory.
    pub work_dir: PathBuf,
    /// Print JSON instead of text.
    pub json: bool,
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let context = Context {
        work_dir: cli
            .work_dir
            .unwrap_or_else(crate::workspace::default_work_dir),
        json: cli.json,
    };
    let json = context.json;
    Ok(match cli.command {
        Command::Up(args) => up::up(&args, &context).await?,
        Command::Invoke(args) => output::emit(&invoke::invoke(&args, &context).await?, json),
        Command::Render(args) => output::emit(&render::render(&args, &context)?, json),
        Command::Deploy(args) if args.plan => {
            output::emit(&deploy::plan(&args, &context).await?, json)
        }
        Command::Deploy(args) => output::emit(&deploy::deploy(&args, &context).await?, json),
        Command::Down => output::emit(&down::down(&context)?, json),
        Command::Env(args) => output::emit(&env::env(&args, &context)?, json),
        Command::Package(args) => output::emit(&package::package(&args, &context)?, json),
        Command::Run(args) => run::run(&args, &context).await?,
        Command::JunitMerge(args) => {
            run::junit_merge(&args)?;
            ExitCode::SUCCESS
        }
        Command::Bench(args) => {
            // Dropping the bench on Ctrl-C stops everything it started: the
            // emulator's and cargo-lambda's process groups.
            let measured = tokio::select! {
                measured = bench::bench(&args, &context) => measured?,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("interrupted");
                    return Ok(ExitCode::from(130));
                }
            };
            output::emit(&measured, json)
        }
        Command::Iam(IamCommand::Explain) => output::emit(&iam::explain(&context).await?, json),
        Command::Iam(IamCommand::Simulate(args)) => output::emit(&iam::simulate(&args)?, json),
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_bad_account_id_is_refused_with_the_rule() {
        let err = Cli::try_parse_from(["harness", "up", "--callee-account", "12345"])
            .expect_err("not 12 digits");
        assert!(err.to_string().contains("12 digits"), "{err}");
    }
}
