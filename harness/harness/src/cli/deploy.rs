//! `harness deploy`: validate the templates and redeploy them into the
//! running system, or plan that (`--plan`) without changing anything.

use std::{fmt, path::PathBuf, process::ExitCode, time::Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use scenario::Stack;
use serde::Serialize;

use super::{
    Context,
    output::{Output, status},
};
use crate::{
    deploy::{self, Deployment},
    package,
    plan::{self, Plan},
    resource_schemas,
    system::RunningSystem,
};

/// Options of `harness deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Show what deploying the templates on disk would change, and whether the
    /// alert chain and the deploy stay allowed; change nothing. Exits 1 when a
    /// hop or a deploy permission would be denied.
    #[arg(long)]
    pub plan: bool,
    /// With `--plan`: plan this one template instead of the four, for the stack
    /// its file is named after (`calleecloudformation.yaml` anywhere is the
    /// callee stack).
    #[arg(long, requires = "plan")]
    pub template: Option<PathBuf>,
}

/// What `deploy` did.
#[derive(Debug, Serialize)]
pub struct Redeployed {
    status: &'static str,
    deploy_ms: u64,
    deployment: Deployment,
}

impl Output for Redeployed {
    fn text(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(out, "redeployed in {:.1} s", self.deploy_ms as f64 / 1000.0)
    }
}

/// Validates, rebuilds (a no-op when nothing changed) and redeploys through
/// change sets; the state file gets the new deployment.
pub async fn deploy(_args: &DeployArgs, context: &Context) -> Result<Redeployed> {
    let mut state = RunningSystem::read(&context.work_dir)?;
    let config = state.deploy_config(context.json);
    deploy::validate(&state.aws_endpoint(), &config).await?;
    let build = state.config.build_options(&context.work_dir, context.json);
    let artifacts = tokio::task::spawn_blocking(move || package::build(&build)).await??;
    let started = Instant::now();
    state.deployment = deploy::deploy(&state.aws_endpoint(), &artifacts, &config).await?;
    let deploy_ms = started.elapsed().as_millis() as u64;
    state.write(&context.work_dir)?;
    Ok(Redeployed {
        status: "deployed",
        deploy_ms,
        deployment: state.deployment,
    })
}

/// Plans the templates on disk (or `--template`) against the running system.
pub async fn plan(args: &DeployArgs, context: &Context) -> Result<PlanOutput> {
    let state = RunningSystem::read(&context.work_dir)?;
    let templates: Vec<(Stack, PathBuf)> = match &args.template {
        Some(file) => vec![(plan::stack_of_file(file)?, file.clone())],
        None => Stack::ALL
            .into_iter()
            .map(|stack| {
                (
                    stack,
                    crate::workspace::templates_dir().join(format!("{stack}.yaml")),
                )
            })
            .collect(),
    };
    let templates = templates
        .into_iter()
        .map(|(stack, file)| {
            std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read the template {}", file.display()))
                .map(|body| (stack, body))
        })
        .collect::<Result<Vec<_>>>()?;
    if templates.is_empty() {
        bail!("nothing to plan");
    }
    let schemas = tokio::task::spawn_blocking({
        let quiet = context.json;
        move || resource_schemas::ensure(quiet)
    })
    .await??;
    Ok(PlanOutput(plan::plan(&state, &schemas, &templates).await?))
}

/// A plan, printed.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct PlanOutput(pub Plan);

impl Output for PlanOutput {
    fn text(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        let plan = &self.0;
        for stack in &plan.stacks {
            writeln!(out, "stack {} ({})", stack.stack, stack.name)?;
            if stack.changes.is_empty() {
                writeln!(out, "  no changes")?;
            }
            for change in &stack.changes {
                let what = match (change.action.as_str(), change.replacement) {
                    ("Modify", true) => format!(
                        "replace (AWS replaces it: {} changes)",
                        change.replaced_by.join(", ")
                    ),
                    ("Modify", false) => "modify (no replacement)".to_owned(),
                    ("Add", _) => "add".to_owned(),
                    ("Remove", _) => "remove".to_owned(),
                    (other, _) => other.to_lowercase(),
                };
                writeln!(
                    out,
                    "  {} {} ({}): {what}",
                    change_sign(&change.action, change.replacement),
                    change.logical_id,
                    change.resource_type
                )?;
                if !change.properties.is_empty() {
                    writeln!(out, "      properties: {}", change.properties.join(", "))?;
                }
                if let Some(unknown) = &change.permissions_unknown {
                    writeln!(out, "      deploy permissions: {unknown}")?;
                }
                for permission in &change.permissions {
                    writeln!(
                        out,
                        "      {} {} on {} ({})",
                        if permission.allowed { "allow" } else { "DENY " },
                        permission.action,
                        permission.resource,
                        permission.because
                    )?;
                }
            }
        }
        writeln!(out, "chain")?;
        for hop in &plan.chain {
            let verdict = |allowed: bool| if allowed { "allow" } else { "deny" };
            let turn = match (hop.before.allowed, hop.after.allowed) {
                (true, false) => "turns deny",
                (false, true) => "turns allow",
                (true, true) => "stays allowed",
                (false, false) => "stays denied",
            };
            writeln!(
                out,
                "  hop {}: {} → {}: {} → {} ({turn})",
                hop.after.hop,
                hop.after.action,
                hop.after.resource,
                verdict(hop.before.allowed),
                verdict(hop.after.allowed),
            )?;
            writeln!(out, "      before: {}", hop.before.explanation)?;
            writeln!(out, "      after:  {}", hop.after.explanation)?;
            if let Some(denial) = &hop.after.denial {
                writeln!(out, "      AWS would answer: {denial}")?;
            }
        }
        if plan.passes() {
            writeln!(out, "ok: the chain and the deploy stay allowed")
        } else {
            writeln!(out, "not ok:")?;
            for problem in &plan.problems {
                writeln!(out, "  {problem}")?;
            }
            Ok(())
        }
    }

    fn exit_code(&self) -> ExitCode {
        status(self.0.passes())
    }
}

fn change_sign(action: &str, replacement: bool) -> &'static str {
    match (action, replacement) {
        ("Add", _) => "+",
        ("Remove", _) => "-",
        (_, true) => "±",
        _ => "~",
    }
}
