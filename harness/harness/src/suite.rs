//! Runs scenario files against a system: one deploy per distinct set of
//! overrides, next to the default stacks; scenarios concurrently (`jobs`),
//! each one observed by the trace id its call carries; reports per scenario
//! and, when asked, JUnit.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use futures::{
    FutureExt as _,
    future::{BoxFuture, Shared},
};
use scenario::{
    Action, DeployOverrides, InvocationType, Outcome, OutcomeStatus, Scenario, Verdict,
};
use tokio::sync::Semaphore;

use crate::{
    deploy::{self, DeployConfig, Deployment},
    deployer::{self, AccountConfigs},
    error::HarnessError,
    observe::{self, Call, EmailWait, Target},
    package::{self, Artifacts},
    system::{RunningSystem, System},
};

/// How long a run waits for emails a scenario expects, when it does not say.
const DEFAULT_EMAIL_WAIT: Duration = Duration::from_secs(5);
/// How long an `Event` scenario that expects no email watches for strays.
const EVENT_QUIET_PERIOD: Duration = Duration::from_millis(1500);

/// A system as a suite needs it: how to call it, and how to deploy variants into it.
#[derive(Debug, Clone)]
pub struct SuiteTarget {
    /// How calls reach it.
    pub target: Target,
    /// The AWS endpoint variants are deployed through.
    pub endpoint: sdk_config::Endpoint,
    /// The default deployment.
    pub deployment: Deployment,
    /// How the default deployment was made; variants start from it.
    pub deploy_config: DeployConfig,
    /// The lambda zips (variants deploy the same code).
    pub artifacts: Artifacts,
}

impl SuiteTarget {
    /// A system this process runs.
    pub fn of(system: &System) -> Self {
        Self {
            target: system.target(),
            endpoint: system.running.aws_endpoint(),
            deployment: system.running.deployment.clone(),
            deploy_config: system.running.deploy_config(true),
            artifacts: system.artifacts.clone(),
        }
    }

    /// A running `harness up`; the lambdas are rebuilt (a no-op when
    /// unchanged) so that variants deploy the code the default runs.
    pub async fn connect(
        state: &RunningSystem,
        work_dir: &Path,
        quiet: bool,
    ) -> Result<Self, HarnessError> {
        let build = state.config.build_options(work_dir, quiet);
        let artifacts = tokio::task::spawn_blocking(move || package::build(&build))
            .await
            .map_err(|e| HarnessError::Build(e.to_string()))??;
        Ok(Self {
            target: state.connect().await?,
            endpoint: state.aws_endpoint(),
            deployment: state.deployment.clone(),
            deploy_config: state.deploy_config(true),
            artifacts,
        })
    }
}

/// One finished scenario.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Index of the scenario in the input order.
    pub index: usize,
    /// What happened.
    pub outcome: Outcome,
    /// The verdict.
    pub verdict: Verdict,
}

/// One variant's deploy, awaited by each of its scenarios.
type VariantDeploy<'a> = Shared<BoxFuture<'a, Result<Deployment, String>>>;

/// What a suite run did, and how long each part took.
#[derive(Debug)]
pub struct SuiteRun {
    /// Every scenario's result, in input order.
    pub finished: Vec<Finished>,
    /// From the start until the last variant was deployed; the scenarios ran meanwhile.
    pub variant_deploys: Duration,
    /// From the start until the last scenario finished: the whole run, variant deploys included.
    pub scenarios: Duration,
}

impl SuiteRun {
    /// Each scenario with its outcome and verdict, in input order.
    pub fn results<'a>(&'a self, scenarios: &'a [Scenario]) -> Vec<scenario::ScenarioResult<'a>> {
        self.finished
            .iter()
            .map(|f| scenario::ScenarioResult {
                scenario: &scenarios[f.index],
                outcome: &f.outcome,
                verdict: &f.verdict,
            })
            .collect()
    }

