//! `harness deploy`: validate the templates and redeploy them into the running system.

use std::{fmt, time::Instant};

use anyhow::Result;
use serde::Serialize;

use super::{Context, output::Output};
use crate::{
    deploy::{self, Deployment},
    package,
    system::RunningSystem,
};

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
pub async fn deploy(context: &Context) -> Result<Redeployed> {
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
