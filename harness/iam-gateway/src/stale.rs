//! What a change may have made stale in the gateway's policy caches.
//!
//! During a deploy, every resource handler that runs is reported to the
//! gateway (`deploy_check.rs`). Dropping every cached policy on each report
//! made each decision that followed read its policies again from an emulator
//! busy deploying: in the scenario suite, with variants deploying next to the
//! scenarios, the gateway's own time per request had a median of 7–19 ms
//! instead of 0.3 ms. A handler changes only its own resource, so only what
//! that resource can hold is dropped: a role's trust and policies, a user's
//! policies, a function's resource policy, the buckets, the keys.
//!
//! Fail closed: a report that does not name its account, and a resource type
//! not known here to hold nothing the gateway reads, drop everything.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

/// What the executor plugin says after a resource handler ran
/// (`POST /_harness/handler-ran`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandlerRan {
    /// The stack's name.
    #[serde(default)]
    pub stack_name: String,
    /// The resource's logical id.
    #[serde(default)]
    pub logical_resource_id: String,
    /// `AWS::IAM::Role`, ...
    #[serde(default)]
    pub resource_type: String,
    /// The stack's account.
    #[serde(default)]
    pub account: Option<String>,
    /// The stack's region.
    #[serde(default)]
    pub region: Option<String>,
    /// The resolved properties the handler got.
    #[serde(default)]
    pub properties: Value,
    /// The resource's properties before this change, for `Modify` and `Remove`.
    #[serde(default)]
    pub previous_properties: Option<Value>,
    /// The resource as the handler left it, with the names it generated;
    /// absent when the handler raised.
    #[serde(default)]
    pub model: Option<Value>,
}

/// What to drop from the caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// Every cached role and policy.
    Everything,
    /// These parts only; none when the change holds nothing the gateway reads.
    Only(BTreeSet<Cached>),
}

/// One part of the caches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cached {
    /// A role's trust policy, ARN and identity policies; every role of the
    /// account when the name is not known.
    Role {
        /// The role's account.
        account: String,
        /// The role's name, without its path.
        name: Option<String>,
    },
    /// A user's identity policies; every user of the account when the name is not known.
    User {
        /// The user's account.
        account: String,
        /// The user's name, without its path.
        name: Option<String>,
    },
    /// A function's resource policies, for every qualifier; every function of
    /// the account when the name is not known.
    Function {
        /// The function's account.
        account: String,
        /// The function's name.
        name: Option<String>,
    },
    /// Every bucket's owner, policy and encryption.
    Buckets,
    /// Every KMS key's policy, and what each alias names.
    Keys,
}

/// What a decision is about to read again, read ahead of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reread {
    /// A function's resource policy, by its unqualified ARN.
    FunctionPolicy(String),
    /// A role's trust policy, ARN and identity policies.
    Role {
        /// The role's account.
        account: String,
        /// The role's name, without its path.
        name: String,
    },
}

/// Services whose resources hold no policy the gateway reads: a handler of
/// theirs leaves the caches as they are.
const HOLD_NO_POLICY: [&str; 8] = [
    "AWS::CloudWatch::",
    "AWS::DynamoDB::",
    "AWS::EC2::",
    "AWS::Events::",
    "AWS::Logs::",
    "AWS::SNS::",
    "AWS::SQS::",
    "AWS::SSM::",
];

impl HandlerRan {
    /// What this run of a handler may have made stale.
    pub fn stale(&self) -> Stale {
        let Some(account) = self.account.as_deref().filter(|a| is_account_id(a)) else {
            return Stale::Everything;
        };
        let kind = self.resource_type.as_str();
        let role = |name| Cached::Role {
            account: account.to_owned(),
            name,
        };
        let user = |name| Cached::User {
            account: account.to_owned(),
            name,
        };
        let parts: BTreeSet<Cached> = match kind {
            "AWS::IAM::Role" | "AWS::IAM::RolePolicy" => self.named("RoleName", role),
            "AWS::IAM::User" | "AWS::IAM::UserPolicy" => self.named("UserName", user),
            "AWS::IAM::UserToGroupAddition" => self.listed("Users", user),
            "AWS::IAM::Policy" => {
                let mut parts = self.listed("Roles", role);
                parts.extend(self.listed("Users", user));
                // A group's policies are its members', which the report does not name.
                if self.mentions("Groups") || parts.is_empty() {
                    parts.insert(role(None));
                    parts.insert(user(None));
                }
                parts
            }
            // A managed policy's new version binds every holder it is
            // attached to, also by a role's or user's own properties; any
            // other IAM resource is not looked into.
            _ if kind.starts_with("AWS::IAM::") => BTreeSet::from([role(None), user(None)]),
            "AWS::Lambda::Url" => self.functions("TargetFunctionArn", account),
            _ if kind.starts_with("AWS::Lambda::") => self.functions("FunctionName", account),
            _ if kind.starts_with("AWS::S3::") => BTreeSet::from([Cached::Buckets]),
            _ if kind.starts_with("AWS::KMS::") => BTreeSet::from([Cached::Keys]),
            _ if HOLD_NO_POLICY.iter().any(|p| kind.starts_with(p)) => BTreeSet::new(),
            _ => return Stale::Everything,
        };
        Stale::Only(parts)
    }

