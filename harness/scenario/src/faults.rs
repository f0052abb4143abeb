//! The `faults` block of a scenario file: its strict YAML shape and the rules
//! that turn it into a [`FaultPlan`], each broken rule a load error naming
//! the file, the line and the key.

use std::path::Path;

use fault_plan::{
    AwsError, ChainFunction, FaultPlan, LambdaAction, LambdaFault, SmtpAction, SmtpEvent,
    SmtpExtension, SmtpFault, StsFault,
};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::{
    ScenarioError,
    model::{InvocationType, Via},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFaults {
    #[serde(default)]
    smtp: Vec<Spanned<RawSmtpFault>>,
    #[serde(default)]
    sts: Vec<Spanned<RawStsFault>>,
    #[serde(default)]
    lambda: Vec<Spanned<RawLambdaFault>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtpFault {
    on: SmtpEvent,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    reply: Option<String>,
    #[serde(default)]
    stall_ms: Option<u64>,
    #[serde(default)]
    disconnect: Option<bool>,
    #[serde(default)]
    withhold: Option<SmtpExtension>,
    #[serde(default)]
    times: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStsFault {
    #[serde(default = "assume_role")]
    action: String,
    error: String,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    times: Option<u32>,
}

fn assume_role() -> String {
    "AssumeRole".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLambdaFault {
    function: ChainFunction,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    retry_after_seconds: Option<u32>,
    #[serde(default)]
    timeout: Option<bool>,
    #[serde(default)]
    crash: Option<bool>,
    #[serde(default)]
    init_error: Option<bool>,
    #[serde(default)]
    latency_ms: Option<u64>,
    #[serde(default)]
    times: Option<u32>,
}

/// STS error codes with AWS's own status and message; any other needs `status`.
fn known_sts_error(code: &str) -> Option<(u16, &'static str)> {
    Some(match code {
        "Throttling" => (400, "Rate exceeded"),
        "RegionDisabledException" => (
            403,
            "STS is not activated in this region for the account. Your account administrator can activate STS in this region using the IAM Console.",
        ),
        "ExpiredToken" => (400, "The security token included in the request is expired"),
        "ServiceUnavailable" => (503, "Service is unavailable"),
        _ => return None,
    })
}

/// Lambda API error codes with AWS's own status and message; any other needs `status`.
fn known_lambda_error(code: &str) -> Option<(u16, &'static str, Option<&'static str>)> {
    Some(match code {
        "TooManyRequestsException" => (
            429,
            "Rate Exceeded.",
            Some("ReservedFunctionConcurrentInvocationLimitExceeded"),
        ),
        "ServiceException" => (500, "Service encountered an internal error.", None),
        "ResourceNotReadyException" => (
            502,
            "The function is not ready for invocation; try again later.",
            None,
        ),
        _ => return None,
    })
}

/// The STS actions a fault can name: the chain calls only `AssumeRole`.
const STS_ACTIONS: [&str; 1] = ["AssumeRole"];

/// Checks a `faults` block against the scenario's `invoke` and builds its plan.
pub(crate) fn resolve(
    file: &Path,
    faults: Option<Spanned<RawFaults>>,
    via: Via,
    invocation: InvocationType,
) -> Result<FaultPlan, ScenarioError> {
    let Some(faults) = faults else {
        return Ok(FaultPlan::default());
    };
    let block_line = faults.referenced.line();
    let faults = faults.value;
    let invalid = |line: u64, key: String, message: String| {
        Err(ScenarioError::invalid(file, line, key, message))
    };
    let any = !(faults.smtp.is_empty() && faults.sts.is_empty() && faults.lambda.is_empty());
    if any && invocation == InvocationType::DryRun {
        return invalid(
            block_line,
            "faults".into(),
            "a DryRun runs no function and sends no email, so no fault can apply; remove `faults` or the DryRun".into(),
        );
    }

    let mut plan = FaultPlan::default();
    for (i, fault) in faults.smtp.into_iter().enumerate() {
        let line = fault.referenced.line();
        let key = format!("faults.smtp[{i}]");
        let raw = fault.value;
        if raw.withhold.is_some() && raw.on != SmtpEvent::Ehlo {
            return invalid(
                line,
                format!("{key}.withhold"),
                format!(
                    "an extension is offered or withheld in the EHLO reply: write `on: ehlo`, not `on: {}`",
                    raw.on
                ),
            );
        }
        if raw.to.is_some() && raw.on != SmtpEvent::Rcpt {
            return invalid(
                line,
                format!("{key}.to"),
                format!("`to` narrows `on: rcpt` only, not `on: {}`", raw.on),
            );
        }
        let action = match (raw.reply, raw.stall_ms, raw.disconnect, raw.withhold) {
            (Some(reply), None, None, None) => match parse_reply(&reply) {
                Ok((code, text)) => SmtpAction::Reply { code, text },
                Err(why) => return invalid(line, format!("{key}.reply"), why),
            },
            (None, Some(ms), None, None) => SmtpAction::Stall { ms },
            (None, None, Some(true), None) => SmtpAction::Disconnect,
            (None, None, None, Some(extension)) => SmtpAction::Withhold { extension },
            (None, None, Some(false), None) => {
                return invalid(
                    line,
                    format!("{key}.disconnect"),
                    "`disconnect: false` injects nothing; write `disconnect: true` or another action".into(),
                );
            }
            _ => {
                return invalid(
                    line,
                    key,
                    "give exactly one of `reply`, `stall_ms`, `disconnect` and `withhold`".into(),
                );
            }
        };
        check_times(file, line, &key, raw.times)?;
        plan.smtp.push(SmtpFault {
            on: raw.on,
            to: raw.to,
            action,
            times: raw.times,
        });
    }

    for (i, fault) in faults.sts.into_iter().enumerate() {
        let line = fault.referenced.line();
        let key = format!("faults.sts[{i}]");
        let raw = fault.value;
        if via == Via::Callee {
            return invalid(
                line,
                key,
                "`via: callee` makes no STS request (only the caller assumes a role), so an sts fault would never apply".into(),
            );
        }
        if !STS_ACTIONS.contains(&raw.action.as_str()) {
            return invalid(
                line,
                format!("{key}.action"),
                format!(
                    "the chain calls STS only for {}, not `{}`",
                    STS_ACTIONS.join(", "),
                    raw.action
                ),
            );
        }
        let (status, message) = match (known_sts_error(&raw.error), raw.status) {
            (_, Some(status)) => (status, raw.message.clone()),
            (Some((status, message)), None) => (status, Some(message.to_owned())),
            (None, None) => {
                return invalid(
                    line,
                    format!("{key}.status"),
                    format!(
                        "`{}` is not an error the harness knows the status of; give `status:` (and `message:`)",
                        raw.error
                    ),
                );
            }
        };
        check_status(file, line, &key, status)?;
        check_times(file, line, &key, raw.times)?;
        plan.sts.push(StsFault {
            action: raw.action,
            error: AwsError {
                status,
                message: raw.message.or(message).unwrap_or_default(),
                code: raw.error,
                reason: None,
                retry_after_seconds: None,
            },
            times: raw.times,
        });
    }

    for (i, fault) in faults.lambda.into_iter().enumerate() {
        let line = fault.referenced.line();
        let key = format!("faults.lambda[{i}]");
        let raw = fault.value;
        if raw.function == ChainFunction::Caller && via == Via::Callee {
            return invalid(
                line,
                format!("{key}.function"),
                "`via: callee` never invokes the caller, so this fault would never apply".into(),
            );
        }
        let flags = [
            ("timeout", raw.timeout),
            ("crash", raw.crash),
            ("init_error", raw.init_error),
        ];
        if let Some((name, _)) = flags.iter().find(|(_, v)| *v == Some(false)) {
            return invalid(
                line,
                format!("{key}.{name}"),
                format!("`{name}: false` injects nothing; write `{name}: true` or leave it out"),
            );
        }
        let mut actions: Vec<LambdaAction> = flags
            .iter()
            .filter(|(_, v)| *v == Some(true))
            .map(|(name, _)| match *name {
                "timeout" => LambdaAction::Timeout,
                "crash" => LambdaAction::Crash,
                _ => LambdaAction::InitError,
            })
            .collect();
        if let Some(ms) = raw.latency_ms {
            actions.push(LambdaAction::LatencyMs(ms));
        }
        let error_details = raw.status.is_some()
            || raw.message.is_some()
            || raw.reason.is_some()
            || raw.retry_after_seconds.is_some();
        if let Some(code) = &raw.error {
            let known = known_lambda_error(code);
            let status = match (raw.status, known) {
                (Some(status), _) => status,
                (None, Some((status, _, _))) => status,
                (None, None) => {
                    return invalid(
                        line,
                        format!("{key}.status"),
                        format!(
                            "`{code}` is not an error the harness knows the status of; give `status:` (and `message:`)"
                        ),
                    );
                }
            };
            check_status(file, line, &key, status)?;
            let throttled = code == "TooManyRequestsException";
            actions.push(LambdaAction::Error(AwsError {
                status,
                code: code.clone(),
                message: raw
                    .message
                    .clone()
                    .or(known.map(|(_, m, _)| m.to_owned()))
                    .unwrap_or_default(),
                reason: raw
                    .reason
                    .clone()
                    .or(known.and_then(|(_, _, r)| r).map(str::to_owned)),
                retry_after_seconds: raw.retry_after_seconds.or(throttled.then_some(1)),
            }));
        } else if error_details {
            return invalid(
                line,
                key,
                "`status`, `message`, `reason` and `retry_after_seconds` describe an `error`; give `error:` too".into(),
            );
        }
        let action = match actions.len() {
            1 => actions.remove(0),
            _ => {
                return invalid(
                    line,
                    key,
                    "give exactly one of `error`, `timeout`, `crash`, `init_error` and `latency_ms`"
                        .into(),
                );
            }
        };
        check_times(file, line, &key, raw.times)?;
        plan.lambda.push(LambdaFault {
            function: raw.function,
            action,
            times: raw.times,
        });
    }
    Ok(plan)
}

fn check_times(file: &Path, line: u64, key: &str, times: Option<u32>) -> Result<(), ScenarioError> {
    if times == Some(0) {
        return Err(ScenarioError::invalid(
            file,
            line,
            format!("{key}.times"),
            "`times: 0` injects nothing; leave `times` out for every event, or give 1 or more",
        ));
    }
    Ok(())
}

fn check_status(file: &Path, line: u64, key: &str, status: u16) -> Result<(), ScenarioError> {
    if !(400..=599).contains(&status) {
        return Err(ScenarioError::invalid(
            file,
            line,
            format!("{key}.status"),
            format!("an error's status is 400–599, not {status}"),
        ));
    }
    Ok(())
}

/// `"450 4.2.1 mailbox busy"` → `(450, "4.2.1 mailbox busy")`.
fn parse_reply(reply: &str) -> Result<(u16, String), String> {
    let (code, text) = reply.split_once(' ').unwrap_or((reply, ""));
    let code: u16 = code
        .parse()
        .map_err(|_| format!("`{reply}` does not start with a 3-digit SMTP reply code"))?;
    if !(400..=599).contains(&code) {
        return Err(format!(
            "a fault's reply is an error, 4xx or 5xx, not {code}"
        ));
    }
    if text.trim().is_empty() || text.contains(['\r', '\n']) {
        return Err("a reply needs text after its code, on one line".into());
    }
    Ok((code, text.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use rstest::rstest;

    use super::*;
    use crate::parse_str;

    fn scenario(via: &str, invocation: &str, faults: &str) -> String {
        format!(
            "name: f\ninvoke:\n  via: {via}\n  invocation_type: {invocation}\n  payload: {{ alert: {{ number: INC1 }} }}\nexpect:\n  status: success\nfaults:\n{faults}"
        )
    }

    fn load(via: &str, invocation: &str, faults: &str) -> Result<FaultPlan, ScenarioError> {
        parse_str(&PathBuf::from("s.yaml"), &scenario(via, invocation, faults)).map(|s| s.faults)
    }

    #[test]
    fn every_kind_of_fault_loads() {
        let plan = load(
            "caller",
            "RequestResponse",
            "  smtp:
    - { on: rcpt, to: noc@example.com, reply: \"450 4.2.1 mailbox busy\", times: 1 }
    - { on: connect, stall_ms: 30000 }
    - { on: message, disconnect: true, times: 1 }
    - { on: ehlo, withhold: starttls }
    - { on: auth, reply: \"535 5.7.8 Authentication credentials invalid\" }
  sts:
    - { action: AssumeRole, error: Throttling, times: 2 }
    - { error: AccessDenied, status: 403, message: nope }
  lambda:
    - { function: callee, error: TooManyRequestsException, times: 1 }
    - { function: callee, timeout: true }
    - { function: callee, crash: true }
    - { function: callee, init_error: true }
    - { function: caller, latency_ms: 500 }
",
        )
        .expect("loads");

        assert_eq!(
            plan.smtp[0],
            SmtpFault {
                on: SmtpEvent::Rcpt,
                to: Some("noc@example.com".into()),
                action: SmtpAction::Reply {
                    code: 450,
                    text: "4.2.1 mailbox busy".into()
                },
                times: Some(1),
            }
        );
        assert_eq!(plan.smtp[1].action, SmtpAction::Stall { ms: 30000 });
        assert_eq!(plan.smtp[2].action, SmtpAction::Disconnect);
        assert_eq!(
            plan.smtp[3].action,
            SmtpAction::Withhold {
                extension: SmtpExtension::Starttls
            }
        );
        assert_eq!(plan.smtp[4].on, SmtpEvent::Auth);
        assert_eq!(
            plan.sts[0].error,
            AwsError {
                status: 400,
                code: "Throttling".into(),
                message: "Rate exceeded".into(),
                reason: None,
                retry_after_seconds: None,
            }
        );
        assert_eq!(plan.sts[0].times, Some(2));
        assert_eq!(plan.sts[1].error.status, 403);
        assert_eq!(
            plan.lambda[0].action,
            LambdaAction::Error(AwsError {
                status: 429,
                code: "TooManyRequestsException".into(),
                message: "Rate Exceeded.".into(),
                reason: Some("ReservedFunctionConcurrentInvocationLimitExceeded".into()),
                retry_after_seconds: Some(1),
            })
        );
        assert_eq!(plan.lambda[1].action, LambdaAction::Timeout);
        assert_eq!(plan.lambda[2].action, LambdaAction::Crash);
        assert_eq!(plan.lambda[3].action, LambdaAction::InitError);
        assert_eq!(plan.lambda[4].action, LambdaAction::LatencyMs(500));
        assert_eq!(plan.lambda[4].function, ChainFunction::Caller);
    }

    #[test]
    fn no_block_is_no_fault() {
        let text = "name: f\ninvoke: { payload: {} }\nexpect: { status: success }\n";
        let scenario = parse_str(&PathBuf::from("s.yaml"), text).expect("loads");
        assert!(scenario.faults.is_empty());
    }

    #[rstest]
    #[case::unknown_key(
        "caller",
        "RequestResponse",
        "  smtp:\n    - { on: data, reply: \"554 5.7.1 no\", tiems: 1 }\n",
        10,
        "tiems"
    )]
    #[case::unknown_kind("caller", "RequestResponse", "  dns: []\n", 9, "dns")]
    #[case::unknown_event(
        "caller",
        "RequestResponse",
        "  smtp:\n    - { on: helo, reply: \"554 5.7.1 no\" }\n",
        10,
        "helo"
    )]
    #[case::two_smtp_actions(
        "caller",
        "RequestResponse",
        "  smtp:\n    - { on: data, reply: \"554 5.7.1 no\", disconnect: true }\n",
        10,
        "exactly one of `reply`, `stall_ms`, `disconnect` and `withhold`"
    )]
    #[case::withhold_and_reply(
        "caller",
        "RequestResponse",
        "  smtp:\n    - { on: ehlo, withhold: starttls, reply: \"554 5.7.1 no\" }\n",
        10,
        "exactly one of `reply`, `stall_ms`, `disconnect` and `withhold`"
    )]
    #[case::withhold_outside_ehlo(
        "caller",
        "RequestResponse",
        "  smtp:\n    - { on: mail, withhold: auth }\n",
        10,
        "write `on: ehlo`"
    )]
    #[case::withhold_unknown_extension(
        "caller",
        "RequestResponse",
        "  smtp:\n    - { on: ehlo, withhold: pipelining }\n",
        10,
        "pipelining"
    )]
    #[case::no_smtp_action(
        "caller",
        "RequestResponse",
        "  smtp:\n    - { on: data }\n",
        10,
        "exactly one of"
    )]
    #[case::to_without_rcpt(
        "caller",
        "RequestResponse",
        "  smtp:\n    - { on: data, to: a@example.com, reply: \"554 5.7.1 no\" }\n",
        10,
        "`to` narrows `on: rcpt` only"
    )]
    #[case::reply_without_code(
        "caller",
        "RequestResponse",
        "  smtp:\n    - { on: data, reply: refused }\n",
        10,
        "3-digit SMTP reply code"
    )]
    #[case::reply_that_is_no_error(
        "caller",
        "RequestResponse",
        "  smtp:\n    - { on: data, reply: \"250 ok\" }\n",
        10,
        "4xx or 5xx"
    )]
    #[case::disconnect_false(
        "caller",
        "RequestResponse",
        "  smtp:\n    - { on: data, disconnect: false }\n",
        10,
        "`disconnect: false` injects nothing"
    )]
    #[case::times_zero(
        "caller",
        "RequestResponse",
        "  smtp:\n    - { on: data, disconnect: true, times: 0 }\n",
        10,
        "`times: 0`"
    )]
    #[case::sts_through_the_callee(
        "callee",
        "RequestResponse",
        "  sts:\n    - { error: Throttling }\n",
        10,
        "makes no STS request"
    )]
    #[case::sts_unknown_code_without_status(
        "caller",
        "RequestResponse",
        "  sts:\n    - { error: Weird }\n",
        10,
        "give `status:`"
    )]
    #[case::sts_other_action(
        "caller",
        "RequestResponse",
        "  sts:\n    - { action: GetSessionToken, error: Throttling }\n",
        10,
        "only for AssumeRole"
    )]
    #[case::caller_fault_through_the_callee(
        "callee",
        "RequestResponse",
        "  lambda:\n    - { function: caller, crash: true }\n",
        10,
        "never invokes the caller"
    )]
    #[case::two_lambda_actions(
        "caller",
        "RequestResponse",
        "  lambda:\n    - { function: callee, crash: true, timeout: true }\n",
        10,
        "exactly one of `error`, `timeout`"
    )]
    #[case::error_details_without_error(
        "caller",
        "RequestResponse",
        "  lambda:\n    - { function: callee, reason: X }\n",
        10,
        "give `error:` too"
    )]
    #[case::timeout_false(
        "caller",
        "RequestResponse",
        "  lambda:\n    - { function: callee, timeout: false }\n",
        10,
        "`timeout: false` injects nothing"
    )]
    #[case::status_not_an_error(
        "caller",
        "RequestResponse",
        "  lambda:\n    - { function: callee, error: Odd, status: 200 }\n",
        10,
        "400–599"
    )]
    #[case::unknown_function(
        "caller",
        "RequestResponse",
        "  lambda:\n    - { function: database, crash: true }\n",
        10,
        "database"
    )]
    #[case::dry_run(
        "caller",
        "DryRun",
        "  lambda:\n    - { function: callee, crash: true }\n",
        9,
        "a DryRun runs no function"
    )]
    fn impossible_faults_are_load_errors_naming_file_and_line(
        #[case] via: &str,
        #[case] invocation: &str,
        #[case] faults: &str,
        #[case] line: u64,
        #[case] fragment: &str,
    ) {
        let error = load(via, invocation, faults).expect_err("refused");

        let message = error.to_string();
        assert!(
            message.starts_with(&format!("s.yaml:{line}: ")),
            "{message}"
        );
        assert!(message.contains(fragment), "{message}");
    }
}
