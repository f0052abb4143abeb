//! Combining identity and resource-based policies into AWS's decision, with its reason.

use std::fmt;

use crate::{
    evaluate::{NamedPolicy, PolicyKind, StatementRef, evaluate_policies},
    principal::{PrincipalKind, PrincipalMatch},
    request::Request,
};

/// Which of AWS's reasons explains a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionReason {
    /// The request is allowed.
    Allowed,
    /// A `Deny` statement applied; the kind is that of the first one, resource-based policies first.
    ExplicitDeny(PolicyKind),
    /// The resource-based policy (function policy, trust policy) had to allow and did not.
    NoResourceBasedPolicyAllows,
    /// The caller's identity-based policies had to allow and did not.
    NoIdentityBasedPolicyAllows,
    /// STS refuses `AssumeRole` with account root credentials whatever the policies say.
    RootCannotAssumeRole,
}

/// The answer to a [`Request`], with the statements that decided it.
///
/// `deciding` holds, for an allow, the statements that granted it; for an
/// explicit deny, every applicable `Deny` statement; for an implicit deny,
/// the allows that applied but were not enough (e.g. a trust policy that
/// named the caller's account when its identity policy did not allow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether AWS would let the request through.
    pub allowed: bool,
    /// Why.
    pub reason: DecisionReason,
    /// The statements behind the decision, resource-based ones first.
    pub deciding: Vec<StatementRef>,
    /// The caller's ARN as AWS prints it in errors.
    pub principal_arn: String,
    /// The action asked for.
    pub action: String,
    /// The resource asked for.
    pub resource: String,
}

impl Decision {
    /// AWS's `AccessDenied` message for a denial; `None` when allowed.
    ///
    /// For `sts:AssumeRole`: `User: <principal> is not authorized to perform:
    /// sts:AssumeRole on resource: <role arn>` (STS gives no reason), or
    /// `Roles may not be assumed by root accounts.`. For every other action,
    /// the same prefix followed by ` because no resource-based policy allows
    /// the <action> action`, ` because no identity-based policy allows the
    /// <action> action`, ` with an explicit deny in a resource-based policy`
    /// or ` with an explicit deny in an identity-based policy`.
    pub fn access_denied_message(&self) -> Option<String> {
        if self.allowed {
            return None;
        }
        let action = &self.action;
        let base = format!(
            "User: {} is not authorized to perform: {action} on resource: {}",
            self.principal_arn, self.resource
        );
        if action.eq_ignore_ascii_case("sts:AssumeRole") {
            return Some(match self.reason {
                DecisionReason::RootCannotAssumeRole => {
                    "Roles may not be assumed by root accounts.".to_owned()
                }
                _ => base,
            });
        }
        Some(match self.reason {
            DecisionReason::ExplicitDeny(kind) if kind.is_resource_based() => {
                format!("{base} with an explicit deny in a resource-based policy")
            }
            DecisionReason::ExplicitDeny(_) => {
                format!("{base} with an explicit deny in an identity-based policy")
            }
            DecisionReason::NoResourceBasedPolicyAllows => {
                format!("{base} because no resource-based policy allows the {action} action")
            }
            DecisionReason::NoIdentityBasedPolicyAllows
            | DecisionReason::RootCannotAssumeRole
            | DecisionReason::Allowed => {
                format!("{base} because no identity-based policy allows the {action} action")
            }
        })
    }

    fn new(request: &Request, reason: DecisionReason, deciding: Vec<StatementRef>) -> Self {
        let decision = Self {
            allowed: reason == DecisionReason::Allowed,
            reason,
            deciding,
            principal_arn: request.principal.arn().to_owned(),
            action: request.action.clone(),
            resource: request.resource.clone(),
        };
        tracing::debug!(
            principal = %decision.principal_arn,
            action = %decision.action,
            resource = %decision.resource,
            allowed = decision.allowed,
            explanation = %decision,
            "iam decision"
        );
        decision
    }
}

fn join(statements: &[StatementRef]) -> String {
    statements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl fmt::Display for Decision {
    /// `ALLOW (trust policy T statement 0; identity policy I/Sid)` or
    /// `DENY: no identity-based policy allows (allowed only by trust policy T statement 0)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let listed = join(&self.deciding);
        match self.reason {
            DecisionReason::Allowed if listed.is_empty() => write!(f, "ALLOW (account root user)"),
            DecisionReason::Allowed => write!(f, "ALLOW ({listed})"),
            // Each listed statement names its policy kind already.
            DecisionReason::ExplicitDeny(_) => write!(f, "DENY: explicit deny ({listed})"),
            DecisionReason::RootCannotAssumeRole => {
                write!(f, "DENY: roles may not be assumed by root accounts")
            }
            DecisionReason::NoResourceBasedPolicyAllows
            | DecisionReason::NoIdentityBasedPolicyAllows => {
                let which = if self.reason == DecisionReason::NoResourceBasedPolicyAllows {
                    "resource-based"
                } else {
                    "identity-based"
                };
                write!(f, "DENY: no {which} policy allows")?;
                if listed.is_empty() {
                    Ok(())
                } else {
                    write!(f, " (allowed only by {listed})")
                }
            }
        }
    }
}