    /// What the first call after this run will read, of what it made
    /// `stale` (this report's [`Self::stale`]): the policy of a function a
    /// Lambda function or permission handler just set, usually read by the
    /// function's first invoke; the roles whose trust or policies a role,
    /// role-policy or inline-policy handler just set, read by the next
    /// AssumeRole of them or a call of their sessions.
    pub fn rereads(&self, stale: &Stale) -> Vec<Reread> {
        let Stale::Only(parts) = stale else {
            return Vec::new();
        };
        let sets_function_policy = matches!(
            self.resource_type.as_str(),
            "AWS::Lambda::Function" | "AWS::Lambda::Permission"
        );
        let sets_role = matches!(
            self.resource_type.as_str(),
            "AWS::IAM::Role" | "AWS::IAM::RolePolicy" | "AWS::IAM::Policy"
        );
        let (account, region) = (self.account.as_deref(), self.region.as_deref());
        parts
            .iter()
            .filter_map(|part| match part {
                Cached::Function {
                    account: owner,
                    name: Some(name),
                } if sets_function_policy && account == Some(owner.as_str()) => {
                    let region = region?;
                    Some(Reread::FunctionPolicy(format!(
                        "arn:aws:lambda:{region}:{owner}:function:{name}"
                    )))
                }
                Cached::Role {
                    account,
                    name: Some(name),
                } if sets_role => Some(Reread::Role {
                    account: account.clone(),
                    name: name.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The property's value in the properties, the previous properties and
    /// the model, wherever it is given.
    fn values(&self, key: &str) -> Vec<&Value> {
        [
            Some(&self.properties),
            self.previous_properties.as_ref(),
            self.model.as_ref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(|props| props.get(key))
        .collect()
    }

    fn mentions(&self, key: &str) -> bool {
        self.values(key)
            .iter()
            .any(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
    }

    /// One part per name the property gives; the whole account's when it gives
    /// none or something else than a name.
    fn named(&self, key: &str, part: impl Fn(Option<String>) -> Cached) -> BTreeSet<Cached> {
        let values = self.values(key);
        let names: Option<BTreeSet<String>> = values
            .iter()
            .map(|v| v.as_str().map(|s| last_segment(s).to_owned()))
            .collect();
        match names {
            Some(names) if !names.is_empty() => names.into_iter().map(|n| part(Some(n))).collect(),
            _ => BTreeSet::from([part(None)]),
        }
    }

    /// One part per name in the property's lists; the whole account's when a
    /// list holds something else than names. No part when no list is given.
    fn listed(&self, key: &str, part: impl Fn(Option<String>) -> Cached) -> BTreeSet<Cached> {
        let mut parts = BTreeSet::new();
        for value in self.values(key) {
            let names: Option<Vec<&str>> = match value {
                Value::Null => Some(Vec::new()),
                Value::Array(items) => items.iter().map(Value::as_str).collect(),
                _ => None,
            };
            match names {
                Some(names) => parts.extend(
                    names
                        .into_iter()
                        .map(|n| part(Some(last_segment(n).into()))),
                ),
                None => {
                    parts.insert(part(None));
                }
            }
        }
        parts
    }

    /// The functions a Lambda resource's property names (a name, a partial
    /// or a full ARN, with or without a qualifier).
    fn functions(&self, key: &str, account: &str) -> BTreeSet<Cached> {
        let values = self.values(key);
        let named: Option<BTreeSet<Cached>> = values
            .iter()
            .map(|v| v.as_str().and_then(|s| function_named(s, account)))
            .collect();
        match named {
            Some(parts) if !parts.is_empty() => parts,
            _ => BTreeSet::from([Cached::Function {
                account: account.to_owned(),
                name: None,
            }]),
        }
    }
}

/// The function `text` names: `name`, `name:qualifier`,
/// `account:function:name[:qualifier]` or a full ARN.
fn function_named(text: &str, account: &str) -> Option<Cached> {
    let fields: Vec<&str> = text.split(':').collect();
    let (account, name) = match fields.as_slice() {
        [name] | [name, _] => (account, *name),
        [owner, "function", name] | [owner, "function", name, _] => (*owner, *name),
        ["arn", _, "lambda", _, owner, "function", name, ..] => (*owner, *name),
        _ => return None,
    };
    (!name.is_empty() && is_account_id(account)).then(|| Cached::Function {
        account: account.to_owned(),
        name: Some(name.to_owned()),
    })
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// A name without its path (`path/to/name` or an ARN's `role/path/name`).
fn last_segment(text: &str) -> &str {
    text.rsplit('/').next().unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    const A: &str = "111111111111";

    fn ran(kind: &str, properties: Value, model: Option<Value>) -> HandlerRan {
        HandlerRan {
            stack_name: "s".into(),
            logical_resource_id: "R".into(),
            resource_type: kind.into(),
            account: Some(A.into()),
            region: Some("us-east-1".into()),
            properties,
            previous_properties: None,
            model,
        }
    }

    fn role(name: Option<&str>) -> Cached {
        Cached::Role {
            account: A.into(),
            name: name.map(str::to_owned),
        }
    }

    fn user(name: Option<&str>) -> Cached {
        Cached::User {
            account: A.into(),
            name: name.map(str::to_owned),
        }
    }

    fn function(account: &str, name: Option<&str>) -> Cached {
        Cached::Function {
            account: account.into(),
            name: name.map(str::to_owned),
        }
    }

    fn only<const N: usize>(parts: [Cached; N]) -> Stale {
        Stale::Only(BTreeSet::from(parts))
    }

    #[rstest]
    #[case::named_role(
        "AWS::IAM::Role",
        json!({"RoleName": "exec"}),
        None,
        only([role(Some("exec"))])
    )]
    #[case::generated_role_name_from_the_model(
        "AWS::IAM::Role",
        json!({"AssumeRolePolicyDocument": {}}),
        Some(json!({"RoleName": "stack-Role-ABC", "Arn": "arn:aws:iam::111111111111:role/stack-Role-ABC"})),
        only([role(Some("stack-Role-ABC"))])
    )]
    #[case::role_name_unknown(
        "AWS::IAM::Role",
        json!({"AssumeRolePolicyDocument": {}}),
        None,
        only([role(None)])
    )]
    #[case::inline_policy_of_two_roles(
        "AWS::IAM::Policy",
        json!({"PolicyName": "invoke", "Roles": ["a", "b"]}),
        None,
        only([role(Some("a")), role(Some("b"))])
    )]
    #[case::inline_policy_of_a_group(
        "AWS::IAM::Policy",
        json!({"PolicyName": "p", "Roles": ["a"], "Groups": ["ops"]}),
        None,
        only([role(Some("a")), role(None), user(None)])
    )]
    #[case::inline_policy_of_nobody_named(
        "AWS::IAM::Policy",
        json!({"PolicyName": "p"}),
        None,
        only([role(None), user(None)])
    )]
    #[case::a_list_with_something_else(
        "AWS::IAM::Policy",
        json!({"PolicyName": "p", "Roles": [{"Ref": "Role"}]}),
        None,
        only([role(None)])
    )]
    #[case::managed_policy_binds_its_whole_account(
        "AWS::IAM::ManagedPolicy",
        json!({"Roles": ["a"]}),
        None,
        only([role(None), user(None)])
    )]
    #[case::user_policy("AWS::IAM::UserPolicy", json!({"UserName": "u"}), None, only([user(Some("u"))]))]
    #[case::group_membership(
        "AWS::IAM::UserToGroupAddition",
        json!({"GroupName": "g", "Users": ["u", "v"]}),
        None,
        only([user(Some("u")), user(Some("v"))])
    )]
    #[case::other_iam_resources(
        "AWS::IAM::InstanceProfile",
        json!({"Roles": ["a"]}),
        None,
        only([role(None), user(None)])
    )]
    #[case::function_by_name(
        "AWS::Lambda::Function",
        json!({"FunctionName": "servicenow-alert"}),
        None,
        only([function(A, Some("servicenow-alert"))])
    )]
    #[case::permission_by_arn_of_its_account(
        "AWS::Lambda::Permission",
        json!({"FunctionName": "arn:aws:lambda:us-east-1:222222222222:function:f:live"}),
        None,
        only([function("222222222222", Some("f"))])
    )]
    #[case::permission_by_partial_arn(
        "AWS::Lambda::Permission",
        json!({"FunctionName": "111111111111:function:f"}),
        None,
        only([function(A, Some("f"))])
    )]
    #[case::permission_with_a_qualifier(
        "AWS::Lambda::Permission",
        json!({"FunctionName": "f:1"}),
        None,
        only([function(A, Some("f"))])
    )]
    #[case::function_url("AWS::Lambda::Url", json!({"TargetFunctionArn": "f"}), None, only([function(A, Some("f"))]))]
    #[case::layer_names_no_function("AWS::Lambda::LayerVersion", json!({}), None, only([function(A, None)]))]
    #[case::bucket("AWS::S3::BucketPolicy", json!({"Bucket": "b"}), None, only([Cached::Buckets]))]
    #[case::key_alias("AWS::KMS::Alias", json!({}), None, only([Cached::Keys]))]
    #[case::log_group("AWS::Logs::LogGroup", json!({}), None, only([]))]
    #[case::security_group("AWS::EC2::SecurityGroup", json!({}), None, only([]))]
    #[case::custom_resource_runs_anything("Custom::Thing", json!({}), None, Stale::Everything)]
    #[case::nested_stack("AWS::CloudFormation::Stack", json!({}), None, Stale::Everything)]
    #[case::unknown_service("AWS::SecretsManager::Secret", json!({}), None, Stale::Everything)]
    fn what_a_handler_makes_stale(
        #[case] kind: &str,
        #[case] properties: Value,
        #[case] model: Option<Value>,
        #[case] expected: Stale,
    ) {
        assert_eq!(ran(kind, properties, model).stale(), expected);
    }

    #[test]
    fn a_renamed_role_drops_its_old_and_new_names() {
        let mut renamed = ran("AWS::IAM::Role", json!({"RoleName": "new"}), None);
        renamed.previous_properties = Some(json!({"RoleName": "old"}));
        assert_eq!(
            renamed.stale(),
            only([role(Some("new")), role(Some("old"))])
        );
    }

    #[rstest]
    #[case::function(
        "AWS::Lambda::Function",
        json!({"FunctionName": "f"}),
        vec!["arn:aws:lambda:us-east-1:111111111111:function:f"]
    )]
    #[case::permission_by_arn(
        "AWS::Lambda::Permission",
        json!({"FunctionName": "arn:aws:lambda:us-east-1:111111111111:function:f:live"}),
        vec!["arn:aws:lambda:us-east-1:111111111111:function:f"]
    )]
    #[case::permission_on_another_accounts_function(
        "AWS::Lambda::Permission",
        json!({"FunctionName": "arn:aws:lambda:us-east-1:222222222222:function:f"}),
        vec![]
    )]
    #[case::permission_without_a_name("AWS::Lambda::Permission", json!({}), vec![])]
    #[case::a_version_sets_no_policy("AWS::Lambda::Version", json!({"FunctionName": "f"}), vec![])]
    #[case::a_role("AWS::IAM::Role", json!({"RoleName": "f"}), vec![])]
    fn the_function_policies_a_handler_set(
        #[case] kind: &str,
        #[case] properties: Value,
        #[case] expected: Vec<&str>,
    ) {
        let ran = ran(kind, properties, None);
        let functions: Vec<String> = ran
            .rereads(&ran.stale())
            .into_iter()
            .filter_map(|read| match read {
                Reread::FunctionPolicy(arn) => Some(arn),
                Reread::Role { .. } => None,
            })
            .collect();
        assert_eq!(functions, expected);
    }

    #[rstest]
    #[case::role("AWS::IAM::Role", json!({"RoleName": "exec"}), vec!["exec"])]
    #[case::policy_of_two_roles(
        "AWS::IAM::Policy",
        json!({"Roles": ["a", "b"], "Users": ["u"]}),
        vec!["a", "b"]
    )]
    #[case::role_policy("AWS::IAM::RolePolicy", json!({"RoleName": "r"}), vec!["r"])]
    #[case::role_without_a_name("AWS::IAM::Role", json!({}), vec![])]
    #[case::managed_policy("AWS::IAM::ManagedPolicy", json!({"Roles": ["a"]}), vec![])]
    #[case::function("AWS::Lambda::Function", json!({"FunctionName": "f"}), vec![])]
    fn the_roles_a_handler_set(
        #[case] kind: &str,
        #[case] properties: Value,
        #[case] expected: Vec<&str>,
    ) {
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|name| (A.to_owned(), name.to_owned()))
            .collect();
        let ran = ran(kind, properties, None);
        let roles: Vec<(String, String)> = ran
            .rereads(&ran.stale())
            .into_iter()
            .filter_map(|read| match read {
                Reread::Role { account, name } => Some((account, name)),
                Reread::FunctionPolicy(_) => None,
            })
            .collect();
        assert_eq!(roles, expected);
    }

    #[rstest]
    #[case::no_account(None)]
    #[case::not_an_account(Some("us-east-1"))]
    fn a_report_without_its_account_drops_everything(#[case] account: Option<&str>) {
        let mut report = ran("AWS::Logs::LogGroup", json!({}), None);
        report.account = account.map(str::to_owned);
        assert_eq!(report.stale(), Stale::Everything);
    }

    #[test]
    fn an_old_plugins_report_parses_and_drops_everything() {
        let report: HandlerRan = serde_json::from_str(
            r#"{"StackName":"s","LogicalResourceId":"Role","ResourceType":"AWS::IAM::Role"}"#,
        )
        .expect("parses");
        assert_eq!(report.stale(), Stale::Everything);
    }
}
