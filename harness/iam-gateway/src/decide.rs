//! Turning a classified request into the evaluator's question and AWS's answer:
//! the request context, the fetched policies, and the error AWS would return.

use std::time::SystemTime;

use hyper::StatusCode;
use iam_policy::{
    Decision, DecisionReason, PolicyKind, PrincipalKind, Request, authorize, authorize_assume_role,
    authorize_invoke,
};

use super::{
    classify::{AssumeRoleCall, FunctionRef},
    log::reason_code,
    policies::{Caller, PolicySource, parse_policy},
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

/// Decides `action` on `resource` (`*` where the gateway cannot name it) for
/// `caller` on its identity policies alone, for a service whose resource
/// policies the gateway does not read, in the caller's own account.
pub async fn identity_only(
    source: &PolicySource,
    caller: &Caller,
    action: &str,
    resource: &str,
    context: &[(&str, &str)],
) -> Result<Decision, GatewayError> {
    let identity = source.identity_policies(&caller.principal).await?;
    let mut request = base_request(caller, action, resource, sdk_config::REGION);
    for (key, value) in context {
        request = request.with_context(key, *value);
    }
    if let Some(account) = caller.principal.account() {
        request = request.with_resource_account(account);
    }
    Ok(authorize(&request, None, &identity))
}

/// The resource CloudFormation authorizes a request on: the stack's ARN.
/// A stack named by name is matched as `stack/NAME/*`, the ARN of any stack
/// of that name (its id is not known before the stack exists); a stack ARN is
/// taken as it is.
pub fn stack_resource(stack: &str, account: &str, region: &str) -> String {
    if stack.starts_with("arn:") {
        stack.to_owned()
    } else {
        format!("arn:aws:cloudformation:{region}:{account}:stack/{stack}/*")
    }
}

/// Decides a KMS request that names a key as KMS does: the key policy
/// decides, and an identity policy (an account root's implicit one included)
/// counts only where the key policy allows the account (`authorize`'s KMS
/// rule). `Ok(None)` when the key does not exist: KMS itself answers
/// `NotFoundException`.
pub async fn kms(
    source: &PolicySource,
    caller: &Caller,
    action: &str,
    key: &str,
    context: &[(&str, &str)],
) -> Result<Option<Decision>, GatewayError> {
    let caller_account = caller.principal.account().unwrap_or_default().to_owned();
    let (identity, info) = tokio::join!(
        source.identity_policies(&caller.principal),
        source.key(key, &caller_account)
    );
    let (identity, Some(info)) = (identity?, info?) else {
        return Ok(None);
    };
    let owner = info.arn.split(':').nth(4).unwrap_or_default().to_owned();
    let mut request = base_request(caller, action, &info.arn, sdk_config::REGION)
        .with_resource_account(&owner)
        .with_context("kms:CallerAccount", caller_account);
    for (key, value) in context {
        request = request.with_context(key, *value);
    }
    Ok(Some(authorize(&request, Some(&info.policy), &identity)))
}

/// Decides a KMS `action` on a key a stack is creating (`resource` is
/// `arn:aws:kms:R:A:key/*`, its id not yet known), for a resource handler:
/// the key's policy is the one the template gives it (`key_policy`, JSON), or
/// KMS's default key policy, which allows the account and so delegates to
/// IAM policies, when the template gives none.
pub async fn kms_new_key(
    source: &PolicySource,
    caller: &Caller,
    action: &str,
    resource: &str,
    key_policy: Option<&str>,
    context: &[(&str, &str)],
) -> Result<Decision, GatewayError> {
    let owner = resource.split(':').nth(4).unwrap_or_default().to_owned();
    let default = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{owner}:root")},
            "Action": "kms:*",
            "Resource": "*"
        }]
    })
    .to_string();
    let policy = parse_policy(
        PolicyKind::Resource,
        "key policy",
        key_policy.unwrap_or(&default),
        "the key policy the template gives the new key",
    )?;
    let identity = source.identity_policies(&caller.principal).await?;
    let caller_account = caller.principal.account().unwrap_or_default().to_owned();
    let mut request = base_request(caller, action, resource, sdk_config::REGION)
        .with_resource_account(&owner)
        .with_context("kms:CallerAccount", caller_account);
    for (key, value) in context {
        request = request.with_context(key, *value);
    }
    Ok(authorize(&request, Some(&policy), &identity))
}

/// The KMS operations that name their key only inside a ciphertext blob, when
/// sent without `KeyId`.
const KEY_IN_CIPHERTEXT: [&str; 2] = ["kms:Decrypt", "kms:ReEncrypt"];

