//! `harness bench`: measure emulator start, the four-stack deploy, and warm
//! chain invokes, on a system of its own.

use std::{fmt, time::Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use iam_gateway::OverheadStats;
use scenario::{InvocationType, OutcomeStatus, Via};
use serde::Serialize;

use super::{Context, output::Output};
pub use crate::breakdown::LatencyStats;
use crate::{
    breakdown::{Breakdown, ChainSpans},
    observe::{Call, EmailWait},
    system::{Launch, System, SystemConfig, warm_up_payload},
};

/// Options of `harness bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Warm invokes of the full chain to time.
    #[arg(long, default_value_t = 100)]
    pub iterations: usize,
    /// Backend and system options, as for `harness up`.
    #[command(flatten)]
    pub system: SystemConfig,
}

/// The gateway's own time per request, in microseconds.
#[derive(Debug, Serialize)]
struct GatewayOverhead {
    requests: usize,
    median: u64,
    p90: u64,
    max: u64,
}

impl From<OverheadStats> for GatewayOverhead {
    fn from(o: OverheadStats) -> Self {
        Self {
            requests: o.requests,
            median: o.median_us,
            p90: o.p90_us,
            max: o.max_us,
        }
    }
}

/// The measurements.
#[derive(Debug, Serialize)]
pub struct Measured {
    iam: String,
    gateway_overhead_us: Option<GatewayOverhead>,
    emulator_ready_ms: u64,
    deploy_four_stacks_ms: u64,
    first_invoke_ms: Option<u64>,
    warm_chain_invoke_ms: LatencyStats,
    /// The same calls' `Invoke` alone, without reading emails, logs and decisions after it.
    warm_chain_invoke_only_ms: LatencyStats,
    /// Where the warm calls' time went, hop by hop.
    breakdown: Breakdown,
    iterations: usize,
    profile: String,
}

impl Output for Measured {
    fn text(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        let s = &self.warm_chain_invoke_ms;
        writeln!(
            out,
            "emulator ready (warm cache)   {:>8} ms",
            self.emulator_ready_ms
        )?;
        writeln!(
            out,
            "four stacks deployed          {:>8} ms",
            self.deploy_four_stacks_ms
        )?;
        match self.first_invoke_ms {
            Some(first) => writeln!(out, "first invoke (cold chain)     {first:>8} ms")?,
            None => writeln!(out, "first invoke (cold chain)          n/a")?,
        }
        writeln!(
            out,
            "warm chain invoke, n={:<4}     median {:.1} ms, p90 {:.1} ms, min {:.1} ms, max {:.1} ms",
            self.iterations, s.median, s.p90, s.min, s.max
        )?;
        writeln!(
            out,
            "(caller → STS → callee → SMTP; lambdas built with profile {}; --iam {})",
            self.profile, self.iam
        )?;
        let i = &self.warm_chain_invoke_only_ms;
        writeln!(
            out,
            "  of which the Invoke itself   median {:.1} ms, p90 {:.1} ms, min {:.1} ms, max {:.1} ms",
            i.median, i.p90, i.min, i.max
        )?;
        writeln!(
            out,
            "where a warm chain's time goes (median, p90, calls measured):"
        )?;
        for hop in &self.breakdown.hops {
            writeln!(
                out,
                "  {:<46} {:>7.2} ms {:>7.2} ms  n={}",
                hop.label, hop.median_ms, hop.p90_ms, hop.calls
            )?;
        }
        writeln!(
            out,
            "  {:<46} {:>7.2} ms",
            "sum of the chain's medians", self.breakdown.sum_of_medians_ms
        )?;
        if let Some(o) = &self.gateway_overhead_us {
            writeln!(
                out,
                "gateway's own time per request  median {} µs, p90 {} µs, max {} µs (n={})",
                o.median, o.p90, o.max, o.requests
            )?;
        }
        Ok(())
    }
}

/// Brings up a system of its own (ephemeral SMTP port, its own work
/// directory), then times `iterations` warm calls through the whole chain.
pub async fn bench(args: &BenchArgs, context: &Context) -> Result<Measured> {
    let mut config = args.system.clone();
    config.smtp_port = 0;
    let quiet = context.json;
    // Warm the venv first: its one-time creation is not part of the start time.
    tokio::task::spawn_blocking(move || crate::emulator::venv::ensure(quiet)).await??;
    let launch = Launch {
        work_dir: context.work_dir.with_file_name("harness-bench"),
        spool: false,
        warm_up: true,
        viewer: None,
        quiet,
    };
    let system = System::up(&config, &launch)
        .await
        .context("bringing the system up failed")?;
    let payload = warm_up_payload(&config.allowed_domains);
    let deployment = &system.running.deployment;
    let mut samples = Vec::with_capacity(args.iterations);
    let mut invoke_samples = Vec::with_capacity(args.iterations);
    let mut spans = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let started = Instant::now();
        let call = Call::new(
            Via::Caller,
            payload.clone(),
            InvocationType::RequestResponse,
        );
        let trace = call.trace.clone();
        let observation = system.call(call, EmailWait::NONE).await?;
        let elapsed = started.elapsed();
        let outcome = observation.outcome;
        let smtp = system.capture.session_timings().of_trace(&trace).pop();
        spans.push(ChainSpans::read(
            observation.invoked.as_micros() as u64,
            elapsed.as_micros() as u64,
            &observation.requests,
            &deployment.caller_function_name,
            &deployment.callee_function_name,
            outcome
                .logs
                .get(&deployment.caller_function_name)
                .map(String::as_str),
            outcome
                .logs
                .get(&deployment.callee_function_name)
                .map(String::as_str),
            smtp,
        ));
        invoke_samples.push(observation.invoked.as_secs_f64() * 1000.0);
        if outcome.status != OutcomeStatus::Success || outcome.emails.len() != 1 {
            bail!(
                "a warm invoke failed: {:?} {:?}",
                outcome.error_type,
                outcome.error_message
            );
        }
        samples.push(elapsed.as_secs_f64() * 1000.0);
    }
    let t = &system.running.timings;
    Ok(Measured {
        iam: config.iam.to_string(),
        gateway_overhead_us: system.gateway.as_ref().map(|g| g.overhead().into()),
        emulator_ready_ms: t.emulator_start_ms,
        deploy_four_stacks_ms: t.deploy_ms,
        first_invoke_ms: t.first_invoke_ms,
        warm_chain_invoke_ms: LatencyStats::of(&mut samples),
        warm_chain_invoke_only_ms: LatencyStats::of(&mut invoke_samples),
        breakdown: Breakdown::of(&spans),
        iterations: samples.len(),
        profile: config.profile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_stats_are_order_statistics() {
        let mut samples = vec![5.0, 1.0, 4.0, 2.0, 3.0];
        let stats = LatencyStats::of(&mut samples);
        assert_eq!((stats.min, stats.median, stats.max), (1.0, 3.0, 5.0));
        assert_eq!(stats.p90, 5.0);
    }
}