/// How the resource-based policy takes part in the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResourcePolicyRole {
    /// Most services: within one account either side may allow.
    Standard,
    /// Role trust policies: the trust policy must always allow.
    Trust,
    /// KMS key policies: the key policy must always allow, by naming the
    /// caller or by naming its account ("enables IAM policies").
    KeyPolicy,
}

/// Decides `sts:AssumeRole` on the role in `request.resource`.
///
/// AWS's rules (STS API Reference, AssumeRole; IAM User Guide, "Cross-account
/// policy evaluation logic"):
/// - an explicit deny in the trust policy or an identity policy denies;
/// - the trust policy must allow the caller, even within one account;
/// - in another account, the caller's identity policies must also allow
///   `sts:AssumeRole` on the role ("The administrator must attach a policy
///   that allows the user to call AssumeRole for the ARN of the role in the
///   other account");
/// - in the same account, either the trust policy names the caller directly
///   (its user/role ARN, its session, or `*`) or it names the account and the
///   identity policies allow ("To allow a user to assume a role in the same
///   account, you can do either of the following: attach a policy to the user
///   that allows the user to call AssumeRole (as long as the role's trust
///   policy trusts the account); or add the user as a principal directly in
///   the role's trust policy");
/// - account root credentials are always refused ("Roles may not be assumed
///   by root accounts").
pub fn authorize_assume_role(
    request: &Request,
    trust_policy: &NamedPolicy,
    identity_policies: &[NamedPolicy],
) -> Decision {
    combine(
        request,
        Some(trust_policy),
        identity_policies,
        ResourcePolicyRole::Trust,
    )
}

/// Decides `lambda:InvokeFunction` on the function (or qualified ARN) in `request.resource`.
///
/// AWS's rules (IAM User Guide, "Policy evaluation logic" and "Cross-account
/// policy evaluation logic"; Lambda Developer Guide, "Using resource-based
/// policies"):
/// - an explicit deny in the function policy or an identity policy denies;
/// - same account: the identity policies or the function policy may allow;
///   a function policy naming only the caller's *account* delegates to the
///   identity policies and does not allow by itself;
/// - cross account: the function policy must allow (by naming the caller or
///   its account) and the identity policies must allow too;
/// - a service principal or an anonymous caller needs the function policy
///   (for anonymous callers, a statement with `Principal` `*`); the account root user
///   needs no identity policy.
///
/// Qualified ARNs need no special case: a permission added without a
/// qualifier has `Resource` set to the unqualified ARN, which does not match
/// `function:name:alias` because the qualifier is an extra ARN field, while
/// `function:name:*` does ("the permission is valid only for invoking the
/// function using the unqualified function ARN", Lambda Developer Guide,
/// "Versioning, Aliases, and Resource Policies").
pub fn authorize_invoke(
    request: &Request,
    function_policy: Option<&NamedPolicy>,
    identity_policies: &[NamedPolicy],
) -> Decision {
    authorize(request, function_policy, identity_policies)
}

/// Decides a request on any resource with the identity + resource-based rules.
///
/// [`authorize_invoke`] is this function under Lambda's name.
///
/// A `kms:` action on a KMS key (`arn:<p>:kms:<region>:<account>:key/<id>`)
/// follows the key-policy rule, with `resource_policy` as the key policy
/// (AWS KMS Developer Guide, "Key policies in AWS KMS"): "Unless the key
/// policy explicitly allows it, you cannot use IAM policies to allow access
/// to a KMS key. Without permission from the key policy, IAM policies that
/// allow permissions have no effect." So:
/// - the key policy must allow, even within one account and even for the
///   account root user ("No AWS principal, including the account root user
///   ..., has any permissions to a KMS key unless they are explicitly
///   allowed");
/// - a key policy statement naming the caller allows by itself in the key's
///   account; one naming the caller's account (the "enable IAM policies"
///   statement) leaves the decision to the caller's identity policies;
/// - from another account, the key policy must allow that account (or the
///   caller) and the caller's identity policies must allow too;
/// - an identity policy can still deny without the key policy.
///
/// Every other request follows the standard rules: within one account either
/// side may allow, across accounts both must.
pub fn authorize(
    request: &Request,
    resource_policy: Option<&NamedPolicy>,
    identity_policies: &[NamedPolicy],
) -> Decision {
    let role = if is_kms_key_request(request) {
        ResourcePolicyRole::KeyPolicy
    } else {
        ResourcePolicyRole::Standard
    };
    combine(request, resource_policy, identity_policies, role)
}

