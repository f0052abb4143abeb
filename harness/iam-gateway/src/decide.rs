//! Turning a classified request into the evaluator's question and AWS's answer:
//! the request context, the fetched policies, and the error AWS would return.

use std::time::SystemTime;

use hyper::StatusCode;
use iam_policy::{
    Decision, DecisionReason, PrincipalKind, Request, authorize, authorize_assume_role,
    authorize_invoke,
};

use super::{
    classify::{AssumeRoleCall, FunctionRef},
    log::reason_code,
    policies::{Caller, PolicySource},
    s3::S3Call,
};
use crate::error::GatewayError;

/// The action names the gateway evaluates.
pub const ASSUME_ROLE: &str = "sts:AssumeRole";
/// See [`ASSUME_ROLE`].
pub const INVOKE_FUNCTION: &str = "lambda:InvokeFunction";

/// STS's own limit for a session created by a role session (role chaining).
const ROLE_CHAINING_LIMIT_SECONDS: i64 = 3600;
/// `MaxSessionDuration` when a role does not say.
const DEFAULT_MAX_SESSION_SECONDS: i64 = 3600;

/// The error AWS would answer instead of performing the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status.
    pub status: StatusCode,
    /// The error code (`AccessDenied`, `AccessDeniedException`, `ValidationError`).
    pub code: &'static str,
    /// AWS's message.
    pub message: String,
}

/// A decision with everything the log and the response need.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The evaluator's decision (synthesised, with no statements, when there was nothing to evaluate).
    pub decision: Decision,
    /// The log's reason code.
    pub reason: &'static str,
    /// The log's explanation.
    pub explanation: String,
    /// What AWS would answer instead; `None` when the request goes through.
    pub rejection: Option<Rejection>,
}

impl Outcome {
    fn from_decision(decision: Decision, rejection: Option<Rejection>) -> Self {
        Self {
            reason: reason_code(decision.reason),
            explanation: decision.to_string(),
            decision,
            rejection,
        }
    }
}

/// The global context keys every evaluated request carries.
fn base_request(caller: &Caller, action: &str, resource: &str, region: &str) -> Request {
    let mut request = Request::new(caller.principal.clone(), action, resource)
        // AWS's SDKs and services speak TLS; the gateway says otherwise for a
        // request that reached it in plain HTTP.
        .with_context("aws:SecureTransport", "true")
        .with_context("aws:RequestedRegion", region);
    request.context.set_current_time(SystemTime::now());
    if let Some(user_id) = &caller.user_id {
        request = request.with_context("aws:userid", user_id.clone());
    }
    request
}

/// The evaluator's request for `sts:AssumeRole`, with STS's request keys when sent.
pub fn assume_role_request(caller: &Caller, call: &AssumeRoleCall, region: &str) -> Request {
    let mut request = base_request(caller, ASSUME_ROLE, &call.role_arn, region);
    // STS names these in the request context only when the caller sent them.
    for (key, value) in [
        ("sts:ExternalId", &call.external_id),
        ("sts:RoleSessionName", &call.session_name),
        ("sts:SourceIdentity", &call.source_identity),
    ] {
        if let Some(value) = value {
            request = request.with_context(key, value.clone());
        }
    }
    request
}

/// The evaluator's request for a Lambda `action` on a resolved function ARN.
pub fn function_request(
    caller: &Caller,
    action: &str,
    function_arn: &str,
    region: &str,
) -> Request {
    base_request(caller, action, function_arn, region)
        .with_context("lambda:FunctionArn", function_arn)
}

fn access_denied(decision: &Decision, code: &'static str) -> Option<Rejection> {
    decision.access_denied_message().map(|message| Rejection {
        status: StatusCode::FORBIDDEN,
        code,
        message,
    })
}

