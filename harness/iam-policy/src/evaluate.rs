//! Evaluating statements of named policies against a request.

use std::fmt;

use crate::{
    error::PolicyError,
    pattern::{action_matches, arn_matches},
    policy::{
        ActionElement, Effect, PolicyDocument, PolicyVersion, PrincipalElement, ResourceElement,
        Statement,
    },
    principal::{PrincipalMatch, not_principal_exempts, principal_matches},
    request::Request,
    variable::resource_pattern,
};

/// Where a policy is attached, which decides how it combines with others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Attached to the caller (user or role): no `Principal`, needs `Resource`.
    Identity,
    /// Attached to the resource, e.g. a Lambda function policy: needs `Principal` and `Resource`.
    Resource,
    /// A role's trust policy, a resource-based policy on the role: needs `Principal`, forbids `Resource`.
    Trust,
}

impl PolicyKind {
    /// Whether AWS counts this kind as a resource-based policy.
    pub fn is_resource_based(self) -> bool {
        matches!(self, Self::Resource | Self::Trust)
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Identity => "identity",
            Self::Resource => "resource",
            Self::Trust => "trust",
        })
    }
}

/// A policy document with its kind and a name for explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPolicy {
    kind: PolicyKind,
    name: String,
    document: PolicyDocument,
}

impl NamedPolicy {
    /// Wraps a document, checking the elements its kind requires or forbids.
    pub fn new(
        kind: PolicyKind,
        name: &str,
        document: PolicyDocument,
    ) -> Result<Self, PolicyError> {
        for (index, statement) in document.statements().iter().enumerate() {
            let forbidden = |element| PolicyError::ElementNotAllowed {
                statement: index,
                element,
                kind,
            };
            let required = |element| PolicyError::ElementRequired {
                statement: index,
                element,
                kind,
            };
            match kind {
                PolicyKind::Identity if statement.has_principal() => {
                    return Err(forbidden("Principal"));
                }
                PolicyKind::Identity | PolicyKind::Resource if !statement.has_resource() => {
                    return Err(required("Resource"));
                }
                PolicyKind::Resource | PolicyKind::Trust if !statement.has_principal() => {
                    return Err(required("Principal"));
                }
                // IAM: "MalformedPolicyDocument: Has prohibited field Resource".
                PolicyKind::Trust if statement.has_resource() => {
                    return Err(forbidden("Resource"));
                }
                _ => {}
            }
        }
        Ok(Self {
            kind,
            name: name.to_owned(),
            document,
        })
    }

    /// Parses JSON text and wraps it, as [`PolicyDocument::parse`] then [`NamedPolicy::new`].
    pub fn parse(kind: PolicyKind, name: &str, json: &str) -> Result<Self, PolicyError> {
        Self::new(kind, name, PolicyDocument::parse(json)?)
    }

    /// The policy's kind.
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// The policy's name (or ARN) used in explanations.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The parsed document.
    pub fn document(&self) -> &PolicyDocument {
        &self.document
    }
}

/// A statement that applied to a request, for explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    /// The kind of the policy holding the statement.
    pub kind: PolicyKind,
    /// The policy's name or ARN.
    pub policy: String,
    /// The statement's 0-based position in the policy.
    pub index: usize,
    /// The statement's Sid, if any.
    pub sid: Option<String>,
    /// The statement's effect.
    pub effect: Effect,
    /// For resource-based policies, how `Principal` matched the caller.
    pub principal_match: Option<PrincipalMatch>,
}

impl fmt::Display for StatementRef {
    /// `trust policy CrossAccount statement 0` or `identity policy invoke/AllowInvoke`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} policy {}", self.kind, self.policy)?;
        match &self.sid {
            Some(sid) => write!(f, "/{sid}"),
            None => write!(f, " statement {}", self.index),
        }
    }
}

/// The combined verdict of a set of policies, before any cross-policy rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// At least one statement allows and none denies.
    Allow,
    /// Some statement denies.
    ExplicitDeny,
    /// Nothing applies.
    ImplicitDeny,
}

/// Every statement that applied to a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Applicable `Allow` statements, in policy then statement order.
    pub allows: Vec<StatementRef>,
    /// Applicable `Deny` statements, in policy then statement order.
    pub denies: Vec<StatementRef>,
}

impl Evaluation {
    /// Explicit deny wins over any allow; no applicable statement is an implicit deny.
    pub fn outcome(&self) -> Outcome {
        if !self.denies.is_empty() {
            Outcome::ExplicitDeny
        } else if !self.allows.is_empty() {
            Outcome::Allow
        } else {
            Outcome::ImplicitDeny
        }
    }
}