    /// Writes each scenario's report directory under `report_dir`, and the
    /// JUnit XML file when one is asked for.
    pub fn write_reports(
        &self,
        scenarios: &[Scenario],
        report_dir: &Path,
        junit: Option<&Path>,
    ) -> Result<(), HarnessError> {
        let results = self.results(scenarios);
        for result in &results {
            scenario::write_report(report_dir, result.scenario, result.outcome, result.verdict)?;
        }
        if let Some(junit) = junit {
            scenario::write_junit(junit, "scenarios", &results)?;
        }
        Ok(())
    }
}

/// Loads scenarios from paths, applying the filter; file errors come back
/// before anything starts.
pub fn load(paths: &[PathBuf], filter: &scenario::Filter) -> Result<Vec<Scenario>, HarnessError> {
    let scenarios = scenario::load(paths)?;
    Ok(filter.apply(scenarios))
}

/// Deploys the variants and runs every scenario, `jobs` at a time, together:
/// the scenarios on the default deployment start at once, while the variants
/// deploy, and a variant's scenarios as soon as it is deployed. Deploys and
/// calls do not disturb each other: no deploy sends an email, and each call
/// is observed by its own trace id. `on_done` sees each result as it finishes.
pub async fn run_suite(
    suite: &SuiteTarget,
    scenarios: &[Scenario],
    jobs: usize,
    on_done: impl Fn(&Scenario, &Finished) + Send + Sync,
) -> SuiteRun {
    let started = Instant::now();
    let slots = Semaphore::new(VARIANT_DEPLOY_JOBS);
    let default_deployers = tokio::sync::OnceCell::new();
    let variants = variant_deploys(suite, scenarios, &slots, &default_deployers);
    let deploys = async {
        futures::future::join_all(variants.iter().map(|(_, deploy)| deploy.clone())).await;
        started.elapsed()
    };
    let by_key: BTreeMap<String, VariantDeploy<'_>> = variants.iter().cloned().collect();
    let (variant_deploys, finished) =
        tokio::join!(deploys, run(suite, &by_key, scenarios, jobs, on_done));
    SuiteRun {
        finished,
        variant_deploys,
        scenarios: started.elapsed(),
    }
}

/// How many variants deploy at once. LocalStack does the work of a deploy
/// (above all creating each function: copying, hashing and unzipping its
/// code) in one Python process, which the scenarios' calls share. Measured
/// with `just test-e2e`, interleaved: four at once took the variants and
/// scenarios 10.4-12.1 s (two: 10.9-13.0 s), but the median scenario that
/// expects no email went from 31-51 ms to 65-80 ms, and more of them passed
/// 300 ms on a cold start; three were no faster than two.
const VARIANT_DEPLOY_JOBS: usize = 2;

/// One deploy per distinct set of overrides, by override key, in the order
/// the scenarios first name them; each takes one of `slots` while it runs.
/// A variant deploys next to the default stacks, which stay untouched:
/// nothing needs restoring afterwards, and a rerun against the same `harness
/// up` finds the variants already deployed (an unchanged change set is a
/// no-op). Each variant deploys only the stacks its overrides change and what
/// its scenarios reach through them ([`deploy::variant_stacks`]), and takes
/// the rest from the default deployment. The variants that keep the default
/// deploy role share its sessions (`default_deployers`), bootstrapped and
/// assumed once per run, as a CI pipeline assumes its deploy roles once;
/// every request they sign is still decided.
fn variant_deploys<'a>(
    suite: &'a SuiteTarget,
    scenarios: &[Scenario],
    slots: &'a Semaphore,
    default_deployers: &'a tokio::sync::OnceCell<AccountConfigs>,
) -> Vec<(String, VariantDeploy<'a>)> {
    scenario::deploy_groups(scenarios)
        .into_iter()
        .filter(|(overrides, _)| !overrides.is_empty())
        .map(|(overrides, members)| {
            let used: BTreeSet<scenario::Stack> =
                members.iter().flat_map(|s| s.stacks_used()).collect();
            let key = overrides.key();
            let deploy = async move {
                let _slot = slots.acquire().await.map_err(|e| e.to_string())?;
                deploy_variant(suite, &overrides, &used, default_deployers)
                    .await
                    .map_err(|e| e.to_string())
            };
            (key, deploy.boxed().shared())
        })
        .collect()
}

