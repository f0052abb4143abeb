//! The faults one scenario injects into its own call, and the book that
//! applies them.
//!
//! A scenario's `faults` block becomes a [`FaultPlan`]. The harness registers
//! it with the IAM gateway under the call's X-Ray trace root ([`ScopedPlan`]),
//! makes the call, and withdraws it. Every place that injects a fault asks the
//! [`FaultBook`] with the trace of the event at hand:
//!
//! - the gateway, for STS requests and Lambda invokes, which carry
//!   `X-Amzn-Trace-Id` (the caller forwards the root, the SDK in a lambda adds
//!   it to its STS calls);
//! - the runtime shim, through the gateway, for each invocation it is about to
//!   hand to a `bootstrap` (LocalStack passes it the trace);
//! - the SMTP capture, for each session: the shim tells the book which
//!   `bootstrap` process serves the trace, and the capture finds the process
//!   behind a connection from the kernel's socket table.
//!
//! A fault applies to the first `times` events that match it (every one when
//! `times` is absent), counted per trace. Another trace never matches, so
//! concurrent scenarios never see each other's faults.
//!
//! # Example
//! ```
//! use fault_plan::{FaultBook, FaultPlan, FunctionNames, ScopedPlan, SmtpAction, SmtpEvent, SmtpFault};
//! use xray_trace::TraceId;
//!
//! let trace = TraceId::new();
//! let book = FaultBook::new("token".into());
//! book.register(ScopedPlan {
//!     trace: trace.clone(),
//!     functions: FunctionNames { callee: "alert".into(), caller: "invoker".into() },
//!     plan: FaultPlan {
//!         smtp: vec![SmtpFault {
//!             on: SmtpEvent::Data,
//!             to: None,
//!             action: SmtpAction::Reply { code: 554, text: "5.7.1 message refused".into() },
//!             times: Some(1),
//!         }],
//!         ..FaultPlan::default()
//!     },
//! });
//! assert!(book.smtp(&trace, SmtpEvent::Data, None).is_some());
//! assert!(book.smtp(&trace, SmtpEvent::Data, None).is_none(), "once only");
//! assert!(book.smtp(&TraceId::new(), SmtpEvent::Data, None).is_none(), "another call's");
//! ```
#![warn(missing_docs)]

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use serde::{Deserialize, Serialize};
use xray_trace::TraceId;

/// Where the gateway serves the fault book: `PUT`/`DELETE {FAULTS_PATH}{root}`
/// (the harness, with [`TOKEN_HEADER`]) and `POST {FAULTS_PATH}{root}/invocation`
/// and `.../process` (the runtime shim).
pub const FAULTS_PATH: &str = "/_harness/faults/";

/// The header carrying the token that registers and withdraws plans.
pub const TOKEN_HEADER: &str = "x-harness-faults-token";

/// Every fault of one scenario.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// Faults of the SMTP relay (the harness's capture server).
    #[serde(default)]
    pub smtp: Vec<SmtpFault>,
    /// Faults of STS.
    #[serde(default)]
    pub sts: Vec<StsFault>,
    /// Faults of Lambda: its API, or the function's runtime.
    #[serde(default)]
    pub lambda: Vec<LambdaFault>,
}

impl FaultPlan {
    /// True when the plan holds no fault.
    pub fn is_empty(&self) -> bool {
        self.smtp.is_empty() && self.sts.is_empty() && self.lambda.is_empty()
    }
}

/// A point in an SMTP session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpEvent {
    /// The connection, before the greeting.
    Connect,
    /// `EHLO` or `HELO`.
    Ehlo,
    /// `STARTTLS`.
    Starttls,
    /// `AUTH`.
    Auth,
    /// `MAIL FROM`.
    Mail,
    /// `RCPT TO`.
    Rcpt,
    /// The `DATA` command.
    Data,
    /// The message, after its final dot.
    Message,
}

impl SmtpEvent {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Ehlo => "ehlo",
            Self::Starttls => "starttls",
            Self::Auth => "auth",
            Self::Mail => "mail",
            Self::Rcpt => "rcpt",
            Self::Data => "data",
            Self::Message => "message",
        }
    }
}