/// Checks `DurationSeconds` against the role's and role chaining's limits, as STS does.
fn duration_rejection(
    caller: &Caller,
    duration: Option<&str>,
    max_session: Option<i32>,
) -> Option<(&'static str, Rejection)> {
    // Unparsable values are STS's own validation to report.
    let seconds: i64 = duration?.trim().parse().ok()?;
    let max = max_session.map_or(DEFAULT_MAX_SESSION_SECONDS, i64::from);
    let invalid = |message: &str| Rejection {
        status: StatusCode::BAD_REQUEST,
        code: "ValidationError",
        message: message.to_owned(),
    };
    if seconds > max {
        return Some((
            "duration_exceeds_max_session_duration",
            invalid(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            ),
        ));
    }
    if caller.principal.kind() == PrincipalKind::AssumedRole
        && seconds > ROLE_CHAINING_LIMIT_SECONDS
    {
        return Some((
            "duration_exceeds_role_chaining_limit",
            invalid(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
            ),
        ));
    }
    None
}

/// Decides `sts:AssumeRole` for `caller` the way STS would.
pub async fn assume_role(
    source: &PolicySource,
    caller: &Caller,
    call: &AssumeRoleCall,
    region: &str,
) -> Result<Outcome, GatewayError> {
    assume_role_in_context(source, caller, call, region, &[]).await
}

/// [`assume_role`] with context keys from the request (`aws:UserAgent`) or
/// that a service adds when it acts for a resource (`aws:SourceArn`,
/// `aws:SourceAccount`).
pub async fn assume_role_in_context(
    source: &PolicySource,
    caller: &Caller,
    call: &AssumeRoleCall,
    region: &str,
    context: &[(&str, &str)],
) -> Result<Outcome, GatewayError> {
    let (role, identity) = tokio::join!(
        source.role(&call.role_arn),
        source.identity_policies(&caller.principal)
    );
    let mut request = assume_role_request(caller, call, region);
    for (key, value) in context {
        request = request.with_context(key, *value);
    }
    let Some(role) = role? else {
        // STS answers a missing role exactly like a refusing trust policy.
        let decision = Decision {
            allowed: false,
            reason: DecisionReason::NoResourceBasedPolicyAllows,
            deciding: Vec::new(),
            principal_arn: caller.principal.arn().to_owned(),
            action: ASSUME_ROLE.to_owned(),
            resource: call.role_arn.clone(),
        };
        let rejection = access_denied(&decision, "AccessDenied");
        return Ok(Outcome {
            reason: "role_not_found",
            explanation: format!("DENY: role {} does not exist", call.role_arn),
            decision,
            rejection,
        });
    };
    let decision = authorize_assume_role(&request, &role.trust, &identity?);
    if let Some(rejection) = access_denied(&decision, "AccessDenied") {
        return Ok(Outcome::from_decision(decision, Some(rejection)));
    }
    if let Some((reason, rejection)) = duration_rejection(
        caller,
        call.duration_seconds.as_deref(),
        role.max_session_duration,
    ) {
        return Ok(Outcome {
            reason,
            explanation: format!("DENY: {} ({decision})", rejection.message),
            decision,
            rejection: Some(rejection),
        });
    }
    Ok(Outcome::from_decision(decision, None))
}

/// Decides `lambda:InvokeFunction` for `caller` the way Lambda would.
pub async fn invoke(
    source: &PolicySource,
    caller: &Caller,
    function: &FunctionRef,
    region: &str,
) -> Result<Outcome, GatewayError> {
    on_function(source, caller, INVOKE_FUNCTION, function, region, &[]).await
}

/// Decides a Lambda `action` on one function (`lambda:GetFunction`,
/// `lambda:AddPermission`, ...) the way Lambda would: the function policy and
/// the caller's identity policies, with AWS's same- and cross-account rules.
pub async fn on_function(
    source: &PolicySource,
    caller: &Caller,
    action: &str,
    function: &FunctionRef,
    region: &str,
    context: &[(&str, &str)],
) -> Result<Outcome, GatewayError> {
    let caller_account = caller.principal.account().unwrap_or_default();
    let function_arn = function.arn(caller_account, region);
    let (policy, identity) = tokio::join!(
        source.function_policy(&function_arn),
        source.identity_policies(&caller.principal)
    );
    let mut request = function_request(caller, action, &function_arn, region);
    for (key, value) in context {
        request = request.with_context(key, *value);
    }
    let decision = authorize_invoke(&request, policy?.as_deref(), &identity?);
    let rejection = access_denied(&decision, "AccessDeniedException");
    Ok(Outcome::from_decision(decision, rejection))
}

