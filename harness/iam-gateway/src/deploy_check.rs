//! Deploy permissions: CloudFormation acts with the permissions of whoever
//! started the deploy, and a resource handler that lacks one fails its
//! resource with the service's `AccessDenied`.
//!
//! The gateway remembers, per stack, who sent the request that starts its
//! resource handlers ([`STARTS_HANDLERS`]). Before the emulator runs a
//! handler, its executor plugin asks here (`POST` [`DEPLOY_CHECK_PATH`],
//! header [`ISSUER_TOKEN_HEADER`], body [`CheckRequest`]). The gateway reads
//! the permissions that handler needs for the resource's resolved properties
//! from the CloudFormation resource schemas (`deploy-permissions`), decides
//! each for that principal, and answers [`CheckAnswer`]: allowed, or the
//! stack event's reason in AWS's words.
//!
//! Fail closed: a stack whose deployer the gateway did not see, a resource
//! type without a schema, or a permission that cannot be decided is denied,
//! with the reason.
//!
//! After each run of a handler, the plugin says so (`POST`
//! [`HANDLER_RAN_PATH`], same header, body [`HandlerRan`]), and the gateway
//! drops what it caches of that resource: a handler is what changes a role,
//! a function policy, a bucket policy or a key policy during a deploy
//! (`stale.rs`). CloudFormation's own requests then change nothing the
//! gateway caches.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use deploy_permissions::{Operation, Required, ResourceSchema};
use hyper::{Request, Response, StatusCode, body::Incoming};
use iam_policy::{Decision, PrincipalKind};
use serde::{Deserialize, Serialize};

use super::{
    Mode,
    aws_error::{ProxyBody, full_body, plain},
    decide,
    issue::{executor_body, refusal},
    log::{DecisionRecord, Ruling, now_ms, reason_code},
    policies::Caller,
    proxy::State,
    s3::S3Call,
    stale::{HandlerRan, Stale},
};

/// Where the executor plugin asks before a resource handler runs.
pub const DEPLOY_CHECK_PATH: &str = "/_harness/deploy-check";

/// Where the executor plugin says that a resource handler ran.
pub const HANDLER_RAN_PATH: &str = "/_harness/handler-ran";

/// The CloudFormation operations whose caller the stack's resource handlers
/// act as: CloudFormation runs them with that principal's permissions.
pub const STARTS_HANDLERS: [&str; 4] = [
    "cloudformation:CreateStack",
    "cloudformation:UpdateStack",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:DeleteStack",
];

/// Who started each stack's latest deploy, by account and stack name.
#[derive(Debug, Default)]
pub struct Deployers(Mutex<HashMap<(String, String), Caller>>);

impl Deployers {
    /// Remembers `caller` as the deployer of `stack` (a name or a stack ARN) in `account`.
    pub fn remember(&self, account: &str, stack: &str, caller: Caller) {
        let key = (account.to_owned(), stack_name(stack).to_owned());
        if let Ok(mut map) = self.0.lock() {
            map.insert(key, caller);
        }
    }

    fn of(&self, account: &str, stack: &str) -> Option<Caller> {
        let map = self.0.lock().ok()?;
        map.get(&(account.to_owned(), stack_name(stack).to_owned()))
            .cloned()
    }
}

/// The stack name in a stack ARN (`arn:aws:cloudformation:r:a:stack/NAME/id`), or `stack` itself.
fn stack_name(stack: &str) -> &str {
    stack
        .strip_prefix("arn:")
        .and_then(|arn| arn.split(":stack/").nth(1))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or(stack)
}

