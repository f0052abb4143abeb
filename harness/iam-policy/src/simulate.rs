//! An offline `iam simulate-custom-policy`: AWS's input and output shapes
//! around this crate's evaluator, the same one the IAM gateway uses.
//!
//! Input: the JSON of `aws iam simulate-custom-policy --cli-input-json`
//! (`PolicyInputList`, `PermissionsBoundaryPolicyInputList`, `ResourcePolicy`,
//! `ActionNames`, `ResourceArns`, `ResourceOwner`, `CallerArn`,
//! `ContextEntries`). Output: `{"EvaluationResults": [...]}` with
//! `EvalActionName`, `EvalResourceName`, `EvalDecision` (`allowed`,
//! `explicitDeny`, `implicitDeny`) and `MatchedStatements`, plus the
//! evaluator's own explanation.
//!
//! Decisions the documentation leaves to the simulator:
//! - `ResourcePolicy` is a role's trust policy for `sts:AssumeRole*` actions
//!   and a resource-based policy (function, bucket, key policy) otherwise.
//! - Without `CallerArn`, the caller is an IAM user `simulated-caller` in the
//!   `ResourceOwner`'s account (or `123456789012`); AWS requires `CallerArn`
//!   with a `ResourcePolicy`, and so does this.
//! - A permissions boundary limits what identity policies grant: an explicit
//!   deny in it denies, and an allow that only identity policies give needs
//!   the boundary's allow too. A resource-based policy that names the caller
//!   itself is not limited by the boundary (IAM User Guide, "Permissions
//!   boundaries for IAM entities").
//! - A policy AWS would refuse to store is an error naming the policy and the
//!   statement, not a decision.

use serde::{Deserialize, Serialize};

use crate::{
    decision::{Decision, DecisionReason, authorize, authorize_assume_role},
    error::PolicyError,
    evaluate::{NamedPolicy, PolicyKind, StatementRef, evaluate_policies},
    principal::{Principal, PrincipalMatch},
    request::Request,
};

/// The account simulated callers and resources belong to when the input names none.
const DEFAULT_ACCOUNT: &str = "123456789012";

/// `simulate-custom-policy`'s input, as `--cli-input-json` gives it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SimulateInput {
    /// Identity-based policies, as JSON text.
    #[serde(default)]
    pub policy_input_list: Vec<String>,
    /// Permissions boundaries, as JSON text.
    #[serde(default)]
    pub permissions_boundary_policy_input_list: Vec<String>,
    /// The actions to evaluate.
    pub action_names: Vec<String>,
    /// The resources (default `*`).
    #[serde(default)]
    pub resource_arns: Vec<String>,
    /// A resource-based policy, as JSON text.
    #[serde(default)]
    pub resource_policy: Option<String>,
    /// The resource owner's account (an account id or `arn:aws:iam::<id>:root`).
    #[serde(default)]
    pub resource_owner: Option<String>,
    /// Who calls.
    #[serde(default)]
    pub caller_arn: Option<String>,
    /// Request context keys.
    #[serde(default)]
    pub context_entries: Vec<ContextEntry>,
    /// Accepted and ignored: the simulator evaluates every resource as given.
    #[serde(default)]
    pub resource_handling_option: Option<String>,
    /// Accepted and ignored: all results come in one page.
    #[serde(default)]
    pub max_items: Option<u32>,
    /// Accepted and ignored.
    #[serde(default)]
    pub marker: Option<String>,
}

/// One request context key.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ContextEntry {
    /// The key, e.g. `aws:SourceIp`.
    pub context_key_name: String,
    /// Its values.
    #[serde(default)]
    pub context_key_values: Vec<String>,
    /// AWS's type name (`string`, `ip`, `date`, ...); operators parse the values themselves.
    #[serde(default)]
    pub context_key_type: Option<String>,
}

/// `{"EvaluationResults": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SimulateOutput {
    /// One result per action and resource.
    pub evaluation_results: Vec<EvaluationResult>,
}

