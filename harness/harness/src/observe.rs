//! Observing one call: invoke the deployed chain as a user would, then gather
//! everything that happened because of it, told apart from concurrent calls by
//! the trace id it carries: the response or error, both lambdas' logs, the
//! emails, and the IAM gateway's decisions.
//!
//! [`observe`] is the only place that does this; `harness invoke`, the
//! scenario runner, `harness bench` and the end-to-end tests all call it.

use std::{
    collections::{BTreeMap, HashSet},
    path::{Path, PathBuf},
    sync::{LazyLock, Mutex},
    time::{Duration, Instant, SystemTime},
};

use aws_config::SdkConfig;
use aws_sdk_lambda::{primitives::Blob, types::LogType};
use base64::Engine as _;
use fault_plan::{FaultPlan, FunctionNames, ScopedPlan};
use iam_gateway::{DecisionRecord, Ruling};
use scenario::{CapturedEmail, IamDecision, InvocationType, Outcome, OutcomeStatus, Via};
use xray_trace::TraceId;

use crate::{deploy::Deployment, smtp::MailCapture};

/// One call to make.
#[derive(Debug, Clone)]
pub struct Call {
    /// The entry point.
    pub via: Via,
    /// The payload bytes, sent unchanged.
    pub payload: Vec<u8>,
    /// How to invoke.
    pub invocation: InvocationType,
    /// The trace id to tag the call with.
    pub trace: TraceId,
    /// Faults injected into this call only (a scenario's `faults` block).
    pub faults: FaultPlan,
}

impl Call {
    /// A call with a fresh trace id.
    pub fn new(via: Via, payload: Vec<u8>, invocation: InvocationType) -> Self {
        Self {
            via,
            payload,
            invocation,
            trace: TraceId::new(),
            faults: FaultPlan::default(),
        }
    }

    /// The same call with `faults` injected into it.
    pub fn with_faults(mut self, faults: FaultPlan) -> Self {
        self.faults = faults;
        self
    }
}

/// Where and how a running system takes a call's faults: its IAM gateway's
/// fault book ([`fault_plan::FAULTS_PATH`]) and the token that registers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultsEndpoint {
    /// The gateway's URL, `http://127.0.0.1:<port>`.
    pub gateway: String,
    /// The token the gateway's fault book accepts.
    pub token: String,
}

impl FaultsEndpoint {
    fn url(&self, trace: &TraceId) -> String {
        format!(
            "{}{}{}",
            self.gateway.trim_end_matches('/'),
            fault_plan::FAULTS_PATH,
            trace.root()
        )
    }

    /// Registers `plan` for the call `trace`, naming the deployment's functions.
    async fn register(
        &self,
        trace: &TraceId,
        deployment: &Deployment,
        plan: &FaultPlan,
    ) -> Result<(), ObserveError> {
        let scoped = ScopedPlan {
            trace: trace.clone(),
            functions: FunctionNames {
                callee: deployment.callee_function_name.clone(),
                caller: deployment.caller_function_name.clone(),
            },
            plan: plan.clone(),
        };
        let answer = reqwest::Client::new()
            .put(self.url(trace))
            .header(fault_plan::TOKEN_HEADER, &self.token)
            .json(&scoped)
            .send()
            .await
            .map_err(|e| ObserveError::Faults(e.to_string()))?;
        if !answer.status().is_success() {
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            return Err(ObserveError::Faults(format!(
                "the gateway refused the plan: {status} {text}"
            )));
        }
        Ok(())
    }

    /// Withdraws the plan of the call `trace`.
    async fn withdraw(&self, trace: &TraceId) -> Result<(), ObserveError> {
        reqwest::Client::new()
            .delete(self.url(trace))
            .header(fault_plan::TOKEN_HEADER, &self.token)
            .send()
            .await
            .map_err(|e| ObserveError::Faults(e.to_string()))?;
        Ok(())
    }
}

/// How long to wait for a call's emails after the call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailWait {
    /// Stop waiting as soon as this many have arrived.
    pub at_least: usize,
    /// Stop waiting after this long, whatever has arrived.
    pub within: Duration,
}

impl EmailWait {
    /// Take what has arrived by the time the call returns.
    pub const NONE: Self = Self {
        at_least: 0,
        within: Duration::ZERO,
    };
}

/// SDK configs of both accounts, made once and shared by every call.
#[derive(Debug, Clone)]
pub struct Clients {
    /// Account A (the callee's).
    pub callee_account: SdkConfig,
    /// Account B (the caller's).
    pub caller_account: SdkConfig,
    /// How far the emulator's clock may lag this one's: log events are read
    /// from this long before a call started.
    pub log_clock_slack: Duration,
}