/// Whether the request is a KMS action on a KMS key, which its key policy governs.
///
/// Aliases and account-level operations (`kms:CreateKey`, `kms:ListKeys`) are
/// not controlled by a key policy and follow the standard rules.
fn is_kms_key_request(request: &Request) -> bool {
    let kms_action = request
        .action
        .split_once(':')
        .is_some_and(|(service, _)| service.eq_ignore_ascii_case("kms"));
    let fields: Vec<&str> = request.resource.splitn(6, ':').collect();
    let key_resource = matches!(
        fields.as_slice(),
        ["arn", _, "kms", _, _, resource] if resource.starts_with("key/")
    );
    kms_action && key_resource
}

fn combine(
    request: &Request,
    resource_policy: Option<&NamedPolicy>,
    identity_policies: &[NamedPolicy],
    role: ResourcePolicyRole,
) -> Decision {
    let caller = request.principal.kind();
    if role == ResourcePolicyRole::Trust && caller == PrincipalKind::Root {
        return Decision::new(request, DecisionReason::RootCannotAssumeRole, Vec::new());
    }
    let resource_side = evaluate_policies(
        request,
        resource_policy
            .map(std::slice::from_ref)
            .unwrap_or_default(),
    );
    // STS and KMS accept signed requests only; an unsigned caller never gets that far.
    if caller == PrincipalKind::Anonymous && role != ResourcePolicyRole::Standard {
        return Decision::new(
            request,
            DecisionReason::NoResourceBasedPolicyAllows,
            Vec::new(),
        );
    }
    // Only the caller's own policies count; service principals and anonymous
    // callers have none, so only the resource-based policy can allow them.
    let caller_has_no_identity =
        matches!(caller, PrincipalKind::Service | PrincipalKind::Anonymous);
    let identity_side = if caller_has_no_identity {
        Default::default()
    } else {
        evaluate_policies(request, identity_policies)
    };

    let mut denies = resource_side.denies.clone();
    denies.extend(identity_side.denies.iter().cloned());
    if let Some(first) = denies.first() {
        let kind = first.kind;
        return Decision::new(request, DecisionReason::ExplicitDeny(kind), denies);
    }

    let resource_allows = resource_side.allows;
    let direct_allows: Vec<StatementRef> = resource_allows
        .iter()
        .filter(|s| s.principal_match == Some(PrincipalMatch::Direct))
        .cloned()
        .collect();
    let identity_allows = identity_side.allows;
    // The root user has every permission in its own account without any
    // identity policy ("By default, all requests are implicitly denied with
    // the exception of the AWS account root user, which has full access").
    let identity_ok = caller == PrincipalKind::Root || !identity_allows.is_empty();
    let both = |first: &[StatementRef], second: &[StatementRef]| {
        first.iter().chain(second).cloned().collect::<Vec<_>>()
    };

    if caller_has_no_identity {
        return if resource_allows.is_empty() {
            Decision::new(
                request,
                DecisionReason::NoResourceBasedPolicyAllows,
                Vec::new(),
            )
        } else {
            Decision::new(request, DecisionReason::Allowed, resource_allows)
        };
    }

    let same_account = request.is_same_account();
    match role {
        ResourcePolicyRole::Standard if same_account => {
            if !direct_allows.is_empty() || identity_ok {
                Decision::new(
                    request,
                    DecisionReason::Allowed,
                    both(&direct_allows, &identity_allows),
                )
            } else {
                Decision::new(
                    request,
                    DecisionReason::NoIdentityBasedPolicyAllows,
                    resource_allows,
                )
            }
        }
        ResourcePolicyRole::Standard
        | ResourcePolicyRole::Trust
        | ResourcePolicyRole::KeyPolicy => {
            if resource_allows.is_empty() {
                Decision::new(
                    request,
                    DecisionReason::NoResourceBasedPolicyAllows,
                    identity_allows,
                )
            } else if same_account && !direct_allows.is_empty() {
                Decision::new(
                    request,
                    DecisionReason::Allowed,
                    both(&direct_allows, &identity_allows),
                )
            } else if identity_ok {
                Decision::new(
                    request,
                    DecisionReason::Allowed,
                    both(&resource_allows, &identity_allows),
                )
            } else {
                Decision::new(
                    request,
                    DecisionReason::NoIdentityBasedPolicyAllows,
                    resource_allows,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::{Principal, policy::Effect};

    const FUNCTION: &str = "arn:aws:lambda:us-east-1:111111111111:function:alerts";
    const SESSION: &str = "arn:aws:sts::111111111111:assumed-role/Invoker/s1";

    fn decision(reason: DecisionReason, action: &str) -> Decision {
        Decision {
            allowed: reason == DecisionReason::Allowed,
            reason,
            deciding: Vec::new(),
            principal_arn: SESSION.to_owned(),
            action: action.to_owned(),
            resource: FUNCTION.to_owned(),
        }
    }

    const PREFIX: &str = "User: arn:aws:sts::111111111111:assumed-role/Invoker/s1 is not authorized to perform: lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:111111111111:function:alerts";

    #[rstest]
    #[case::no_resource_policy(
        DecisionReason::NoResourceBasedPolicyAllows,
        " because no resource-based policy allows the lambda:InvokeFunction action"
    )]
    #[case::no_identity_policy(
        DecisionReason::NoIdentityBasedPolicyAllows,
        " because no identity-based policy allows the lambda:InvokeFunction action"
    )]
    #[case::explicit_deny_resource(
        DecisionReason::ExplicitDeny(PolicyKind::Resource),
        " with an explicit deny in a resource-based policy"
    )]
    #[case::explicit_deny_identity(
        DecisionReason::ExplicitDeny(PolicyKind::Identity),
        " with an explicit deny in an identity-based policy"
    )]
    fn lambda_messages(#[case] reason: DecisionReason, #[case] suffix: &str) {
        let message = decision(reason, "lambda:InvokeFunction").access_denied_message();
        assert_eq!(message, Some(format!("{PREFIX}{suffix}")));
    }

    #[rstest]
    #[case::implicit(
        DecisionReason::NoIdentityBasedPolicyAllows,
        "User: arn:aws:sts::111111111111:assumed-role/Invoker/s1 is not authorized to perform: sts:AssumeRole on resource: arn:aws:lambda:us-east-1:111111111111:function:alerts"
    )]
    #[case::explicit(
        DecisionReason::ExplicitDeny(PolicyKind::Trust),
        "User: arn:aws:sts::111111111111:assumed-role/Invoker/s1 is not authorized to perform: sts:AssumeRole on resource: arn:aws:lambda:us-east-1:111111111111:function:alerts"
    )]
    #[case::root(
        DecisionReason::RootCannotAssumeRole,
        "Roles may not be assumed by root accounts."
    )]
    fn sts_messages(#[case] reason: DecisionReason, #[case] expected: &str) {
        assert_eq!(
            decision(reason, "sts:AssumeRole")
                .access_denied_message()
                .as_deref(),
            Some(expected)
        );
    }

    #[test]
    fn allowed_has_no_message() {
        assert_eq!(
            decision(DecisionReason::Allowed, "lambda:InvokeFunction").access_denied_message(),
            None
        );
    }

    #[test]
    fn display_lists_deciding_statements() {
        let mut d = decision(DecisionReason::Allowed, "lambda:InvokeFunction");
        d.deciding = vec![
            StatementRef {
                kind: PolicyKind::Resource,
                policy: "alerts".into(),
                index: 0,
                sid: Some("X".into()),
                effect: Effect::Allow,
                principal_match: Some(PrincipalMatch::Direct),
            },
            StatementRef {
                kind: PolicyKind::Identity,
                policy: "servicenow-invoke".into(),
                index: 1,
                sid: Some("invoke".into()),
                effect: Effect::Allow,
                principal_match: None,
            },
        ];
        assert_eq!(
            d.to_string(),
            "ALLOW (resource policy alerts/X; identity policy servicenow-invoke/invoke)"
        );
        d.reason = DecisionReason::NoIdentityBasedPolicyAllows;
        d.allowed = false;
        d.deciding.truncate(1);
        assert_eq!(
            d.to_string(),
            "DENY: no identity-based policy allows (allowed only by resource policy alerts/X)"
        );
        d.reason = DecisionReason::ExplicitDeny(PolicyKind::Resource);
        assert_eq!(
            d.to_string(),
            "DENY: explicit deny (resource policy alerts/X)"
        );
    }

    #[test]
    fn root_assume_role_is_refused_before_policies() {
        let root = Principal::from_arn("arn:aws:iam::111111111111:root").expect("valid arn");
        let trust = NamedPolicy::parse(
            PolicyKind::Trust,
            "t",
            r#"{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}}"#,
        )
        .expect("valid policy");
        let request = Request::new(root, "sts:AssumeRole", "arn:aws:iam::111111111111:role/r");
        let d = authorize_assume_role(&request, &trust, &[]);
        assert_eq!(
            (d.allowed, d.reason),
            (false, DecisionReason::RootCannotAssumeRole)
        );
    }
}