/// One action on one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EvaluationResult {
    /// The action.
    pub eval_action_name: String,
    /// The resource.
    pub eval_resource_name: String,
    /// `allowed`, `explicitDeny` or `implicitDeny`.
    pub eval_decision: String,
    /// The statements that decided.
    pub matched_statements: Vec<MatchedStatement>,
    /// Context keys the policies test that the input did not give (always empty here).
    pub missing_context_values: Vec<String>,
    /// The evaluator's reason, e.g. `ALLOW (identity policy PolicyInputList.1 statement 0)`.
    #[serde(rename = "HarnessExplanation")]
    pub explanation: String,
}

/// A statement that decided, named as AWS names the simulator's inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MatchedStatement {
    /// `PolicyInputList.N`, `PermissionsBoundaryPolicyInputList.N` or `ResourcePolicy`.
    pub source_policy_id: String,
    /// `IAM Policy`, `Permissions Boundary Policy` or `Resource Policy`.
    pub source_policy_type: String,
    /// The statement's 0-based index (the harness's addition; AWS gives text positions).
    #[serde(rename = "HarnessStatementIndex")]
    pub statement_index: usize,
    /// The statement's Sid, when it has one.
    #[serde(rename = "HarnessSid", skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Why the input cannot be simulated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimulateError {
    /// A policy AWS would refuse to store.
    #[error("{policy}: {source}")]
    Policy {
        /// Which input, e.g. `PolicyInputList.2`.
        policy: String,
        /// What is wrong, naming the statement.
        source: PolicyError,
    },
    /// The input itself is incomplete or contradictory.
    #[error("{0}")]
    Input(String),
}

const IDENTITY_ID: &str = "PolicyInputList";
const BOUNDARY_ID: &str = "PermissionsBoundaryPolicyInputList";
const RESOURCE_ID: &str = "ResourcePolicy";

fn parse_all(
    texts: &[String],
    prefix: &str,
    kind: PolicyKind,
) -> Result<Vec<NamedPolicy>, SimulateError> {
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let name = format!("{prefix}.{}", i + 1);
            NamedPolicy::parse(kind, &name, text).map_err(|source| SimulateError::Policy {
                policy: name,
                source,
            })
        })
        .collect()
}

fn owner_account(input: &SimulateInput) -> String {
    input
        .resource_owner
        .as_deref()
        .map(|owner| {
            owner
                .strip_prefix("arn:aws:iam::")
                .and_then(|rest| rest.strip_suffix(":root"))
                .unwrap_or(owner)
                .to_owned()
        })
        .unwrap_or_else(|| DEFAULT_ACCOUNT.to_owned())
}

fn caller(input: &SimulateInput) -> Result<Principal, SimulateError> {
    match input.caller_arn.as_deref() {
        Some(arn) if arn.ends_with(".amazonaws.com") && !arn.starts_with("arn:") => {
            Ok(Principal::service(arn))
        }
        Some(arn) => Principal::from_arn(arn).map_err(|source| SimulateError::Policy {
            policy: "CallerArn".into(),
            source,
        }),
        None if input.resource_policy.is_some() => Err(SimulateError::Input(
            "CallerArn is required when a ResourcePolicy is given, as AWS requires it".into(),
        )),
        None => Principal::from_arn(&format!(
            "arn:aws:iam::{}:user/simulated-caller",
            owner_account(input)
        ))
        .map_err(|source| SimulateError::Policy {
            policy: "ResourceOwner".into(),
            source,
        }),
    }
}

fn matched(statements: &[StatementRef]) -> Vec<MatchedStatement> {
    statements
        .iter()
        .map(|s| MatchedStatement {
            source_policy_id: s.policy.clone(),
            source_policy_type: if s.policy.starts_with(BOUNDARY_ID) {
                "Permissions Boundary Policy"
            } else if s.kind.is_resource_based() {
                "Resource Policy"
            } else {
                "IAM Policy"
            }
            .to_owned(),
            statement_index: s.index,
            sid: s.sid.clone(),
        })
        .collect()
}