impl Clients {
    /// Acts as the root of each account against `endpoint`, with `keys`.
    pub async fn new(
        endpoint: &sdk_config::Endpoint,
        accounts: &crate::deploy::Accounts,
        keys: &sdk_config::RootKeys,
        log_clock_slack: Duration,
    ) -> Self {
        Self {
            callee_account: sdk_config::root_config(endpoint, keys, &accounts.callee).await,
            caller_account: sdk_config::root_config(endpoint, keys, &accounts.caller).await,
            log_clock_slack,
        }
    }
}

/// Where a call's emails are read from.
#[derive(Debug, Clone)]
pub enum Mailbox {
    /// The capture server in this process.
    InProcess(MailCapture),
    /// The spool directory of a capture server in another process (`harness up`).
    Spool(PathBuf),
}

/// A running system as far as observing a call needs it.
#[derive(Debug, Clone)]
pub struct Target {
    /// SDK configs of both accounts.
    pub clients: Clients,
    /// Where emails are read from.
    pub mailbox: Mailbox,
    /// The IAM gateway's decision log; `None` when no gateway runs.
    pub iam_log: Option<PathBuf>,
    /// Where a call's faults are registered; `None` when no gateway runs.
    pub faults: Option<FaultsEndpoint>,
}

/// Everything observed about one call.
#[derive(Debug, Clone)]
pub struct Observation {
    /// What happened, as scenarios check it: status, response, logs, emails,
    /// and the IAM decisions the gateway evaluated.
    pub outcome: Outcome,
    /// Every request of the call the gateway saw, evaluated or not, in
    /// arrival order; empty without a gateway.
    pub requests: Vec<DecisionRecord>,
    /// How long the entry lambda's `Invoke` took, from sending it to its
    /// answer: the call itself, without reading its emails, logs and decisions.
    pub invoked: Duration,
}

