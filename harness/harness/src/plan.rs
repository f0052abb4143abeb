//! `harness deploy --plan`: what deploying the templates on disk would do to
//! a running system, without doing it.
//!
//! For each stack, the emulator's CloudFormation computes a change set from
//! the new template (the parameters the harness sets keep their values; the
//! others take the new template's defaults), described with its resolved
//! property values and then deleted. For each resource change the plan shows
//! the properties that change and, from the CloudFormation resource schemas
//! (`createOnlyProperties`), whether AWS would replace the resource. The IAM
//! gateway decides the permissions each change's handlers need for the
//! account's deploy role. The alert chain's hops are decided on today's
//! policies and on the policies the change would leave.
//!
//! The plan passes when every hop stays allowed and every deploy permission
//! is granted; a change the plan cannot decide (a function policy change, a
//! value known only after the deploy) does not pass.

use std::collections::BTreeMap;

use aws_sdk_cloudformation::{
    Client as CfnClient,
    types::{Capability, ChangeAction, ChangeSetType, Parameter},
};
use deploy_permissions::Schemas;
use iam_gateway::{
    CheckAnswer, CheckRequest, HopExplanation, PermissionDecision, ProposedPolicies,
};
use scenario::Stack;
use serde::Serialize;
use serde_json::Value;

use crate::{deploy::Deployment, deployer::CiIssuer, error::HarnessError, system::RunningSystem};

/// The parameters the harness sets on each stack (`deploy.rs`), which keep
/// their deployed values in a plan; every other parameter takes the new
/// template's default, as a redeploy would.
pub fn harness_parameters(stack: Stack) -> &'static [&'static str] {
    match stack {
        Stack::S3Callee | Stack::S3Caller => &["NamePrefix"],
        Stack::CalleeCloudformation => &[
            "FunctionName",
            "CrossAccountRoleName",
            "CodeBucket",
            "CodeKey",
            "CallerAccountId",
            "CallerRoleName",
            "SmtpHost",
            "SmtpPort",
            "SmtpTls",
            "SmtpUsername",
            "SmtpPassword",
            "MailFrom",
            "AllowedRecipientDomains",
            "AllowedInstanceHosts",
        ],
        Stack::CallerCloudformation => &[
            "FunctionName",
            "ExecutionRoleName",
            "CodeBucket",
            "CodeKey",
            "TargetRoleArn",
            "TargetFunctionArn",
            "ExternalId",
        ],
        Stack::DeployRole => &["ToolingAccountId", "CiRoleName", "RoleName"],
        Stack::Tooling => &["CiRoleName"],
    }
}

/// One resource change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourcePlan {
    /// The logical id.
    pub logical_id: String,
    /// The resource type.
    pub resource_type: String,
    /// `Add`, `Modify` or `Remove`.
    pub action: String,
    /// Whether AWS would replace the resource (a changed create-only property).
    pub replacement: bool,
    /// The create-only properties that force the replacement.
    pub replaced_by: Vec<String>,
    /// The top-level properties that change.
    pub properties: Vec<String>,
    /// The permissions the change's handlers need from the deploy role, decided.
    pub permissions: Vec<PermissionDecision>,
    /// Why the permissions could not be decided, if they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions_unknown: Option<String>,
}

/// One stack's change set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StackPlan {
    /// The stack (template) name.
    pub stack: Stack,
    /// The deployed stack's name.
    pub name: String,
    /// Its resource changes.
    pub changes: Vec<ResourcePlan>,
}

/// A hop decided before and after the change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HopPlan {
    /// Today.
    pub before: HopExplanation,
    /// After the change.
    pub after: HopExplanation,
}

impl HopPlan {
    /// Allowed today, denied after.
    pub fn turns_deny(&self) -> bool {
        self.before.allowed && !self.after.allowed
    }
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Per stack.
    pub stacks: Vec<StackPlan>,
    /// The chain's hops, before and after.
    pub chain: Vec<HopPlan>,
    /// What keeps the plan from passing: denied hops and permissions, and
    /// what could not be decided.
    pub problems: Vec<String>,
}

