//! Runs scenario files against the system: one deploy per distinct set of
//! overrides, scenarios concurrently (`--jobs`), each one's emails told apart
//! by the trace id its call carries.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use scenario::{CapturedEmail as ExpectedShapeEmail, Outcome, OutcomeStatus, Scenario, Verdict};
use tokio::sync::Semaphore;

use crate::{
    deploy::{self, DeployConfig, Deployment},
    error::HarnessError,
    gateway::{self, DecisionRecord},
    invoke::{self, Call, CallStatus, Clients, Invocation, Mailbox, Via},
    package::Artifacts,
    smtp::CapturedEmail,
};

/// Everything a run needs to reach the system, whether this process started
/// it or a `harness up` did.
#[derive(Debug, Clone)]
pub struct Target {
    /// The AWS endpoint.
    pub endpoint: String,
    /// The IAM gateway's decision log, when a gateway runs.
    pub iam_log: Option<PathBuf>,
    /// SDK configs of both accounts.
    pub clients: Clients,
    /// Where emails are read from.
    pub mailbox: Mailbox,
    /// The default deployment.
    pub deployment: Deployment,
    /// How the default deployment was made (variants start from it).
    pub deploy_config: DeployConfig,
    /// The lambda zips (variants deploy the same code).
    pub artifacts: Artifacts,
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

/// How long a run waits for emails a scenario expects, when it does not say.
const DEFAULT_EMAIL_WAIT: Duration = Duration::from_secs(5);
/// How long an `Event` scenario that expects no email watches for strays.
const EVENT_QUIET_PERIOD: Duration = Duration::from_millis(1500);

/// The variant deployments of a run, by override key.
pub type Variants = BTreeMap<String, Result<Deployment, String>>;

/// Deploys one variant per distinct set of overrides, all at once, next to
/// the default stacks, which stay untouched: nothing needs restoring
/// afterwards, and a rerun against the same `harness up` finds the variants
/// already deployed (an unchanged change set is a no-op).
pub async fn deploy_variants(target: &Target, scenarios: &[Scenario]) -> Variants {
    let groups = scenario::deploy_groups(scenarios);
    let deploys = groups
        .iter()
        .filter(|(overrides, _)| !overrides.is_empty())
        .map(|(overrides, _)| {
            let key = overrides.key();
            let mut config = target.deploy_config.clone();
            config.suffix = Some(key.clone());
            config.overrides = overrides.to_stack_map();
            config.quiet = true;
            async move {
                let result = deploy::deploy(&target.endpoint, &target.artifacts, &config)
                    .await
                    .map_err(|e| e.to_string());
                (key, result)
            }
        });
    futures::future::join_all(deploys)
        .await
        .into_iter()
        .collect()
}

/// Runs the scenarios, `jobs` at a time, each against the default deployment
/// or its variant; results come back in input order. `on_done` sees each
/// result as it finishes.
pub async fn run(
    target: &Target,
    variants: &Variants,
    scenarios: &[Scenario],
    jobs: usize,
    on_done: impl Fn(&Scenario, &Finished) + Send + Sync,
) -> Vec<Finished> {
    let semaphore = Arc::new(Semaphore::new(jobs.max(1)));
    let on_done = &on_done;
    let tasks = scenarios.iter().enumerate().map(|(index, scenario)| {
        let semaphore = semaphore.clone();
        let deployment = if scenario.deploy.is_empty() {
            Ok(&target.deployment)
        } else {
            match variants.get(&scenario.deploy.key()) {
                Some(Ok(d)) => Ok(d),
                Some(Err(e)) => Err(e.clone()),
                None => Err("the variant was not deployed".to_string()),
            }
        };
        async move {
            let _permit = semaphore.acquire().await;
            let outcome = match deployment {
                Ok(deployment) => run_one(target, deployment, scenario).await,
                Err(reason) => Outcome {
                    status: OutcomeStatus::Error,
                    error_type: Some("DeployFailed".into()),
                    error_message: Some(format!(
                        "deploying this scenario's overrides failed: {reason}"
                    )),
                    ..Outcome::default()
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

/// Runs one scenario against one deployment and gathers its outcome.
pub async fn run_one(target: &Target, deployment: &Deployment, scenario: &Scenario) -> Outcome {
    let started = Instant::now();
    let payload = match serde_json::to_vec(&scenario.invoke.payload) {
        Ok(p) => p,
        Err(e) => {
            return Outcome {
                error_message: Some(format!("the payload does not serialise: {e}")),
                ..Outcome::default()
            };
        }
    };
    let invocation = match scenario.invoke.invocation_type {
        scenario::InvocationType::RequestResponse => Invocation::RequestResponse,
        scenario::InvocationType::Event => Invocation::Event,
        scenario::InvocationType::DryRun => Invocation::DryRun,
    };
    let via = match scenario.invoke.via {
        scenario::Via::Caller => Via::Caller,
        scenario::Via::Callee => Via::Callee,
    };
    let trace_id = invoke::new_trace_id();
    let call = invoke::call(
        &target.clients,
        deployment,
        &Call {
            via,
            payload,
            invocation,
            trace_id: trace_id.clone(),
        },
    )
    .await;

    let expected = scenario.expect.emails.as_ref().map_or(0, Vec::len);
    let wait = match (scenario.expect.within_ms, invocation, expected) {
        (Some(ms), _, _) => Duration::from_millis(ms),
        (None, Invocation::Event, 0) => EVENT_QUIET_PERIOD,
        (None, _, 0) => Duration::ZERO,
        (None, _, _) => DEFAULT_EMAIL_WAIT,
    };
    let mut emails = target
        .mailbox
        .emails_of(&trace_id, expected.max(1), wait)
        .await;
    emails.sort_by_key(|e| e.seq);
    let iam = target
        .iam_log
        .as_deref()
        .map(|log| invoke::decisions_of(log, &trace_id))
        .unwrap_or_default();

    Outcome {
        status: match call.status {
            CallStatus::Success => OutcomeStatus::Success,
            CallStatus::FunctionError => OutcomeStatus::FunctionError,
            CallStatus::Denied => OutcomeStatus::Denied,
            CallStatus::InvalidRequest => OutcomeStatus::InvalidRequest,
            CallStatus::Error => OutcomeStatus::Error,
        },
        error_type: call.error_type,
        error_message: call.error_message,
        response: call.response,
        emails: emails.iter().map(to_outcome_email).collect(),
        logs: call.logs,
        iam: iam.iter().filter_map(to_outcome_decision).collect(),
        duration: started.elapsed(),
    }
}

/// Evaluated decisions only: a request the gateway did not evaluate was not checked.
fn to_outcome_decision(record: &DecisionRecord) -> Option<scenario::IamDecision> {
    let decision = match record.decision {
        gateway::Verdict::Allow => scenario::Decision::Allow,
        // Audit mode: AWS would have denied it.
        gateway::Verdict::Deny | gateway::Verdict::WouldDeny => scenario::Decision::Deny,
        gateway::Verdict::NotEvaluated | gateway::Verdict::Error => return None,
    };
    Some(scenario::IamDecision {
        principal: record.principal.clone().unwrap_or_default(),
        action: record.action.clone(),
        resource: record.resource.clone().unwrap_or_default(),
        decision,
        explanation: record.explanation.clone(),
    })
}

fn to_outcome_email(email: &CapturedEmail) -> ExpectedShapeEmail {
    ExpectedShapeEmail {
        from: email.from.clone(),
        to: email.to.clone(),
        cc: email.cc.clone(),
        subject: email.subject.clone(),
        text: (!email.text.is_empty()).then(|| email.text.clone()),
        html: (!email.html.is_empty()).then(|| email.html.clone()),
        headers: email.headers.clone(),
        raw: email.raw.clone(),
    }
}

/// Loads scenarios from paths, applying the filter; file errors come back
/// before anything starts.
pub fn load(paths: &[PathBuf], filter: &scenario::Filter) -> Result<Vec<Scenario>, HarnessError> {
    let scenarios = scenario::load(paths)?;
    Ok(filter.apply(scenarios))
}