/// What the executor plugin asks about one resource handler.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CheckRequest {
    /// The stack's name.
    pub stack_name: String,
    /// The stack's account.
    pub account: String,
    /// The stack's region.
    pub region: String,
    /// The resource's logical id.
    pub logical_resource_id: String,
    /// `AWS::Lambda::Function`, ...
    pub resource_type: String,
    /// The emulator's change action: `Add`, `Modify` (or `Dynamic`), `Remove`.
    pub action: String,
    /// The resolved properties the handler gets.
    #[serde(default)]
    pub properties: serde_json::Value,
    /// The resource's properties before this change, for `Modify` and `Remove`.
    #[serde(default)]
    pub previous_properties: Option<serde_json::Value>,
    /// Decide as this role instead of the stack's deployer: for `harness
    /// deploy --plan`, which asks about a change nobody has started.
    #[serde(default)]
    pub principal: Option<String>,
}

/// One permission the handler needs, decided.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PermissionDecision {
    /// The IAM action.
    pub action: String,
    /// The resource it was decided on.
    pub resource: String,
    /// Why the handler needs it.
    pub because: String,
    /// Whether AWS would allow it.
    pub allowed: bool,
    /// `ALLOW (...)` / `DENY: ...`, or why it could not be decided.
    pub explanation: String,
}

/// The answer: run the handler, or fail the resource with `message`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CheckAnswer {
    /// Whether the handler may run.
    pub allowed: bool,
    /// The resource's status reason when not allowed, as CloudFormation words it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
    /// Every permission the handler needs, decided, in the handler's order.
    #[serde(default)]
    pub decisions: Vec<PermissionDecision>,
}