/// A part of a call's observation that could not be read. The call itself
/// was made; what it did cannot be told, so no result is given.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The captured emails could not be read.
    #[error("cannot read the captured emails in {dir}")]
    Emails {
        /// The spool directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A lambda's logs could not be read from CloudWatch Logs.
    #[error("cannot read the logs of log group {group}")]
    Logs {
        /// The log group.
        group: String,
        /// The SDK error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The IAM gateway's decision log could not be read.
    #[error("cannot read the IAM gateway's decisions")]
    Decisions(#[source] iam_gateway::GatewayError),
    /// The call's faults could not be registered with the gateway.
    #[error("cannot inject the call's faults: {0}")]
    Faults(String),
}

/// The trace ids of every call this process has made. An email carrying none
/// of them came from somewhere else, and fails the scenarios it arrived during.
static KNOWN_TRACES: LazyLock<Mutex<HashSet<TraceId>>> =
    LazyLock::new(|| Mutex::new(HashSet::new()));

/// Records that this process makes a call tagged `trace`, before it is made,
/// so its emails are never taken for strays by a concurrent observation.
fn register_trace(trace: &TraceId) {
    KNOWN_TRACES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(trace.clone());
}

fn is_known_trace(trace: &TraceId) -> bool {
    KNOWN_TRACES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(trace)
}

/// The emails received from `from_ms` to `to_ms` (milliseconds since the
/// epoch, both included) that carry no trace id `known` accepts: no
/// `X-Amzn-Trace-Id` header, one without a root, or a root of nobody's call.
pub fn strays(
    emails: &[CapturedEmail],
    from_ms: u64,
    to_ms: u64,
    known: impl Fn(&TraceId) -> bool,
) -> Vec<CapturedEmail> {
    emails
        .iter()
        .filter(|e| (from_ms..=to_ms).contains(&e.received_at_ms))
        .filter(|e| {
            !e.header(xray_trace::HEADER)
                .and_then(TraceId::from_header)
                .is_some_and(|trace| known(&trace))
        })
        .cloned()
        .collect()
}

/// Makes `call` against `deployment` and returns everything observed about it:
/// how it ended, its response or error, both lambdas' logs, its emails
/// (waiting as `wait` says) and the IAM gateway's decisions on its requests.
pub async fn observe(
    target: &Target,
    deployment: &Deployment,
    call: &Call,
    wait: EmailWait,
) -> Result<Observation, ObserveError> {
    let started = Instant::now();
    let started_wall = SystemTime::now();
    register_trace(&call.trace);
    let faults = match (&target.faults, call.faults.is_empty()) {
        (_, true) => None,
        (Some(endpoint), false) => {
            endpoint
                .register(&call.trace, deployment, &call.faults)
                .await?;
            Some(endpoint)
        }
        (None, false) => {
            return Err(ObserveError::Faults(
                "faults are injected by the IAM gateway, and this system runs none (--iam off); run it with --iam enforce or audit".into(),
            ));
        }
    };
    let observed = observe_call(target, deployment, call, wait, started, started_wall).await;
    if let Some(endpoint) = faults {
        endpoint.withdraw(&call.trace).await?;
    }
    observed
}

async fn observe_call(
    target: &Target,
    deployment: &Deployment,
    call: &Call,
    wait: EmailWait,
    started: Instant,
    started_wall: SystemTime,
) -> Result<Observation, ObserveError> {
    let invoke_started = Instant::now();
    let mut outcome = invoke(&target.clients, deployment, call).await;
    let invoked = invoke_started.elapsed();

    // Logs are read after the wait for emails: an Event call returns before
    // its function runs, and Lambda's retries of it run later still.
    let wait = wait_after_answer(call.invocation, outcome.status, wait);
    let mut emails = emails_of(&target.mailbox, &call.trace, wait).await?;
    emails.sort_by_key(|e| e.seq);
    outcome.emails = emails;

    let (entry_sdk, entry_name, entry_group) = match call.via {
        Via::Caller => (
            &target.clients.caller_account,
            &deployment.caller_function_name,
            &deployment.caller_log_group,
        ),
        Via::Callee => (
            &target.clients.callee_account,
            &deployment.callee_function_name,
            &deployment.callee_log_group,
        ),
    };
    let requests = match &target.iam_log {
        Some(log) => decisions_of(log, &call.trace).map_err(ObserveError::Decisions)?,
        None => Vec::new(),
    };
    let logs_since = started_wall - target.clients.log_clock_slack;
    if call.via == Via::Caller && call.invocation != InvocationType::DryRun {
        let logs = traced_logs(
            &target.clients.callee_account,
            &deployment.callee_log_group,
            logs_since,
            &call.trace,
            &forwarded_invocations(&requests, &deployment.callee_function_name),
        )
        .await?;
        if !logs.is_empty() {
            outcome
                .logs
                .insert(deployment.callee_function_name.clone(), logs);
        }
    }
    // The tail of a synchronous call is the entry lambda's log; otherwise, read its group.
    if call.invocation == InvocationType::Event || !outcome.logs.contains_key(entry_name) {
        let logs = traced_logs(entry_sdk, entry_group, logs_since, &call.trace, &[]).await?;
        if !logs.is_empty() {
            outcome.logs.insert(entry_name.clone(), logs);
        }
    }

    // Everything that arrived while this call was watched, not only its own
    // mail: `emails: []` must mean no email at all, not none with this trace.
    let window_end = epoch_ms(SystemTime::now());
    outcome.stray_emails = strays(
        &all_emails(&target.mailbox)?,
        epoch_ms(started_wall),
        window_end,
        is_known_trace,
    );
    outcome.iam = requests.iter().filter_map(checked_decision).collect();
    outcome.duration = started.elapsed();
    Ok(Observation {
        outcome,
        requests,
        invoked,
    })
}

/// How long to wait for a call's emails once its `Invoke` has answered. Lambda
/// queues an `Event` invocation only when it answers 202: one refused (denied,
/// or an invalid request) ran nothing and never will, so nothing is waited
/// for. Any other answer keeps `wait`, a harness error included, since the
/// request may have been queued before it failed.
fn wait_after_answer(
    invocation: InvocationType,
    status: OutcomeStatus,
    wait: EmailWait,
) -> EmailWait {
    match (invocation, status) {
        (InvocationType::Event, OutcomeStatus::Denied | OutcomeStatus::InvalidRequest) => {
            EmailWait::NONE
        }
        _ => wait,
    }
}

/// Invokes the entry lambda and classifies the answer; [`observe`] fills in the rest.
async fn invoke(clients: &Clients, deployment: &Deployment, call: &Call) -> Outcome {
    let (sdk, function, entry_name) = match call.via {
        Via::Caller => (
            &clients.caller_account,
            &deployment.caller_function_arn,
            &deployment.caller_function_name,
        ),
        Via::Callee => (
            &clients.callee_account,
            &deployment.callee_function_arn,
            &deployment.callee_function_name,
        ),
    };
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let started_wall = SystemTime::now();
    let mut request = lambda
        .invoke()
        .function_name(function)
        .invocation_type(call.invocation.as_str().into())
        .payload(Blob::new(call.payload.clone()));
    if call.invocation == InvocationType::RequestResponse {
        request = request.log_type(LogType::Tail);
    }
    let header = call.trace.header();
    let result = request
        .customize()
        .mutate_request(move |req| {
            req.headers_mut().insert(xray_trace::HEADER, header.clone());
        })
        .send()
        .await;

    let mut outcome = Outcome {
        status: OutcomeStatus::Success,
        trace_id: Some(call.trace.clone()),
        started_at_ms: started_wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as u64),
        ..Outcome::default()
    };
    match result {
        Ok(resp) => {
            if let Some(tail) = resp.log_result() {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(tail)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_else(|e| format!("(the log tail is not base64: {e})"));
                outcome.logs.insert(entry_name.clone(), decoded);
            }
            let body = resp.payload().map(|b| b.as_ref()).unwrap_or_default();
            let json: Option<serde_json::Value> = (!body.is_empty()).then(|| {
                serde_json::from_slice(body).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(body).into_owned())
                })
            });
            if resp.function_error().is_some() {
                let error_type = json
                    .as_ref()
                    .and_then(|j| j["errorType"].as_str())
                    .unwrap_or("Unhandled")
                    .to_owned();
                outcome.status = if alert_caller::DENIAL_ERROR_TYPES.contains(&error_type.as_str())
                {
                    OutcomeStatus::Denied
                } else {
                    OutcomeStatus::FunctionError
                };
                outcome.error_message = json
                    .as_ref()
                    .and_then(|j| j["errorMessage"].as_str())
                    .map(str::to_owned);
                outcome.error_type = Some(error_type);
            }
            outcome.response = json;
        }
        Err(err) => {
            use aws_sdk_lambda::error::ProvideErrorMetadata;
            let code = err.code().map(str::to_owned);
            let message = err.message().map(str::to_owned).unwrap_or_else(|| {
                aws_smithy_types::error::display::DisplayErrorContext(&err).to_string()
            });
            outcome.status = classify_service_error(code.as_deref());
            outcome.error_type = code.or(Some("Error".into()));
            outcome.error_message = Some(message);
        }
    }
    outcome
}