/// Evaluates every action on every resource of `input`.
pub fn simulate(input: &SimulateInput) -> Result<SimulateOutput, SimulateError> {
    if input.action_names.is_empty() {
        return Err(SimulateError::Input(
            "ActionNames must name at least one action".into(),
        ));
    }
    let identity = parse_all(&input.policy_input_list, IDENTITY_ID, PolicyKind::Identity)?;
    let boundaries = parse_all(
        &input.permissions_boundary_policy_input_list,
        BOUNDARY_ID,
        PolicyKind::Identity,
    )?;
    let principal = caller(input)?;
    let resources = if input.resource_arns.is_empty() {
        vec!["*".to_owned()]
    } else {
        input.resource_arns.clone()
    };
    let mut results = Vec::new();
    for action in &input.action_names {
        let trust = action.to_ascii_lowercase().starts_with("sts:assumerole");
        let kind = if trust {
            PolicyKind::Trust
        } else {
            PolicyKind::Resource
        };
        let resource_policy = input
            .resource_policy
            .as_deref()
            .map(|text| {
                NamedPolicy::parse(kind, RESOURCE_ID, text).map_err(|source| {
                    SimulateError::Policy {
                        policy: RESOURCE_ID.into(),
                        source,
                    }
                })
            })
            .transpose()?;
        for resource in &resources {
            let mut request = Request::new(principal.clone(), action, resource);
            if request.resource_account().is_none() {
                request = request.with_resource_account(&owner_account(input));
            }
            for entry in &input.context_entries {
                request
                    .context
                    .insert_values(&entry.context_key_name, entry.context_key_values.clone());
            }
            let decision = match (&resource_policy, trust) {
                (Some(policy), true) => authorize_assume_role(&request, policy, &identity),
                (policy, _) => authorize(&request, policy.as_ref(), &identity),
            };
            let decision = bounded(&request, decision, &boundaries);
            results.push(EvaluationResult {
                eval_action_name: action.clone(),
                eval_resource_name: resource.clone(),
                eval_decision: match decision.reason {
                    DecisionReason::Allowed => "allowed",
                    DecisionReason::ExplicitDeny(_) => "explicitDeny",
                    _ => "implicitDeny",
                }
                .to_owned(),
                matched_statements: matched(&decision.deciding),
                missing_context_values: Vec::new(),
                explanation: decision.to_string(),
            });
        }
    }
    Ok(SimulateOutput {
        evaluation_results: results,
    })
}