/// The key a KMS request acts on: `KeyId` (`TargetKeyId` for aliases,
/// `DestinationKeyId` for a re-encryption), as KMS's JSON body names it.
/// `None` for an operation on no key (`CreateKey`, `ListKeys`, ...), decided
/// on identity policies; `Err` for a request the gateway cannot tie to a key.
pub fn kms_key(action: &str, body: &[u8]) -> Option<Result<String, String>> {
    let json: serde_json::Value = match serde_json::from_slice(body) {
        Ok(json) => json,
        Err(_) if body.iter().all(u8::is_ascii_whitespace) => serde_json::Value::Null,
        Err(err) => {
            return Some(Err(format!(
                "iam gateway: the body of this {action} request is not JSON ({err}), so its key cannot be told and it is refused"
            )));
        }
    };
    let named = ["KeyId", "TargetKeyId", "DestinationKeyId"]
        .iter()
        .find_map(|field| json.get(field).and_then(|v| v.as_str()));
    match named {
        Some(key) => Some(Ok(key.to_owned())),
        None if KEY_IN_CIPHERTEXT.contains(&action) => Some(Err(format!(
            "iam gateway: {action} without KeyId names its key only inside the ciphertext, which the gateway cannot read, so the key policy cannot be evaluated and the request is refused; send KeyId"
        ))),
        None => None,
    }
}

/// The services where an account root's request can only act in its own
/// account unless it names another account's resource by ARN, and that have
/// no resource-based policy that could deny it: there the root's own full
/// access decides. (Of KMS, only operations on no key, such as `CreateKey`,
/// come here; Lambda's function operations and `sts:AssumeRole` are decided
/// with their resource policies before.)
const ROOT_OWN_ACCOUNT_SERVICES: [&str; 7] = [
    "cloudformation",
    "ec2",
    "iam",
    "kms",
    "lambda",
    "logs",
    "sts",
];

/// Decides an account root's request to a service other than S3 and KMS's
/// keys (which read their resource policies) without a resource policy: allowed in
/// its own account, as AWS allows the root everything there; refused,
/// failing closed, when it names another account's resource or goes to a
/// service whose resource policies the gateway does not read.
pub fn root_request(
    action: &str,
    account: &str,
    uri: &hyper::Uri,
    body: &[u8],
) -> Result<String, String> {
    let service = action.split(':').next().unwrap_or(action);
    if !ROOT_OWN_ACCOUNT_SERVICES.contains(&service) {
        return Err(format!(
            "iam gateway: an account root's {action} request is refused: the resource policies of {service} are not evaluated, so the gateway cannot tell what AWS would decide"
        ));
    }
    let path = uri.path_and_query().map_or("", |p| p.as_str());
    let mut named = vec![crate::classify::percent_decode(path).unwrap_or_else(|| path.to_owned())];
    named.extend(resource_parameters(body));
    if let Some(other) = named.iter().find_map(|text| foreign_account(text, account)) {
        return Err(format!(
            "iam gateway: an account root's {action} request names a resource of account {other}; access across accounts needs that resource's policy, which the gateway does not read for {service}, so it is refused"
        ));
    }
    Ok(format!(
        "ALLOW (the account root has full access in its own account, and {service} has no resource-based policy)"
    ))
}