fn answer(status: StatusCode, body: &CheckAnswer) -> Response<ProxyBody> {
    let mut response = Response::new(full_body(serde_json::to_string(body).unwrap_or_default()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn denied(message: String) -> CheckAnswer {
    CheckAnswer {
        allowed: false,
        message: Some(message),
        decisions: Vec::new(),
    }
}

fn allowed(decisions: Vec<PermissionDecision>) -> CheckAnswer {
    CheckAnswer {
        allowed: true,
        message: None,
        decisions,
    }
}

/// The service name a handler's error names (`Service: Lambda`), from the action's prefix.
fn service_name(action: &str) -> &str {
    match action.split(':').next().unwrap_or_default() {
        "iam" => "Iam",
        "lambda" => "Lambda",
        "s3" => "S3",
        "kms" => "Kms",
        "logs" => "CloudWatchLogs",
        "ec2" => "Ec2",
        "sts" => "Sts",
        other => other,
    }
}

/// The stack event reason AWS gives when a handler's call is denied: the
/// service's message, wrapped as CloudFormation reports handler failures.
pub fn handler_denied_reason(action: &str, service_message: &str) -> String {
    format!(
        "Resource handler returned message: \"{service_message} (Service: {}, Status Code: 403, Request ID: {})\" (RequestToken: {}, HandlerErrorCode: AccessDenied)",
        service_name(action),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    )
}

fn operation(action: &str) -> Option<Operation> {
    match action {
        "Add" => Some(Operation::Create),
        "Modify" | "Dynamic" => Some(Operation::Update),
        "Remove" => Some(Operation::Delete),
        _ => None,
    }
}

/// Serves one check.
pub(super) async fn serve(state: &State, request: Request<Incoming>) -> Response<ProxyBody> {
    let body = match executor_body(
        state,
        request,
        "iam gateway: deploy checks are answered to the emulator's executor plugin only",
    )
    .await
    {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let asked: CheckRequest = match serde_json::from_slice(&body) {
        Ok(asked) => asked,
        Err(err) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                &format!(
                    "expected {{\"StackName\", \"Account\", \"Region\", \"LogicalResourceId\", \"ResourceType\", \"Action\", \"Properties\"}}: {err}"
                ),
            );
        }
    };
    if state.mode == Mode::Off {
        // Off evaluates nothing, deploys included.
        return answer(StatusCode::OK, &allowed(Vec::new()));
    }
    let verdict = check(state, &asked).await;
    let verdict = match (verdict.allowed, state.mode) {
        (false, Mode::Audit) => CheckAnswer {
            allowed: true,
            ..verdict
        },
        _ => verdict,
    };
    answer(StatusCode::OK, &verdict)
}

/// Hears that a resource handler ran: what its resource holds may be cached
/// and stale ([`HandlerRan::stale`]).
pub(super) async fn handler_ran(
    state: &Arc<State>,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let body = match executor_body(
        state,
        request,
        "iam gateway: only the emulator's executor plugin reports resource handlers",
    )
    .await
    {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    // A report that cannot be read still says that something changed.
    let Ok(ran) = serde_json::from_slice::<HandlerRan>(&body) else {
        state.source.forget(&Stale::Everything);
        return plain(StatusCode::NO_CONTENT, "");
    };
    let stale = ran.stale();
    state.source.forget(&stale);
    // A function's new policy, and a role's new trust and policies, are read
    // now, off the deploy's path, so that the first call that needs them
    // finds them cached; that call is decided as ever, and a read that fails
    // here is made again, and reported, by the call.
    for read in ran.rereads(&stale) {
        let state = Arc::clone(state);
        tokio::spawn(async move {
            let _ = state.source.reread(&read).await;
        });
    }
    plain(StatusCode::NO_CONTENT, "")
}

/// Decides every permission the handler needs; the first denial is the answer.
async fn check(state: &State, asked: &CheckRequest) -> CheckAnswer {
    let started = Instant::now();
    let deployer = match &asked.principal {
        Some(arn) => match iam_policy::Principal::from_arn(arn) {
            Ok(principal) => Some(Caller {
                principal,
                user_id: None,
            }),
            Err(err) => {
                return denied(format!(
                    "iam gateway: `{arn}` is not a principal ARN to decide as: {err}"
                ));
            }
        },
        None => state.deployers.of(&asked.account, &asked.stack_name),
    };
    let Some(deployer) = deployer else {
        return denied(format!(
            "iam gateway: no CloudFormation request that starts stack {} in account {} passed through the gateway, so the permissions of {} ({}) cannot be decided",
            asked.stack_name, asked.account, asked.logical_resource_id, asked.resource_type
        ));
    };
    let Some(op) = operation(&asked.action) else {
        return denied(format!(
            "iam gateway: the change action `{}` of {} is not Add, Modify or Remove, so its permissions cannot be decided",
            asked.action, asked.logical_resource_id
        ));
    };
    // An account root may do anything in its own account.
    if deployer.principal.kind() == PrincipalKind::Root
        && deployer.principal.account() == Some(asked.account.as_str())
    {
        return allowed(Vec::new());
    }
    let Some(schemas) = &state.resource_schemas else {
        return denied(format!(
            "iam gateway: no CloudFormation resource schemas were given to the gateway, so the permissions of {} ({}) cannot be decided",
            asked.logical_resource_id, asked.resource_type
        ));
    };
    let required = schemas.get(&asked.resource_type).and_then(|schema| {
        handler_permissions(
            &schema,
            op,
            &asked.properties,
            asked.previous_properties.as_ref(),
            &asked.account,
            &asked.region,
        )
    });
    let required = match required {
        Ok(required) => required,
        Err(err) => {
            return denied(format!(
                "iam gateway: the permissions {} ({}) needs cannot be told: {err}",
                asked.logical_resource_id, asked.resource_type
            ));
        }
    };
    let mut decisions = Vec::with_capacity(required.len());
    let mut first_denial = None;
    for permission in &required {
        let decision = match decide_permission(
            state,
            &deployer,
            permission,
            &asked.resource_type,
            &asked.properties,
        )
        .await
        {
            Ok(decision) => decision,
            Err(message) => {
                return denied(format!(
                    "iam gateway could not decide {} on {} for {}: {message}",
                    permission.action, permission.resource, asked.logical_resource_id
                ));
            }
        };
        let mut record = DecisionRecord::from_decision(&decision, Ruling::Allow, None);
        record.reason = reason_code(decision.reason).to_owned();
        record.explanation = format!(
            "{decision} (the {} handler of {} {}: {})",
            asked.action, asked.resource_type, asked.logical_resource_id, permission.because
        );
        record.time_ms = now_ms();
        record.overhead_us = Some(started.elapsed().as_micros() as u64);
        decisions.push(PermissionDecision {
            action: permission.action.clone(),
            resource: permission.resource.clone(),
            because: permission.because.clone(),
            allowed: decision.allowed,
            explanation: decision.to_string(),
        });
        if let Some(message) = decision.access_denied_message() {
            record.decision = if state.mode == Mode::Audit {
                Ruling::WouldDeny
            } else {
                Ruling::Deny
            };
            // The handler stops at its first denied call; a plan shows them all.
            first_denial.get_or_insert_with(|| handler_denied_reason(&permission.action, &message));
        }
        state.log.push(record);
        if first_denial.is_some() && asked.principal.is_none() {
            break;
        }
    }
    match first_denial {
        Some(message) => CheckAnswer {
            allowed: false,
            message: Some(message),
            decisions,
        },
        None => allowed(decisions),
    }
}

/// The permissions the `op` handler of `schema`'s type needs. A type with no
/// update handler (every property create-only, as a `Lambda::Permission`'s)
/// is replaced by AWS when it changes: the new one created and the old one
/// deleted, each with its own handler's permissions.
fn handler_permissions(
    schema: &ResourceSchema,
    op: Operation,
    properties: &serde_json::Value,
    previous: Option<&serde_json::Value>,
    account: &str,
    region: &str,
) -> Result<Vec<Required>, deploy_permissions::Error> {
    let required = |op, properties, previous| {
        deploy_permissions::required(schema, op, properties, previous, account, region)
    };
    match (op, previous) {
        (Operation::Update, Some(previous))
            if schema.handler_permissions(Operation::Update).is_none() =>
        {
            let mut both = required(Operation::Create, properties, None)?;
            both.extend(required(Operation::Delete, previous, Some(previous))?);
            Ok(both)
        }
        _ => required(op, properties, previous),
    }
}

/// Decides one permission the way its service would: S3 object reads with
/// the bucket policy, KMS calls on a key with the key policy, Lambda calls on
/// a function with its policy, anything else on identity policies.
async fn decide_permission(
    state: &State,
    deployer: &Caller,
    permission: &Required,
    resource_type: &str,
    properties: &serde_json::Value,
) -> Result<Decision, String> {
    let context = [("aws:SecureTransport", "true")];
    let failed = |err: crate::GatewayError| err.chain();
    let action = permission.action.as_str();
    let resource = permission.resource.as_str();
    if let Some(object) = resource.strip_prefix("arn:aws:s3:::")
        && let Some((bucket, key)) = object.split_once('/')
        && let Some(s3_action) = ["s3:GetObject", "s3:GetObjectVersion"]
            .into_iter()
            .find(|a| *a == action)
    {
        let call = S3Call {
            action: s3_action,
            bucket: Some(bucket.to_owned()),
            key: Some(key.to_owned()),
            sse: None,
            sse_kms_key_id: None,
        };
        return decide::s3(&state.source, deployer, &call, &context)
            .await
            .map_err(failed);
    }
    if action.starts_with("kms:") && resource.ends_with(":key/*") {
        // The key this handler creates: its policy is the template's.
        let key_policy = (resource_type == "AWS::KMS::Key")
            .then(|| properties.get("KeyPolicy"))
            .flatten()
            .map(|policy| match policy {
                serde_json::Value::String(text) => text.clone(),
                document => document.to_string(),
            });
        return decide::kms_new_key(
            &state.source,
            deployer,
            action,
            resource,
            key_policy.as_deref(),
            &context,
        )
        .await
        .map_err(failed);
    }
    if action.starts_with("kms:")
        && resource.starts_with("arn:aws:kms:")
        && let Some(decision) = decide::kms(&state.source, deployer, action, resource, &context)
            .await
            .map_err(failed)?
    {
        return Ok(decision);
    }
    decide::identity_only(&state.source, deployer, action, resource, &context)
        .await
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::name("calleecloudformation", "calleecloudformation")]
    #[case::arn(
        "arn:aws:cloudformation:us-east-1:111111111111:stack/s3callee-x/0a1b",
        "s3callee-x"
    )]
    #[case::arn_without_stack(
        "arn:aws:cloudformation:us-east-1:1:changeSet/c/id",
        "arn:aws:cloudformation:us-east-1:1:changeSet/c/id"
    )]
    fn stacks_are_known_by_name(#[case] given: &str, #[case] name: &str) {
        assert_eq!(stack_name(given), name);
    }

    #[test]
    fn a_deployer_is_found_by_name_or_arn_in_its_account_only() {
        let deployers = Deployers::default();
        let caller = Caller {
            principal: iam_policy::Principal::from_arn(
                "arn:aws:sts::111111111111:assumed-role/servicenow-deploy/ci",
            )
            .unwrap(),
            user_id: None,
        };
        deployers.remember("111111111111", "s3callee", caller.clone());
        assert_eq!(
            deployers.of(
                "111111111111",
                "arn:aws:cloudformation:us-east-1:111111111111:stack/s3callee/id"
            ),
            Some(caller)
        );
        assert_eq!(deployers.of("222222222222", "s3callee"), None);
    }

    #[test]
    fn a_denied_handler_reads_as_cloudformation_reports_it() {
        let reason = handler_denied_reason(
            "iam:PassRole",
            "User: arn:aws:sts::1:assumed-role/d/ci is not authorized to perform: iam:PassRole on resource: arn:aws:iam::1:role/r because no identity-based policy allows the iam:PassRole action",
        );
        assert!(reason.starts_with("Resource handler returned message: \"User: arn:aws:sts::1:assumed-role/d/ci is not authorized to perform: iam:PassRole"), "{reason}");
        assert!(
            reason.contains("(Service: Iam, Status Code: 403, Request ID: "),
            "{reason}"
        );
        assert!(
            reason.ends_with("HandlerErrorCode: AccessDenied)"),
            "{reason}"
        );
    }

    #[test]
    fn a_type_without_an_update_handler_is_replaced_by_create_and_delete() {
        let schema = ResourceSchema::parse(
            r#"{"typeName": "AWS::Lambda::Permission",
                "properties": {"FunctionName": {"type": "string"}, "Action": {"type": "string"},
                               "Principal": {"type": "string"}},
                "createOnlyProperties": ["/properties/FunctionName", "/properties/Action", "/properties/Principal"],
                "primaryIdentifier": ["/properties/FunctionName"],
                "handlers": {"create": {"permissions": ["lambda:AddPermission"]},
                             "delete": {"permissions": ["lambda:RemovePermission"]}}}"#,
        )
        .expect("a schema");
        let before = serde_json::json!({"FunctionName": "servicenow-alert",
            "Action": "lambda:InvokeFunction", "Principal": "222222222222"});
        let after = serde_json::json!({"FunctionName": "servicenow-alert",
            "Action": "lambda:InvokeFunction", "Principal": "333333333333"});
        let needed = handler_permissions(
            &schema,
            Operation::Update,
            &after,
            Some(&before),
            "111111111111",
            "us-east-1",
        )
        .expect("a replacement's permissions");
        let actions: Vec<&str> = needed.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["lambda:AddPermission", "lambda:RemovePermission"]);
        // Without the old properties there is nothing to delete: the error stands.
        assert!(
            handler_permissions(&schema, Operation::Update, &after, None, "1", "us-east-1")
                .is_err()
        );
    }

    #[rstest]
    #[case("Add", Some(Operation::Create))]
    #[case("Modify", Some(Operation::Update))]
    #[case("Dynamic", Some(Operation::Update))]
    #[case("Remove", Some(Operation::Delete))]
    #[case("Import", None)]
    fn change_actions_map_to_handler_operations(
        #[case] action: &str,
        #[case] expected: Option<Operation>,
    ) {
        assert_eq!(operation(action), expected);
    }
}