/// Where and as whom a [`request`] is sent.
#[derive(Debug, Clone)]
pub struct RequestTarget<'a> {
    /// The gateway's endpoint, trusting the run's CA.
    pub endpoint: &'a sdk_config::Endpoint,
    /// The account roots' keys.
    pub root_keys: &'a sdk_config::RootKeys,
    /// The IAM gateway's decision log; `None` when no gateway runs.
    pub iam_log: Option<&'a Path>,
}

/// Sends one AWS request other than an invoke, tagged with a fresh trace id,
/// and returns how it ended and the gateway's decisions on it.
pub async fn request(
    target: &RequestTarget<'_>,
    deployment: &Deployment,
    request: &scenario::AwsRequest,
) -> Result<Outcome, ObserveError> {
    use aws_sdk_lambda::error::ProvideErrorMetadata;
    use scenario::{AccountLetter, Operation, Transport};

    let started = Instant::now();
    let trace = TraceId::new();
    register_trace(&trace);
    let account = match request.account {
        AccountLetter::A => deployment.accounts.callee.as_str(),
        AccountLetter::B => deployment.accounts.caller.as_str(),
        AccountLetter::C => crate::system::OUTSIDE_ACCOUNT,
    };
    let endpoint = match request.transport {
        Transport::Https => target.endpoint.clone(),
        // The same port, spoken to in plain HTTP.
        Transport::Http => {
            sdk_config::Endpoint::new(target.endpoint.url().replacen("https://", "http://", 1))
        }
    };
    let sdk = sdk_config::root_config(&endpoint, target.root_keys, account).await;
    let header = trace.header();
    // (code, message) of a failed request.
    let failure: Option<(Option<String>, String)> = match request.operation {
        Operation::GetFunction(via) => {
            let function = match via {
                Via::Caller => &deployment.caller_function_arn,
                Via::Callee => &deployment.callee_function_arn,
            };
            aws_sdk_lambda::Client::new(&sdk)
                .get_function()
                .function_name(function)
                .customize()
                .mutate_request(move |req| {
                    req.headers_mut().insert(xray_trace::HEADER, header.clone());
                })
                .send()
                .await
                .err()
                .map(|err| (err.code().map(str::to_owned), error_text(&err)))
        }
        Operation::PutObject(via) => {
            let stack = match via {
                Via::Caller => scenario::Stack::S3Caller,
                Via::Callee => scenario::Stack::S3Callee,
            };
            let bucket = deployment
                .outputs
                .get(&stack)
                .and_then(|o| o.get("CodeBucketName"))
                .cloned()
                .unwrap_or_default();
            sdk_config::s3_client(&sdk)
                .put_object()
                .bucket(bucket)
                .key(format!("harness-requests/{}.zip", trace.root()))
                .body(aws_sdk_s3::primitives::ByteStream::from_static(
                    b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
                ))
                .customize()
                .mutate_request(move |req| {
                    req.headers_mut().insert(xray_trace::HEADER, header.clone());
                })
                .send()
                .await
                .err()
                .map(|err| (err.code().map(str::to_owned), error_text(&err)))
        }
    };
    let mut outcome = Outcome {
        status: OutcomeStatus::Success,
        trace_id: Some(trace.clone()),
        started_at_ms: Some(
            epoch_ms(SystemTime::now()).saturating_sub(started.elapsed().as_millis() as u64),
        ),
        ..Outcome::default()
    };
    if let Some((code, message)) = failure {
        outcome.status = classify_service_error(code.as_deref());
        outcome.error_type = code.or(Some("Error".into()));
        outcome.error_message = Some(message);
    }
    if let Some(log) = target.iam_log {
        let records = decisions_of(log, &trace).map_err(ObserveError::Decisions)?;
        outcome.iam = records.iter().filter_map(checked_decision).collect();
    }
    outcome.duration = started.elapsed();
    Ok(outcome)
}