impl fmt::Display for SmtpEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the relay does at a faulted event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpAction {
    /// Answers this instead of what the server would; the command is not carried out
    /// (for `message`, the message is not stored).
    Reply {
        /// The reply code, 400–599.
        code: u16,
        /// The text after the code.
        text: String,
    },
    /// Waits this long, then carries on as the server would.
    Stall {
        /// Milliseconds.
        ms: u64,
    },
    /// Closes the connection without a reply; at `message`, after the server
    /// stored the message (so the client cannot know it was delivered).
    Disconnect,
    /// At `ehlo`: the relay leaves this extension out of its reply and refuses
    /// the command for the rest of the session, as a server without it would.
    Withhold {
        /// The extension left out.
        extension: SmtpExtension,
    },
}

/// An SMTP extension the relay offers unless a fault withholds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpExtension {
    /// `STARTTLS`: without it, the session stays plaintext.
    Starttls,
    /// `AUTH PLAIN LOGIN`: without it, the relay takes mail from anyone.
    Auth,
}

impl SmtpExtension {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starttls => "starttls",
            Self::Auth => "auth",
        }
    }
}

impl fmt::Display for SmtpExtension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SMTP fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpFault {
    /// Where in the session.
    pub on: SmtpEvent,
    /// Only `RCPT TO` this address (compared ignoring case).
    pub to: Option<String>,
    /// What happens.
    pub action: SmtpAction,
    /// How many matching events it applies to; `None`: every one.
    pub times: Option<u32>,
}

/// One STS fault: an error answered instead of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StsFault {
    /// The STS action, e.g. `AssumeRole`.
    pub action: String,
    /// The error answered, in STS's shape.
    pub error: AwsError,
    /// How many matching requests it applies to; `None`: every one.
    pub times: Option<u32>,
}

/// An AWS error: status, code and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsError {
    /// The HTTP status.
    pub status: u16,
    /// The error code, e.g. `Throttling`.
    pub code: String,
    /// The message.
    pub message: String,
    /// Lambda's `Reason` field (`TooManyRequestsException`).
    #[serde(default)]
    pub reason: Option<String>,
    /// Lambda's `Retry-After` seconds (`TooManyRequestsException`).
    #[serde(default)]
    pub retry_after_seconds: Option<u32>,
}

/// Which lambda of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainFunction {
    /// The alerting lambda in account A.
    Callee,
    /// The invoker in account B.
    Caller,
}

impl ChainFunction {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Callee => "callee",
            Self::Caller => "caller",
        }
    }
}

/// What happens to a faulted invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LambdaAction {
    /// The Lambda API answers this error; the function does not run.
    Error(AwsError),
    /// The invocation waits this long before Lambda runs it.
    LatencyMs(u64),
    /// The function runs past its configured timeout (it never gets the event).
    Timeout,
    /// The bootstrap exits (killed) as the invocation starts.
    Crash,
    /// The environment is reset and its init fails.
    InitError,
}

impl LambdaAction {
    /// True for the actions the runtime shim carries out (the others are the gateway's).
    pub fn is_runtime(&self) -> bool {
        matches!(self, Self::Timeout | Self::Crash | Self::InitError)
    }
}

/// One Lambda fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaFault {
    /// Whose invocations.
    pub function: ChainFunction,
    /// What happens.
    pub action: LambdaAction,
    /// How many invocations it applies to; `None`: every one.
    pub times: Option<u32>,
}

/// The deployed names of the chain's functions, as this scenario's deploy made them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionNames {
    /// The callee's function name.
    pub callee: String,
    /// The caller's function name.
    pub caller: String,
}

impl FunctionNames {
    /// Which chain function `name` (a name or an ARN, maybe qualified) is.
    pub fn role_of(&self, name: &str) -> Option<ChainFunction> {
        let name = function_name(name);
        if name == self.callee {
            Some(ChainFunction::Callee)
        } else if name == self.caller {
            Some(ChainFunction::Caller)
        } else {
            None
        }
    }
}

/// The bare function name of a name, a partial ARN or an ARN, without qualifier.
pub fn function_name(name_or_arn: &str) -> &str {
    match name_or_arn.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => name_or_arn,
    }
}

/// A plan as registered for one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopedPlan {
    /// The call's trace root.
    pub trace: TraceId,
    /// The functions the plan's `callee` and `caller` mean.
    pub functions: FunctionNames,
    /// The faults.
    pub plan: FaultPlan,
}

