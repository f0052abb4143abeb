//! `harness run`: run scenario files against a running `harness up`, or
//! against a system this command brings up and stops again.

use std::{fmt, io::IsTerminal as _, path::PathBuf, process::ExitCode, time::Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use serde::Serialize;

use super::{
    Context,
    output::{Output, emit, status},
};
use crate::{
    suite::{self, Finished, SuiteTarget},
    system::{Launch, RunningSystem, System, SystemConfig, Timings},
};

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
    /// Run only shard K of N (`--shard 2/3`), for a CI matrix: deterministic,
    /// a variant's scenarios stay on one shard, and the N shards together run
    /// every scenario once. Merge their reports with `harness junit-merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<scenario::Shard>,
    /// Where per-scenario reports go (default: <work dir>/reports).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Backend and system options, as for `harness up` (ignored when reusing a running one).
    #[command(flatten)]
    pub system: SystemConfig,
}

/// One scenario's line in the JSON summary.
#[derive(Debug, Serialize)]
struct ScenarioLine {
    name: String,
    passed: bool,
    duration_ms: u64,
    mismatches: Vec<scenario::Mismatch>,
}

/// How long each part of the run took, in milliseconds.
#[derive(Debug, Serialize)]
struct RunTimings {
    system_setup: u64,
    /// The system's own start, when this command brought it up.
    system: Option<Timings>,
    /// From the start of the suite until the last variant was deployed.
    variant_deploys: u64,
    /// From the start of the suite until the last scenario finished, variant deploys included.
    scenarios: u64,
}

/// The run's summary.
#[derive(Debug, Serialize)]
pub struct RunSummary {
    status: &'static str,
    passed: usize,
    failed: usize,
    total: usize,
    timings_ms: RunTimings,
    jobs: usize,
    scenarios: Vec<ScenarioLine>,
    #[serde(skip)]
    summary_text: String,
    #[serde(skip)]
    report_dir: PathBuf,
}

impl Output for RunSummary {
    fn text(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(out)?;
        out.write_str(&self.summary_text)?;
        let t = &self.timings_ms;
        match &t.system {
            Some(s) => writeln!(
                out,
                "system (excluded): build {} ms, emulator start {} ms, default deploy {} ms",
                s.build_ms, s.emulator_start_ms, s.deploy_ms
            )?,
            None => writeln!(out, "system: reused a running harness")?,
        }
        writeln!(
            out,
            "variant deploys: {} ms, while the scenarios ran; variants and scenarios: {} ms with --jobs {}; reports in {}",
            t.variant_deploys,
            t.scenarios,
            self.jobs,
            self.report_dir.display()
        )
    }

    fn exit_code(&self) -> ExitCode {
        status(self.failed == 0)
    }
}

/// An error in the scenario files, found before anything started.
#[derive(Debug, Serialize)]
struct InvalidScenarios {
    status: &'static str,
    error: String,
}

impl Output for InvalidScenarios {
    fn text(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(out, "{}", self.error)
    }

    fn exit_code(&self) -> ExitCode {
        ExitCode::from(2)
    }
}