/// An SDK error's message, or its whole chain when the service sent none.
fn error_text<E, R>(err: &aws_sdk_lambda::error::SdkError<E, R>) -> String
where
    E: aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_lambda::error::ProvideErrorMetadata;
    err.message()
        .map(str::to_owned)
        .unwrap_or_else(|| aws_smithy_types::error::display::DisplayErrorContext(err).to_string())
}

/// Maps a Lambda service error code to a status.
pub fn classify_service_error(code: Option<&str>) -> OutcomeStatus {
    match code {
        Some("AccessDeniedException") | Some("AccessDenied") => OutcomeStatus::Denied,
        Some(
            "RequestTooLargeException"
            | "InvalidRequestContentException"
            | "InvalidParameterValueException"
            | "UnsupportedMediaTypeException"
            | "ResourceNotFoundException",
        ) => OutcomeStatus::InvalidRequest,
        _ => OutcomeStatus::Error,
    }
}

/// The invocations (START … REPORT blocks) in a log group's text that belong
/// to the call tagged `trace`: those with a line naming its trace root, or
/// whose `START` line names one of `request_ids`. Other calls' invocations,
/// from concurrent scenarios, are left out.
pub fn invocations_of(logs: &str, trace: &TraceId, request_ids: &[String]) -> String {
    let root = trace.root();
    let mut kept = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    let started_as = |line: &str| {
        request_id_of(line, "START").is_some_and(|id| request_ids.iter().any(|r| r == id))
    };
    let flush = |block: &mut Vec<&str>, kept: &mut Vec<String>| {
        if block.iter().any(|l| l.contains(root) || started_as(l)) {
            kept.push(block.join("\n"));
        }
        block.clear();
    };
    for line in logs.lines() {
        if line.starts_with("START RequestId:") {
            flush(&mut block, &mut kept);
        }
        block.push(line);
        if line.starts_with("REPORT RequestId:") {
            flush(&mut block, &mut kept);
        }
    }
    flush(&mut block, &mut kept);
    kept.join("\n")
}

/// Both lambdas' invocations that belong to the call tagged `trace`, by
/// function name, read from their log groups since `since`; a lambda that
/// logged nothing for the call is left out.
pub async fn logs_of(
    clients: &Clients,
    deployment: &Deployment,
    trace: &TraceId,
    since: SystemTime,
) -> Result<BTreeMap<String, String>, ObserveError> {
    let mut logs = BTreeMap::new();
    for (sdk, name, group) in [
        (
            &clients.caller_account,
            &deployment.caller_function_name,
            &deployment.caller_log_group,
        ),
        (
            &clients.callee_account,
            &deployment.callee_function_name,
            &deployment.callee_log_group,
        ),
    ] {
        let text = traced_logs(sdk, group, since - clients.log_clock_slack, trace, &[]).await?;
        if !text.is_empty() {
            logs.insert(name.clone(), text);
        }
    }
    Ok(logs)
}

/// The request ids of the Invokes of `function` the gateway forwarded for a
/// call and the emulator answered: each ran the function, whose log names
/// that id in its `START` and `REPORT` lines.
pub fn forwarded_invocations(requests: &[DecisionRecord], function: &str) -> Vec<String> {
    requests
        .iter()
        .filter(|r| {
            r.action == "lambda:InvokeFunction"
                && r.status.is_some_and(|s| (200..300).contains(&s))
                && r.resource
                    .as_deref()
                    .and_then(|arn| arn.split(":function:").nth(1))
                    .is_some_and(|name| name.split(':').next() == Some(function))
        })
        .filter_map(|r| r.request_id.clone())
        .collect()
}