/// Decides `action` for `caller` on its identity policies alone, for a
/// service whose resource policies the gateway does not read: resource `*` in
/// the caller's own account.
pub async fn identity_only(
    source: &PolicySource,
    caller: &Caller,
    action: &str,
    context: &[(&str, &str)],
) -> Result<Decision, GatewayError> {
    let identity = source.identity_policies(&caller.principal).await?;
    let mut request = base_request(caller, action, "*", sdk_config::REGION);
    for (key, value) in context {
        request = request.with_context(key, *value);
    }
    if let Some(account) = caller.principal.account() {
        request = request.with_resource_account(account);
    }
    Ok(authorize(&request, None, &identity))
}

/// Decides an S3 request as S3 does: the bucket policy (whose explicit
/// denies bind an account root too) with the caller's identity policies, by
/// AWS's same- and cross-account rules; then, for an object S3 encrypts with
/// SSE-KMS, the `kms:GenerateDataKey` that S3 asks for on the caller's
/// behalf, which the key policy must allow (`kms:ViaService` is S3).
///
/// Returns the deciding decision: the S3 one, or the KMS one when S3 allowed.
pub async fn s3(
    source: &PolicySource,
    caller: &Caller,
    call: &S3Call,
    context: &[(&str, &str)],
) -> Result<Decision, GatewayError> {
    let caller_account = caller.principal.account().unwrap_or_default().to_owned();
    let (identity, bucket) = match &call.bucket {
        Some(bucket) => {
            let (identity, info) = tokio::join!(
                source.identity_policies(&caller.principal),
                source.bucket(bucket)
            );
            (identity?, info?)
        }
        None => (source.identity_policies(&caller.principal).await?, None),
    };
    let owner = bucket
        .as_ref()
        .map_or(caller_account.as_str(), |b| b.owner.as_str());
    let mut request = base_request(caller, call.action, &call.resource(), sdk_config::REGION)
        .with_resource_account(owner);
    for (key, value) in [
        ("s3:x-amz-server-side-encryption", &call.sse),
        (
            "s3:x-amz-server-side-encryption-aws-kms-key-id",
            &call.sse_kms_key_id,
        ),
    ] {
        if let Some(value) = value {
            request = request.with_context(key, value.clone());
        }
    }
    for (key, value) in context {
        request = request.with_context(key, *value);
    }
    let policy = bucket.as_ref().and_then(|b| b.policy.as_ref());
    let decision = authorize(&request, policy, &identity);
    if !decision.allowed || !call.writes_object() {
        return Ok(decision);
    }
    let Some(bucket) = bucket else {
        return Ok(decision);
    };
    // The key S3 will encrypt with: the request's, else the bucket default's.
    let kms_key = match call.sse.as_deref() {
        Some(algorithm) if algorithm.starts_with("aws:kms") => call
            .sse_kms_key_id
            .clone()
            .or_else(|| bucket.default_kms_key.clone()),
        Some(_) => None,
        None => bucket.default_kms_key.clone(),
    };
    let Some(kms_key) = kms_key else {
        return Ok(decision);
    };
    let Some(key) = source.key(&kms_key, &bucket.owner).await? else {
        // S3 itself reports a key that does not exist.
        return Ok(decision);
    };
    let bucket_arn = format!(
        "arn:aws:s3:::{}",
        call.bucket.as_deref().unwrap_or_default()
    );
    let encryption_context = if bucket.bucket_key_enabled {
        bucket_arn
    } else {
        call.resource()
    };
    let mut kms_request = base_request(caller, "kms:GenerateDataKey", &key.arn, sdk_config::REGION)
        .with_context(
            "kms:ViaService",
            format!("s3.{}.amazonaws.com", sdk_config::REGION),
        )
        .with_context("kms:CallerAccount", caller_account.clone())
        .with_context("kms:EncryptionContext:aws:s3:arn", encryption_context)
        .with_context("kms:EncryptionContextKeys", "aws:s3:arn");
    for (key, value) in context {
        kms_request = kms_request.with_context(key, *value);
    }
    Ok(authorize(&kms_request, Some(&key.policy), &identity))
}

