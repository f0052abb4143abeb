//! Execution-role credentials, issued by the gateway the way Lambda gets them
//! in AWS: Lambda assumes the function's execution role, which must trust
//! `lambda.amazonaws.com`, and the function runs with that session's keys.
//! The same route hands the harness its tooling account's CI role the way
//! EC2 hands an instance its profile's role (which must trust
//! `ec2.amazonaws.com`): the harness deploys as a CI server on EC2 does.
//!
//! The emulator's executor asks for them when it starts an execution
//! environment, with a token only it holds (`POST` [`ISSUE_PATH`], header
//! [`ISSUER_TOKEN_HEADER`], body `{"RoleArn", "FunctionArn", "FunctionName"}`).
//! The gateway evaluates the role's trust policy for the service principal,
//! has the emulator's STS mint the session, and remembers its secret, so
//! every call the function signs with it can be verified. The emulator's own
//! credentials for the function are replaced and never trusted.

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Request, Response, StatusCode, body::Incoming};
use iam_policy::Principal;
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{
    Mode,
    aws_error::{ProxyBody, full_body},
    classify::AssumeRoleCall,
    decide,
    log::{DecisionRecord, Ruling},
    policies::Caller,
    proxy::State,
};
use sdk_config::REGION;

/// Where the executor asks for credentials.
pub const ISSUE_PATH: &str = "/_harness/execution-role-credentials";
/// The header carrying the executor's token.
pub const ISSUER_TOKEN_HEADER: &str = "x-harness-issuer-token";
/// What Lambda itself is, as a principal.
const LAMBDA_SERVICE: &str = "lambda.amazonaws.com";
/// How long an execution environment's keys last (LocalStack's own choice, 12 h).
const SESSION_SECONDS: i32 = 12 * 3600;

/// What EC2 itself is, as a principal: an instance profile's role trusts it.
pub const EC2_SERVICE: &str = "ec2.amazonaws.com";

/// A request for a session: a function's (`FunctionArn`, `FunctionName`), or
/// an EC2 instance profile's (`Service: ec2.amazonaws.com`, `SessionName`),
/// which is how the harness gets its tooling account's CI role, as a CI
/// server on an EC2 instance gets its own.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IssueRequest {
    role_arn: String,
    #[serde(default)]
    function_arn: Option<String>,
    #[serde(default)]
    function_name: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    session_name: Option<String>,
}

/// Who assumes the role, and the session name and context it gives.
struct Assumer {
    service: &'static str,
    session_name: String,
    context: Vec<(&'static str, String)>,
}

impl IssueRequest {
    fn assumer(&self) -> Result<Assumer, String> {
        match (
            &self.function_arn,
            &self.function_name,
            self.service.as_deref(),
            &self.session_name,
        ) {
            (Some(function_arn), Some(function_name), None, None) => {
                // Lambda assumes the role for one function, and says which (the
                // confused-deputy keys a trust policy may test).
                let account = function_arn.split(':').nth(4).unwrap_or_default();
                Ok(Assumer {
                    service: LAMBDA_SERVICE,
                    session_name: function_name.clone(),
                    context: vec![
                        ("aws:SourceArn", function_arn.clone()),
                        ("aws:SourceAccount", account.to_owned()),
                    ],
                })
            }
            (None, None, Some(EC2_SERVICE), Some(session_name)) => Ok(Assumer {
                service: EC2_SERVICE,
                session_name: session_name.clone(),
                context: Vec::new(),
            }),
            _ => Err(format!(
                "expected {{\"RoleArn\", \"FunctionArn\", \"FunctionName\"}} or {{\"RoleArn\", \"Service\": \"{EC2_SERVICE}\", \"SessionName\"}}"
            )),
        }
    }
}

/// The keys an execution environment runs with.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Issued {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expiration: String,
}

/// Reads STS's `Expiration` (RFC 3339).
pub fn parse_expiration(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).ok()
}