/// Deploys one variant of the stacks with these overrides, named by their
/// key, for scenarios that reach the stacks in `used`. A variant without a
/// deploy role of its own deploys with `default_deployers`, which the first
/// such variant bootstraps and assumes.
pub async fn deploy_variant(
    suite: &SuiteTarget,
    overrides: &DeployOverrides,
    used: &BTreeSet<scenario::Stack>,
    default_deployers: &tokio::sync::OnceCell<AccountConfigs>,
) -> Result<Deployment, HarnessError> {
    let mut config = suite.deploy_config.clone();
    config.suffix = Some(overrides.key());
    config.overrides = overrides.clone();
    config.quiet = true;
    let deployers = match overrides.parameters(scenario::Stack::DeployRole) {
        Some(_) => None,
        None => Some(
            default_deployers
                .get_or_try_init(|| {
                    deployer::account_configs(&suite.endpoint, &suite.deploy_config)
                })
                .await?,
        ),
    };
    let own = deploy::variant_stacks(overrides, used);
    deploy::deploy_variant(
        &suite.endpoint,
        &suite.artifacts,
        &config,
        &suite.deployment,
        &own,
        deployers,
    )
    .await
}

/// Runs the scenarios, `jobs` at a time, each against the default deployment
/// or its variant, once that is deployed; results come back in input order.
/// A scenario waiting for its variant holds no job. `on_done` sees each
/// result as it finishes.
async fn run(
    suite: &SuiteTarget,
    variants: &BTreeMap<String, VariantDeploy<'_>>,
    scenarios: &[Scenario],
    jobs: usize,
    on_done: impl Fn(&Scenario, &Finished) + Send + Sync,
) -> Vec<Finished> {
    let semaphore = Semaphore::new(jobs.max(1));
    let on_default = scenarios
        .iter()
        .filter(|s| s.deploy.is_empty() && s.invoke().is_some())
        .count();
    let warm = warm_default(suite, jobs.max(1).min(on_default))
        .boxed()
        .shared();
    let (semaphore, on_done, warm) = (&semaphore, &on_done, &warm);
    let tasks = scenarios.iter().enumerate().map(|(index, scenario)| {
        let variant = (!scenario.deploy.is_empty()).then(|| variants.get(&scenario.deploy.key()));
        async move {
            let deployment = match variant {
                None => {
                    warm.clone().await;
                    Ok(Cow::Borrowed(&suite.deployment))
                }
                Some(Some(deploy)) => deploy.clone().await.map(Cow::Owned),
                Some(None) => Err("the variant was not deployed".to_owned()),
            };
            let _permit = semaphore.acquire().await;
            let outcome = match deployment {
                Ok(deployment) => run_one(suite, &deployment, scenario).await,
                // An outcome a scenario may expect (`deploy_failed`), for a
                // template AWS would refuse to deploy.
                Err(reason) => Outcome {
                    status: OutcomeStatus::DeployFailed,
                    ..harness_error(
                        "DeployFailed",
                        format!("deploying this scenario's overrides failed: {reason}"),
                    )
                },
            };
            let verdict = scenario::check(scenario, &outcome);
            let finished = Finished {
                index,
                outcome,
                verdict,
            };
            on_done(scenario, &finished);
            finished
        }
    });
    futures::future::join_all(tasks).await
}

/// Calls the default deployment's chain `calls` times at once, so that the
/// scenarios that run on it, `jobs` at a time, find warm environments of
/// both lambdas, as `harness up` leaves one warm: a scenario that met a cold
/// start beside the variants' deploys took 0.3-0.6 s, where warm ones take
/// tens of milliseconds. Only a warm-up: its outcome is not checked, since a
/// broken chain fails the scenarios themselves.
async fn warm_default(suite: &SuiteTarget, calls: usize) {
    let warm_ups = (0..calls).map(|_| {
        let call = crate::system::warm_up_call(&suite.deploy_config.allowed_domains);
        async move {
            let _ =
                observe::observe(&suite.target, &suite.deployment, &call, EmailWait::NONE).await;
        }
    });
    futures::future::join_all(warm_ups).await;
}

