//! `harness package`: build both lambdas as `bootstrap` zips.

use std::{fmt, path::PathBuf};

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Context, output::Output};
use crate::package::{self, BuildOptions};

/// Options of `harness package`.
#[derive(Debug, Args)]
pub struct PackageArgs {
    /// The cargo profile.
    #[arg(long, default_value = "release")]
    pub profile: String,
    /// Where `<crate>/bootstrap.zip` go (default: target/lambda).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

/// The zips, by lambda.
#[derive(Debug, Serialize)]
pub struct Packaged {
    #[serde(rename = "alert-callee")]
    callee: PathBuf,
    #[serde(rename = "alert-caller")]
    caller: PathBuf,
}

impl Output for Packaged {
    fn text(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(out, "{}", self.callee.display())?;
        writeln!(out, "{}", self.caller.display())
    }
}

/// Builds both lambdas with the chosen profile and zips them.
pub fn package(args: &PackageArgs, context: &Context) -> Result<Packaged> {
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| crate::workspace::target_dir().join("lambda"));
    let artifacts = package::build(&BuildOptions {
        profile: args.profile.clone(),
        out_dir,
        with_shim: false,
        quiet: context.json,
    })?;
    Ok(Packaged {
        callee: artifacts.callee.zip,
        caller: artifacts.caller.zip,
    })
}
