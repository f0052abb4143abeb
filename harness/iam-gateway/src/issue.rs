//! Execution-role credentials, issued by the gateway the way Lambda gets them
//! in AWS: Lambda assumes the function's execution role, which must trust
//! `lambda.amazonaws.com`, and the function runs with that session's keys.
//!
//! The emulator's executor asks for them when it starts an execution
//! environment, with a token only it holds (`POST` [`ISSUE_PATH`], header
//! [`ISSUER_TOKEN_HEADER`], body `{"RoleArn", "FunctionArn", "FunctionName"}`).
//! The gateway evaluates the role's trust policy for the service principal,
//! has the emulator's STS mint the session, and remembers its secret, so
//! every call the function signs with it can be verified. The emulator's own
//! credentials for the function are replaced and never trusted.

use std::time::Instant;

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

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IssueRequest {
    role_arn: String,
    function_arn: String,
    function_name: String,
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

/// Serves one credentials request.
pub(super) async fn serve(state: &State, request: Request<Incoming>) -> Response<ProxyBody> {
    let started = Instant::now();
    let token_ok = match (
        &state.issuer_token,
        request.headers().get(ISSUER_TOKEN_HEADER),
    ) {
        (Some(expected), Some(given)) => same_token(given.as_bytes(), expected.as_bytes()),
        _ => false,
    };
    if !token_ok || request.method() != hyper::Method::POST {
        return refusal(
            StatusCode::FORBIDDEN,
            "iam gateway: execution-role credentials are issued to the emulator's executor only",
        );
    }
    let body: Bytes = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                &format!("the body broke off: {err}"),
            );
        }
    };
    let asked: IssueRequest = match serde_json::from_slice(&body) {
        Ok(asked) => asked,
        Err(err) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"RoleArn\", \"FunctionArn\", \"FunctionName\"}}: {err}"),
            );
        }
    };
    let caller = Caller {
        principal: Principal::service(LAMBDA_SERVICE),
        user_id: None,
    };
    let call = AssumeRoleCall {
        role_arn: asked.role_arn.clone(),
        session_name: Some(asked.function_name.clone()),
        external_id: None,
        duration_seconds: None,
        source_identity: None,
    };
    // Lambda assumes the role for one function, and says which (the
    // confused-deputy keys a trust policy may test).
    let function_account = asked.function_arn.split(':').nth(4).unwrap_or_default();
    let context = [
        ("aws:SourceArn", asked.function_arn.as_str()),
        ("aws:SourceAccount", function_account),
    ];
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
    record.principal = Some(LAMBDA_SERVICE.to_owned());
    record.time_ms = super::log::now_ms();
    record.overhead_us = Some(started.elapsed().as_micros() as u64);
    if verdict == Ruling::Deny {
        record.status = Some(403);
        state.log.push(record);
        // AWS's words when a function's role does not trust Lambda.
        return refusal(
            StatusCode::FORBIDDEN,
            &format!(
                "InvalidParameterValueException: The role defined for the function cannot be assumed by Lambda. ({})",
                asked.role_arn
            ),
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
        .role_session_name(&asked.function_name)
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
                principal,
                user_id: Some(user.assumed_role_id().to_owned()),
            },
        );
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

    #[test]
    fn sts_expirations_parse() {
        let parsed = parse_expiration("2026-11-30T19:00:00Z").expect("rfc 3339");
        assert_eq!(parsed.unix_timestamp(), 1_796_065_200);
        assert_eq!(parse_expiration("tomorrow"), None);
    }
}
