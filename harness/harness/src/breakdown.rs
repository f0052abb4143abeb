//! Where a warm chain invoke's time goes, hop by hop, read from what the
//! system records anyway: the client's own clock around the `Invoke`, the IAM
//! gateway's per-request overhead and upstream time (its decision records,
//! grouped by the call's trace id), both lambdas' `REPORT` durations, and the
//! SMTP relay's arrival time of each command of the callee's session.
//!
//! Each hop is the difference of two measured spans, never an estimate:
//! "emulator → caller" is the gateway's upstream time for the client's
//! `Invoke` minus the caller's `REPORT` duration, and so on. [`hops`] computes
//! them for one call, [`Breakdown::of`] takes the median of each over many.

use std::collections::BTreeMap;

use iam_gateway::DecisionRecord;
use serde::Serialize;

use crate::smtp::SmtpSessionTiming;

/// Order statistics of latency samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyStats {
    /// The median.
    pub median: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The fastest.
    pub min: f64,
    /// The slowest.
    pub max: f64,
}

impl LatencyStats {
    /// Sorts the samples and reads the statistics off them.
    pub fn of(samples: &mut [f64]) -> Self {
        samples.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| {
            if samples.is_empty() {
                0.0
            } else {
                samples[((samples.len() - 1) as f64 * q).round() as usize]
            }
        };
        Self {
            median: at(0.5),
            p90: at(0.9),
            min: at(0.0),
            max: at(1.0),
        }
    }
}

/// One call's measured spans, in microseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainSpans {
    /// The client's `Invoke` of the caller, send to answer.
    pub client_invoke_us: u64,
    /// The whole observed call: the invoke, then reading its emails, logs and decisions.
    pub observed_us: u64,
    /// The gateway's record of the client's `Invoke` of the caller.
    pub caller_invoke: Option<GatewaySpan>,
    /// The gateway's record of the caller's `sts:AssumeRole`; `None` when the
    /// caller reused credentials it assumed before.
    pub assume_role: Option<GatewaySpan>,
    /// The gateway's record of the caller's `Invoke` of the callee.
    pub callee_invoke: Option<GatewaySpan>,
    /// The caller's `REPORT` duration.
    pub caller_report_us: Option<u64>,
    /// The callee's `REPORT` duration.
    pub callee_report_us: Option<u64>,
    /// The relay's timing of the callee's SMTP session.
    pub smtp: Option<SmtpSessionTiming>,
}

/// The gateway's split of one request: its own work and the upstream's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewaySpan {
    /// The gateway's own time (verifying, deciding, proxying).
    pub overhead_us: u64,
    /// The upstream's time to answer the forwarded request.
    pub upstream_us: u64,
}

impl GatewaySpan {
    /// Arrival at the gateway to its answer.
    pub fn total_us(self) -> u64 {
        self.overhead_us + self.upstream_us
    }

    fn of(record: &DecisionRecord) -> Option<Self> {
        Some(Self {
            overhead_us: record.overhead_us?,
            upstream_us: record.upstream_us?,
        })
    }
}

impl ChainSpans {
    /// Reads one call's spans from the gateway's `records` of its trace, the
    /// lambdas' logs (`caller_logs`, `callee_logs`) and the relay's `smtp`
    /// timing; the functions are told apart by name.
    #[allow(clippy::too_many_arguments)]
    pub fn read(
        client_invoke_us: u64,
        observed_us: u64,
        records: &[DecisionRecord],
        caller_function: &str,
        callee_function: &str,
        caller_logs: Option<&str>,
        callee_logs: Option<&str>,
        smtp: Option<SmtpSessionTiming>,
    ) -> Self {
        let invoke_of = |function: &str| {
            records
                .iter()
                .find(|r| {
                    r.action == "lambda:InvokeFunction"
                        && r.resource.as_deref().and_then(function_name) == Some(function)
                })
                .and_then(GatewaySpan::of)
        };
        Self {
            client_invoke_us,
            observed_us,
            caller_invoke: invoke_of(caller_function),
            assume_role: records
                .iter()
                .find(|r| r.action == "sts:AssumeRole")
                .and_then(GatewaySpan::of),
            callee_invoke: invoke_of(callee_function),
            caller_report_us: caller_logs.and_then(report_duration_us),
            callee_report_us: callee_logs.and_then(report_duration_us),
            smtp,
        }
    }
}

