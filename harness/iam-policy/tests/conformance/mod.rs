//! The rule table: one case per AWS policy-evaluation rule.
//!
//! Shared by `tests/rules.rs` (each row is an rstest case named for its rule)
//! and `examples/crosscheck.rs` (which exports the same rows to JSON and
//! replays them through `@cloud-copilot/iam-simulate`). Each side uses only
//! part of the helpers, hence the `dead_code` allowance.
#![allow(dead_code)]

use iam_policy::{
    Decision, DecisionReason, NamedPolicy, PolicyDocument, PolicyError, PolicyKind, Principal,
    Request, authorize, authorize_assume_role,
};
use serde_json::{Value, json};

/// Account A: the callee's account (function, cross-account role).
pub const A: &str = "111111111111";
/// Account B: the caller's account.
pub const B: &str = "222222222222";
/// The callee function.
pub const FUNCTION: &str = "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alerts";
/// The callee function's `live` alias.
pub const FUNCTION_ALIAS: &str =
    "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alerts:live";
/// The cross-account role in A that B's invoker assumes.
pub const ROLE: &str = "arn:aws:iam::111111111111:role/CrossAccountInvoke";
/// A session of [`ROLE`]: the identity that invokes the function.
pub const SESSION_A: &str = "arn:aws:sts::111111111111:assumed-role/CrossAccountInvoke/s1";
/// The invoker lambda's role in B.
pub const INVOKER_ROLE: &str = "arn:aws:iam::222222222222:role/Invoker";
/// A session of [`INVOKER_ROLE`]: the identity that calls `sts:AssumeRole`.
pub const SESSION_B: &str = "arn:aws:sts::222222222222:assumed-role/Invoker/s1";
/// A user in A.
pub const USER_A: &str = "arn:aws:iam::111111111111:user/alice";
/// Account A's root user.
pub const ROOT_A: &str = "arn:aws:iam::111111111111:root";
/// Account B's root user.
pub const ROOT_B: &str = "arn:aws:iam::222222222222:root";
/// A federated user session (`GetFederationToken`) in A.
pub const FEDERATED_A: &str = "arn:aws:sts::111111111111:federated-user/bob";
/// An anonymous caller, as the table writes it.
pub const ANONYMOUS: &str = "*";
/// A role in A with a path; its sessions' ARNs drop the path.
pub const ROLE_WITH_PATH: &str = "arn:aws:iam::111111111111:role/team/x/PathInvoker";
/// A public object in a bucket that names no account.
pub const PUBLIC_OBJECT: &str = "arn:aws:s3:::public-reports/2026/report.csv";

/// A KMS key in A.
pub const KEY: &str = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";

const INVOKE: &str = "lambda:InvokeFunction";
const DECRYPT: &str = "kms:Decrypt";
const ASSUME: &str = "sts:AssumeRole";

/// What the rule says AWS decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Allowed.
    Allow,
    /// Explicitly denied by a policy of this kind.
    ExplicitDeny(PolicyKind),
    /// Implicitly denied: the resource-based policy does not allow.
    NoResource,
    /// Implicitly denied: the identity-based policies do not allow.
    NoIdentity,
    /// STS refuses root credentials.
    RootCannotAssume,
}

impl Expected {
    fn reason(self) -> DecisionReason {
        match self {
            Self::Allow => DecisionReason::Allowed,
            Self::ExplicitDeny(kind) => DecisionReason::ExplicitDeny(kind),
            Self::NoResource => DecisionReason::NoResourceBasedPolicyAllows,
            Self::NoIdentity => DecisionReason::NoIdentityBasedPolicyAllows,
            Self::RootCannotAssume => DecisionReason::RootCannotAssumeRole,
        }
    }
}

/// The three-way verdict both evaluators can express.
pub fn verdict(decision: &Decision) -> &'static str {
    match decision.reason {
        DecisionReason::Allowed => "Allowed",
        DecisionReason::ExplicitDeny(_) => "ExplicitlyDenied",
        _ => "ImplicitlyDenied",
    }
}

/// One rule: a request, the policies in force, and AWS's expected decision.
#[derive(Debug, Clone)]
pub struct RuleCase {
    /// The rule's name (the rstest case name).
    pub name: &'static str,
    principal: String,
    /// For a role session built from its role ARN (which keeps the path).
    session_role: Option<String>,
    unique_id: Option<String>,
    action: String,
    resource: String,
    context: Vec<(String, Vec<String>)>,
    identity: Vec<Value>,
    resource_policy: Option<(PolicyKind, Value)>,
    expected: Expected,
}

/// A `lambda:InvokeFunction` on [`FUNCTION`] by `principal`.
pub fn invoke(principal: &str) -> RuleCase {
    request(principal, INVOKE, FUNCTION)
}

/// An `sts:AssumeRole` on [`ROLE`] by `principal`.
pub fn assume(principal: &str) -> RuleCase {
    request(principal, ASSUME, ROLE)
}

/// Any request.
pub fn request(principal: &str, action: &str, resource: &str) -> RuleCase {
    RuleCase {
        name: "",
        principal: principal.to_owned(),
        session_role: None,
        unique_id: None,
        action: action.to_owned(),
        resource: resource.to_owned(),
        context: Vec::new(),
        identity: Vec::new(),
        resource_policy: None,
        expected: Expected::Allow,
    }
}

/// A request by session `session` of `role_arn`, a role ARN that may have a path.
pub fn request_by_session(role_arn: &str, session: &str, action: &str, resource: &str) -> RuleCase {
    let principal = Principal::role_session(role_arn, session)
        .map(|p| p.arn().to_owned())
        .unwrap_or_else(|e| format!("invalid role session: {e}"));
    RuleCase {
        session_role: Some(role_arn.to_owned()),
        ..request(&principal, action, resource)
    }
}