fn answer(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut response = Response::new(full_body(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

pub(super) fn refusal(status: StatusCode, message: &str) -> Response<ProxyBody> {
    answer(
        status,
        serde_json::json!({ "message": message }).to_string(),
    )
}

/// Compares without telling how much of the token matched.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The body of a `POST` from the emulator's executor (plugin), which proves
/// itself with the issuer token; anyone else's request is refused with
/// `refused`, a broken body with 400.
pub(super) async fn executor_body(
    state: &State,
    request: Request<Incoming>,
    refused: &str,
) -> Result<Bytes, Response<ProxyBody>> {
    let token_ok = match (
        &state.issuer_token,
        request.headers().get(ISSUER_TOKEN_HEADER),
    ) {
        (Some(expected), Some(given)) => same_token(given.as_bytes(), expected.as_bytes()),
        _ => false,
    };
    if !token_ok || request.method() != hyper::Method::POST {
        return Err(refusal(StatusCode::FORBIDDEN, refused));
    }
    match request.into_body().collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => Err(refusal(
            StatusCode::BAD_REQUEST,
            &format!("the body broke off: {err}"),
        )),
    }
}

/// Serves one credentials request.
pub(super) async fn serve(state: &Arc<State>, request: Request<Incoming>) -> Response<ProxyBody> {
    let started = Instant::now();
    let body = match executor_body(
        state,
        request,
        "iam gateway: execution-role credentials are issued to the emulator's executor only",
    )
    .await
    {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let asked = serde_json::from_slice::<IssueRequest>(&body)
        .map_err(|err| err.to_string())
        .and_then(|asked| Ok((asked.assumer()?, asked)));
    let (assumer, asked) = match asked {
        Ok(asked) => asked,
        Err(err) => return refusal(StatusCode::BAD_REQUEST, &err),
    };
    let caller = Caller {
        principal: Principal::service(assumer.service),
        user_id: None,
    };
    let call = AssumeRoleCall {
        role_arn: asked.role_arn.clone(),
        session_name: Some(assumer.session_name.clone()),
        external_id: None,
        duration_seconds: None,
        source_identity: None,
    };
    let context: Vec<(&str, &str)> = assumer
        .context
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect();
    let outcome =
        match decide::assume_role_in_context(&state.source, &caller, &call, REGION, &context).await
        {
            Ok(outcome) => outcome,
            Err(err) => {
                return refusal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!(
                        "iam gateway could not evaluate the trust of {}: {}",
                        asked.role_arn,
                        err.chain()
                    ),
                );
            }
        };
    let denied = outcome.rejection.is_some();
    let verdict = match (denied, state.mode) {
        (false, _) => Ruling::Allow,
        (true, Mode::Audit) => Ruling::WouldDeny,
        (true, _) => Ruling::Deny,
    };
    let mut record = DecisionRecord::from_decision(&outcome.decision, verdict, None);
    record.reason = outcome.reason.to_owned();
    record.explanation = outcome.explanation.clone();
    record.principal = Some(assumer.service.to_owned());
    record.time_ms = super::log::now_ms();
    record.overhead_us = Some(started.elapsed().as_micros() as u64);
    if verdict == Ruling::Deny {
        record.status = Some(403);
        state.log.push(record);
        return refusal(
            StatusCode::FORBIDDEN,
            &if assumer.service == LAMBDA_SERVICE {
                // AWS's words when a function's role does not trust Lambda.
                format!(
                    "InvalidParameterValueException: The role defined for the function cannot be assumed by Lambda. ({})",
                    asked.role_arn
                )
            } else {
                format!(
                    "the role {} does not trust {}, so an instance profile cannot hand out its credentials",
                    asked.role_arn, assumer.service
                )
            },
        );
    }
    let Some(account) = Principal::from_arn(&asked.role_arn)
        .ok()
        .and_then(|p| p.account().map(str::to_owned))
    else {
        return refusal(
            StatusCode::BAD_REQUEST,
            &format!("`{}` is not a role ARN", asked.role_arn),
        );
    };
    let minted = state
        .source
        .sts(&account)
        .await
        .assume_role()
        .role_arn(&asked.role_arn)
        .role_session_name(&assumer.session_name)
        .duration_seconds(SESSION_SECONDS)
        .send()
        .await;
    let minted = match minted {
        Ok(minted) => minted,
        Err(err) => {
            return refusal(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "the emulator's STS did not mint the session: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&err)
                ),
            );
        }
    };
    let (Some(credentials), Some(user)) = (minted.credentials(), minted.assumed_role_user()) else {
        return refusal(
            StatusCode::BAD_GATEWAY,
            "the emulator's STS answered without credentials",
        );
    };
    let expires = OffsetDateTime::from_unix_timestamp(credentials.expiration().secs())
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    state.keys.insert_session(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        credentials.session_token(),
        expires,
    );
    if let Ok(principal) = Principal::from_arn(user.arn()) {
        state.source.remember_identity(
            credentials.access_key_id(),
            Caller {
                principal: principal.clone(),
                user_id: Some(user.assumed_role_id().to_owned()),
            },
        );
        // The environment these keys are for is starting (a process to spawn,
        // its init to run): read its role's policies meanwhile, so that its
        // first call finds them cached. Its calls are decided as ever; a read
        // that fails here is made again, and reported, by the call.
        let state = Arc::clone(state);
        tokio::spawn(async move {
            let _ = state.source.identity_policies(&principal).await;
        });
    }
    record.status = Some(200);
    state.log.push(record);
    let issued = Issued {
        access_key_id: credentials.access_key_id().to_owned(),
        secret_access_key: credentials.secret_access_key().to_owned(),
        session_token: credentials.session_token().to_owned(),
        expiration: expires.format(&Rfc3339).unwrap_or_default(),
    };
    answer(
        StatusCode::OK,
        serde_json::to_string(&issued).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"abc", b"abc"));
        assert!(!same_token(b"abd", b"abc"));
        assert!(!same_token(b"ab", b"abc"));
        assert!(!same_token(b"", b"abc"));
    }

    #[rstest::rstest]
    #[case::function(
        r#"{"RoleArn":"arn:aws:iam::1:role/r","FunctionArn":"arn:aws:lambda:us-east-1:111111111111:function:f","FunctionName":"f"}"#,
        Some(("lambda.amazonaws.com", "f", 2))
    )]
    #[case::instance_profile(
        r#"{"RoleArn":"arn:aws:iam::3:role/ci","Service":"ec2.amazonaws.com","SessionName":"harness"}"#,
        Some(("ec2.amazonaws.com", "harness", 0))
    )]
    #[case::other_service(
        r#"{"RoleArn":"arn:aws:iam::3:role/ci","Service":"ecs-tasks.amazonaws.com","SessionName":"s"}"#,
        None
    )]
    #[case::both_kinds(
        r#"{"RoleArn":"r","FunctionArn":"a","FunctionName":"f","Service":"ec2.amazonaws.com","SessionName":"s"}"#,
        None
    )]
    #[case::function_without_name(r#"{"RoleArn":"r","FunctionArn":"a"}"#, None)]
    fn sessions_are_asked_for_a_function_or_an_instance_profile(
        #[case] body: &str,
        #[case] expected: Option<(&str, &str, usize)>,
    ) {
        let asked: IssueRequest = serde_json::from_str(body).expect("json");
        let got = asked
            .assumer()
            .ok()
            .map(|a| (a.service, a.session_name, a.context.len()));
        assert_eq!(
            got,
            expected.map(|(service, session, context)| (service, session.to_owned(), context))
        );
    }

    #[test]
    fn sts_expirations_parse() {
        let parsed = parse_expiration("2026-11-30T19:00:00Z").expect("rfc 3339");
        assert_eq!(parsed.unix_timestamp(), 1_796_065_200);
        assert_eq!(parse_expiration("tomorrow"), None);
    }
}
