//! `harness iam explain`: decide the deployed chain hop by hop, invoking nothing.

use std::{fmt, process::ExitCode};

use anyhow::Result;
use iam_gateway::{DecisionRecord, HopExplanation};
use serde::Serialize;

use super::{Context, output::Output};
use crate::{deploy::Accounts, system::RunningSystem};

/// The chain's hops and whether all are allowed.
#[derive(Debug, Serialize)]
pub struct Explanation {
    allowed: bool,
    hops: Vec<DecisionRecord>,
    #[serde(skip)]
    explained: Vec<HopExplanation>,
    #[serde(skip)]
    accounts: Accounts,
}

impl Output for Explanation {
    fn text(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        out.write_str(&iam_gateway::format_explanation(
            &self.explained,
            &self.accounts.letters(),
        ))?;
        writeln!(
            out,
            "the chain would be {}",
            if self.allowed { "allowed" } else { "denied" }
        )
    }

    fn exit_code(&self) -> ExitCode {
        super::output::status(self.allowed)
    }
}

/// Reads the deployed caller's configuration and the policies behind it
/// straight from the emulator, and decides each hop as AWS would.
pub async fn explain(context: &Context) -> Result<Explanation> {
    let state = RunningSystem::read(&context.work_dir)?;
    let explained = iam_gateway::explain(
        &state.emulator_endpoint,
        &state.deployment.caller_function_arn,
    )
    .await?;
    Ok(Explanation {
        allowed: explained.iter().all(|h| h.allowed),
        hops: explained.iter().map(HopExplanation::to_record).collect(),
        explained,
        accounts: state.config.accounts(),
    })
}