/// How long a function's log may take to reach CloudWatch Logs after its
/// invocation answered: LocalStack stores it from a queue, on a thread of its own.
const LOG_DELIVERY: Duration = Duration::from_secs(5);

/// The request id a log's `START`, `END` or `REPORT` line (`kind`) names.
fn request_id_of<'a>(line: &'a str, kind: &str) -> Option<&'a str> {
    line.strip_prefix(kind)?
        .strip_prefix(" RequestId: ")?
        .split_whitespace()
        .next()
}

/// The invocations of the call tagged `trace` in a log group since `since`,
/// and those of `request_ids` (a timed-out or crashed run may never log the
/// trace), read until each of `request_ids` has its `REPORT` line, or for at
/// most [`LOG_DELIVERY`].
async fn traced_logs(
    sdk: &SdkConfig,
    group: &str,
    since: SystemTime,
    trace: &TraceId,
    request_ids: &[String],
) -> Result<String, ObserveError> {
    let deadline = Instant::now() + LOG_DELIVERY;
    loop {
        let logs = invocations_of(&group_logs(sdk, group, since).await?, trace, request_ids);
        let reported = |id: &String| {
            logs.lines()
                .any(|l| request_id_of(l, "REPORT") == Some(id.as_str()))
        };
        if request_ids.iter().all(reported) || Instant::now() >= deadline {
            return Ok(logs);
        }
        // Each read is work for the emulator that also stores the log: 25 ms
        // between reads made the suite 2 s slower than 50 ms (measured).
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Log lines a function wrote to its group since `since`, by the emulator's
/// clock. A group that does not exist yet has no lines.
async fn group_logs(
    sdk: &SdkConfig,
    group: &str,
    since: SystemTime,
) -> Result<String, ObserveError> {
    use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    let start = since
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let resp = match logs
        .filter_log_events()
        .log_group_name(group)
        .start_time(start)
        .send()
        .await
    {
        Ok(resp) => resp,
        Err(err) if err.code() == Some("ResourceNotFoundException") => return Ok(String::new()),
        Err(err) => {
            return Err(ObserveError::Logs {
                group: group.to_owned(),
                source: Box::new(err),
            });
        }
    };
    Ok(resp
        .events()
        .iter()
        .filter_map(|e| e.message())
        .map(|m| m.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The gateway's decisions on the requests of the call tagged `trace`, in the
/// order the requests arrived, read from its log.
pub fn decisions_of(
    log: &Path,
    trace: &TraceId,
) -> Result<Vec<DecisionRecord>, iam_gateway::GatewayError> {
    let mut records = iam_gateway::read_log_of(log, trace)?;
    // Records are written when each response returns, so inner hops come
    // first; arrival order is the chain's order.
    records.sort_by_key(|r| r.time_ms);
    Ok(records)
}

/// The decision a scenario can check, for requests the gateway evaluated.
fn checked_decision(record: &DecisionRecord) -> Option<IamDecision> {
    let decision = match record.decision {
        Ruling::Allow => scenario::Decision::Allow,
        // Audit mode: AWS would have denied it.
        Ruling::Deny | Ruling::WouldDeny => scenario::Decision::Deny,
        Ruling::NotEvaluated | Ruling::Error => return None,
    };
    Some(IamDecision {
        principal: record.principal.clone().unwrap_or_default(),
        action: record.action.clone(),
        resource: record.resource.clone().unwrap_or_default(),
        decision,
        explanation: record.explanation.clone(),
    })
}

fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Every email the mailbox holds, in arrival order.
fn all_emails(mailbox: &Mailbox) -> Result<Vec<CapturedEmail>, ObserveError> {
    match mailbox {
        Mailbox::InProcess(capture) => Ok(capture.messages()),
        Mailbox::Spool(dir) => {
            crate::smtp::read_spool(dir).map_err(|source| ObserveError::Emails {
                dir: dir.clone(),
                source,
            })
        }
    }
}

/// Waits as `wait` says for the emails of the call tagged `trace`, and returns
/// all of that call's emails seen by then.
async fn emails_of(
    mailbox: &Mailbox,
    trace: &TraceId,
    wait: EmailWait,
) -> Result<Vec<CapturedEmail>, ObserveError> {
    match mailbox {
        Mailbox::InProcess(capture) => Ok(
            match capture
                .wait_for(wait.at_least, wait.within, |m| m.is_of(trace))
                .await
            {
                Ok(found) | Err(found) => found,
            },
        ),
        Mailbox::Spool(dir) => {
            let deadline = Instant::now() + wait.within;
            loop {
                let found: Vec<CapturedEmail> = crate::smtp::read_spool(dir)
                    .map_err(|source| ObserveError::Emails {
                        dir: dir.clone(),
                        source,
                    })?
                    .into_iter()
                    .filter(|m| m.is_of(trace))
                    .collect();
                if found.len() >= wait.at_least || Instant::now() >= deadline {
                    return Ok(found);
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn trace(root: &str) -> TraceId {
        TraceId::from_header(&format!("Root={root}")).expect("a root")
    }

    /// An Invoke's record; `request_id` is the emulator's, when forwarded.
    fn invoke(resource: &str, request_id: Option<&str>, status: u16) -> DecisionRecord {
        let mut record: DecisionRecord = serde_json::from_value(serde_json::json!({
            "time_ms": 0,
            "action": "lambda:InvokeFunction",
            "decision": "allow",
            "reason": "",
            "explanation": "",
            "deciding": [],
        }))
        .expect("a decision record");
        record.resource = Some(resource.to_owned());
        record.upstream_us = request_id.map(|_| 300);
        record.request_id = request_id.map(str::to_owned);
        record.status = Some(status);
        record
    }

    #[test]
    fn only_the_invokes_the_emulator_answered_ran_the_function() {
        let callee = "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert";
        let requests = [
            // The caller's own invoke, by the harness.
            invoke(
                "arn:aws:lambda:us-east-1:222222222222:function:servicenow-invoker",
                Some("r-caller"),
                200,
            ),
            // A scenario fault answered 429: never forwarded.
            invoke(callee, None, 429),
            // The retry ran it.
            invoke(callee, Some("r-1"), 200),
            // A qualified ARN names the same function.
            invoke(&format!("{callee}:$LATEST"), Some("r-2"), 200),
            // Refused by the emulator (e.g. throttled): no run.
            invoke(callee, Some("r-3"), 429),
            // Another function whose name starts the same.
            invoke(&format!("{callee}-v2"), Some("r-4"), 200),
        ];
        assert_eq!(
            forwarded_invocations(&requests, "servicenow-alert"),
            ["r-1", "r-2"]
        );
        assert_eq!(
            forwarded_invocations(&requests, "servicenow-invoker"),
            ["r-caller"]
        );
        assert!(forwarded_invocations(&[], "servicenow-alert").is_empty());
    }

    #[test]
    fn a_run_that_never_logged_the_trace_is_kept_by_its_request_id() {
        let logs = "START RequestId: t Version: $LATEST\n\
                    END RequestId: t\n\
                    REPORT RequestId: t\tDuration: 3000.00 ms\tStatus: timeout\n\
                    START RequestId: tt Version: $LATEST\n\
                    END RequestId: tt\n\
                    REPORT RequestId: tt\tDuration: 5 ms";

        let kept = invocations_of(logs, &trace("1-bbb-222"), &["t".to_owned()]);

        assert!(kept.starts_with("START RequestId: t Version"), "{kept}");
        assert!(kept.ends_with("Status: timeout"), "{kept}");
        assert!(!kept.contains("RequestId: tt"), "{kept}");
        assert_eq!(invocations_of(logs, &trace("1-bbb-222"), &[]), "");
    }

    #[test]
    fn only_the_invocations_of_this_trace_are_kept() {
        let logs = "START RequestId: a Version: $LATEST\n\
                    INFO handle{xrayTraceId=\"Root=1-aaa-111;Parent=9\"}: sent\n\
                    END RequestId: a\n\
                    REPORT RequestId: a\tDuration: 4 ms\n\
                    START RequestId: b Version: $LATEST\n\
                    INFO handle{xrayTraceId=\"Root=1-bbb-222;Parent=8\"}: sent\n\
                    END RequestId: b\n\
                    REPORT RequestId: b\tDuration: 5 ms";

        let kept = invocations_of(logs, &trace("1-bbb-222"), &[]);

        assert!(kept.starts_with("START RequestId: b"), "{kept}");
        assert!(kept.ends_with("Duration: 5 ms"), "{kept}");
        assert!(!kept.contains("RequestId: a"), "{kept}");
    }

    fn captured(received_at_ms: u64, trace: Option<&str>) -> CapturedEmail {
        let mut headers = vec![("Subject".to_owned(), "s".to_owned())];
        if let Some(trace) = trace {
            headers.push(("X-Amzn-Trace-Id".to_owned(), trace.to_owned()));
        }
        CapturedEmail {
            received_at_ms,
            headers,
            ..CapturedEmail::default()
        }
    }

    #[rstest]
    #[case::event_refused_as_invalid(InvocationType::Event, OutcomeStatus::InvalidRequest, false)]
    #[case::event_denied(InvocationType::Event, OutcomeStatus::Denied, false)]
    #[case::event_queued(InvocationType::Event, OutcomeStatus::Success, true)]
    #[case::event_unknown_fate(InvocationType::Event, OutcomeStatus::Error, true)]
    #[case::synchronous(InvocationType::RequestResponse, OutcomeStatus::InvalidRequest, true)]
    fn only_an_event_lambda_refused_stops_the_wait_for_its_emails(
        #[case] invocation: InvocationType,
        #[case] status: OutcomeStatus,
        #[case] waits: bool,
    ) {
        let wait = EmailWait {
            at_least: 1,
            within: Duration::from_secs(2),
        };
        let expected = if waits { wait } else { EmailWait::NONE };
        assert_eq!(wait_after_answer(invocation, status, wait), expected);
    }

    #[rstest]
    #[case::no_trace_header(captured(150, None), true)]
    #[case::a_header_without_root(captured(150, Some("Parent=53995c3f42cd8ad8")), true)]
    #[case::an_unknown_root(captured(150, Some("Root=1-ccc-333;Sampled=0")), true)]
    #[case::this_call_s_root(captured(150, Some("Root=1-aaa-111;Parent=9")), false)]
    #[case::a_concurrent_call_s_root(captured(150, Some("Root=1-bbb-222")), false)]
    #[case::before_the_window(captured(99, None), false)]
    #[case::after_the_window(captured(201, None), false)]
    #[case::at_the_window_s_edges(captured(100, None), true)]
    fn emails_without_a_known_trace_in_the_window_are_strays(
        #[case] email: CapturedEmail,
        #[case] stray: bool,
    ) {
        let known = [trace("1-aaa-111"), trace("1-bbb-222")];

        let found = strays(&[email], 100, 200, |t| known.contains(t));

        assert_eq!(found.len(), usize::from(stray), "{found:?}");
    }

    #[test]
    fn every_call_observed_is_a_known_trace() {
        let call = Call::new(Via::Callee, b"{}".to_vec(), InvocationType::DryRun);
        assert!(!is_known_trace(&call.trace));

        register_trace(&call.trace);

        assert!(is_known_trace(&call.trace));
    }

    #[test]
    fn decisions_are_matched_on_the_trace_root() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("iam.jsonl");
        let record = |root: &str| {
            serde_json::json!({"time_ms": 1, "trace": root, "principal": null,
                "action": "sts:AssumeRole", "resource": null, "decision": "allow",
                "reason": "allowed", "explanation": "ALLOW", "deciding": [],
                "status": 200, "overhead_us": 1})
            .to_string()
        };
        std::fs::write(
            &log,
            format!("{}\n{}\n", record("1-abc-def"), record("1-abc-xyz")),
        )
        .unwrap();

        let found = decisions_of(&log, &trace("1-abc-def")).unwrap();

        assert_eq!(found.len(), 1);
        assert_eq!(found[0].trace, Some(trace("1-abc-def")));
    }

    #[test]
    fn an_unreadable_decision_log_is_an_error_not_an_empty_chain() {
        let dir = tempfile::tempdir().unwrap();

        let err = decisions_of(&dir.path().join("missing.jsonl"), &TraceId::new()).unwrap_err();

        assert!(err.to_string().contains("missing.jsonl"), "{err}");
    }

    #[tokio::test]
    async fn an_unreadable_spool_is_an_error_not_an_empty_mailbox() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("mail");
        std::fs::create_dir_all(&spool).unwrap();
        // A summary whose message file is gone cannot be read back.
        std::fs::write(spool.join("000001.json"), "{}").unwrap();

        let err = emails_of(&Mailbox::Spool(spool), &TraceId::new(), EmailWait::NONE)
            .await
            .unwrap_err();

        assert!(err.to_string().contains("captured emails"), "{err}");
    }

    #[rstest]
    #[case::denied(Some("AccessDeniedException"), OutcomeStatus::Denied)]
    #[case::too_large(Some("RequestTooLargeException"), OutcomeStatus::InvalidRequest)]
    #[case::bad_json(Some("InvalidRequestContentException"), OutcomeStatus::InvalidRequest)]
    #[case::throttled(Some("TooManyRequestsException"), OutcomeStatus::Error)]
    #[case::transport(None, OutcomeStatus::Error)]
    fn service_errors_are_classified(#[case] code: Option<&str>, #[case] expected: OutcomeStatus) {
        assert_eq!(classify_service_error(code), expected);
    }
}