#[cfg(test)]
mod tests {
    use iam_policy::Principal;
    use rstest::rstest;

    use super::*;

    fn caller(arn: &str) -> Caller {
        Caller {
            principal: Principal::from_arn(arn).expect("valid arn"),
            user_id: Some("AROAEXAMPLE:s".into()),
        }
    }

    const SESSION: &str = "arn:aws:sts::222222222222:assumed-role/servicenow-invoker-exec/s";
    const USER: &str = "arn:aws:iam::222222222222:user/ops";

    #[rstest]
    #[case::within_role_limit(SESSION, Some("900"), Some(7200), None)]
    #[case::role_limit(
        USER,
        Some("7201"),
        Some(7200),
        Some("duration_exceeds_max_session_duration")
    )]
    #[case::default_role_limit(
        USER,
        Some("3601"),
        None,
        Some("duration_exceeds_max_session_duration")
    )]
    #[case::user_may_exceed_an_hour(USER, Some("7200"), Some(7200), None)]
    #[case::role_chaining_limit(
        SESSION,
        Some("3601"),
        Some(43200),
        Some("duration_exceeds_role_chaining_limit")
    )]
    #[case::not_sent(SESSION, None, Some(900), None)]
    #[case::unparsable_is_left_to_sts(SESSION, Some("soon"), Some(900), None)]
    fn durations(
        #[case] arn: &str,
        #[case] duration: Option<&str>,
        #[case] max: Option<i32>,
        #[case] expected: Option<&str>,
    ) {
        let found = duration_rejection(&caller(arn), duration, max);
        assert_eq!(found.as_ref().map(|(reason, _)| *reason), expected);
        if let Some((_, rejection)) = found {
            assert_eq!(rejection.status, StatusCode::BAD_REQUEST);
            assert_eq!(rejection.code, "ValidationError");
        }
    }

    #[test]
    fn assume_role_context_has_only_sent_keys() {
        let call = AssumeRoleCall {
            role_arn: "arn:aws:iam::111111111111:role/servicenow-invoke".into(),
            session_name: Some("s".into()),
            external_id: Some("ext".into()),
            duration_seconds: None,
            source_identity: None,
        };
        let request = assume_role_request(&caller(SESSION), &call, "us-east-1");
        let get = |key: &str| request.context.get(key).map(|v| v.join(","));
        assert_eq!(get("sts:ExternalId").as_deref(), Some("ext"));
        assert_eq!(get("sts:RoleSessionName").as_deref(), Some("s"));
        assert_eq!(get("sts:SourceIdentity"), None);
        assert_eq!(get("aws:SecureTransport").as_deref(), Some("true"));
        assert_eq!(get("aws:userid").as_deref(), Some("AROAEXAMPLE:s"));
        assert_eq!(
            get("aws:PrincipalArn").as_deref(),
            Some("arn:aws:iam::222222222222:role/servicenow-invoker-exec")
        );
        assert!(get("aws:CurrentTime").is_some());
        assert!(get("aws:EpochTime").is_some());

        let without = AssumeRoleCall {
            external_id: None,
            ..call
        };
        let request = assume_role_request(&caller(SESSION), &without, "us-east-1");
        assert_eq!(request.context.get("sts:ExternalId"), None);
    }

    #[test]
    fn invoke_context_names_the_function() {
        let arn = "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert";
        let request = function_request(&caller(SESSION), INVOKE_FUNCTION, arn, "us-east-1");
        assert_eq!(request.resource, arn);
        assert_eq!(
            request
                .context
                .get("lambda:FunctionArn")
                .map(|v| v.join(",")),
            Some(arn.to_owned())
        );
        assert_eq!(request.resource_account(), Some("111111111111"));
    }
}