impl Plan {
    /// Whether the chain and the deploy stay allowed.
    pub fn passes(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The account a stack deploys into.
fn account_of(stack: Stack, deployment: &Deployment) -> &str {
    match stack {
        Stack::S3Callee | Stack::CalleeCloudformation | Stack::DeployRole => {
            &deployment.accounts.callee
        }
        Stack::S3Caller | Stack::CallerCloudformation => &deployment.accounts.caller,
        Stack::Tooling => crate::deployer::TOOLING_ACCOUNT,
    }
}

/// The stack a template file stands for, by its file name (`calleecloudformation.yaml`).
pub fn stack_of_file(path: &std::path::Path) -> Result<Stack, HarnessError> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    Stack::ALL
        .into_iter()
        .find(|stack| stack.as_str() == stem)
        .ok_or_else(|| {
            HarnessError::Config(format!(
                "{} names no stack: a template file is named after its stack ({})",
                path.display(),
                Stack::ALL.map(|s| format!("{s}.yaml")).join(", ")
            ))
        })
}

/// Plans `templates` (stack, template body) against the running system.
pub async fn plan(
    state: &RunningSystem,
    schemas: &Schemas,
    templates: &[(Stack, String)],
) -> Result<Plan, HarnessError> {
    let endpoint = state.aws_endpoint();
    let deployment = &state.deployment;
    let mut stacks = Vec::new();
    let mut problems = Vec::new();
    let mut proposed = ProposedPolicies::default();
    for (stack, body) in templates {
        let account = account_of(*stack, deployment);
        let sdk = sdk_config::root_config(&endpoint, &state.root_keys, account).await;
        let cfn = CfnClient::new(&sdk);
        let name = deployment
            .stacks
            .get(stack)
            .cloned()
            .unwrap_or_else(|| stack.to_string());
        let changes = change_set(&cfn, *stack, &name, body).await?;
        let deploy_role = match stack {
            Stack::S3Callee | Stack::CalleeCloudformation => Some(&deployment.deployers.callee),
            Stack::S3Caller | Stack::CallerCloudformation => Some(&deployment.deployers.caller),
            _ => None,
        }
        .filter(|arn| arn.contains(":role/"));
        let mut planned = Vec::new();
        for change in changes {
            let schema = schemas.get(&change.resource_type).map_err(|e| {
                HarnessError::Config(format!(
                    "no CloudFormation schema for {} ({}): {e}",
                    change.logical_id, change.resource_type
                ))
            })?;
            let empty = Value::Object(Default::default());
            let after = change.after.as_ref().unwrap_or(&empty);
            let before = change.before.as_ref().unwrap_or(&empty);
            let replaced_by = if change.action == "Modify" {
                deploy_permissions::replaced_by(&schema, after, before)
            } else {
                Vec::new()
            };
            let properties = deploy_permissions::changed_properties(after, before);
            collect_proposed(&mut proposed, &mut problems, account, &change);
            // A replacement creates the new resource, then deletes the old one.
            let handlers: Vec<(&str, &Value, Option<&Value>)> = match change.action.as_str() {
                "Add" => vec![("Add", after, None)],
                "Remove" => vec![("Remove", before, Some(before))],
                _ if !replaced_by.is_empty() => {
                    vec![("Add", after, None), ("Remove", before, Some(before))]
                }
                _ => vec![("Modify", after, Some(before))],
            };
            let mut permissions = Vec::new();
            let mut permissions_unknown = None;
            match (&state.ci_issuer, deploy_role) {
                (Some(issuer), Some(role)) => {
                    for (action, properties, previous) in handlers {
                        let asked = CheckRequest {
                            stack_name: name.clone(),
                            account: account.to_owned(),
                            region: sdk_config::REGION.to_owned(),
                            logical_resource_id: change.logical_id.clone(),
                            resource_type: change.resource_type.clone(),
                            action: action.to_owned(),
                            properties: properties.clone(),
                            previous_properties: previous.cloned(),
                            principal: Some(role.clone()),
                        };
                        match ask_gateway(issuer, &asked).await {
                            Ok(answer) => {
                                if let (false, Some(message)) = (answer.allowed, &answer.message) {
                                    problems.push(format!(
                                        "deploy: {} {} ({}) would fail: {message}",
                                        name, change.logical_id, change.resource_type
                                    ));
                                }
                                permissions.extend(answer.decisions);
                            }
                            Err(reason) => {
                                problems.push(format!(
                                    "deploy: the permissions of {} {} cannot be decided: {reason}",
                                    name, change.logical_id
                                ));
                                permissions_unknown = Some(reason);
                            }
                        }
                    }
                }
                (None, _) => {
                    permissions_unknown =
                        Some("no IAM gateway runs (--iam off): nothing is decided".to_owned());
                }
                (_, None) => {
                    permissions_unknown = Some(
                        "this stack is deployed as root (--deploy-as root), which needs no permission"
                            .to_owned(),
                    );
                }
            }
            planned.push(ResourcePlan {
                logical_id: change.logical_id,
                resource_type: change.resource_type,
                action: change.action,
                replacement: !replaced_by.is_empty(),
                replaced_by,
                properties,
                permissions,
                permissions_unknown,
            });
        }
        stacks.push(StackPlan {
            stack: *stack,
            name,
            changes: planned,
        });
    }
    let before =
        iam_gateway::explain(&endpoint, &state.root_keys, &deployment.caller_function_arn).await?;
    let after = iam_gateway::explain_proposed(
        &endpoint,
        &state.root_keys,
        &deployment.caller_function_arn,
        proposed,
    )
    .await?;
    let chain: Vec<HopPlan> = before
        .into_iter()
        .zip(after)
        .map(|(before, after)| HopPlan { before, after })
        .collect();
    for hop in &chain {
        if !hop.after.allowed {
            problems.push(format!(
                "chain: the {} hop {} ({})",
                hop.after.action,
                if hop.turns_deny() {
                    "turns deny"
                } else {
                    "stays denied"
                },
                hop.after.explanation
            ));
        }
    }
    Ok(Plan {
        stacks,
        chain,
        problems,
    })
}

/// A resource change with its resolved properties.
struct Change {
    logical_id: String,
    resource_type: String,
    action: String,
    physical_id: Option<String>,
    before: Option<Value>,
    after: Option<Value>,
}

/// `{"Properties": {...}}` of a change's context, as the emulator describes it.
fn context_properties(context: Option<&str>) -> Option<Value> {
    let value: Value = serde_json::from_str(context?).ok()?;
    value.get("Properties").cloned()
}

/// Creates, describes and deletes a change set of `body` for the stack.
async fn change_set(
    cfn: &CfnClient,
    stack: Stack,
    name: &str,
    body: &str,
) -> Result<Vec<Change>, HarnessError> {
    let declared = cfn
        .validate_template()
        .template_body(body)
        .send()
        .await
        .map_err(|e| HarnessError::aws(&format!("cloudformation:ValidateTemplate {name}"), e))?;
    let declared: Vec<&str> = declared
        .parameters()
        .iter()
        .filter_map(|p| p.parameter_key())
        .collect();
    let deployed = cfn
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| HarnessError::aws(&format!("cloudformation:DescribeStacks {name}"), e))?;
    let deployed: Vec<String> = deployed
        .stacks()
        .first()
        .map(|s| {
            s.parameters()
                .iter()
                .filter_map(|p| p.parameter_key().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let parameters: Vec<Parameter> = harness_parameters(stack)
        .iter()
        .filter(|key| declared.contains(key) && deployed.iter().any(|d| d == *key))
        .map(|key| {
            Parameter::builder()
                .parameter_key(*key)
                .use_previous_value(true)
                .build()
        })
        .collect();
    let change_set = format!("harness-plan-{}", crate::deploy::unique());
    cfn.create_change_set()
        .stack_name(name)
        .change_set_name(&change_set)
        .change_set_type(ChangeSetType::Update)
        .template_body(body)
        .set_parameters(Some(parameters))
        .capabilities(Capability::CapabilityNamedIam)
        .capabilities(Capability::CapabilityIam)
        .send()
        .await
        .map_err(|e| HarnessError::aws(&format!("cloudformation:CreateChangeSet {name}"), e))?;
    let result = describe(cfn, name, &change_set).await;
    // The plan changes nothing: the change set goes whatever happened.
    let _ = cfn
        .delete_change_set()
        .stack_name(name)
        .change_set_name(&change_set)
        .send()
        .await;
    result
}

async fn describe(
    cfn: &CfnClient,
    name: &str,
    change_set: &str,
) -> Result<Vec<Change>, HarnessError> {
    let Some(described) = crate::deploy::created_change_set(cfn, name, change_set, true).await?
    else {
        return Ok(Vec::new());
    };
    Ok(described
        .changes()
        .iter()
        .filter_map(|c| c.resource_change())
        .map(|rc| Change {
            logical_id: rc.logical_resource_id().unwrap_or_default().to_owned(),
            resource_type: rc.resource_type().unwrap_or_default().to_owned(),
            action: match rc.action() {
                Some(ChangeAction::Add) => "Add",
                Some(ChangeAction::Remove) => "Remove",
                Some(ChangeAction::Modify | ChangeAction::Dynamic) => "Modify",
                _ => "Modify",
            }
            .to_owned(),
            physical_id: rc.physical_resource_id().map(str::to_owned),
            before: context_properties(rc.before_context()),
            after: context_properties(rc.after_context()),
        })
        .collect())
}

/// Asks the gateway's deploy check about one handler, as `asked.principal`.
async fn ask_gateway(issuer: &CiIssuer, asked: &CheckRequest) -> Result<CheckAnswer, String> {
    let url = issuer
        .url
        .replace(iam_gateway::ISSUE_PATH, iam_gateway::DEPLOY_CHECK_PATH);
    let answer = reqwest::Client::new()
        .post(&url)
        .header(iam_gateway::ISSUER_TOKEN_HEADER, &issuer.token)
        .json(asked)
        .send()
        .await
        .map_err(|e| format!("the gateway's deploy check did not answer: {e}"))?;
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!(
            "the gateway's deploy check answered {status}: {body}"
        ));
    }
    serde_json::from_str(&body).map_err(|e| format!("the deploy check's answer is unreadable: {e}"))
}

/// A policy document as JSON text (templates give objects; some give strings).
fn document(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Adds what a change does to role policies to `proposed`; what the plan
/// cannot lay over today's policies becomes a problem.
fn collect_proposed(
    proposed: &mut ProposedPolicies,
    problems: &mut Vec<String>,
    account: &str,
    change: &Change,
) {
    let role_arn = |properties: &Value, physical: Option<&str>| -> Option<String> {
        let name = properties
            .get("RoleName")
            .and_then(Value::as_str)
            .or(physical)?;
        let path = properties
            .get("Path")
            .and_then(Value::as_str)
            .unwrap_or("/");
        Some(format!("arn:aws:iam::{account}:role{path}{name}"))
    };
    let after = change.after.as_ref();
    let before = change.before.as_ref();
    let unknown = |problems: &mut Vec<String>, what: &str| {
        problems.push(format!(
            "chain: {} ({}) {what}, which the plan cannot lay over today's policies, so the chain after the change is not decided",
            change.logical_id, change.resource_type
        ));
    };
    let known_after_apply = |value: &Value| value.to_string().contains("KNOWN_AFTER_APPLY");
    match change.resource_type.as_str() {
        "AWS::IAM::Role" => {
            let Some(arn) = role_arn(
                after.or(before).unwrap_or(&Value::Null),
                change.physical_id.as_deref(),
            ) else {
                return unknown(problems, "has no name to find it by");
            };
            match after {
                None => {
                    // A removed role trusts nobody.
                    proposed
                        .trust
                        .insert(arn, r#"{"Version":"2012-10-17","Statement":[]}"#.to_owned());
                }
                Some(after) if known_after_apply(after) => {
                    unknown(problems, "takes values known only after the deploy")
                }
                Some(after) => {
                    if let Some(trust) = after.get("AssumeRolePolicyDocument") {
                        proposed.trust.insert(arn.clone(), document(trust));
                    }
                    let inline = proposed.inline.entry(arn).or_default();
                    let named = |properties: Option<&Value>| -> BTreeMap<String, String> {
                        properties
                            .and_then(|p| p.get("Policies"))
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(|p| {
                                Some((
                                    p.get("PolicyName")?.as_str()?.to_owned(),
                                    document(p.get("PolicyDocument")?),
                                ))
                            })
                            .collect()
                    };
                    for name in named(before).into_keys() {
                        inline.insert(name, None);
                    }
                    for (name, document) in named(Some(after)) {
                        inline.insert(name, Some(document));
                    }
                }
            }
        }
        "AWS::IAM::Policy" => {
            let roles = |properties: Option<&Value>| -> Vec<String> {
                properties
                    .and_then(|p| p.get("Roles"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|role| format!("arn:aws:iam::{account}:role/{role}"))
                    .collect()
            };
            let name = |properties: Option<&Value>| {
                properties
                    .and_then(|p| p.get("PolicyName"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            if after.is_some_and(known_after_apply) {
                return unknown(problems, "takes values known only after the deploy");
            }
            if let Some(old) = name(before) {
                for role in roles(before) {
                    proposed
                        .inline
                        .entry(role)
                        .or_default()
                        .insert(old.clone(), None);
                }
            }
            if let (Some(new), Some(document)) =
                (name(after), after.and_then(|a| a.get("PolicyDocument")))
            {
                for role in roles(after) {
                    proposed
                        .inline
                        .entry(role)
                        .or_default()
                        .insert(new.clone(), Some(self::document(document)));
                }
            }
        }
        "AWS::Lambda::Permission" => unknown(problems, "changes a function policy"),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_file_stands_for_its_stack_wherever_it_is() {
        let stack = stack_of_file(std::path::Path::new("/tmp/x/calleecloudformation.yaml"))
            .expect("a stack");
        assert_eq!(stack, Stack::CalleeCloudformation);
        let err = stack_of_file(std::path::Path::new("callee.yaml")).unwrap_err();
        assert!(
            err.to_string().contains("calleecloudformation.yaml"),
            "{err}"
        );
    }

    #[test]
    fn the_parameters_the_harness_sets_are_declared_by_their_templates() {
        for stack in Stack::ALL
            .into_iter()
            .chain([Stack::DeployRole, Stack::Tooling])
        {
            let template = std::fs::read_to_string(
                crate::workspace::templates_dir().join(format!("{stack}.yaml")),
            )
            .expect("template");
            for parameter in harness_parameters(stack) {
                assert!(
                    template.contains(&format!("\n  {parameter}:\n")),
                    "{stack} declares no parameter {parameter}"
                );
            }
        }
    }

    fn change(resource_type: &str, before: Option<Value>, after: Option<Value>) -> Change {
        Change {
            logical_id: "X".into(),
            resource_type: resource_type.into(),
            action: "Modify".into(),
            physical_id: Some("servicenow-invoke".into()),
            before,
            after,
        }
    }

    #[test]
    fn a_changed_role_proposes_its_new_trust_and_inline_policies() {
        let mut proposed = ProposedPolicies::default();
        let mut problems = Vec::new();
        let before = serde_json::json!({"RoleName": "servicenow-invoke",
            "Policies": [{"PolicyName": "old", "PolicyDocument": {"Version": "2012-10-17", "Statement": []}}]});
        let after = serde_json::json!({"RoleName": "servicenow-invoke",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
            "Policies": [{"PolicyName": "new", "PolicyDocument": {"Version": "2012-10-17", "Statement": []}}]});
        collect_proposed(
            &mut proposed,
            &mut problems,
            "111111111111",
            &change("AWS::IAM::Role", Some(before), Some(after)),
        );
        let arn = "arn:aws:iam::111111111111:role/servicenow-invoke";
        assert!(problems.is_empty(), "{problems:?}");
        assert!(proposed.trust.contains_key(arn));
        let inline = &proposed.inline[arn];
        assert_eq!(inline.get("old"), Some(&None));
        assert!(matches!(inline.get("new"), Some(Some(_))));
    }

    #[test]
    fn a_function_policy_change_or_a_value_known_after_apply_is_not_decided() {
        let mut proposed = ProposedPolicies::default();
        let mut problems = Vec::new();
        collect_proposed(
            &mut proposed,
            &mut problems,
            "1",
            &change("AWS::Lambda::Permission", None, Some(serde_json::json!({}))),
        );
        collect_proposed(
            &mut proposed,
            &mut problems,
            "1",
            &change(
                "AWS::IAM::Role",
                None,
                Some(
                    serde_json::json!({"RoleName": "r", "AssumeRolePolicyDocument": "{{changeSet:KNOWN_AFTER_APPLY}}"}),
                ),
            ),
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(proposed.trust.is_empty());
    }
}
