//! `harness iam explain`: decide the deployed chain hop by hop, invoking nothing.
//! `harness iam simulate`: AWS's `simulate-custom-policy`, offline, with the
//! evaluator the gateway uses.

use std::{fmt, path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::Args;
use iam_gateway::{DecisionRecord, HopExplanation};
use iam_policy::{SimulateInput, SimulateOutput};
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
        &state.aws_endpoint(),
        &state.root_keys,
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

/// `harness iam simulate` options.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// The input of `aws iam simulate-custom-policy --cli-input-json`:
    /// `file://input.json`, a bare path, or `-` for stdin.
    #[arg(long = "cli-input-json", value_name = "FILE")]
    pub input: String,
}

/// The simulation, or why the input cannot be simulated.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Simulated {
    /// AWS's `{"EvaluationResults": [...]}`.
    Results(SimulateOutput),
    /// A policy AWS would refuse to store, or an incomplete input (exit 2).
    Refused {
        /// What is wrong, naming the policy and statement.
        error: String,
    },
}

impl Output for Simulated {
    fn text(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        match self {
            Self::Refused { error } => writeln!(out, "error: {error}"),
            Self::Results(results) => {
                let rows = &results.evaluation_results;
                let width = |f: fn(&iam_policy::EvaluationResult) -> &str, title: &str| {
                    rows.iter()
                        .map(|r| f(r).len())
                        .chain([title.len()])
                        .max()
                        .unwrap_or(0)
                };
                let action = width(|r| &r.eval_action_name, "ACTION");
                let resource = width(|r| &r.eval_resource_name, "RESOURCE");
                let decision = width(|r| &r.eval_decision, "DECISION");
                writeln!(
                    out,
                    "{:action$}  {:resource$}  {:decision$}  WHY",
                    "ACTION", "RESOURCE", "DECISION"
                )?;
                for r in rows {
                    writeln!(
                        out,
                        "{:action$}  {:resource$}  {:decision$}  {}",
                        r.eval_action_name, r.eval_resource_name, r.eval_decision, r.explanation
                    )?;
                }
                Ok(())
            }
        }
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            Self::Results(_) => ExitCode::SUCCESS,
            Self::Refused { .. } => ExitCode::from(2),
        }
    }
}

/// Reads the input and simulates it; needs no running system.
pub fn simulate(args: &SimulateArgs) -> Result<Simulated> {
    let path = PathBuf::from(args.input.strip_prefix("file://").unwrap_or(&args.input));
    let bytes = super::invoke::read_input(&path, "simulation input")?;
    let input: SimulateInput = match serde_json::from_slice(&bytes) {
        Ok(input) => input,
        Err(err) => {
            return Ok(Simulated::Refused {
                error: format!("the input is not simulate-custom-policy's JSON: {err}"),
            });
        }
    };
    Ok(match iam_policy::simulate(&input) {
        Ok(results) => Simulated::Results(results),
        Err(err) => Simulated::Refused {
            error: err.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simulate_text(json: &str) -> Simulated {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("input.json");
        std::fs::write(&file, json).expect("write");
        simulate(&SimulateArgs {
            input: format!("file://{}", file.display()),
        })
        .expect("reads")
    }

    #[test]
    fn aws_input_gives_aws_output_and_bad_policies_exit_2() {
        let allowed = simulate_text(
            r#"{"PolicyInputList": ["{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"lambda:GetFunction\",\"Resource\":\"*\"}}"],
                "ActionNames": ["lambda:GetFunction", "lambda:DeleteFunction"]}"#,
        );
        let json = serde_json::to_value(&allowed).expect("json");
        assert_eq!(json["EvaluationResults"][0]["EvalDecision"], "allowed");
        assert_eq!(json["EvaluationResults"][1]["EvalDecision"], "implicitDeny");
        assert_eq!(allowed.exit_code(), ExitCode::SUCCESS);

        let refused = simulate_text(
            r#"{"PolicyInputList": ["{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:*\",\"Resource\":\"*\"}}"],
                "ActionNames": ["s3:GetObject"]}"#,
        );
        assert_eq!(refused.exit_code(), ExitCode::from(2));
        let mut text = String::new();
        refused.text(&mut text).expect("text");
        assert!(text.contains("PolicyInputList.1: statement 0"), "{text}");
    }
}