/// Applies permissions boundaries to a decision (see the module's notes).
fn bounded(request: &Request, decision: Decision, boundaries: &[NamedPolicy]) -> Decision {
    if boundaries.is_empty() || matches!(decision.reason, DecisionReason::ExplicitDeny(_)) {
        return decision;
    }
    let evaluation = evaluate_policies(request, boundaries);
    if !evaluation.denies.is_empty() {
        return Decision {
            allowed: false,
            reason: DecisionReason::ExplicitDeny(PolicyKind::Identity),
            deciding: evaluation.denies,
            ..decision
        };
    }
    let named_directly = decision
        .deciding
        .iter()
        .any(|s| s.kind.is_resource_based() && s.principal_match == Some(PrincipalMatch::Direct));
    if decision.allowed && evaluation.allows.is_empty() && !named_directly {
        return Decision {
            allowed: false,
            reason: DecisionReason::NoIdentityBasedPolicyAllows,
            deciding: Vec::new(),
            ..decision
        };
    }
    decision
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(value: serde_json::Value) -> SimulateInput {
        serde_json::from_value(value).expect("input")
    }

    fn decisions(value: serde_json::Value) -> Vec<String> {
        simulate(&input(value))
            .expect("simulates")
            .evaluation_results
            .into_iter()
            .map(|r| r.eval_decision)
            .collect()
    }

    fn doc(statements: serde_json::Value) -> String {
        json!({"Version": "2012-10-17", "Statement": statements}).to_string()
    }

    #[test]
    fn identity_policies_allow_deny_and_default_deny() {
        let allow_get = doc(
            json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
        );
        let deny_secret =
            doc(json!([{"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::b/secret"}]));
        let out = simulate(&input(json!({
            "PolicyInputList": [allow_get, deny_secret],
            "ActionNames": ["s3:GetObject", "s3:PutObject"],
            "ResourceArns": ["arn:aws:s3:::b/report", "arn:aws:s3:::b/secret"],
        })))
        .expect("simulates");
        let got: Vec<(&str, &str, &str)> = out
            .evaluation_results
            .iter()
            .map(|r| {
                (
                    r.eval_action_name.as_str(),
                    r.eval_resource_name.as_str(),
                    r.eval_decision.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("s3:GetObject", "arn:aws:s3:::b/report", "allowed"),
                ("s3:GetObject", "arn:aws:s3:::b/secret", "explicitDeny"),
                ("s3:PutObject", "arn:aws:s3:::b/report", "implicitDeny"),
                ("s3:PutObject", "arn:aws:s3:::b/secret", "explicitDeny"),
            ]
        );
        let first = &out.evaluation_results[0].matched_statements[0];
        assert_eq!(first.source_policy_id, "PolicyInputList.1");
        assert_eq!(first.source_policy_type, "IAM Policy");
        let denied = &out.evaluation_results[1].matched_statements[0];
        assert_eq!(denied.source_policy_id, "PolicyInputList.2");
    }

    #[test]
    fn a_trust_policy_decides_assume_role_with_context_entries() {
        let trust = doc(json!([{
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "alerts"}}
        }]));
        let assume = doc(json!([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]));
        let base = json!({
            "PolicyInputList": [assume],
            "ResourcePolicy": trust,
            "ActionNames": ["sts:AssumeRole"],
            "ResourceArns": ["arn:aws:iam::111111111111:role/target"],
            "CallerArn": "arn:aws:iam::222222222222:user/ops",
        });
        let mut with_id = base.clone();
        with_id["ContextEntries"] = json!([{"ContextKeyName": "sts:ExternalId", "ContextKeyValues": ["alerts"], "ContextKeyType": "string"}]);
        assert_eq!(decisions(with_id), ["allowed"]);
        assert_eq!(decisions(base), ["implicitDeny"]);
    }

    #[test]
    fn a_boundary_caps_identity_grants_but_not_a_resource_policy_naming_the_caller() {
        let admin = doc(json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}]));
        let boundary = doc(json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]));
        let decided = decisions(json!({
            "PolicyInputList": [admin],
            "PermissionsBoundaryPolicyInputList": [boundary],
            "ActionNames": ["s3:GetObject", "s3:DeleteObject"],
            "ResourceArns": ["arn:aws:s3:::b/k"],
        }));
        assert_eq!(decided, ["allowed", "implicitDeny"]);

        let function_policy = doc(json!([{
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111111111111:user/ops"},
            "Action": "lambda:InvokeFunction",
            "Resource": "arn:aws:lambda:us-east-1:111111111111:function:f"
        }]));
        let decided = decisions(json!({
            "PermissionsBoundaryPolicyInputList": [boundary],
            "ResourcePolicy": function_policy,
            "ActionNames": ["lambda:InvokeFunction"],
            "ResourceArns": ["arn:aws:lambda:us-east-1:111111111111:function:f"],
            "CallerArn": "arn:aws:iam::111111111111:user/ops",
        }));
        assert_eq!(decided, ["allowed"]);
    }

    #[test]
    fn a_service_principal_is_a_caller() {
        let trust = doc(
            json!([{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]),
        );
        let decided = decisions(json!({
            "ResourcePolicy": trust,
            "ActionNames": ["sts:AssumeRole"],
            "ResourceArns": ["arn:aws:iam::111111111111:role/exec"],
            "CallerArn": "lambda.amazonaws.com",
        }));
        assert_eq!(decided, ["allowed"]);
    }

    #[test]
    fn policies_aws_would_not_store_are_errors_naming_the_statement() {
        let with_resource = doc(json!([
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Resource": "*"}
        ]));
        let err = simulate(&input(json!({
            "ResourcePolicy": with_resource,
            "ActionNames": ["sts:AssumeRole"],
            "CallerArn": "arn:aws:iam::222222222222:user/ops",
        })))
        .expect_err("a trust policy with Resource");
        let message = err.to_string();
        assert!(
            message.starts_with("ResourcePolicy: statement 1"),
            "{message}"
        );

        let no_principal =
            doc(json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]));
        let err = simulate(&input(json!({
            "ResourcePolicy": no_principal,
            "ActionNames": ["s3:GetObject"],
            "CallerArn": "arn:aws:iam::222222222222:user/ops",
        })))
        .expect_err("a resource policy without Principal");
        assert!(err.to_string().contains("Principal"), "{err}");

        let err = simulate(&input(
            json!({"ResourcePolicy": doc(json!([])), "ActionNames": ["s3:GetObject"]}),
        ))
        .expect_err("no caller");
        assert!(err.to_string().contains("CallerArn"), "{err}");
    }

    /// What IAM refuses to store, each named by policy and statement: an
    /// unknown operator, a partial wildcard in `Principal` ("You cannot use a
    /// wildcard to match part of a principal name or ARN"), `Resource` in a
    /// trust policy ("Has prohibited field Resource") and a resource-based
    /// policy without `Principal`.
    #[rstest::rstest]
    #[case::unknown_operator(
        json!({"PolicyInputList": [
            doc(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])),
            doc(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                       {"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                        "Condition": {"StringEqualsAnything": {"aws:username": "a"}}}]))],
               "ActionNames": ["s3:GetObject"]}),
        "PolicyInputList.2: statement 1: unknown condition operator `StringEqualsAnything`"
    )]
    #[case::partial_principal_wildcard(
        json!({"ResourcePolicy": doc(json!([{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:user/*"},
                                              "Action": "s3:GetObject", "Resource": "*"}])),
               "ActionNames": ["s3:GetObject"], "CallerArn": "arn:aws:iam::111111111111:user/ops"}),
        "ResourcePolicy: statement 0: principal \"arn:aws:iam::111111111111:user/*\" cannot contain wildcards"
    )]
    #[case::resource_in_trust_policy(
        json!({"ResourcePolicy": doc(json!([{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Resource": "*"}])),
               "ActionNames": ["sts:AssumeRole"], "CallerArn": "arn:aws:iam::111111111111:user/ops"}),
        "ResourcePolicy: statement 0: element `Resource` is not allowed in trust policies"
    )]
    #[case::resource_policy_without_principal(
        json!({"ResourcePolicy": doc(json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])),
               "ActionNames": ["s3:GetObject"], "CallerArn": "arn:aws:iam::111111111111:user/ops"}),
        "ResourcePolicy: statement 0: element `Principal` is required in resource policies"
    )]
    fn policies_iam_refuses_are_errors_naming_policy_and_statement(
        #[case] value: serde_json::Value,
        #[case] message: &str,
    ) {
        let error = simulate(&input(value)).expect_err("refused");
        assert!(
            error.to_string().starts_with(message),
            "{error} does not start with {message:?}"
        );
    }

    #[test]
    fn unknown_input_fields_are_refused() {
        let parsed: Result<SimulateInput, _> =
            serde_json::from_value(json!({"ActionNames": ["s3:GetObject"], "PolicyInputs": []}));
        assert!(parsed.is_err());
    }
}