/// A 2012-10-17 policy with the given statements.
pub fn policy(statements: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// An identity policy allowing `action` on `resource`.
pub fn allow(action: &str, resource: &str) -> Value {
    policy(json!([{"Sid": "Allow", "Effect": "Allow", "Action": action, "Resource": resource}]))
}

/// An identity policy denying `action` on `resource`.
pub fn deny(action: &str, resource: &str) -> Value {
    policy(json!([{"Sid": "Deny", "Effect": "Deny", "Action": action, "Resource": resource}]))
}

/// An identity policy allowing invoke on any function when `condition` holds.
pub fn allow_invoke_if(condition: Value) -> Value {
    policy(
        json!([{"Sid": "Conditional", "Effect": "Allow", "Action": INVOKE, "Resource": "*", "Condition": condition}]),
    )
}

/// A function policy allowing invoke by `principal` (a `Principal` element value).
pub fn function_policy(principal: Value) -> Value {
    policy(
        json!([{"Sid": "Invoke", "Effect": "Allow", "Principal": principal, "Action": INVOKE, "Resource": FUNCTION}]),
    )
}

/// A key policy allowing every `kms:` action by `principal` (the "enable IAM
/// policies" statement when `principal` is an account).
pub fn key_policy(principal: Value) -> Value {
    policy(
        json!([{"Sid": "Key", "Effect": "Allow", "Principal": principal, "Action": "kms:*", "Resource": "*"}]),
    )
}

/// A trust policy allowing `sts:AssumeRole` by `principal`.
pub fn trust_policy(principal: Value) -> Value {
    policy(json!([{"Sid": "Trust", "Effect": "Allow", "Principal": principal, "Action": ASSUME}]))
}

impl RuleCase {
    /// Names the case.
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Adds an identity policy of the caller.
    pub fn identity(mut self, document: Value) -> Self {
        self.identity.push(document);
        self
    }

    /// Sets the function (or other resource) policy.
    pub fn resource_policy(mut self, document: Value) -> Self {
        self.resource_policy = Some((PolicyKind::Resource, document));
        self
    }

    /// Sets the role's trust policy.
    pub fn trust(mut self, document: Value) -> Self {
        self.resource_policy = Some((PolicyKind::Trust, document));
        self
    }

    /// Gives the caller IAM's unique id (`AIDA...`/`AROA...`).
    pub fn unique_id(mut self, id: &str) -> Self {
        self.unique_id = Some(id.to_owned());
        self
    }

    /// Sets a single-valued context key.
    pub fn ctx(self, key: &str, value: &str) -> Self {
        self.ctx_values(key, &[value])
    }

    /// Sets a multi-valued context key (possibly empty).
    pub fn ctx_values(mut self, key: &str, values: &[&str]) -> Self {
        self.context.push((
            key.to_owned(),
            values.iter().map(|v| (*v).to_owned()).collect(),
        ));
        self
    }

    /// States AWS's decision.
    pub fn expect(mut self, expected: Expected) -> Self {
        self.expected = expected;
        self
    }

    /// The expected decision.
    pub fn expected(&self) -> Expected {
        self.expected
    }

    /// The request and policies, parsed.
    pub fn build(&self) -> Result<(Request, Option<NamedPolicy>, Vec<NamedPolicy>), PolicyError> {
        let mut principal = match (&self.session_role, self.principal.as_str()) {
            (Some(role), session_arn) => {
                let session = session_arn.rsplit('/').next().unwrap_or_default();
                Principal::role_session(role, session)?
            }
            (None, ANONYMOUS) => Principal::anonymous(),
            (None, arn) if arn.contains(':') => Principal::from_arn(arn)?,
            (None, service) => Principal::service(service),
        };
        if let Some(id) = &self.unique_id {
            principal = principal.with_unique_id(id);
        }
        let mut request = Request::new(principal, &self.action, &self.resource);
        for (key, values) in &self.context {
            request = request.with_context_values(key, values.iter().cloned());
        }
        let resource_policy = match &self.resource_policy {
            Some((kind, document)) => Some(NamedPolicy::new(
                *kind,
                &format!("{kind}-policy"),
                PolicyDocument::from_value(document)?,
            )?),
            None => None,
        };
        let identity = self
            .identity
            .iter()
            .enumerate()
            .map(|(i, d)| {
                NamedPolicy::new(
                    PolicyKind::Identity,
                    &format!("identity-{i}"),
                    PolicyDocument::from_value(d)?,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((request, resource_policy, identity))
    }

    /// Runs the crate's evaluator: trust rules when a trust policy is given.
    pub fn decide(&self) -> Result<Decision, PolicyError> {
        let (request, resource_policy, identity) = self.build()?;
        Ok(match &resource_policy {
            Some(trust) if trust.kind() == PolicyKind::Trust => {
                authorize_assume_role(&request, trust, &identity)
            }
            other => authorize(&request, other.as_ref(), &identity),
        })
    }

    /// Asserts that the crate decides as the rule says.
    pub fn check(&self) {
        let decision = match self.decide() {
            Ok(d) => d,
            Err(e) => panic!("rule {}: case does not build: {e}", self.name),
        };
        assert_eq!(
            decision.reason,
            self.expected.reason(),
            "rule {}: got {decision}",
            self.name
        );
        assert_eq!(
            decision.allowed,
            self.expected == Expected::Allow,
            "rule {}",
            self.name
        );
    }

    /// The case as JSON for the cross-check script, with the crate's decision.
    pub fn to_crosscheck_json(&self) -> Result<Value, PolicyError> {
        let (request, _, _) = self.build()?;
        let decision = self.decide()?;
        let context: serde_json::Map<String, Value> = request
            .context
            .iter()
            .map(|(key, values)| {
                let value = match values {
                    [single] => json!(single),
                    many => json!(many),
                };
                (key.to_owned(), value)
            })
            .collect();
        let identity: Vec<Value> = self
            .identity
            .iter()
            .enumerate()
            .map(|(i, d)| json!({"name": format!("identity-{i}"), "policy": d}))
            .collect();
        Ok(json!({
            "name": self.name,
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "resourceAccount": request.resource_account().unwrap_or(""),
            "context": context,
            "identityPolicies": identity,
            "resourcePolicy": self.resource_policy.as_ref().map(|(_, d)| d.clone()),
            "ours": verdict(&decision),
            "ourExplanation": decision.to_string(),
        }))
    }
}

/// Declares the table once: as `rule_cases()` and as one rstest case per row.
macro_rules! rule_table {
    ($($name:ident => $case:expr,)*) => {
        /// Every rule case, named.
        pub fn rule_cases() -> Vec<RuleCase> {
            vec![$( $case.named(stringify!($name)), )*]
        }

        #[cfg(test)]
        mod table {
            use super::*;

            #[rstest::rstest]
            $( #[case::$name($case.named(stringify!($name)))] )*
            fn aws_rule_holds(#[case] case: RuleCase) {
                case.check();
            }
        }
    };
}

use Expected::{ExplicitDeny, NoIdentity, NoResource, RootCannotAssume};
use PolicyKind::{Identity, Resource, Trust};

rule_table! {
    // --- single policy set: deny, allow, default deny -----------------------
    default_deny_without_policies => invoke(SESSION_A).expect(NoIdentity),
    identity_allow_grants_in_same_account => invoke(SESSION_A).identity(allow(INVOKE, FUNCTION)),
    explicit_deny_beats_allow => invoke(SESSION_A)
        .identity(policy(json!([
            {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
            {"Effect": "Deny", "Action": INVOKE, "Resource": FUNCTION}])))
        .expect(ExplicitDeny(Identity)),
    deny_in_another_identity_policy_wins => invoke(SESSION_A)
        .identity(allow(INVOKE, "*")).identity(deny("lambda:*", "*"))
        .expect(ExplicitDeny(Identity)),
    resource_policy_deny_beats_identity_allow => invoke(SESSION_A)
        .identity(allow(INVOKE, "*"))
        .resource_policy(policy(json!([{"Effect": "Deny", "Principal": "*", "Action": INVOKE, "Resource": FUNCTION}])))
        .expect(ExplicitDeny(Resource)),
    deny_whose_condition_fails_leaves_allow => invoke(SESSION_A)
        .identity(allow(INVOKE, "*"))
        .identity(policy(json!([{"Effect": "Deny", "Action": "*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalAccount": B}}}]))),
    statement_as_single_object => invoke(SESSION_A)
        .identity(json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": INVOKE, "Resource": FUNCTION}})),

    // --- Action / NotAction ------------------------------------------------
    action_match_is_case_insensitive => invoke(SESSION_A).identity(allow("LAMBDA:invokefunction", FUNCTION)),
    action_star_matches_everything => invoke(SESSION_A).identity(allow("*", FUNCTION)),
    action_prefix_wildcard => invoke(SESSION_A).identity(allow("lambda:Invoke*", FUNCTION)),
    action_question_mark_is_one_character => invoke(SESSION_A).identity(allow("lambda:InvokeFunctio?", FUNCTION)),
    action_of_other_operation_does_not_match => invoke(SESSION_A).identity(allow("lambda:Get*", FUNCTION)).expect(NoIdentity),
    action_of_other_service_does_not_match => invoke(SESSION_A).identity(allow("sts:*", "*")).expect(NoIdentity),
    not_action_allows_unlisted_actions => invoke(SESSION_A)
        .identity(policy(json!([{"Effect": "Allow", "NotAction": "sts:*", "Resource": "*"}]))),
    not_action_excludes_listed_actions => invoke(SESSION_A)
        .identity(policy(json!([{"Effect": "Allow", "NotAction": "lambda:*", "Resource": "*"}])))
        .expect(NoIdentity),
    deny_with_not_action_spares_listed_action => invoke(SESSION_A)
        .identity(allow("*", "*"))
        .identity(policy(json!([{"Effect": "Deny", "NotAction": INVOKE, "Resource": "*"}]))),

    // --- Resource / NotResource ------------------------------------------------
    resource_other_function_does_not_match => invoke(SESSION_A)
        .identity(allow(INVOKE, "arn:aws:lambda:us-east-1:111111111111:function:other")).expect(NoIdentity),
    resource_wildcard_within_name => invoke(SESSION_A)
        .identity(allow(INVOKE, "arn:aws:lambda:us-east-1:111111111111:function:servicenow-*")),
    resource_question_mark_is_one_character => invoke(SESSION_A)
        .identity(allow(INVOKE, "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert?")),
    resource_region_wildcard_stays_in_its_field => invoke(SESSION_A)
        .identity(allow(INVOKE, "arn:aws:lambda:*:111111111111:function:servicenow-alerts")),
    resource_wildcard_does_not_swallow_the_account_field => invoke(SESSION_A)
        .identity(allow(INVOKE, "arn:aws:lambda:us-*:function:servicenow-alerts")).expect(NoIdentity),
    resource_match_is_case_sensitive => invoke(SESSION_A)
        .identity(allow(INVOKE, "arn:aws:lambda:us-east-1:111111111111:function:ServiceNow-Alerts")).expect(NoIdentity),
    resource_in_other_account_does_not_match => invoke(SESSION_A)
        .identity(allow(INVOKE, "arn:aws:lambda:us-east-1:222222222222:function:servicenow-alerts")).expect(NoIdentity),
    not_resource_excludes_listed_resource => invoke(SESSION_A)
        .identity(policy(json!([{"Effect": "Allow", "Action": INVOKE, "NotResource": FUNCTION}]))).expect(NoIdentity),
    not_resource_allows_unlisted_resources => invoke(SESSION_A)
        .identity(policy(json!([{"Effect": "Allow", "Action": INVOKE, "NotResource": "arn:aws:lambda:*:*:function:other"}]))),

    // --- Lambda qualified ARNs ---------------------------------------------------
    unqualified_permission_does_not_cover_alias => request(SESSION_A, INVOKE, FUNCTION_ALIAS)
        .identity(allow(INVOKE, FUNCTION)).expect(NoIdentity),
    qualifier_wildcard_covers_alias => request(SESSION_A, INVOKE, FUNCTION_ALIAS)
        .identity(allow(INVOKE, &format!("{FUNCTION}:*"))),
    qualifier_wildcard_does_not_cover_unqualified_arn => invoke(SESSION_A)
        .identity(allow(INVOKE, &format!("{FUNCTION}:*"))).expect(NoIdentity),
    trailing_star_on_name_covers_alias => request(SESSION_A, INVOKE, FUNCTION_ALIAS)
        .identity(allow(INVOKE, &format!("{FUNCTION}*"))),
    function_policy_on_alias_does_not_cover_unqualified => invoke(ROOT_B)
        .resource_policy(policy(json!([{"Effect": "Allow", "Principal": {"AWS": B}, "Action": INVOKE, "Resource": FUNCTION_ALIAS}])))
        .expect(NoResource),

    // --- Lambda: identity + function policy ----------------------------------------
    same_account_function_policy_naming_role_allows_alone => invoke(SESSION_A)
        .resource_policy(function_policy(json!({"AWS": ROLE}))),
    same_account_function_policy_naming_account_needs_identity => invoke(SESSION_A)
        .resource_policy(function_policy(json!({"AWS": A}))).expect(NoIdentity),
    same_account_identity_allows_when_function_policy_is_silent => invoke(SESSION_A)
        .identity(allow(INVOKE, FUNCTION))
        .resource_policy(function_policy(json!({"AWS": B}))),
    cross_account_needs_function_policy_and_identity => invoke(SESSION_B)
        .identity(allow(INVOKE, FUNCTION))
        .resource_policy(function_policy(json!({"AWS": B}))),
    cross_account_function_policy_alone_is_not_enough => invoke(SESSION_B)
        .resource_policy(function_policy(json!({"AWS": B}))).expect(NoIdentity),
    cross_account_identity_alone_is_not_enough => invoke(SESSION_B)
        .identity(allow(INVOKE, FUNCTION)).expect(NoResource),
    cross_account_function_policy_for_other_account => invoke(SESSION_B)
        .identity(allow(INVOKE, FUNCTION))
        .resource_policy(function_policy(json!({"AWS": "333333333333"}))).expect(NoResource),
    cross_account_naming_the_role_still_needs_identity => invoke(SESSION_B)
        .resource_policy(function_policy(json!({"AWS": INVOKER_ROLE}))).expect(NoIdentity),
    cross_account_explicit_deny_in_function_policy => invoke(SESSION_B)
        .identity(allow(INVOKE, FUNCTION))
        .resource_policy(policy(json!([
            {"Effect": "Allow", "Principal": {"AWS": B}, "Action": INVOKE, "Resource": FUNCTION},
            {"Effect": "Deny", "Principal": {"AWS": INVOKER_ROLE}, "Action": INVOKE, "Resource": FUNCTION}])))
        .expect(ExplicitDeny(Resource)),
    service_principal_allowed_by_function_policy => invoke("s3.amazonaws.com")
        .ctx("aws:SourceArn", "arn:aws:s3:::alerts-bucket")
        .resource_policy(policy(json!([{"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
            "Action": INVOKE, "Resource": FUNCTION,
            "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::alerts-*"}}}]))),
    service_principal_of_other_service_denied => invoke("sns.amazonaws.com")
        .resource_policy(function_policy(json!({"Service": "s3.amazonaws.com"}))).expect(NoResource),
    service_principal_source_arn_mismatch_denied => invoke("s3.amazonaws.com")
        .ctx("aws:SourceArn", "arn:aws:s3:::other-bucket")
        .resource_policy(policy(json!([{"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
            "Action": INVOKE, "Resource": FUNCTION,
            "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::alerts-*"}}}])))
        .expect(NoResource),
    root_needs_no_identity_policy_in_own_account => invoke(ROOT_A),
    root_of_other_account_needs_function_policy => invoke(ROOT_B).expect(NoResource),
    root_of_other_account_allowed_by_account_principal => invoke(ROOT_B)
        .resource_policy(function_policy(json!({"AWS": ROOT_B}))),
    wildcard_principal_in_function_policy_allows_same_account => invoke(SESSION_A)
        .resource_policy(function_policy(json!("*"))),

    // --- KMS key policies -------------------------------------------------------------
    // "Unless the key policy explicitly allows it, you cannot use IAM policies to allow access
    // to a KMS key. Without permission from the key policy, IAM policies that allow permissions
    // have no effect." (AWS KMS Developer Guide, "Key policies in AWS KMS")
    kms_identity_policy_alone_cannot_use_a_key => request(USER_A, DECRYPT, KEY)
        .identity(allow("kms:*", "*"))
        .resource_policy(key_policy(json!({"AWS": "arn:aws:iam::111111111111:role/KeyAdmin"})))
        .expect(NoResource),
    kms_key_without_key_policy_statement_for_anyone_denies => request(USER_A, DECRYPT, KEY)
        .identity(allow(DECRYPT, KEY))
        .expect(NoResource),
    // "To use an IAM policy to control access to a KMS key, the key policy for the KMS key must
    // give the account permission to use IAM policies. Specifically, the key policy must
    // include the policy statement that enables IAM policies." (KMS Developer Guide, "Using
    // IAM policies with AWS KMS")
    kms_key_policy_enabling_iam_policies_delegates_to_identity => request(USER_A, DECRYPT, KEY)
        .identity(allow(DECRYPT, KEY))
        .resource_policy(key_policy(json!({"AWS": ROOT_A}))),
    kms_key_policy_enabling_iam_policies_still_needs_identity => request(USER_A, DECRYPT, KEY)
        .resource_policy(key_policy(json!({"AWS": ROOT_A})))
        .expect(NoIdentity),
    // "The statements in the key policy determine who has permission to use the KMS key and
    // how they can use it." (KMS Developer Guide, "Key policies in AWS KMS")
    kms_key_policy_naming_the_caller_needs_no_identity_policy => request(USER_A, DECRYPT, KEY)
        .resource_policy(key_policy(json!({"AWS": USER_A}))),
    // "No AWS principal, including the account root user or key creator, has any permissions to
    // a KMS key unless they are explicitly allowed, and never denied, in a key policy, IAM
    // policy, or grant." (same page)
    kms_root_user_needs_the_key_policy_too => request(ROOT_A, DECRYPT, KEY)
        .resource_policy(key_policy(json!({"AWS": USER_A})))
        .expect(NoResource),
    kms_root_user_allowed_by_account_statement => request(ROOT_A, DECRYPT, KEY)
        .resource_policy(key_policy(json!({"AWS": ROOT_A}))),
    // "You can use an IAM policy to deny a permission to a KMS key without permission from a
    // key policy." (same page)
    kms_identity_deny_needs_no_key_policy => request(USER_A, DECRYPT, KEY)
        .identity(deny("kms:*", "*"))
        .resource_policy(key_policy(json!({"AWS": USER_A})))
        .expect(ExplicitDeny(Identity)),
    // "The key policy for the KMS key must give the external account (or users and roles in the
    // external account) permission to use the KMS key. ... IAM policies in the external account
    // must delegate the key policy permissions to its users and roles." (KMS Developer Guide,
    // "Allowing users in other accounts to use a KMS key")
    kms_cross_account_needs_key_policy_and_identity => request(SESSION_B, DECRYPT, KEY)
        .identity(allow(DECRYPT, KEY))
        .resource_policy(key_policy(json!({"AWS": ROOT_B}))),
    kms_cross_account_key_policy_naming_the_role_still_needs_identity => request(SESSION_B, DECRYPT, KEY)
        .resource_policy(key_policy(json!({"AWS": INVOKER_ROLE})))
        .expect(NoIdentity),
    kms_cross_account_identity_alone_is_not_enough => request(SESSION_B, DECRYPT, KEY)
        .identity(allow(DECRYPT, KEY))
        .resource_policy(key_policy(json!({"AWS": ROOT_A})))
        .expect(NoResource),
    // The alias itself is not a key: "kms:CreateAlias for the alias. Provide this permission in
    // an IAM policy that is attached to the principal who is allowed to create the alias." (KMS
    // Developer Guide, "Controlling access to aliases"; the key's own kms:CreateAlias is a
    // separate request on the key.)
    kms_alias_is_not_governed_by_a_key_policy => request(USER_A, "kms:CreateAlias",
            "arn:aws:kms:us-east-1:111111111111:alias/alerts")
        .identity(allow("kms:CreateAlias", "arn:aws:kms:us-east-1:111111111111:alias/*")),

    // --- Federated users, anonymous callers ---------------------------------------------
    // "To specify the federated user session ARN in the Principal element, use the following
    // format: "Principal": { "AWS": "arn:aws:sts::AWS-account-ID:federated-user/user-name" }"
    // (IAM User Guide, "AWS JSON policy elements: Principal", federated user sessions).
    federated_user_named_in_function_policy => invoke(FEDERATED_A)
        .resource_policy(function_policy(json!({"AWS": FEDERATED_A}))),
    federated_user_of_other_name_not_matched => invoke(FEDERATED_A)
        .resource_policy(function_policy(json!({"AWS": "arn:aws:sts::111111111111:federated-user/carol"})))
        .expect(NoIdentity),
    // "AWS STS federated user sessions – The request context contains the following value for
    // condition key aws:PrincipalArn: arn:aws:sts::123456789012:federated-user/user-name"
    // (IAM User Guide, global condition keys, aws:PrincipalArn).
    federated_user_principal_arn_is_its_session_arn => invoke(FEDERATED_A)
        .identity(allow_invoke_if(json!({"ArnEquals": {"aws:PrincipalArn": FEDERATED_A}}))),
    // Principal key values table (IAM User Guide, policy variables): for an AWS STS federated
    // user, aws:username is not present, aws:userid is account:caller-specified-name and
    // aws:PrincipalType is FederatedUser.
    federated_user_type_and_userid => invoke(FEDERATED_A)
        .identity(allow_invoke_if(json!({"StringEquals": {"aws:PrincipalType": "FederatedUser", "aws:userid": "111111111111:bob"},
                                         "Null": {"aws:username": "true"}}))),
    // "For resource-based policies, using a wildcard (*) with an Allow effect grants access to
    // all users, including anonymous users (public access)." (IAM User Guide, Principal, All
    // principals)
    anonymous_allowed_by_wildcard_principal => request(ANONYMOUS, "s3:GetObject", PUBLIC_OBJECT)
        .resource_policy(policy(json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::public-reports/*"}]))),
    // "For anonymous users, the following elements are equivalent: "Principal": "*" and
    // "Principal" : { "AWS" : "*" }" (same section).
    anonymous_allowed_by_aws_wildcard_principal => request(ANONYMOUS, "s3:GetObject", PUBLIC_OBJECT)
        .resource_policy(policy(json!([{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::public-reports/*"}]))),
    anonymous_not_matched_by_account_principal => request(ANONYMOUS, "s3:GetObject", PUBLIC_OBJECT)
        .resource_policy(policy(json!([{"Effect": "Allow", "Principal": {"AWS": A}, "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::public-reports/*"}])))
        .expect(NoResource),
    anonymous_without_resource_policy_denied => request(ANONYMOUS, "s3:GetObject", PUBLIC_OBJECT)
        .expect(NoResource),
    // Principal key values table: for an anonymous caller aws:userid is anonymous and
    // aws:PrincipalType is Anonymous; aws:PrincipalAccount: "For anonymous requests, the request
    // context returns anonymous"; aws:PrincipalArn: "Anonymous requests do not include this
    // key" (IAM User Guide, global condition keys).
    anonymous_principal_keys => request(ANONYMOUS, "s3:GetObject", PUBLIC_OBJECT)
        .resource_policy(policy(json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::public-reports/*",
            "Condition": {"StringEquals": {"aws:PrincipalType": "Anonymous", "aws:userid": "anonymous",
                                           "aws:PrincipalAccount": "anonymous"},
                          "Null": {"aws:PrincipalArn": "true"}}}]))),

    // --- Role paths in aws:PrincipalArn ------------------------------------------------------
    // "For IAM roles, the request context returns the ARN of the role, not the ARN of the user
    // that assumed the role" (IAM User Guide, aws:PrincipalArn), and a role's ARN is
    // "arn:aws:iam::account:role/role-name-with-path" while a session's is
    // "arn:aws:sts::account:assumed-role/role-name/role-session-name" (IAM User Guide, IAM
    // identifiers, IAM ARNs).
    role_session_principal_arn_keeps_the_role_path => request_by_session(ROLE_WITH_PATH, "s1", INVOKE, FUNCTION)
        .identity(allow_invoke_if(json!({"ArnEquals": {"aws:PrincipalArn": ROLE_WITH_PATH}}))),
    role_session_principal_arn_without_the_path_does_not_match => request_by_session(ROLE_WITH_PATH, "s1", INVOKE, FUNCTION)
        .identity(allow_invoke_if(json!({"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/PathInvoker"}})))
        .expect(NoIdentity),
    role_session_principal_arn_path_wildcard => request_by_session(ROLE_WITH_PATH, "s1", INVOKE, FUNCTION)
        .identity(allow_invoke_if(json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/team/*"}}))),
    role_session_with_path_matched_by_role_principal => request_by_session(ROLE_WITH_PATH, "s1", INVOKE, FUNCTION)
        .resource_policy(function_policy(json!({"AWS": ROLE_WITH_PATH}))),

    // --- Global keys every request carries ------------------------------------------------------
    // Principal key values table: the root user's aws:userid is the account id and its
    // aws:PrincipalType is Account.
    root_userid_is_the_account_id => invoke(ROOT_A)
        .resource_policy(policy(json!([{"Effect": "Deny", "Principal": "*", "Action": INVOKE, "Resource": FUNCTION,
            "Condition": {"StringEquals": {"aws:userid": A, "aws:PrincipalType": "Account"}}}])))
        .expect(ExplicitDeny(Resource)),
    // aws:username: "This key is always included in the request context for IAM users";
    // it holds the user's friendly name (IAM User Guide, policy variables).
    user_username_is_the_friendly_name => request("arn:aws:iam::111111111111:user/ops/alice", INVOKE, FUNCTION)
        .identity(allow_invoke_if(json!({"StringEquals": {"aws:username": "alice", "aws:PrincipalType": "User"}}))),
    // aws:username: "requests that are made using the AWS account root user or IAM roles do not
    // include this key"; Principal key values table: an assumed role's aws:userid is
    // role-id:caller-specified-role-name.
    role_session_userid_and_no_username => invoke(SESSION_A).unique_id("AROAEXAMPLEID")
        .identity(allow_invoke_if(json!({"StringEquals": {"aws:userid": "AROAEXAMPLEID:s1", "aws:PrincipalType": "AssumedRole"},
                                         "Null": {"aws:username": "true"}}))),
    // aws:CurrentTime, aws:EpochTime, aws:RequestedRegion: "Availability – This key is always
    // included in the request context." (IAM User Guide, global condition keys)
    time_and_region_keys_always_present => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"Null": {"aws:CurrentTime": "false", "aws:EpochTime": "false"},
                                         "StringEquals": {"aws:RequestedRegion": "us-east-1"}}))),

    // --- NotPrincipal ----------------------------------------------------------------
    not_principal_deny_exempts_a_fully_listed_chain => invoke(SESSION_B)
        .identity(allow(INVOKE, FUNCTION))
        .resource_policy(policy(json!([
            {"Effect": "Allow", "Principal": {"AWS": B}, "Action": INVOKE, "Resource": FUNCTION},
            {"Effect": "Deny", "NotPrincipal": {"AWS": [SESSION_B, INVOKER_ROLE, ROOT_B]}, "Action": INVOKE, "Resource": FUNCTION}]))),
    not_principal_deny_listing_only_the_role_denies_its_session => invoke(SESSION_B)
        .identity(allow(INVOKE, FUNCTION))
        .resource_policy(policy(json!([
            {"Effect": "Allow", "Principal": {"AWS": B}, "Action": INVOKE, "Resource": FUNCTION},
            {"Effect": "Deny", "NotPrincipal": {"AWS": INVOKER_ROLE}, "Action": INVOKE, "Resource": FUNCTION}])))
        .expect(ExplicitDeny(Resource)),
    not_principal_deny_hits_unlisted_principal => invoke(SESSION_B)
        .identity(allow(INVOKE, FUNCTION))
        .resource_policy(policy(json!([
            {"Effect": "Allow", "Principal": {"AWS": B}, "Action": INVOKE, "Resource": FUNCTION},
            {"Effect": "Deny", "NotPrincipal": {"AWS": [USER_A, ROOT_A]}, "Action": INVOKE, "Resource": FUNCTION}])))
        .expect(ExplicitDeny(Resource)),
    not_principal_allow_grants_everyone_else => invoke(SESSION_A)
        .resource_policy(policy(json!([
            {"Effect": "Allow", "NotPrincipal": {"AWS": USER_A}, "Action": INVOKE, "Resource": FUNCTION}]))),

    // --- sts:AssumeRole ---------------------------------------------------------------
    trust_naming_caller_account_plus_identity_allows_cross_account => assume(SESSION_B)
        .trust(trust_policy(json!({"AWS": ROOT_B})))
        .identity(allow(ASSUME, ROLE)),
    trust_without_identity_policy_denies_cross_account => assume(SESSION_B)
        .trust(trust_policy(json!({"AWS": ROOT_B}))).expect(NoIdentity),
    trust_naming_other_account_denies => assume(SESSION_B)
        .trust(trust_policy(json!({"AWS": "333333333333"})))
        .identity(allow(ASSUME, ROLE)).expect(NoResource),
    trust_naming_caller_role_matches_its_session => assume(SESSION_B)
        .trust(trust_policy(json!({"AWS": INVOKER_ROLE})))
        .identity(allow(ASSUME, ROLE)),
    trust_naming_other_role_denies => assume(SESSION_B)
        .trust(trust_policy(json!({"AWS": "arn:aws:iam::222222222222:role/Other"})))
        .identity(allow(ASSUME, ROLE)).expect(NoResource),
    trust_naming_exact_session_matches => assume(SESSION_B)
        .trust(trust_policy(json!({"AWS": SESSION_B})))
        .identity(allow(ASSUME, ROLE)),
    trust_direct_principal_still_needs_identity_cross_account => assume(SESSION_B)
        .trust(trust_policy(json!({"AWS": INVOKER_ROLE}))).expect(NoIdentity),
    trust_wildcard_principal_with_identity_allows => assume(SESSION_B)
        .trust(trust_policy(json!({"AWS": "*"})))
        .identity(allow(ASSUME, ROLE)),
    trust_same_account_user_named_directly_needs_no_identity => request(USER_A, ASSUME, ROLE)
        .trust(trust_policy(json!({"AWS": USER_A}))),
    trust_same_account_account_principal_needs_identity => request(USER_A, ASSUME, ROLE)
        .trust(trust_policy(json!({"AWS": A}))).expect(NoIdentity),
    trust_same_account_account_principal_with_identity_allows => request(USER_A, ASSUME, ROLE)
        .trust(trust_policy(json!({"AWS": A})))
        .identity(allow(ASSUME, ROLE)),
    trust_required_even_in_same_account => request(USER_A, ASSUME, ROLE)
        .trust(trust_policy(json!({"Service": "lambda.amazonaws.com"})))
        .identity(allow(ASSUME, "*")).expect(NoResource),
    trust_explicit_deny_wins => assume(SESSION_B)
        .trust(policy(json!([
            {"Effect": "Allow", "Principal": {"AWS": ROOT_B}, "Action": ASSUME},
            {"Effect": "Deny", "Principal": {"AWS": INVOKER_ROLE}, "Action": ASSUME}])))
        .identity(allow(ASSUME, ROLE))
        .expect(ExplicitDeny(Trust)),
    identity_deny_on_assume_role_wins => assume(SESSION_B)
        .trust(trust_policy(json!({"AWS": ROOT_B})))
        .identity(allow(ASSUME, ROLE)).identity(deny("sts:*", "*"))
        .expect(ExplicitDeny(Identity)),
    identity_allowing_other_role_is_not_enough => assume(SESSION_B)
        .trust(trust_policy(json!({"AWS": ROOT_B})))
        .identity(allow(ASSUME, "arn:aws:iam::111111111111:role/Other")).expect(NoIdentity),
    root_cannot_assume_role => assume(ROOT_B)
        .trust(trust_policy(json!({"AWS": ROOT_B}))).expect(RootCannotAssume),
    trust_external_id_matches => assume(SESSION_B)
        .ctx("sts:ExternalId", "servicenow")
        .trust(policy(json!([{"Effect": "Allow", "Principal": {"AWS": ROOT_B}, "Action": ASSUME,
            "Condition": {"StringEquals": {"sts:ExternalId": "servicenow"}}}])))
        .identity(allow(ASSUME, ROLE)),
    trust_external_id_missing_denies => assume(SESSION_B)
        .trust(policy(json!([{"Effect": "Allow", "Principal": {"AWS": ROOT_B}, "Action": ASSUME,
            "Condition": {"StringEquals": {"sts:ExternalId": "servicenow"}}}])))
        .identity(allow(ASSUME, ROLE)).expect(NoResource),
    trust_external_id_wrong_denies => assume(SESSION_B)
        .ctx("sts:ExternalId", "ServiceNow")
        .trust(policy(json!([{"Effect": "Allow", "Principal": {"AWS": ROOT_B}, "Action": ASSUME,
            "Condition": {"StringEquals": {"sts:ExternalId": "servicenow"}}}])))
        .identity(allow(ASSUME, ROLE)).expect(NoResource),
    trust_source_identity_like => assume(SESSION_B)
        .ctx("sts:SourceIdentity", "alerts-invoker")
        .trust(policy(json!([{"Effect": "Allow", "Principal": {"AWS": ROOT_B}, "Action": ASSUME,
            "Condition": {"StringLike": {"sts:SourceIdentity": "alerts-*"}}}])))
        .identity(allow(ASSUME, ROLE)),

    // --- Condition combination -------------------------------------------------------------
    condition_values_are_ored => invoke(SESSION_A).ctx("aws:RequestTag/team", "ops")
        .identity(allow_invoke_if(json!({"StringEquals": {"aws:RequestTag/team": ["dev", "ops"]}}))),
    condition_keys_are_anded => invoke(SESSION_A).ctx("aws:RequestTag/team", "ops")
        .identity(allow_invoke_if(json!({"StringEquals": {"aws:RequestTag/team": "ops", "aws:PrincipalAccount": B}})))
        .expect(NoIdentity),
    condition_operators_are_anded => invoke(SESSION_A).ctx("aws:RequestTag/team", "ops")
        .identity(allow_invoke_if(json!({"StringEquals": {"aws:RequestTag/team": "ops"},
                                         "StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}})))
        .expect(NoIdentity),
    condition_key_is_case_insensitive => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"StringEquals": {"AWS:PRINCIPALACCOUNT": A}}))),

    // --- String operators --------------------------------------------------------------------
    string_equals_matches => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"StringEquals": {"aws:PrincipalAccount": A}}))),
    string_equals_value_is_case_sensitive => invoke(SESSION_A).ctx("aws:RequestTag/team", "Ops")
        .identity(allow_invoke_if(json!({"StringEquals": {"aws:RequestTag/team": "ops"}}))).expect(NoIdentity),
    string_equals_absent_key_is_false => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"StringEquals": {"aws:RequestTag/team": "ops"}}))).expect(NoIdentity),
    string_not_equals_absent_key_is_true => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"StringNotEquals": {"aws:RequestTag/team": "ops"}}))),
    string_not_equals_excludes_every_listed_value => invoke(SESSION_A).ctx("aws:RequestTag/team", "ops")
        .identity(allow_invoke_if(json!({"StringNotEquals": {"aws:RequestTag/team": ["dev", "ops"]}}))).expect(NoIdentity),
    string_equals_ignore_case_matches => invoke(SESSION_A).ctx("aws:RequestTag/team", "OPS")
        .identity(allow_invoke_if(json!({"StringEqualsIgnoreCase": {"aws:RequestTag/team": "ops"}}))),
    string_not_equals_ignore_case_rejects_case_variant => invoke(SESSION_A).ctx("aws:RequestTag/team", "OPS")
        .identity(allow_invoke_if(json!({"StringNotEqualsIgnoreCase": {"aws:RequestTag/team": "ops"}}))).expect(NoIdentity),
    string_like_wildcards => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/Cross*Invok?"}}))),
    string_not_like_excludes_match => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"StringNotLike": {"aws:PrincipalArn": "*CrossAccount*"}}))).expect(NoIdentity),
    string_like_is_case_sensitive => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"StringLike": {"aws:PrincipalArn": "*crossaccount*"}}))).expect(NoIdentity),

    // --- ARN operators ----------------------------------------------------------------------
    arn_equals_matches => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"ArnEquals": {"aws:PrincipalArn": ROLE}}))),
    arn_like_wildcard_in_account_field => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/CrossAccount*"}}))),
    arn_like_wildcard_stays_within_its_field => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:*:role/CrossAccountInvoke"}}))).expect(NoIdentity),
    arn_not_like_excludes_match => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/*"}}))).expect(NoIdentity),
    arn_not_equals_absent_key_is_true => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"ArnNotEquals": {"aws:SourceArn": "arn:aws:s3:::alerts-bucket"}}))),
    arn_like_absent_key_is_false => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"}}))).expect(NoIdentity),

    // --- Bool / Null ---------------------------------------------------------------------------
    bool_true_matches => invoke(SESSION_A).ctx("aws:SecureTransport", "true")
        .identity(allow_invoke_if(json!({"Bool": {"aws:SecureTransport": "true"}}))),
    bool_json_boolean_value => invoke(SESSION_A).ctx("aws:SecureTransport", "true")
        .identity(allow_invoke_if(json!({"Bool": {"aws:SecureTransport": true}}))),
    bool_mismatch_denies => invoke(SESSION_A).ctx("aws:SecureTransport", "false")
        .identity(allow_invoke_if(json!({"Bool": {"aws:SecureTransport": "true"}}))).expect(NoIdentity),
    bool_if_exists_absent_key_is_true => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}))),
    bool_if_exists_present_key_compares => invoke(SESSION_A).ctx("aws:MultiFactorAuthPresent", "false")
        .identity(allow_invoke_if(json!({"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}))).expect(NoIdentity),
    null_true_holds_when_key_absent => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"Null": {"aws:SourceIdentity": "true"}}))),
    null_true_fails_when_key_present => invoke(SESSION_A).ctx("aws:SourceIdentity", "bob")
        .identity(allow_invoke_if(json!({"Null": {"aws:SourceIdentity": "true"}}))).expect(NoIdentity),
    null_false_holds_when_key_present => invoke(SESSION_A).ctx("aws:SourceIdentity", "bob")
        .identity(allow_invoke_if(json!({"Null": {"aws:SourceIdentity": "false"}}))),
    null_false_fails_when_key_absent => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"Null": {"aws:SourceIdentity": "false"}}))).expect(NoIdentity),

    // --- Numeric -------------------------------------------------------------------------------
    numeric_less_than_matches => invoke(SESSION_A).ctx("aws:MultiFactorAuthAge", "300")
        .identity(allow_invoke_if(json!({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}))),
    numeric_greater_than_equals_includes_boundary => invoke(SESSION_A).ctx("aws:MultiFactorAuthAge", "3600")
        .identity(allow_invoke_if(json!({"NumericGreaterThanEquals": {"aws:MultiFactorAuthAge": 3600}}))),
    numeric_greater_than_excludes_boundary => invoke(SESSION_A).ctx("aws:MultiFactorAuthAge", "3600")
        .identity(allow_invoke_if(json!({"NumericGreaterThan": {"aws:MultiFactorAuthAge": "3600"}}))).expect(NoIdentity),
    numeric_equals_compares_numbers_not_text => invoke(SESSION_A).ctx("aws:MultiFactorAuthAge", "60.0")
        .identity(allow_invoke_if(json!({"NumericEquals": {"aws:MultiFactorAuthAge": "60"}}))),
    numeric_not_equals_absent_key_is_true => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"NumericNotEquals": {"aws:MultiFactorAuthAge": "60"}}))),
    numeric_absent_key_is_false => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"NumericLessThanEquals": {"aws:MultiFactorAuthAge": "3600"}}))).expect(NoIdentity),
    numeric_non_number_never_matches => invoke(SESSION_A).ctx("aws:MultiFactorAuthAge", "soon")
        .identity(allow_invoke_if(json!({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}))).expect(NoIdentity),

    // --- Date ----------------------------------------------------------------------------------
    date_greater_than_iso8601 => invoke(SESSION_A).ctx("aws:CurrentTime", "2026-05-01T12:00:00Z")
        .identity(allow_invoke_if(json!({"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}))),
    date_less_than_iso8601_fails_after => invoke(SESSION_A).ctx("aws:CurrentTime", "2026-05-01T12:00:00Z")
        .identity(allow_invoke_if(json!({"DateLessThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}))).expect(NoIdentity),
    date_epoch_seconds_policy_value => invoke(SESSION_A).ctx("aws:CurrentTime", "2026-05-01T12:00:00Z")
        .identity(allow_invoke_if(json!({"DateGreaterThanEquals": {"aws:CurrentTime": "1767225600"}}))),
    date_equals_same_instant_other_format => invoke(SESSION_A).ctx("aws:CurrentTime", "2026-01-01T00:00:00Z")
        .identity(allow_invoke_if(json!({"DateEquals": {"aws:CurrentTime": "1767225600"}}))),
    date_not_equals_absent_key_is_true => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"DateNotEquals": {"aws:TokenIssueTime": "2026-01-01T00:00:00Z"}}))),
    date_less_than_equals_absent_key_is_false => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"DateLessThanEquals": {"aws:TokenIssueTime": "2026-01-01T00:00:00Z"}}))).expect(NoIdentity),

    // --- IfExists --------------------------------------------------------------------------------
    string_equals_if_exists_absent_key_is_true => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"StringEqualsIfExists": {"aws:RequestTag/team": "ops"}}))),
    string_equals_if_exists_present_key_compares => invoke(SESSION_A).ctx("aws:RequestTag/team", "dev")
        .identity(allow_invoke_if(json!({"StringEqualsIfExists": {"aws:RequestTag/team": "ops"}}))).expect(NoIdentity),
    numeric_if_exists_absent_key_is_true => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"NumericLessThanIfExists": {"aws:MultiFactorAuthAge": "3600"}}))),

    // --- Set operators -------------------------------------------------------------------------------
    for_any_value_one_value_matches => invoke(SESSION_A).ctx_values("aws:TagKeys", &["team", "cost"])
        .identity(allow_invoke_if(json!({"ForAnyValue:StringEquals": {"aws:TagKeys": ["cost", "owner"]}}))),
    for_any_value_no_value_matches => invoke(SESSION_A).ctx_values("aws:TagKeys", &["team", "cost"])
        .identity(allow_invoke_if(json!({"ForAnyValue:StringEquals": {"aws:TagKeys": "owner"}}))).expect(NoIdentity),
    for_any_value_absent_key_is_false => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"ForAnyValue:StringEquals": {"aws:TagKeys": "owner"}}))).expect(NoIdentity),
    for_all_values_every_value_matches => invoke(SESSION_A).ctx_values("aws:TagKeys", &["team", "cost"])
        .identity(allow_invoke_if(json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "cost", "owner"]}}))),
    for_all_values_one_value_outside_fails => invoke(SESSION_A).ctx_values("aws:TagKeys", &["team", "secret"])
        .identity(allow_invoke_if(json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "cost"]}}))).expect(NoIdentity),
    for_all_values_absent_key_is_true => invoke(SESSION_A)
        .identity(allow_invoke_if(json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "cost"]}}))),
    for_all_values_empty_set_is_true => invoke(SESSION_A).ctx_values("aws:TagKeys", &[])
        .identity(allow_invoke_if(json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}))),
    for_any_value_negated_needs_one_value_outside => invoke(SESSION_A).ctx_values("aws:TagKeys", &["team", "secret"])
        .identity(allow_invoke_if(json!({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["team", "cost"]}}))),
    for_all_values_like_with_wildcards => invoke(SESSION_A).ctx_values("aws:TagKeys", &["team-a", "team-b"])
        .identity(allow_invoke_if(json!({"ForAllValues:StringLike": {"aws:TagKeys": "team-*"}}))),
    negated_operator_without_set_qualifier_on_multivalued_key => invoke(SESSION_A).ctx_values("aws:TagKeys", &["team", "secret"])
        .identity(allow_invoke_if(json!({"StringNotEquals": {"aws:TagKeys": "secret"}}))).expect(NoIdentity),

    // --- IP ------------------------------------------------------------------------------------------
    ip_address_inside_cidr => invoke(SESSION_A).ctx("aws:SourceIp", "10.20.30.40")
        .identity(allow_invoke_if(json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))),
    not_ip_address_rejects_inside_cidr => invoke(SESSION_A).ctx("aws:SourceIp", "10.20.30.40")
        .identity(allow_invoke_if(json!({"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "10.0.0.0/8"]}}))).expect(NoIdentity),

    // --- Policy variables --------------------------------------------------------------------------------
    policy_variable_in_resource => request(USER_A, INVOKE, "arn:aws:lambda:us-east-1:111111111111:function:alice-tools")
        .identity(allow(INVOKE, "arn:aws:lambda:us-east-1:111111111111:function:${aws:username}-*")),
    policy_variable_needs_version_2012 => request(USER_A, INVOKE, "arn:aws:lambda:us-east-1:111111111111:function:alice-tools")
        .identity(json!({"Statement": [{"Effect": "Allow", "Action": INVOKE,
            "Resource": "arn:aws:lambda:us-east-1:111111111111:function:${aws:username}-*"}]}))
        .expect(NoIdentity),
    policy_variable_with_absent_key_does_not_match => invoke(SESSION_A)
        .identity(allow(INVOKE, "arn:aws:lambda:us-east-1:111111111111:function:${aws:username}*"))
        .expect(NoIdentity),
    policy_variable_in_condition_value => invoke(SESSION_A).ctx("aws:RequestTag/account", A)
        .identity(allow_invoke_if(json!({"StringEquals": {"aws:RequestTag/account": "${aws:PrincipalAccount}"}}))),
    // "You can use a policy variable for Condition values in any condition that involves the
    // string operators or the ARN operators" (IAM User Guide, "IAM policy elements: Variables
    // and tags", Condition element).
    policy_variable_in_arn_condition_value => request(USER_A, INVOKE, FUNCTION)
        .ctx("aws:SourceArn", "arn:aws:s3:::alice-uploads")
        .identity(allow_invoke_if(json!({"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::${aws:username}-uploads"}}))),
    policy_variable_holding_a_whole_arn => invoke(SESSION_A).ctx("aws:SourceArn", ROLE)
        .identity(allow_invoke_if(json!({"ArnEquals": {"aws:SourceArn": "${aws:PrincipalArn}"}}))),
    // "You can't use a policy variable with other operators, such as Numeric, Date, Boolean,
    // Binary, IP Address, or Null operators" (same page): the text stays literal.
    policy_variable_is_literal_in_numeric_condition => invoke(SESSION_A)
        .ctx("aws:MultiFactorAuthAge", "300").ctx("aws:RequestTag/max-age", "3600")
        .identity(allow_invoke_if(json!({"NumericLessThan": {"aws:MultiFactorAuthAge": "${aws:RequestTag/max-age}"}})))
        .expect(NoIdentity),
    policy_variable_is_literal_in_bool_condition => invoke(SESSION_A)
        .ctx("aws:SecureTransport", "true").ctx("aws:RequestTag/tls", "true")
        .identity(allow_invoke_if(json!({"Bool": {"aws:SecureTransport": "${aws:RequestTag/tls}"}})))
        .expect(NoIdentity),
    policy_variable_is_literal_in_date_condition => invoke(SESSION_A)
        .ctx("aws:CurrentTime", "2026-05-01T12:00:00Z").ctx("aws:RequestTag/until", "2027-01-01T00:00:00Z")
        .identity(allow_invoke_if(json!({"DateLessThan": {"aws:CurrentTime": "${aws:RequestTag/until}"}})))
        .expect(NoIdentity),
    // "You can use a policy variable in the Resource element, but only in the resource portion
    // of the ARN. This portion of the ARN appears after the fifth colon (:). You can't use a
    // variable to replace parts of the ARN before the fifth colon, such as the service or
    // account" (same page, Resource element).
    policy_variable_in_account_field_is_literal => invoke(SESSION_A)
        .identity(allow(INVOKE, "arn:aws:lambda:us-east-1:${aws:PrincipalAccount}:function:servicenow-alerts"))
        .expect(NoIdentity),
    policy_variable_in_region_field_is_literal => invoke(SESSION_A).ctx("aws:RequestedRegion", "us-east-1")
        .identity(allow(INVOKE, "arn:aws:lambda:${aws:RequestedRegion}:111111111111:function:servicenow-alerts"))
        .expect(NoIdentity),
    // "anonymous users will not populate the ${aws:userid} variable. You can set the default
    // value to anonymous for those users. To add a default value to a variable, surround the
    // default value with single quotes (' '), and separate the variable text and the default
    // value with a comma and space (, )" (same page, "Specifying default values").
    policy_variable_default_applies_when_key_is_absent => invoke(SESSION_A)
        .identity(allow(INVOKE, "arn:aws:lambda:us-east-1:111111111111:function:${aws:username, 'servicenow'}-alerts")),
    policy_variable_default_ignored_when_key_is_present => invoke(USER_A)
        .identity(allow(INVOKE, "arn:aws:lambda:us-east-1:111111111111:function:${aws:username, 'servicenow'}-alerts"))
        .expect(NoIdentity),
    policy_variable_default_in_condition_value => invoke(SESSION_A).ctx("aws:RequestTag/owner", "nobody")
        .identity(allow_invoke_if(json!({"StringEquals": {"aws:RequestTag/owner": "${aws:username, 'nobody'}"}}))),
    // "not present means that the value is not in the current request information, and any
    // attempt to match it fails" (same page, principal key values): no default, no match.
    policy_variable_absent_key_in_condition_does_not_match => invoke(SESSION_A).ctx("aws:RequestTag/owner", "alice")
        .identity(allow_invoke_if(json!({"StringEquals": {"aws:RequestTag/owner": "${aws:username}"}})))
        .expect(NoIdentity),
    // "${*} - use where you need an * (asterisk) character. ${?} - use where you need a ?
    // (question mark) character. ${$} - use where you need a $ (dollar sign) character"
    // (same page, "Special characters").
    policy_variable_escaped_star_is_a_literal_star => invoke(SESSION_A).ctx("aws:RequestTag/name", "report*")
        .identity(allow_invoke_if(json!({"StringLike": {"aws:RequestTag/name": "report${*}"}}))),
    policy_variable_escaped_star_is_not_a_wildcard => invoke(SESSION_A).ctx("aws:RequestTag/name", "report-2026")
        .identity(allow_invoke_if(json!({"StringLike": {"aws:RequestTag/name": "report${*}"}})))
        .expect(NoIdentity),
    policy_variable_escaped_question_mark_is_not_a_wildcard => invoke(SESSION_A).ctx("aws:RequestTag/name", "why!")
        .identity(allow_invoke_if(json!({"StringLike": {"aws:RequestTag/name": "why${?}"}})))
        .expect(NoIdentity),
    policy_variable_escaped_dollar_is_not_a_variable => invoke(USER_A).ctx("aws:RequestTag/name", "${aws:username}")
        .identity(allow_invoke_if(json!({"StringEquals": {"aws:RequestTag/name": "${$}{aws:username}"}}))),
}