/// The values of a request body's parameters that name a resource to act on:
/// top-level JSON members and form fields called `...Arn`, `...ARN`,
/// `...Identifier` (and their plurals), `Role` and `Layers`. Other values are
/// data: a function's environment or a stack's template may well quote
/// another account's ARN without acting on it.
fn resource_parameters(body: &[u8]) -> Vec<String> {
    let names_resource = |key: &str| {
        let key = key.rsplit('.').next().unwrap_or(key).trim_end_matches('s');
        key.ends_with("Arn")
            || key.ends_with("ARN")
            || key.ends_with("Identifier")
            || matches!(key, "Role" | "Layer")
    };
    if let Ok(serde_json::Value::Object(members)) = serde_json::from_slice(body) {
        return members
            .iter()
            .filter(|(key, _)| names_resource(key))
            .flat_map(|(_, value)| match value {
                serde_json::Value::String(text) => vec![text.clone()],
                serde_json::Value::Array(items) => items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
    }
    form_urlencoded::parse(body)
        .filter(|(key, _)| names_resource(key))
        .map(|(_, value)| value.into_owned())
        .collect()
}

/// The first 12-digit account other than `account` that an ARN in `text` names.
fn foreign_account(text: &str, account: &str) -> Option<String> {
    text.match_indices("arn:").find_map(|(at, _)| {
        let owner = text[at..].split(':').nth(4)?;
        (owner.len() == 12 && owner.bytes().all(|b| b.is_ascii_digit()) && owner != account)
            .then(|| owner.to_owned())
    })
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

    #[rstest]
    #[case::key_id(
        "kms:Encrypt",
        r#"{"KeyId":"alias/code","Plaintext":"eA=="}"#,
        Some(Ok("alias/code"))
    )]
    #[case::alias_target(
        "kms:CreateAlias",
        r#"{"AliasName":"alias/x","TargetKeyId":"k-1"}"#,
        Some(Ok("k-1"))
    )]
    #[case::no_key("kms:ListKeys", "{}", None)]
    #[case::empty_body("kms:CreateKey", "", None)]
    #[case::decrypt_without_key(
        "kms:Decrypt",
        r#"{"CiphertextBlob":"AAAA"}"#,
        Some(Err("ciphertext"))
    )]
    #[case::decrypt_with_key(
        "kms:Decrypt",
        r#"{"CiphertextBlob":"AAAA","KeyId":"k-2"}"#,
        Some(Ok("k-2"))
    )]
    #[case::not_json("kms:Encrypt", "KeyId=k-1", Some(Err("not JSON")))]
    fn kms_requests_are_tied_to_their_key(
        #[case] action: &str,
        #[case] body: &str,
        #[case] expected: Option<Result<&str, &str>>,
    ) {
        let found = kms_key(action, body.as_bytes());
        match (found, expected) {
            (None, None) => {}
            (Some(Ok(key)), Some(Ok(want))) => assert_eq!(key, want),
            (Some(Err(message)), Some(Err(part))) => {
                assert!(message.contains(part), "{message}")
            }
            (found, expected) => panic!("{found:?}, expected {expected:?}"),
        }
    }

    #[rstest]
    #[case::own_stack(
        "cloudformation:DescribeStacks",
        "/",
        "Action=DescribeStacks&StackName=s3callee",
        true
    )]
    #[case::own_logs(
        "logs:FilterLogEvents",
        "/",
        r#"{"logGroupName":"/aws/lambda/servicenow-alert"}"#,
        true
    )]
    #[case::own_arn(
        "lambda:ListFunctions",
        "/2015-03-31/functions/?x=arn:aws:lambda:us-east-1:111111111111:function:f",
        "",
        true
    )]
    #[case::foreign_log_group(
        "logs:FilterLogEvents",
        "/",
        r#"{"logGroupIdentifier":"arn:aws:logs:us-east-1:222222222222:log-group:g"}"#,
        false
    )]
    #[case::foreign_in_path(
        "lambda:GetLayerVersionByArn",
        "/2018-10-31/layers?find=LayerVersion&Arn=arn%3Aaws%3Alambda%3Aus-east-1%3A222222222222%3Alayer%3Ax%3A1",
        "",
        false
    )]
    #[case::unread_service("sqs:SendMessage", "/", "Action=SendMessage", false)]
    #[case::foreign_arn_as_data("lambda:CreateFunction", "/2015-03-31/functions", r#"{"FunctionName":"f","Role":"arn:aws:iam::111111111111:role/r","Environment":{"Variables":{"TARGET":"arn:aws:iam::222222222222:role/x"}}}"#, true)]
    #[case::foreign_role(
        "lambda:CreateFunction",
        "/2015-03-31/functions",
        r#"{"FunctionName":"f","Role":"arn:aws:iam::222222222222:role/r"}"#,
        false
    )]
    #[case::foreign_layers(
        "lambda:CreateFunction",
        "/2015-03-31/functions",
        r#"{"Layers":["arn:aws:lambda:us-east-1:222222222222:layer:l:1"]}"#,
        false
    )]
    #[case::template_quoting_another_account(
        "cloudformation:CreateStack",
        "/",
        "Action=CreateStack&TemplateBody=arn%3Aaws%3Aiam%3A%3A222222222222%3Arole%2Fx&Parameters.member.1.ParameterValue=arn%3Aaws%3Aiam%3A%3A222222222222%3Arole%2Fy",
        true
    )]
    #[case::stack_service_role_elsewhere(
        "cloudformation:CreateStack",
        "/",
        "Action=CreateStack&RoleARN=arn%3Aaws%3Aiam%3A%3A222222222222%3Arole%2Fdeploy",
        false
    )]
    fn an_account_roots_request_is_allowed_only_where_nothing_else_could_decide(
        #[case] action: &str,
        #[case] uri: &str,
        #[case] body: &str,
        #[case] allowed: bool,
    ) {
        let uri: hyper::Uri = uri.parse().expect("uri");
        let decided = root_request(action, "111111111111", &uri, body.as_bytes());
        assert_eq!(decided.is_ok(), allowed, "{decided:?}");
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
