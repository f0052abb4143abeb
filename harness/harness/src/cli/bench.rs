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
    compare::{self, CalleeEnv, CargoLambdaWatch, Comparison, Floor, FloorMail},
    observe::{Call, EmailWait},
    system::{Launch, System, SystemConfig, warm_up_payload},
};

/// Options of `harness bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Warm invokes of the full chain to time.
    #[arg(long, default_value_t = 100)]
    pub iterations: usize,
    /// Also time direct invokes of the callee (payload in, email out through
    /// the SMTP capture) through the harness, through cargo-lambda's `watch`
    /// emulator (installed from PyPI into the harness's cache on first use),
    /// and the floor: one loopback HTTP request plus one SMTP session, no lambda.
    #[arg(long)]
    pub compare: bool,
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
    /// `--compare`'s figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    compare: Option<Comparison>,
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
        if let Some(c) = &self.compare {
            writeln!(
                out,
                "direct invoke of the callee, payload in, email out (n={}, SMTP TLS {} on every side):",
                c.iterations, c.smtp_tls
            )?;
            let row = |out: &mut dyn fmt::Write, what: &str, s: &LatencyStats| {
                writeln!(
                    out,
                    "  {what:<36} median {:>6.2} ms, p90 {:>6.2} ms, min {:>6.2} ms",
                    s.median, s.p90, s.min
                )
            };
            row(out, &format!("harness (--iam {})", self.iam), &c.harness_ms)?;
            row(
                out,
                &format!("cargo lambda watch {}", c.cargo_lambda_version),
                &c.cargo_lambda_ms,
            )?;
            row(out, "floor (HTTP + SMTP session, no lambda)", &c.floor_ms)?;
            writeln!(
                out,
                "  harness / cargo-lambda = {:.2}×; above the floor: harness +{:.2} ms, cargo-lambda +{:.2} ms",
                c.ratio,
                c.harness_ms.median - c.floor_ms.median,
                c.cargo_lambda_ms.median - c.floor_ms.median
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
    let compare = match args.compare {
        true => Some(compare(&system, &config, &launch, &payload, args.iterations, quiet).await?),
        false => None,
    };
    let t = &system.running.timings;
    Ok(Measured {
        compare,
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

/// `--compare`: the callee invoked directly through the harness, through
/// `cargo lambda watch`, and the floor, interleaved so that load on the
/// machine falls on all three alike.
async fn compare(
    system: &System,
    config: &SystemConfig,
    launch: &Launch,
    payload: &[u8],
    iterations: usize,
    quiet: bool,
) -> Result<Comparison> {
    let binary = tokio::task::spawn_blocking(move || compare::ensure_cargo_lambda(quiet)).await??;
    let running = &system.running;
    let ca_file = match &running.ca_pem {
        Some(pem) => {
            let file = crate::system::ca_file(&launch.work_dir);
            if !file.exists() {
                std::fs::write(&file, pem)
                    .with_context(|| format!("cannot write {}", file.display()))?;
            }
            Some(file)
        }
        None => None,
    };
    let smtp_tls = match running.smtp_credentials {
        Some(_) => crate::system::SMTP_TLS,
        None => crate::system::SMTP_TLS_WITHOUT_CA,
    };
    let env = CalleeEnv {
        mail_from: config.mail_from.clone(),
        allowed_domains: config.allowed_domains.clone(),
        allowed_instance_hosts: config.allowed_instance_hosts.clone(),
        smtp: running.smtp,
        smtp_tls,
        credentials: running.smtp_credentials.clone(),
        ca_file,
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = launch.work_dir.join("cargo-lambda-watch.log");
    let step = crate::progress::Step::start(
        "starting cargo lambda watch (it builds the callee on its first invoke)",
        quiet,
    );
    let watch = CargoLambdaWatch::start(&binary, &env, &config.profile, port, &log)?;
    let client = reqwest::Client::new();
    let ready = watch.wait_ready(&client, payload).await;
    match ready {
        Ok(()) => step.done(),
        Err(err) => {
            step.failed();
            return Err(err.into());
        }
    };

    let email = alert_callee::compose(
        payload,
        &alert_payload::Allowlists {
            recipients: alert_payload::RecipientAllowlist::from_csv(&config.allowed_domains)
                .context("--allowed-domains is not a list of domains")?,
            instance_hosts: alert_payload::InstanceHostAllowlist::from_csv(
                &config.allowed_instance_hosts,
            )
            .context("--allowed-instance-hosts is not a list of hosts")?,
        },
        &alert_payload::Renderer::new().context("the callee's templates do not compile")?,
        None,
    )
    .context("the benchmark's payload is not one the callee accepts")?;
    let from = config
        .mail_from
        .parse::<lettre::message::Mailbox>()
        .context("--mail-from is not a mailbox")?
        .email;
    let to = email
        .to
        .iter()
        .map(|a| a.parse())
        .collect::<Result<Vec<_>, _>>()
        .context("a recipient is not an address")?;
    let floor = Floor::start(FloorMail {
        smtp: running.smtp,
        security: match (&running.ca_pem, &running.smtp_credentials) {
            (Some(ca_pem), Some(credentials)) => Some(FloorMail::security(
                running.smtp,
                ca_pem,
                credentials.clone(),
            )?),
            _ => None,
        },
        envelope: lettre::address::Envelope::new(Some(from), to).context("the floor's envelope")?,
        message: std::sync::Arc::new(
            email
                .to_mime(&config.mail_from)
                .context("the floor's message")?,
        ),
    })
    .await?;

    let capture = &system.capture;
    let (mut harness, mut cargo_lambda, mut floor_ms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..iterations {
        let call = Call::new(
            Via::Callee,
            payload.to_vec(),
            InvocationType::RequestResponse,
        );
        let observation = system.call(call, EmailWait::NONE).await?;
        let outcome = &observation.outcome;
        if outcome.status != OutcomeStatus::Success || outcome.emails.len() != 1 {
            bail!(
                "a direct invoke of the callee failed: {:?} {:?}",
                outcome.error_type,
                outcome.error_message
            );
        }
        harness.push(observation.invoked.as_secs_f64() * 1000.0);

        let before = capture.messages().len();
        let took = compare::post_timed(&client, watch.url(), payload).await?;
        compare::email_arrived(capture, before).await?;
        cargo_lambda.push(took.as_secs_f64() * 1000.0);

        let before = capture.messages().len();
        let took = compare::post_timed(&client, floor.url(), b"").await?;
        compare::email_arrived(capture, before).await?;
        floor_ms.push(took.as_secs_f64() * 1000.0);
    }
    Ok(Comparison::of(
        &mut harness,
        &mut cargo_lambda,
        &mut floor_ms,
        &smtp_tls.to_string(),
    ))
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