/// Checks every file, reaches or brings up a system, runs the suite, writes
/// the reports, and prints each result as it finishes and a summary at the end.
pub async fn run(args: &RunArgs, context: &Context) -> Result<ExitCode> {
    let paths = if args.paths.is_empty() {
        let local = PathBuf::from("scenarios");
        vec![if local.is_dir() {
            local
        } else {
            crate::workspace::scenarios_dir()
        }]
    } else {
        args.paths.clone()
    };
    let filter = scenario::Filter {
        name_contains: args.filter.clone(),
        tags: args.tag.clone(),
    };
    // Every file is checked before anything starts.
    let scenarios = match suite::load(&paths, &filter) {
        Ok(s) => s,
        Err(err) => {
            let invalid = InvalidScenarios {
                status: "invalid_scenarios",
                error: err.to_string(),
            };
            return Ok(emit(&invalid, context.json));
        }
    };
    if scenarios.is_empty() {
        bail!("no scenario matches the filter");
    }
    let scenarios = match args.shard {
        Some(shard) => scenario::shard(scenarios, shard),
        None => scenarios,
    };
    if let (true, Some(shard)) = (scenarios.is_empty(), args.shard) {
        // More shards than units of work: an empty shard passes, with an empty report.
        if let Some(junit) = &args.junit {
            scenario::write_junit(junit, "scenarios", &[])?;
        }
        eprintln!("shard {}/{} has no scenarios", shard.index, shard.count);
        return Ok(ExitCode::SUCCESS);
    }

    let started = Instant::now();
    let (target, own_system) = match RunningSystem::read(&context.work_dir) {
        Ok(state) => {
            if !context.json {
                eprintln!("reusing the running harness (pid {})", state.pid);
            }
            let target = SuiteTarget::connect(&state, &context.work_dir, context.json).await?;
            (target, None)
        }
        Err(_) => {
            let launch = Launch {
                work_dir: context.work_dir.clone(),
                spool: false,
                warm_up: false,
                viewer: None,
                quiet: context.json,
            };
            let system = System::up(&args.system, &launch)
                .await
                .context("bringing the system up failed")?;
            (SuiteTarget::of(&system), Some(system))
        }
    };
    let setup = started.elapsed();

    let color = !context.json && std::io::stdout().is_terminal();
    let json = context.json;
    let run = suite::run_suite(&target, &scenarios, args.jobs, |s, f| {
        if !json {
            print_finished(s, f, color);
        }
    })
    .await;

    let report_dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| crate::workspace::reports_dir(&context.work_dir));
    run.write_reports(&scenarios, &report_dir, args.junit.as_deref())
        .context("writing the reports")?;
    let results = run.results(&scenarios);
    let failed = results.iter().filter(|r| !r.passed()).count();
    let mut summary_text = Vec::new();
    scenario::write_summary(&mut summary_text, &results, color)?;
    let summary = RunSummary {
        status: if failed == 0 { "passed" } else { "failed" },
        passed: results.len() - failed,
        failed,
        total: results.len(),
        timings_ms: RunTimings {
            system_setup: setup.as_millis() as u64,
            system: own_system.as_ref().map(|s| s.running.timings.clone()),
            variant_deploys: run.variant_deploys.as_millis() as u64,
            scenarios: run.scenarios.as_millis() as u64,
        },
        jobs: args.jobs,
        scenarios: results
            .iter()
            .map(|r| ScenarioLine {
                name: r.scenario.name.clone(),
                passed: r.passed(),
                duration_ms: r.outcome.duration.as_millis() as u64,
                mismatches: r.verdict.mismatches.clone(),
            })
            .collect(),
        summary_text: String::from_utf8_lossy(&summary_text).into_owned(),
        report_dir,
    };
    let code = emit(&summary, context.json);
    drop(own_system);
    Ok(code)
}

/// A scenario's result as it finishes: PASS with its time, or the failure
/// with both lambdas' logs and the IAM decisions of its call.
fn print_finished(scenario: &scenario::Scenario, finished: &Finished, color: bool) {
    let result = scenario::ScenarioResult {
        scenario,
        outcome: &finished.outcome,
        verdict: &finished.verdict,
    };
    if result.passed() {
        println!(
            "PASS  {} ({} ms)",
            scenario.name,
            finished.outcome.duration.as_millis()
        );
        return;
    }
    println!("{}", scenario::render_failure(&result, color));
    for (lambda, logs) in &finished.outcome.logs {
        println!("  --- logs: {lambda}");
        for line in logs.lines() {
            println!("  | {line}");
        }
    }
    if !finished.outcome.iam.is_empty() {
        println!("  --- iam decisions");
        for d in &finished.outcome.iam {
            println!(
                "  | {} → {} → {}  {}",
                d.principal, d.action, d.resource, d.explanation
            );
        }
    }
}

/// `harness junit-merge` options.
#[derive(Debug, Args)]
pub struct JunitMergeArgs {
    /// Where the merged report goes.
    #[arg(long)]
    pub out: PathBuf,
    /// The shards' reports.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
}

/// Merges the shards' JUnit reports into one.
pub fn junit_merge(args: &JunitMergeArgs) -> Result<()> {
    let documents = args
        .reports
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the JUnit report {}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let merged = scenario::merge_junit("scenarios", &documents).map_err(anyhow::Error::msg)?;
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, merged)
        .with_context(|| format!("cannot write {}", args.out.display()))
}