/// The function name of a Lambda function ARN, qualified or not.
fn function_name(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":function:")?;
    rest.split(':').next()
}

/// The `Duration` of the last `REPORT` line in `logs`, in microseconds.
pub fn report_duration_us(logs: &str) -> Option<u64> {
    let report = logs
        .lines()
        .rev()
        .find(|l| l.starts_with("REPORT RequestId:"))?;
    let value = report
        .split('\t')
        .find_map(|field| field.trim().strip_prefix("Duration:"))?
        .trim()
        .strip_suffix("ms")?
        .trim();
    let ms: f64 = value.parse().ok()?;
    (ms.is_finite() && ms >= 0.0).then(|| (ms * 1000.0).round() as u64)
}

/// Where a chain's time goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hop {
    /// The harness's SDK client: signing, TLS to the gateway, loopback.
    Client,
    /// The gateway's own work on the client's `Invoke` of the caller.
    GatewayCallerInvoke,
    /// LocalStack's invoke path, the executor plugin and the shim, to the caller and back.
    EmulatorToCaller,
    /// The caller's own work: its SDK, signing, TLS to the gateway.
    Caller,
    /// The gateway's own work on the caller's `sts:AssumeRole`.
    GatewayAssumeRole,
    /// LocalStack's STS answering `AssumeRole`.
    Sts,
    /// The gateway's own work on the caller's `Invoke` of the callee.
    GatewayCalleeInvoke,
    /// LocalStack's invoke path, the executor plugin and the shim, to the callee and back.
    EmulatorToCallee,
    /// The callee's own work outside its SMTP session: validating, rendering, connecting.
    Callee,
    /// SMTP: connection accepted to the first EHLO (greeting).
    SmtpGreeting,
    /// SMTP: STARTTLS to the EHLO after it (the TLS handshake).
    SmtpTls,
    /// SMTP: AUTH to MAIL (the AUTH exchange).
    SmtpAuth,
    /// SMTP: MAIL to the message's final dot (envelope and message, relayed to the capture).
    SmtpMessage,
    /// SMTP: the rest of the session (EHLO replies, the dot's reply, QUIT).
    SmtpRest,
    /// Not the chain: reading the call's emails, logs and decisions afterwards.
    Observing,
}

impl Hop {
    /// What the hop is, for the text output.
    pub fn label(self) -> &'static str {
        match self {
            Self::Client => "harness client (SDK, TLS, loopback)",
            Self::GatewayCallerInvoke => "gateway: client → caller Invoke",
            Self::EmulatorToCaller => "emulator invoke path + plugin + shim → caller",
            Self::Caller => "caller's own work (SDK, signing, TLS)",
            Self::GatewayAssumeRole => "gateway: caller's sts:AssumeRole",
            Self::Sts => "LocalStack STS AssumeRole",
            Self::GatewayCalleeInvoke => "gateway: caller → callee Invoke",
            Self::EmulatorToCallee => "emulator invoke path + plugin + shim → callee",
            Self::Callee => "callee's own work (validate, render, client)",
            Self::SmtpGreeting => "SMTP connect + greeting",
            Self::SmtpTls => "SMTP STARTTLS handshake",
            Self::SmtpAuth => "SMTP AUTH",
            Self::SmtpMessage => "SMTP MAIL … message, to the capture",
            Self::SmtpRest => "SMTP rest (EHLO, QUIT)",
            Self::Observing => "observing after the call (not the chain)",
        }
    }
}