/// Runs one scenario against one deployment and returns what was observed.
/// When the call cannot be observed, the outcome is the harness's error,
/// which no scenario expects.
pub async fn run_one(suite: &SuiteTarget, deployment: &Deployment, scenario: &Scenario) -> Outcome {
    let observed = match &scenario.action {
        Action::Invoke(invoke) => {
            let call = Call::new(
                invoke.via,
                invoke.payload.to_bytes(),
                invoke.invocation_type,
            )
            .with_faults(scenario.faults.clone());
            observe::observe(&suite.target, deployment, &call, email_wait(scenario))
                .await
                .map(|observation| observation.outcome)
        }
        Action::Request(request) => {
            let target = observe::RequestTarget {
                endpoint: &suite.endpoint,
                root_keys: &suite.deploy_config.root_keys,
                iam_log: suite.target.iam_log.as_deref(),
            };
            observe::request(&target, deployment, request).await
        }
    };
    // `{:#}` shows the cause chain on one line.
    observed.unwrap_or_else(|err| {
        harness_error("ObserveError", format!("{:#}", anyhow::Error::new(err)))
    })
}

/// How long to wait for a scenario's emails, and for how many.
///
/// A synchronous call has finished when it returns: the callee answers only
/// after its SMTP session ended, and the capture server stores each email
/// before it accepts it, so there is nothing left to wait for. `within_ms`
/// is then a bound the checker enforces, not a sleep. An `Event` call
/// returns before the function runs, so its emails are waited for, up to
/// `within_ms`.
fn email_wait(scenario: &Scenario) -> EmailWait {
    if scenario.invoke().map(|i| i.invocation_type) != Some(InvocationType::Event) {
        return EmailWait::NONE;
    }
    let expected = scenario.expect.emails.as_ref().map_or(0, Vec::len);
    let within = match (scenario.expect.within_ms, expected) {
        (Some(ms), _) => Duration::from_millis(ms),
        (None, 0) => EVENT_QUIET_PERIOD,
        (None, _) => DEFAULT_EMAIL_WAIT,
    };
    EmailWait {
        at_least: expected.max(1),
        within,
    }
}

fn harness_error(error_type: &str, message: String) -> Outcome {
    Outcome {
        status: OutcomeStatus::Error,
        error_type: Some(error_type.to_owned()),
        error_message: Some(message),
        ..Outcome::default()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rstest::rstest;

    use super::*;

    fn scenario(yaml: &str) -> Scenario {
        scenario::parse_str(Path::new("s.yaml"), yaml).expect("a scenario")
    }

    #[rstest]
    #[case::sync_call_with_emails_takes_what_is_there(
        "name: a\ninvoke: { payload: {} }\nexpect: { status: success, emails: [ { to: [a@example.com] } ] }\n",
        0,
        Duration::ZERO
    )]
    #[case::sync_within_ms_is_a_bound_not_a_sleep(
        "name: a\ninvoke: { payload: {} }\nexpect: { status: success, emails: [], within_ms: 700 }\n",
        0,
        Duration::ZERO
    )]
    #[case::event_email_default_wait(
        "name: a\ninvoke: { payload: {}, invocation_type: Event }\nexpect: { status: success, emails: [ { to: [a@example.com] } ] }\n",
        1,
        DEFAULT_EMAIL_WAIT
    )]
    #[case::no_email_event_watches_for_strays(
        "name: a\ninvoke: { payload: {}, invocation_type: Event }\nexpect: { status: success, emails: [] }\n",
        1,
        EVENT_QUIET_PERIOD
    )]
    #[case::event_within_ms_wins(
        "name: a\ninvoke: { payload: {}, invocation_type: Event }\nexpect: { status: success, emails: [], within_ms: 700 }\n",
        1,
        Duration::from_millis(700)
    )]
    fn scenarios_say_how_long_to_wait_for_emails(
        #[case] yaml: &str,
        #[case] at_least: usize,
        #[case] within: Duration,
    ) {
        assert_eq!(email_wait(&scenario(yaml)), EmailWait { at_least, within });
    }
}