/// What the runtime shim is told about an invocation it is about to run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationFaults {
    /// Start a fresh `bootstrap` first, as after a deploy: set for the caller
    /// when the call has STS faults, so that it assumes the role (a warm
    /// caller reuses its session and would make no STS request).
    pub cold: bool,
    /// The runtime fault to carry out, if any.
    pub fault: Option<LambdaAction>,
    /// The call has SMTP faults: report the `bootstrap`'s process id.
    pub report_process: bool,
}

/// A [`FaultBook`] shared between the gateway and the SMTP capture; equal
/// when it is the same book.
#[derive(Debug, Clone)]
pub struct SharedFaultBook(pub std::sync::Arc<FaultBook>);

impl PartialEq for SharedFaultBook {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedFaultBook {}

impl std::ops::Deref for SharedFaultBook {
    type Target = FaultBook;

    fn deref(&self) -> &FaultBook {
        &self.0
    }
}

/// Counted faults of one call.
struct Registered {
    scoped: ScopedPlan,
    smtp_used: Vec<u32>,
    sts_used: Vec<u32>,
    lambda_used: Vec<u32>,
}

/// Claims one use of the first fault that `matches` and has uses left.
fn claim<'a, T>(
    faults: &'a [T],
    used: &mut [u32],
    times: impl Fn(&T) -> Option<u32>,
    matches: impl Fn(&T) -> bool,
) -> Option<&'a T> {
    for (fault, used) in faults.iter().zip(used.iter_mut()) {
        if matches(fault) && times(fault).is_none_or(|t| *used < t) {
            *used += 1;
            return Some(fault);
        }
    }
    None
}

/// The plans of the calls in flight, with what each has used.
pub struct FaultBook {
    token: String,
    plans: Mutex<HashMap<TraceId, Registered>>,
    /// `bootstrap` process id → the trace of the invocation it serves.
    processes: Mutex<HashMap<u32, TraceId>>,
    /// Whether any registered plan has SMTP faults (the capture's fast path).
    any_smtp: AtomicBool,
}

impl fmt::Debug for FaultBook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultBook").finish_non_exhaustive()
    }
}

impl FaultBook {
    /// An empty book; `token` authorises registering and withdrawing plans.
    pub fn new(token: String) -> Self {
        Self {
            token,
            plans: Mutex::new(HashMap::new()),
            processes: Mutex::new(HashMap::new()),
            any_smtp: AtomicBool::new(false),
        }
    }

    /// The token that registers and withdraws plans.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether `presented` is this book's token.
    pub fn authorises(&self, presented: &str) -> bool {
        // Constant time is not worth a dependency here: a loopback-only
        // harness secret, and a wrong guess changes no state.
        !self.token.is_empty() && presented == self.token
    }

    fn plans(&self) -> std::sync::MutexGuard<'_, HashMap<TraceId, Registered>> {
        self.plans.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refresh_any_smtp(&self, plans: &HashMap<TraceId, Registered>) {
        let any = plans.values().any(|r| !r.scoped.plan.smtp.is_empty());
        self.any_smtp.store(any, Ordering::SeqCst);
    }

    /// Registers a call's plan, replacing any earlier one of the same trace.
    pub fn register(&self, scoped: ScopedPlan) {
        let mut plans = self.plans();
        let registered = Registered {
            smtp_used: vec![0; scoped.plan.smtp.len()],
            sts_used: vec![0; scoped.plan.sts.len()],
            lambda_used: vec![0; scoped.plan.lambda.len()],
            scoped,
        };
        plans.insert(registered.scoped.trace.clone(), registered);
        self.refresh_any_smtp(&plans);
    }