/// Evaluates every statement of every policy against the request.
///
/// This is the single-policy-set logic (explicit deny, allow, default deny);
/// use [`crate::authorize_assume_role`] or [`crate::authorize_invoke`] to
/// combine identity and resource-based policies the way AWS does.
pub fn evaluate_policies(request: &Request, policies: &[NamedPolicy]) -> Evaluation {
    let mut evaluation = Evaluation::default();
    for policy in policies {
        let variables = policy.document.version() == PolicyVersion::V2012_10_17;
        for (index, statement) in policy.document.statements().iter().enumerate() {
            let Some(principal_match) =
                statement_applies(statement, policy.kind, request, variables)
            else {
                continue;
            };
            let reference = StatementRef {
                kind: policy.kind,
                policy: policy.name.clone(),
                index,
                sid: statement.sid().map(str::to_owned),
                effect: statement.effect(),
                principal_match,
            };
            match statement.effect() {
                Effect::Allow => evaluation.allows.push(reference),
                Effect::Deny => evaluation.denies.push(reference),
            }
        }
    }
    evaluation
}

/// `None` when the statement does not apply; otherwise how its principal matched.
fn statement_applies(
    statement: &Statement,
    kind: PolicyKind,
    request: &Request,
    variables: bool,
) -> Option<Option<PrincipalMatch>> {
    let principal_match = match &statement.principal {
        // Identity policies apply to the identity they are attached to.
        None => None,
        Some(PrincipalElement::Principal(entries)) => {
            Some(principal_matches(entries, &request.principal)?)
        }
        Some(PrincipalElement::NotPrincipal(entries)) => {
            if not_principal_exempts(entries, &request.principal) {
                return None;
            }
            Some(PrincipalMatch::Direct)
        }
    };
    if kind.is_resource_based() && principal_match.is_none() {
        return None;
    }
    let action_ok = match &statement.action {
        ActionElement::Action(patterns) => {
            patterns.iter().any(|p| action_matches(p, &request.action))
        }
        ActionElement::NotAction(patterns) => {
            !patterns.iter().any(|p| action_matches(p, &request.action))
        }
    };
    if !action_ok {
        return None;
    }
    let resource_matches = |pattern: &String| {
        resource_pattern(pattern, &request.context, variables)
            .is_some_and(|p| arn_matches(&p, &request.resource))
    };
    let resource_ok = match &statement.resource {
        // A trust policy has no Resource: the role it is attached to is the resource.
        None => true,
        Some(ResourceElement::Resource(patterns)) => patterns.iter().any(resource_matches),
        Some(ResourceElement::NotResource(patterns)) => !patterns.iter().any(resource_matches),
    };
    if !resource_ok {
        return None;
    }
    statement
        .conditions
        .iter()
        .all(|c| c.holds(&request.context, variables))
        .then_some(principal_match)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::Principal;

    const ALLOW_ALL: &str = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}"#;
    const TRUST: &str = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": "222222222222"}, "Action": "sts:AssumeRole"}}"#;

    #[rstest]
    #[case::identity_with_principal(
        PolicyKind::Identity,
        TRUST,
        "`Principal` is not allowed in identity policies"
    )]
    #[case::resource_without_principal(
        PolicyKind::Resource,
        ALLOW_ALL,
        "`Principal` is required in resource policies"
    )]
    #[case::trust_without_principal(
        PolicyKind::Trust,
        ALLOW_ALL,
        "`Principal` is required in trust policies"
    )]
    #[case::trust_with_resource(PolicyKind::Trust, r#"{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole", "Resource": "*"}}"#, "`Resource` is not allowed in trust policies")]
    #[case::identity_without_resource(
        PolicyKind::Identity,
        r#"{"Statement": {"Effect": "Allow", "Action": "*"}}"#,
        "`Resource` is required in identity policies"
    )]
    fn kind_rules_are_enforced(
        #[case] kind: PolicyKind,
        #[case] json: &str,
        #[case] message: &str,
    ) {
        let error = NamedPolicy::parse(kind, "p", json)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            matches!(&error, Err(e) if e.contains(message)),
            "{error:?} does not mention {message:?}"
        );
    }

    #[test]
    fn statement_reference_names_sid_or_index() {
        let policy = NamedPolicy::parse(
            PolicyKind::Identity,
            "invoke",
            r#"{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                              {"Sid": "Second", "Effect": "Allow", "Action": "*", "Resource": "*"}]}"#,
        )
        .expect("test policy is valid");
        let caller = Principal::from_arn("arn:aws:iam::111111111111:user/u").expect("valid arn");
        let evaluation = evaluate_policies(
            &Request::new(caller, "s3:GetObject", "arn:aws:s3:::b/k"),
            &[policy],
        );
        let shown: Vec<String> = evaluation.allows.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "identity policy invoke statement 0",
                "identity policy invoke/Second"
            ]
        );
    }
}
