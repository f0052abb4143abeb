//! One execution environment: init, invoke, timeout and reset of the function's `bootstrap`.

use std::{
    process::ExitStatus,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use fault_plan::{InvocationFaults, LambdaAction};
use tokio::time::sleep_until;
use tracing::{info, instrument, warn};

use crate::{
    bootstrap::{Bootstrap, BootstrapSpec},
    callback::Callback,
    config::Config,
    error::ShimError,
    faults::FaultClient,
    protocol::{self, ErrorPayload, InvokeRequest, Report},
    runtime_api::{Invocation, RuntimeApi, RuntimeEvent},
};

/// The error type of an injected init failure: what Lambda reports for a
/// runtime whose init failed.
const INJECTED_INIT_ERROR: &str = "Runtime.InitError";

/// Longest wait for an init that has no invocation deadline; LocalStack's own startup timer ends it sooner.
const UNBOUNDED_INIT: Duration = Duration::from_secs(24 * 60 * 60);

/// Why an init did not reach the function's first `GET .../invocation/next`.
#[derive(Debug)]
pub enum InitFailure {
    /// The bootstrap could not be started.
    Spawn(ShimError),
    /// The bootstrap exited during init.
    Exited(ExitStatus),
    /// The function posted to `/runtime/init/error`.
    Reported {
        /// `Lambda-Runtime-Function-Error-Type` header.
        error_type: Option<String>,
        /// The posted error body.
        body: Bytes,
    },
    /// The init ran past the invocation's deadline.
    TimedOut,
}

impl InitFailure {
    /// The error body the invoker receives.
    pub fn payload(&self, request_id: Option<&str>, timeout: Duration) -> Bytes {
        match self {
            Self::Spawn(err) => {
                ErrorPayload::invalid_entrypoint(request_id, &err.to_string()).to_bytes()
            }
            Self::Exited(status) => ErrorPayload::runtime_exited(request_id, *status).to_bytes(),
            Self::Reported { error_type, body } => {
                protocol::runtime_error_body(error_type.as_deref(), body)
            }
            Self::TimedOut => {
                ErrorPayload::timed_out(request_id.unwrap_or("-"), timeout).to_bytes()
            }
        }
    }
}

/// How one invocation ended.
#[derive(Debug)]
pub enum Outcome {
    /// The function returned a result.
    Response(Bytes),
    /// The function reported an error (body as posted, normalised to a JSON object).
    FunctionError(Bytes),
    /// The function ran past its timeout.
    TimedOut,
    /// The bootstrap exited mid-invocation.
    Exited(ExitStatus),
    /// A re-init before the invocation failed.
    InitFailed(InitFailure),
}

impl Outcome {
    /// True when the environment must be reset before the next invocation.
    fn poisons_environment(&self) -> bool {
        matches!(self, Self::TimedOut | Self::Exited(_) | Self::InitFailed(_))
    }
}

/// A bootstrap process together with the Runtime API instance it talks to.
struct Generation {
    bootstrap: Bootstrap,
    api: RuntimeApi,
    /// Set after a successful init and reported once, in the next `REPORT` line.
    init_duration: Option<Duration>,
}

/// The execution environment: at most one live bootstrap, invoked one request at a time.
pub struct Sandbox {
    config: Config,
    /// Scenario faults, when the function runs behind the harness's gateway.
    faults: Option<FaultClient>,
    current: Option<Generation>,
    /// Output of bootstraps that are gone, not yet attributed to an invocation.
    unattributed: Vec<u8>,
}

impl Sandbox {
    /// Creates an environment with no bootstrap running yet.
    pub fn new(config: Config) -> Self {
        Self {
            faults: config.faults_endpoint.clone().map(FaultClient::new),
            config,
            current: None,
            unattributed: Vec::new(),
        }
    }

    /// Starts the bootstrap and waits until it polls for work, exits, reports an init error or passes `deadline`.
    #[instrument(skip(self))]
    pub async fn init(&mut self, deadline: Option<Instant>) -> Result<(), InitFailure> {
        self.discard().await;
        let api = RuntimeApi::bind(self.config.max_response_bytes)
            .await
            .map_err(InitFailure::Spawn)?;
        let started = Instant::now();
        let path = self.config.bootstrap_path();
        let bootstrap = Bootstrap::spawn(&BootstrapSpec {
            path: &path,
            cwd: &self.config.task_root,
            env: &self.config.function_env,
            runtime_api: api.addr(),
            echo_output: self.config.debug,
        })
        .map_err(InitFailure::Spawn)?;
        let mut generation = Generation {
            bootstrap,
            api,
            init_duration: None,
        };
        let deadline = deadline.unwrap_or_else(|| started + UNBOUNDED_INIT);
        let result = loop {
            tokio::select! {
                biased;
                event = generation.api.next_event() => match event {
                    Some(RuntimeEvent::Polling) => break Ok(()),
                    Some(RuntimeEvent::InitError { error_type, body }) => {
                        break Err(InitFailure::Reported { error_type, body });
                    }
                    Some(_) => continue,
                    // The server holds the sender for as long as `api` exists.
                    None => continue,
                },
                status = generation.bootstrap.wait() => match status {
                    Ok(status) => break Err(InitFailure::Exited(status)),
                    Err(source) => break Err(InitFailure::Spawn(ShimError::Spawn { path: path.clone(), source })),
                },
                () = sleep_until(deadline.into()) => break Err(InitFailure::TimedOut),
            }
        };
        match result {
            Ok(()) => {
                let elapsed = started.elapsed();
                info!(init_ms = elapsed.as_millis() as u64, "function initialised");
                generation.init_duration = Some(elapsed);
                self.current = Some(generation);
                Ok(())
            }
            Err(failure) => {
                self.current = Some(generation);
                self.discard().await;
                Err(failure)
            }
        }
    }

    /// Runs one invocation and returns its logs and result, posting nothing.
    #[instrument(skip_all, fields(request_id = %request.invoke_id))]
    pub async fn invoke(&mut self, request: InvokeRequest) -> Finished {
        let started = Instant::now();
        let deadline = started + self.config.timeout;
        let request_id = request.invoke_id.clone();

        // Output from before this invocation (init, or between invocations)
        // precedes START, as in CloudWatch.
        let mut logs = String::from_utf8_lossy(&self.take_output()).into_owned();
        logs.push_str(&protocol::start_line(
            &request_id,
            &self.config.function_version,
        ));

        let outcome = self.run(request, deadline).await;
        let duration = started.elapsed();

        let (max_memory_used_mb, init_duration) = match self.current.as_mut() {
            Some(generation) => (
                generation.bootstrap.max_memory_mb(),
                generation.init_duration.take(),
            ),
            None => (None, None),
        };
        if outcome.poisons_environment() {
            self.discard().await;
        }
        logs.push_str(&String::from_utf8_lossy(&self.take_output()));

        let timeout = self.config.timeout;
        let (result, status) = match &outcome {
            Outcome::Response(body) => (Ok(body.clone()), None),
            Outcome::FunctionError(body) => (Err(body.clone()), None),
            Outcome::TimedOut => (
                Err(ErrorPayload::timed_out(&request_id, timeout).to_bytes()),
                Some("timeout"),
            ),
            Outcome::Exited(status) => {
                let payload = ErrorPayload::runtime_exited(Some(&request_id), *status);
                logs.push_str(&format!(
                    "{}\n{}\n",
                    payload.error_message, payload.error_type
                ));
                (Err(payload.to_bytes()), Some("error"))
            }
            Outcome::InitFailed(failure) => (
                Err(failure.payload(Some(&request_id), timeout)),
                Some("error"),
            ),
        };
        logs.push_str(&protocol::end_line(&request_id));
        logs.push_str(&protocol::report_line(
            &request_id,
            &Report {
                duration,
                memory_size_mb: self.config.memory_size_mb,
                max_memory_used_mb,
                init_duration,
                status,
            },
        ));
        if matches!(outcome, Outcome::TimedOut) {
            logs.push_str(&format!(
                "{} {request_id} {}\n",
                rfc3339_now(),
                protocol::timed_out_message(timeout)
            ));
        }

        info!(
            duration_ms = duration.as_secs_f64() * 1000.0,
            ok = result.is_ok(),
            "invocation finished"
        );
        Finished {
            request_id,
            logs,
            result,
        }
    }

    async fn run(&mut self, request: InvokeRequest, deadline: Instant) -> Outcome {
        let running = self.bootstrap_pid();
        let (trace, faults) = match (&self.faults, &request.trace_id) {
            (Some(client), Some(trace)) => {
                client
                    .ask(trace, &request.invoked_function_arn, running)
                    .await
            }
            _ => (None, InvocationFaults::default()),
        };
        if faults.cold {
            // As after a deploy: the function assumes nothing from earlier calls.
            self.discard().await;
        }
        // A bootstrap that died between invocations is re-initialised, as Lambda does.
        if let Some(generation) = self.current.as_mut()
            && let Some(status) = generation.bootstrap.try_wait()
        {
            warn!(status = %protocol::describe_exit(status), "bootstrap exited between invocations; re-initialising");
            self.discard().await;
        }
        if self.current.is_none()
            && let Err(failure) = self.init(Some(deadline)).await
        {
            return Outcome::InitFailed(failure);
        }
        let Some(generation) = self.current.as_mut() else {
            return Outcome::InitFailed(InitFailure::TimedOut);
        };

        if let (true, Some(client), Some(trace), Some(pid)) = (
            faults.report_process,
            &self.faults,
            &trace,
            generation.bootstrap.pid(),
        ) {
            client.report_process(trace, pid).await;
        }
        match faults.fault {
            Some(LambdaAction::Timeout) => {
                // The function never gets the event: it is stuck past its timeout.
                sleep_until(deadline.into()).await;
                return Outcome::TimedOut;
            }
            Some(LambdaAction::Crash) => {
                generation.bootstrap.kill().await;
                let status = generation
                    .bootstrap
                    .wait()
                    .await
                    .unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(9));
                return Outcome::Exited(status);
            }
            Some(LambdaAction::InitError) => {
                return Outcome::InitFailed(InitFailure::Reported {
                    error_type: Some(INJECTED_INIT_ERROR.into()),
                    body: Bytes::from(
                        serde_json::json!({
                            "errorType": INJECTED_INIT_ERROR,
                            "errorMessage": "the harness failed this environment's init (a scenario's init_error fault)",
                        })
                        .to_string(),
                    ),
                });
            }
            _ => {}
        }

        let remaining = deadline.saturating_duration_since(Instant::now());
        let deadline_ms = (SystemTime::now() + remaining)
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let request_id = request.invoke_id;
        generation.api.deliver(Invocation {
            request_id: request_id.clone(),
            payload: Bytes::from(request.payload),
            function_arn: request.invoked_function_arn,
            deadline_ms,
            trace_id: request.trace_id,
            client_context: request.client_context,
            cognito_identity: request.cognito_identity,
        });

        loop {
            tokio::select! {
                // Events first: a function that posts its result and then exits
                // has answered, it has not crashed.
                biased;
                event = generation.api.next_event() => match event {
                    Some(RuntimeEvent::Response { request_id: id, body }) if id == request_id => {
                        return Outcome::Response(body);
                    }
                    Some(RuntimeEvent::Error { request_id: id, error_type, body }) if id == request_id => {
                        return Outcome::FunctionError(protocol::runtime_error_body(error_type.as_deref(), &body));
                    }
                    _ => continue,
                },
                status = generation.bootstrap.wait() => {
                    return match status {
                        Ok(status) => Outcome::Exited(status),
                        Err(_) => Outcome::Exited(std::os::unix::process::ExitStatusExt::from_raw(9)),
                    };
                }
                () = sleep_until(deadline.into()) => return Outcome::TimedOut,
            }
        }
    }

    /// Kills the bootstrap, if any, keeping its last output for the next attribution.
    pub async fn discard(&mut self) {
        if let Some(mut generation) = self.current.take() {
            generation.bootstrap.kill().await;
            let output = generation.bootstrap.drain_output();
            self.unattributed.extend_from_slice(&output);
        }
    }

    /// Takes all output not yet attributed to an invocation.
    pub fn take_output(&mut self) -> Vec<u8> {
        let mut output = std::mem::take(&mut self.unattributed);
        if let Some(generation) = &self.current {
            output.extend_from_slice(&generation.bootstrap.drain_output());
        }
        output
    }

    /// Process id of the live bootstrap, if any.
    pub fn bootstrap_pid(&self) -> Option<u32> {
        self.current.as_ref().and_then(|g| g.bootstrap.pid())
    }
}

fn rfc3339_now() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

/// One invocation's end: its logs (START to REPORT) and its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The invocation's id.
    pub request_id: String,
    /// Its log lines, as posted to LocalStack's logs callback.
    pub logs: String,
    /// The function's response (`Ok`) or error payload (`Err`).
    pub result: Result<Bytes, Bytes>,
}

impl Finished {
    /// Posts the logs, then the result, to LocalStack's executor endpoint,
    /// which needs the logs before the result.
    pub async fn post(self, callback: &Callback) {
        if let Err(err) = callback.logs(&self.request_id, &self.logs).await {
            warn!(error = %err, "could not post logs");
        }
        let posted = match self.result {
            Ok(body) => callback.response(&self.request_id, body).await,
            Err(body) => callback.error(&self.request_id, body).await,
        };
        if let Err(err) = posted {
            warn!(error = %err, "could not post the invocation result");
        }
    }
}