/// The spans of one SMTP session's phases, in microseconds, from the arrival
/// times of its commands.
pub fn smtp_phases(session: &SmtpSessionTiming) -> BTreeMap<Hop, u64> {
    let at = |verb: &str, after: u64| {
        session
            .commands
            .iter()
            .find(|(v, t)| v == verb && *t >= after)
            .map(|(_, t)| *t)
    };
    let mut phases = BTreeMap::new();
    let Some(first_ehlo) = at("EHLO", 0).or_else(|| at("HELO", 0)) else {
        return phases;
    };
    phases.insert(Hop::SmtpGreeting, first_ehlo);
    if let Some(starttls) = at("STARTTLS", first_ehlo)
        && let Some(ehlo) = at("EHLO", starttls)
    {
        phases.insert(Hop::SmtpTls, ehlo - starttls);
    }
    if let Some(auth) = at("AUTH", first_ehlo)
        && let Some(mail) = at("MAIL", auth)
    {
        phases.insert(Hop::SmtpAuth, mail - auth);
    }
    if let Some(mail) = at("MAIL", first_ehlo)
        && let Some(dot) = at(".", mail)
    {
        phases.insert(Hop::SmtpMessage, dot - mail);
    }
    let named: u64 = phases.values().sum();
    phases.insert(Hop::SmtpRest, session.total_us.saturating_sub(named));
    phases
}

/// Every hop of one call that its spans measure, in microseconds. A hop whose
/// spans are missing (no `AssumeRole` on a warm caller, no gateway) is left out.
pub fn hops(spans: &ChainSpans) -> BTreeMap<Hop, u64> {
    let mut hops = BTreeMap::new();
    hops.insert(
        Hop::Observing,
        spans.observed_us.saturating_sub(spans.client_invoke_us),
    );
    if let Some(caller) = spans.caller_invoke {
        hops.insert(
            Hop::Client,
            spans.client_invoke_us.saturating_sub(caller.total_us()),
        );
        hops.insert(Hop::GatewayCallerInvoke, caller.overhead_us);
        if let Some(report) = spans.caller_report_us {
            hops.insert(
                Hop::EmulatorToCaller,
                caller.upstream_us.saturating_sub(report),
            );
        }
    }
    if let Some(assume) = spans.assume_role {
        hops.insert(Hop::GatewayAssumeRole, assume.overhead_us);
        hops.insert(Hop::Sts, assume.upstream_us);
    }
    if let Some(callee) = spans.callee_invoke {
        hops.insert(Hop::GatewayCalleeInvoke, callee.overhead_us);
        if let Some(report) = spans.caller_report_us {
            let outbound = callee.total_us() + spans.assume_role.map_or(0, GatewaySpan::total_us);
            hops.insert(Hop::Caller, report.saturating_sub(outbound));
        }
        if let Some(report) = spans.callee_report_us {
            hops.insert(
                Hop::EmulatorToCallee,
                callee.upstream_us.saturating_sub(report),
            );
        }
    }
    if let Some(session) = &spans.smtp {
        hops.extend(smtp_phases(session));
        if let Some(report) = spans.callee_report_us {
            hops.insert(Hop::Callee, report.saturating_sub(session.total_us));
        }
    }
    hops
}

/// One hop's figures over many calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HopFigures {
    /// Which hop.
    pub hop: Hop,
    /// What it is.
    pub label: &'static str,
    /// The median, in milliseconds.
    pub median_ms: f64,
    /// The 90th percentile, in milliseconds.
    pub p90_ms: f64,
    /// How many of the calls measured it (an `AssumeRole` only when made).
    pub calls: usize,
}

/// The median of each hop over many calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breakdown {
    /// The hops in chain order.
    pub hops: Vec<HopFigures>,
    /// The sum of the chain's hops' medians (observing excluded), in
    /// milliseconds; near, not equal to, the median of the whole.
    pub sum_of_medians_ms: f64,
}