    /// Withdraws a call's plan (and forgets its processes).
    pub fn withdraw(&self, trace: &TraceId) {
        let mut plans = self.plans();
        plans.remove(trace);
        self.refresh_any_smtp(&plans);
        drop(plans);
        self.processes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, t| t != trace);
    }

    /// The STS fault for the next `action` request of `trace`, if one applies.
    pub fn sts(&self, trace: &TraceId, action: &str) -> Option<AwsError> {
        let mut plans = self.plans();
        let registered = plans.get_mut(trace)?;
        claim(
            &registered.scoped.plan.sts,
            &mut registered.sts_used,
            |f| f.times,
            |f| f.action.eq_ignore_ascii_case(action),
        )
        .map(|f| f.error.clone())
    }

    /// The Lambda API fault (error or latency) for the next invoke of
    /// `function` (a name or ARN) in `trace`, if one applies.
    pub fn lambda_api(&self, trace: &TraceId, function: &str) -> Option<LambdaAction> {
        self.lambda(trace, function, false)
    }

    fn lambda(&self, trace: &TraceId, function: &str, runtime: bool) -> Option<LambdaAction> {
        let mut plans = self.plans();
        let registered = plans.get_mut(trace)?;
        let role = registered.scoped.functions.role_of(function)?;
        claim(
            &registered.scoped.plan.lambda,
            &mut registered.lambda_used,
            |f| f.times,
            |f| f.function == role && f.action.is_runtime() == runtime,
        )
        .map(|f| f.action.clone())
    }

    /// What the runtime shim must do with the next invocation of `function` in
    /// `trace`; `running` is the `bootstrap` process already up in that
    /// environment, if any, which from now on serves this invocation, not
    /// the one it was bound to before.
    pub fn invocation(
        &self,
        trace: &TraceId,
        function: &str,
        running: Option<u32>,
    ) -> InvocationFaults {
        if let Some(pid) = running {
            self.processes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&pid);
        }
        let fault = self.lambda(trace, function, true);
        let plans = self.plans();
        let Some(registered) = plans.get(trace) else {
            return InvocationFaults::default();
        };
        let plan = &registered.scoped.plan;
        let role = registered.scoped.functions.role_of(function);
        InvocationFaults {
            cold: role == Some(ChainFunction::Caller) && !plan.sts.is_empty(),
            fault,
            report_process: role == Some(ChainFunction::Callee) && !plan.smtp.is_empty(),
        }
    }

    /// Records that process `pid` serves an invocation of `trace`.
    pub fn bind_process(&self, pid: u32, trace: TraceId) {
        self.processes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pid, trace);
    }

    /// Whether any call in flight has SMTP faults; when not, the capture need
    /// not find out whose a session is.
    pub fn has_smtp_faults(&self) -> bool {
        self.any_smtp.load(Ordering::SeqCst)
    }

    /// The processes serving calls with SMTP faults, and their traces.
    pub fn processes(&self) -> Vec<(u32, TraceId)> {
        self.processes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(pid, trace)| (*pid, trace.clone()))
            .collect()
    }

    /// The SMTP fault for the next `event` of `trace`'s session (`rcpt`: the
    /// recipient), if one applies.
    pub fn smtp(
        &self,
        trace: &TraceId,
        event: SmtpEvent,
        rcpt: Option<&str>,
    ) -> Option<SmtpAction> {
        let mut plans = self.plans();
        let registered = plans.get_mut(trace)?;
        claim(
            &registered.scoped.plan.smtp,
            &mut registered.smtp_used,
            |f| f.times,
            |f| {
                f.on == event
                    && match (&f.to, rcpt) {
                        (None, _) => true,
                        (Some(to), Some(rcpt)) => to.eq_ignore_ascii_case(rcpt),
                        (Some(_), None) => false,
                    }
            },
        )
        .map(|f| f.action.clone())
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn names() -> FunctionNames {
        FunctionNames {
            callee: "servicenow-alert".into(),
            caller: "servicenow-invoker".into(),
        }
    }

    fn book_with(plan: FaultPlan) -> (FaultBook, TraceId) {
        let book = FaultBook::new("t".into());
        let trace = TraceId::new();
        book.register(ScopedPlan {
            trace: trace.clone(),
            functions: names(),
            plan,
        });
        (book, trace)
    }

    fn throttling(times: Option<u32>) -> StsFault {
        StsFault {
            action: "AssumeRole".into(),
            error: AwsError {
                status: 400,
                code: "Throttling".into(),
                message: "Rate exceeded".into(),
                reason: None,
                retry_after_seconds: None,
            },
            times,
        }
    }

    #[test]
    fn a_fault_applies_to_its_first_times_events_only() {
        let (book, trace) = book_with(FaultPlan {
            sts: vec![throttling(Some(2))],
            ..FaultPlan::default()
        });

        let answers: Vec<bool> = (0..4)
            .map(|_| book.sts(&trace, "AssumeRole").is_some())
            .collect();

        assert_eq!(answers, [true, true, false, false]);
    }

    #[test]
    fn without_times_a_fault_applies_to_every_event() {
        let (book, trace) = book_with(FaultPlan {
            sts: vec![throttling(None)],
            ..FaultPlan::default()
        });

        assert!((0..10).all(|_| book.sts(&trace, "assumerole").is_some()));
        assert!(book.sts(&trace, "GetCallerIdentity").is_none());
    }

    #[test]
    fn another_trace_and_a_withdrawn_plan_see_no_fault() {
        let (book, trace) = book_with(FaultPlan {
            sts: vec![throttling(None)],
            ..FaultPlan::default()
        });

        assert!(book.sts(&TraceId::new(), "AssumeRole").is_none());
        book.withdraw(&trace);
        assert!(book.sts(&trace, "AssumeRole").is_none());
    }

    #[rstest]
    #[case::named_recipient(Some("noc@example.com"), true)]
    #[case::case_of_the_address_ignored(Some("NOC@example.com"), true)]
    #[case::other_recipient(Some("oncall@example.com"), false)]
    fn to_narrows_rcpt(#[case] rcpt: Option<&str>, #[case] faulted: bool) {
        let (book, trace) = book_with(FaultPlan {
            smtp: vec![SmtpFault {
                on: SmtpEvent::Rcpt,
                to: Some("noc@example.com".into()),
                action: SmtpAction::Reply {
                    code: 450,
                    text: "4.2.1 mailbox busy".into(),
                },
                times: Some(1),
            }],
            ..FaultPlan::default()
        });

        assert_eq!(book.smtp(&trace, SmtpEvent::Rcpt, rcpt).is_some(), faulted);
        assert!(book.has_smtp_faults());
    }

    #[test]
    fn lambda_faults_go_to_the_named_function_and_to_the_right_injector() {
        let (book, trace) = book_with(FaultPlan {
            lambda: vec![
                LambdaFault {
                    function: ChainFunction::Callee,
                    action: LambdaAction::Timeout,
                    times: Some(1),
                },
                LambdaFault {
                    function: ChainFunction::Caller,
                    action: LambdaAction::LatencyMs(500),
                    times: None,
                },
            ],
            ..FaultPlan::default()
        });
        let callee_arn = "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert:$LATEST";

        // The gateway sees no API fault for the callee: its fault is the shim's.
        assert_eq!(book.lambda_api(&trace, callee_arn), None);
        assert_eq!(
            book.lambda_api(&trace, "servicenow-invoker"),
            Some(LambdaAction::LatencyMs(500))
        );
        assert_eq!(
            book.invocation(&trace, callee_arn, None).fault,
            Some(LambdaAction::Timeout)
        );
        assert_eq!(
            book.invocation(&trace, callee_arn, None).fault,
            None,
            "once"
        );
        assert_eq!(book.invocation(&trace, "someone-else", None).fault, None);
    }

    #[test]
    fn sts_faults_make_the_caller_cold_and_smtp_faults_ask_for_the_callees_process() {
        let (book, trace) = book_with(FaultPlan {
            sts: vec![throttling(Some(1))],
            smtp: vec![SmtpFault {
                on: SmtpEvent::Connect,
                to: None,
                action: SmtpAction::Disconnect,
                times: None,
            }],
            ..FaultPlan::default()
        });

        let caller = book.invocation(&trace, "servicenow-invoker", None);
        let callee = book.invocation(&trace, "servicenow-alert", None);

        assert!(caller.cold && !caller.report_process);
        assert!(!callee.cold && callee.report_process);
        assert!(
            !book
                .invocation(&TraceId::new(), "servicenow-invoker", None)
                .cold
        );
    }

    #[test]
    fn a_reused_process_no_longer_serves_the_call_it_served_before() {
        let (book, faulted) = book_with(FaultPlan {
            smtp: vec![SmtpFault {
                on: SmtpEvent::Connect,
                to: None,
                action: SmtpAction::Disconnect,
                times: None,
            }],
            ..FaultPlan::default()
        });
        book.bind_process(4242, faulted.clone());
        assert_eq!(book.processes(), vec![(4242, faulted)]);

        // The same environment takes another call's invocation, which has no SMTP faults.
        let answer = book.invocation(&TraceId::new(), "servicenow-alert", Some(4242));

        assert!(!answer.report_process);
        assert_eq!(book.processes(), vec![]);
    }

    #[rstest]
    #[case::arn("arn:aws:lambda:us-east-1:1:function:f", "f")]
    #[case::qualified_arn("arn:aws:lambda:us-east-1:1:function:f:$LATEST", "f")]
    #[case::partial_arn("1:function:f", "f")]
    #[case::name("f", "f")]
    fn function_names(#[case] given: &str, #[case] name: &str) {
        assert_eq!(function_name(given), name);
    }
}