impl Breakdown {
    /// The hops of every call in `calls`, summarised.
    pub fn of(calls: &[ChainSpans]) -> Self {
        let mut samples: BTreeMap<Hop, Vec<f64>> = BTreeMap::new();
        for call in calls {
            for (hop, us) in hops(call) {
                samples.entry(hop).or_default().push(us as f64 / 1000.0);
            }
        }
        let hops: Vec<HopFigures> = samples
            .into_iter()
            .map(|(hop, mut ms)| {
                let stats = LatencyStats::of(&mut ms);
                HopFigures {
                    hop,
                    label: hop.label(),
                    median_ms: stats.median,
                    p90_ms: stats.p90,
                    calls: ms.len(),
                }
            })
            .collect();
        let sum_of_medians_ms = hops
            .iter()
            .filter(|h| h.hop != Hop::Observing)
            .map(|h| h.median_ms)
            .sum();
        Self {
            hops,
            sum_of_medians_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::aws_shape(
        "START RequestId: r Version: $LATEST\nEND RequestId: r\nREPORT RequestId: r\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 17 MB\t",
        Some(12_340)
    )]
    #[case::init_duration_is_not_duration(
        "REPORT RequestId: r\tDuration: 1.50 ms\tBilled Duration: 2 ms\tInit Duration: 20.00 ms\t",
        Some(1_500)
    )]
    #[case::the_last_report_counts(
        "REPORT RequestId: a\tDuration: 9.00 ms\t\nREPORT RequestId: b\tDuration: 3.25 ms\t",
        Some(3_250)
    )]
    #[case::no_report("START RequestId: r\nEND RequestId: r", None)]
    #[case::not_a_number("REPORT RequestId: r\tDuration: fast ms\t", None)]
    fn report_durations_are_read_from_the_last_report_line(
        #[case] logs: &str,
        #[case] expected: Option<u64>,
    ) {
        assert_eq!(report_duration_us(logs), expected);
    }

    #[rstest]
    #[case::unqualified("arn:aws:lambda:us-east-1:111111111111:function:alert", Some("alert"))]
    #[case::qualified(
        "arn:aws:lambda:us-east-1:111111111111:function:alert:$LATEST",
        Some("alert")
    )]
    #[case::a_role("arn:aws:iam::111111111111:role/alert", None)]
    fn function_names_are_read_from_arns(#[case] arn: &str, #[case] expected: Option<&str>) {
        assert_eq!(function_name(arn), expected);
    }

    fn session(commands: &[(&str, u64)], total_us: u64) -> SmtpSessionTiming {
        SmtpSessionTiming {
            trace: None,
            accepted_us: 0,
            commands: commands
                .iter()
                .map(|(v, t)| ((*v).to_owned(), *t))
                .collect(),
            total_us,
        }
    }

    #[test]
    fn a_starttls_auth_session_splits_into_its_phases() {
        let timing = session(
            &[
                ("EHLO", 100),
                ("STARTTLS", 150),
                ("EHLO", 1_150),
                ("AUTH", 1_200),
                ("MAIL", 1_500),
                ("RCPT", 1_550),
                ("DATA", 1_600),
                (".", 1_900),
                ("QUIT", 2_000),
            ],
            2_100,
        );
        let phases = smtp_phases(&timing);
        assert_eq!(phases[&Hop::SmtpGreeting], 100);
        assert_eq!(phases[&Hop::SmtpTls], 1_000);
        assert_eq!(phases[&Hop::SmtpAuth], 300);
        assert_eq!(phases[&Hop::SmtpMessage], 400);
        assert_eq!(phases[&Hop::SmtpRest], 300);
        assert_eq!(phases.values().sum::<u64>(), timing.total_us);
    }

    #[test]
    fn a_plaintext_session_has_no_tls_or_auth_phase() {
        let timing = session(
            &[("EHLO", 80), ("MAIL", 120), (".", 300), ("QUIT", 320)],
            400,
        );
        let phases = smtp_phases(&timing);
        assert!(!phases.contains_key(&Hop::SmtpTls));
        assert!(!phases.contains_key(&Hop::SmtpAuth));
        assert_eq!(phases[&Hop::SmtpMessage], 180);
        assert_eq!(phases[&Hop::SmtpRest], 400 - 80 - 180);
    }

    fn chain() -> ChainSpans {
        ChainSpans {
            client_invoke_us: 40_000,
            observed_us: 55_000,
            caller_invoke: Some(GatewaySpan {
                overhead_us: 700,
                upstream_us: 36_000,
            }),
            assume_role: Some(GatewaySpan {
                overhead_us: 600,
                upstream_us: 4_000,
            }),
            callee_invoke: Some(GatewaySpan {
                overhead_us: 800,
                upstream_us: 15_000,
            }),
            caller_report_us: Some(25_000),
            callee_report_us: Some(9_000),
            smtp: Some(session(
                &[("EHLO", 500), ("MAIL", 1_000), (".", 2_000)],
                3_000,
            )),
        }
    }

    #[test]
    fn each_hop_is_the_difference_of_the_spans_around_it() {
        let hops = hops(&chain());
        assert_eq!(hops[&Hop::Client], 40_000 - 36_700);
        assert_eq!(hops[&Hop::GatewayCallerInvoke], 700);
        assert_eq!(hops[&Hop::EmulatorToCaller], 36_000 - 25_000);
        assert_eq!(hops[&Hop::Caller], 25_000 - 4_600 - 15_800);
        assert_eq!(hops[&Hop::Sts], 4_000);
        assert_eq!(hops[&Hop::EmulatorToCallee], 15_000 - 9_000);
        assert_eq!(hops[&Hop::Callee], 9_000 - 3_000);
        assert_eq!(hops[&Hop::Observing], 15_000);
        // Without observing, the hops account for the client's whole invoke.
        let chain_total: u64 = hops
            .iter()
            .filter(|(hop, _)| **hop != Hop::Observing)
            .map(|(_, us)| us)
            .sum();
        assert_eq!(chain_total, 40_000);
    }

    #[test]
    fn a_warm_caller_without_assume_role_has_no_sts_hop() {
        let mut spans = chain();
        spans.assume_role = None;
        let hops = hops(&spans);
        assert!(!hops.contains_key(&Hop::Sts));
        assert_eq!(hops[&Hop::Caller], 25_000 - 15_800);
    }

    #[test]
    fn the_breakdown_takes_each_hops_median_and_counts_its_calls() {
        let mut slow = chain();
        slow.caller_invoke = Some(GatewaySpan {
            overhead_us: 2_700,
            upstream_us: 36_000,
        });
        let mut warm = chain();
        warm.assume_role = None;
        let breakdown = Breakdown::of(&[chain(), slow, warm]);
        let gateway = breakdown
            .hops
            .iter()
            .find(|h| h.hop == Hop::GatewayCallerInvoke)
            .expect("the gateway's hop");
        assert_eq!((gateway.median_ms, gateway.calls), (0.7, 3));
        let sts = breakdown
            .hops
            .iter()
            .find(|h| h.hop == Hop::Sts)
            .expect("the STS hop");
        assert_eq!(sts.calls, 2);
    }

    #[test]
    fn records_are_told_apart_by_action_and_function() {
        let record = |action: &str, resource: &str, overhead, upstream| DecisionRecord {
            time_ms: 0,
            trace: None,
            principal: None,
            action: action.into(),
            resource: Some(resource.into()),
            decision: iam_gateway::Ruling::Allow,
            reason: "allowed".into(),
            explanation: String::new(),
            deciding: Vec::new(),
            status: Some(200),
            overhead_us: Some(overhead),
            upstream_us: Some(upstream),
            request_id: None,
        };
        let records = [
            record(
                "lambda:InvokeFunction",
                "arn:aws:lambda:us-east-1:2:function:alert-caller",
                1,
                10,
            ),
            record("sts:AssumeRole", "arn:aws:iam::1:role/invoke", 2, 20),
            record(
                "lambda:InvokeFunction",
                "arn:aws:lambda:us-east-1:1:function:alert",
                3,
                30,
            ),
        ];
        let spans = ChainSpans::read(
            100,
            200,
            &records,
            "alert-caller",
            "alert",
            None,
            None,
            None,
        );
        assert_eq!(spans.caller_invoke.map(|s| s.upstream_us), Some(10));
        assert_eq!(spans.assume_role.map(|s| s.upstream_us), Some(20));
        assert_eq!(spans.callee_invoke.map(|s| s.upstream_us), Some(30));
    }
}
