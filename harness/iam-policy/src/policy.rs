//! Policy documents: parsing and validation of the JSON grammar.

use std::{collections::HashSet, fmt};

use serde_json::{Map, Value};

use crate::{condition::Condition, error::PolicyError, principal::PrincipalEntry};

/// A statement's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// The statement grants.
    Allow,
    /// The statement denies, overriding every allow.
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "Allow",
            Self::Deny => "Deny",
        })
    }
}

/// The policy language version; only `2012-10-17` substitutes `${...}` variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyVersion {
    /// `2012-10-17`, the current language.
    V2012_10_17,
    /// `2008-10-17`, also assumed when `Version` is absent.
    V2008_10_17,
}

/// `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrincipalElement {
    Principal(Vec<PrincipalEntry>),
    NotPrincipal(Vec<PrincipalEntry>),
}

/// `Action` or `NotAction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ActionElement {
    Action(Vec<String>),
    NotAction(Vec<String>),
}

/// `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResourceElement {
    Resource(Vec<String>),
    NotResource(Vec<String>),
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    sid: Option<String>,
    effect: Effect,
    pub(crate) principal: Option<PrincipalElement>,
    pub(crate) action: ActionElement,
    pub(crate) resource: Option<ResourceElement>,
    pub(crate) conditions: Vec<Condition>,
}

impl Statement {
    /// The statement's `Sid`, if it has one.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// The statement's effect.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Whether the statement has `Principal` or `NotPrincipal`.
    pub fn has_principal(&self) -> bool {
        self.principal.is_some()
    }

    /// Whether the statement has `Resource` or `NotResource`.
    pub fn has_resource(&self) -> bool {
        self.resource.is_some()
    }
}

/// A parsed, validated policy document.
///
/// # Example
/// ```
/// use iam_policy::PolicyDocument;
/// let policy = PolicyDocument::parse(r#"{
///   "Version": "2012-10-17",
///   "Statement": {"Sid": "Invoke", "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}
/// }"#)?;
/// assert_eq!(policy.statements()[0].sid(), Some("Invoke"));
/// # Ok::<(), iam_policy::PolicyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    version: PolicyVersion,
    id: Option<String>,
    statements: Vec<Statement>,
}

impl PolicyDocument {
    /// Parses a policy from JSON text.
    pub fn parse(json: &str) -> Result<Self, PolicyError> {
        let value: Value = serde_json::from_str(json).map_err(|e| PolicyError::Json {
            message: e.to_string(),
        })?;
        Self::from_value(&value)
    }

    /// Parses a policy from an already decoded JSON value (e.g. from a CloudFormation template).
    pub fn from_value(value: &Value) -> Result<Self, PolicyError> {
        let object = value.as_object().ok_or_else(|| PolicyError::WrongType {
            location: "policy".into(),
            element: "document".into(),
            expected: "a json object",
        })?;
        let mut version = PolicyVersion::V2008_10_17;
        let mut id = None;
        let mut statements = None;
        for (element, value) in object {
            match element.as_str() {
                "Version" => {
                    version = match value.as_str() {
                        Some("2012-10-17") => PolicyVersion::V2012_10_17,
                        Some("2008-10-17") => PolicyVersion::V2008_10_17,
                        _ => {
                            return Err(PolicyError::UnsupportedVersion {
                                version: value.to_string(),
                            });
                        }
                    }
                }
                "Id" => id = Some(string(value, "policy", "Id")?),
                "Statement" => statements = Some(parse_statements(value)?),
                _ => {
                    return Err(PolicyError::UnknownElement {
                        location: "policy".into(),
                        element: element.clone(),
                    });
                }
            }
        }
        let statements = statements
            .filter(|s| !s.is_empty())
            .ok_or(PolicyError::MissingStatement)?;
        Ok(Self {
            version,
            id,
            statements,
        })
    }

    /// The language version.
    pub fn version(&self) -> PolicyVersion {
        self.version
    }

    /// The optional `Id`.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The statements, in document order.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }
}

fn string(value: &Value, location: &str, element: &str) -> Result<String, PolicyError> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| PolicyError::WrongType {
            location: location.to_owned(),
            element: element.to_owned(),
            expected: "a string",
        })
}

fn parse_statements(value: &Value) -> Result<Vec<Statement>, PolicyError> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![value],
        _ => {
            return Err(PolicyError::WrongType {
                location: "policy".into(),
                element: "Statement".into(),
                expected: "an object or an array of objects",
            });
        }
    };
    let mut sids = HashSet::new();
    let mut statements = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let object = item.as_object().ok_or_else(|| PolicyError::WrongType {
            location: format!("statement {index}"),
            element: "Statement".into(),
            expected: "an object",
        })?;
        let statement = parse_statement(object, index)?;
        if let Some(sid) = statement.sid()
            && !sids.insert(sid.to_owned())
        {
            return Err(PolicyError::DuplicateSid {
                statement: index,
                sid: sid.to_owned(),
            });
        }
        statements.push(statement);
    }
    Ok(statements)
}

fn parse_statement(object: &Map<String, Value>, index: usize) -> Result<Statement, PolicyError> {
    let location = format!("statement {index}");
    let mut sid = None;
    let mut effect = None;
    let mut principal = None;
    let mut action = None;
    let mut resource = None;
    let mut conditions = Vec::new();
    let conflict = |first, second| PolicyError::ConflictingElements {
        statement: index,
        first,
        second,
    };
    for (element, value) in object {
        match element.as_str() {
            "Sid" => sid = Some(string(value, &location, "Sid")?),
            "Effect" => {
                effect = Some(match value.as_str() {
                    Some("Allow") => Effect::Allow,
                    Some("Deny") => Effect::Deny,
                    _ => {
                        return Err(PolicyError::InvalidEffect {
                            statement: index,
                            value: value
                                .as_str()
                                .map_or_else(|| value.to_string(), str::to_owned),
                        });
                    }
                })
            }
            "Principal" | "NotPrincipal" => {
                if principal.is_some() {
                    return Err(conflict("Principal", "NotPrincipal"));
                }
                let entries = parse_principal(value, index, element)?;
                principal = Some(if element == "Principal" {
                    PrincipalElement::Principal(entries)
                } else {
                    PrincipalElement::NotPrincipal(entries)
                });
            }
            "Action" | "NotAction" => {
                if action.is_some() {
                    return Err(conflict("Action", "NotAction"));
                }
                let actions = string_list(value, index, element)?;
                for a in &actions {
                    let valid = a == "*"
                        || a.split_once(':').is_some_and(|(service, name)| {
                            !service.is_empty() && !name.is_empty() && !service.contains('*')
                        });
                    if !valid {
                        return Err(PolicyError::InvalidAction {
                            statement: index,
                            action: a.clone(),
                        });
                    }
                }
                action = Some(if element == "Action" {
                    ActionElement::Action(actions)
                } else {
                    ActionElement::NotAction(actions)
                });
            }
            "Resource" | "NotResource" => {
                if resource.is_some() {
                    return Err(conflict("Resource", "NotResource"));
                }
                let resources = string_list(value, index, element)?;
                for r in &resources {
                    validate_resource(r, index)?;
                }
                resource = Some(if element == "Resource" {
                    ResourceElement::Resource(resources)
                } else {
                    ResourceElement::NotResource(resources)
                });
            }
            "Condition" => conditions = crate::condition::parse_conditions(value, index)?,
            _ => {
                return Err(PolicyError::UnknownElement {
                    location,
                    element: element.clone(),
                });
            }
        }
    }
    Ok(Statement {
        sid,
        effect: effect.ok_or(PolicyError::MissingElement {
            statement: index,
            element: "Effect",
        })?,
        principal,
        action: action.ok_or(PolicyError::MissingElement {
            statement: index,
            element: "Action or NotAction",
        })?,
        resource,
        conditions,
    })
}

fn string_list(value: &Value, index: usize, element: &str) -> Result<Vec<String>, PolicyError> {
    let wrong = || PolicyError::WrongType {
        location: format!("statement {index}"),
        element: element.to_owned(),
        expected: "a string or an array of strings",
    };
    let list: Vec<String> = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(wrong))
            .collect::<Result<_, _>>()?,
        _ => return Err(wrong()),
    };
    if list.is_empty() {
        return Err(PolicyError::EmptyElement {
            statement: index,
            element: element.to_owned(),
        });
    }
    Ok(list)
}

fn validate_resource(resource: &str, index: usize) -> Result<(), PolicyError> {
    let invalid = |reason| PolicyError::InvalidResource {
        statement: index,
        resource: resource.to_owned(),
        reason,
    };
    if resource == "*" {
        return Ok(());
    }
    let fields: Vec<&str> = resource.splitn(6, ':').collect();
    if fields.first() != Some(&"arn") || fields.len() < 3 {
        return Err(invalid("must be \"*\" or an arn"));
    }
    // IAM rejects these with "Resource vendor must be fully qualified and
    // cannot contain regexes"; the User Guide: "You can't use a wildcard in
    // the service segment that identifies the AWS product".
    if fields[2].is_empty() || fields[2].contains(['*', '?']) {
        return Err(invalid("must name its service without wildcards"));
    }
    Ok(())
}

fn parse_principal(
    value: &Value,
    index: usize,
    element: &str,
) -> Result<Vec<PrincipalEntry>, PolicyError> {
    let invalid = |principal: &str, reason| PolicyError::InvalidPrincipal {
        statement: index,
        principal: principal.to_owned(),
        reason,
    };
    let map = match value {
        Value::String(s) if s == "*" => return Ok(vec![PrincipalEntry::Any]),
        Value::String(s) => {
            return Err(invalid(
                s,
                "must be \"*\" or an object such as {\"AWS\": ...}",
            ));
        }
        Value::Object(map) => map,
        _ => {
            return Err(PolicyError::WrongType {
                location: format!("statement {index}"),
                element: element.to_owned(),
                expected: "\"*\" or an object of principal types",
            });
        }
    };
    let mut entries = Vec::new();
    for (kind, values) in map {
        let values = string_list(values, index, &format!("{element}.{kind}"))?;
        for v in values {
            // AWS: "You cannot use a wildcard to match part of a principal
            // name or ARN"; only the whole value may be "*".
            if v != "*" && v.contains(['*', '?']) {
                return Err(invalid(
                    &v,
                    "cannot contain wildcards except as the whole value \"*\"",
                ));
            }
            entries.push(match kind.as_str() {
                "AWS" => PrincipalEntry::aws(&v),
                "Service" => PrincipalEntry::Service(v),
                "Federated" | "CanonicalUser" => PrincipalEntry::Other(v),
                _ => return Err(invalid(kind, "has an unknown principal type; use AWS, Service, Federated or CanonicalUser")),
            });
        }
    }
    if entries.is_empty() {
        return Err(PolicyError::EmptyElement {
            statement: index,
            element: element.to_owned(),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn error_of(json: &str) -> PolicyError {
        match PolicyDocument::parse(json) {
            Err(e) => e,
            Ok(p) => panic!("expected a parse error, got {p:?}"),
        }
    }

    #[test]
    fn statement_as_object_or_array() {
        let single = r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}"#;
        let list = r#"{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                                     {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}"#;
        assert_eq!(
            PolicyDocument::parse(single).map(|p| p.statements().len()),
            Ok(1)
        );
        assert_eq!(
            PolicyDocument::parse(list).map(|p| p.statements().len()),
            Ok(2)
        );
    }

    #[test]
    fn missing_version_means_2008() {
        let policy = PolicyDocument::parse(
            r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}"#,
        );
        assert_eq!(policy.map(|p| p.version()), Ok(PolicyVersion::V2008_10_17));
    }

    #[rstest]
    #[case::not_json("{", "not valid json")]
    #[case::not_an_object("[]", "must be a json object")]
    #[case::unknown_version(r#"{"Version": "2020-01-01", "Statement": []}"#, "unsupported Version")]
    #[case::missing_statement(r#"{"Version": "2012-10-17"}"#, "`Statement` is missing")]
    #[case::empty_statement_list(r#"{"Statement": []}"#, "`Statement` is missing or empty")]
    #[case::unknown_top_level(r#"{"Statment": []}"#, "unknown element `Statment`")]
    #[case::missing_effect(
        r#"{"Statement": {"Action": "*", "Resource": "*"}}"#,
        "statement 0: element `Effect` is required"
    )]
    #[case::lowercase_effect(
        r#"{"Statement": {"Effect": "allow", "Action": "*", "Resource": "*"}}"#,
        "must be \"Allow\" or \"Deny\", got \"allow\""
    )]
    #[case::missing_action(
        r#"{"Statement": {"Effect": "Allow", "Resource": "*"}}"#,
        "`Action or NotAction` is required"
    )]
    #[case::action_and_not_action(r#"{"Statement": {"Effect": "Allow", "Action": "*", "NotAction": "s3:*", "Resource": "*"}}"#, "`Action` and `NotAction` cannot both be present")]
    #[case::resource_and_not_resource(
        r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "NotResource": "*"}}"#,
        "`Resource` and `NotResource`"
    )]
    #[case::principal_and_not_principal(r#"{"Statement": {"Effect": "Allow", "Action": "*", "Principal": "*", "NotPrincipal": "*"}}"#, "`Principal` and `NotPrincipal`")]
    #[case::action_without_service(
        r#"{"Statement": {"Effect": "Allow", "Action": "InvokeFunction", "Resource": "*"}}"#,
        "action \"InvokeFunction\" must be"
    )]
    #[case::resource_not_an_arn(
        r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "my-function"}}"#,
        "must be \"*\" or an arn"
    )]
    #[case::resource_service_wildcard(r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:*:us-east-1:111111111111:function:f"}}"#, "must name its service without wildcards")]
    #[case::partial_principal_wildcard(r#"{"Statement": {"Effect": "Allow", "Action": "*", "Principal": {"AWS": "arn:aws:iam::111111111111:role/*"}}}"#, "cannot contain wildcards")]
    #[case::principal_string_not_star(
        r#"{"Statement": {"Effect": "Allow", "Action": "*", "Principal": "111111111111"}}"#,
        "must be \"*\" or an object"
    )]
    #[case::unknown_principal_type(
        r#"{"Statement": {"Effect": "Allow", "Action": "*", "Principal": {"Aws": "*"}}}"#,
        "unknown principal type"
    )]
    #[case::empty_action_list(
        r#"{"Statement": {"Effect": "Allow", "Action": [], "Resource": "*"}}"#,
        "`Action` must not be empty"
    )]
    #[case::action_not_string(
        r#"{"Statement": {"Effect": "Allow", "Action": 3, "Resource": "*"}}"#,
        "`Action` must be a string or an array of strings"
    )]
    #[case::unknown_statement_element(
        r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Conditions": {}}}"#,
        "unknown element `Conditions`"
    )]
    #[case::unknown_condition_operator(r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEqualz": {"a:b": "c"}}}}"#, "unknown condition operator `StringEqualz`")]
    #[case::condition_value_object(r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"a:b": {"c": 1}}}}}"#, "values must be strings")]
    #[case::null_value_not_boolean(r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Null": {"a:b": "maybe"}}}}"#, "Null takes")]
    #[case::duplicate_sid(r#"{"Statement": [{"Sid": "A", "Effect": "Allow", "Action": "*", "Resource": "*"}, {"Sid": "A", "Effect": "Deny", "Action": "*", "Resource": "*"}]}"#, "statement 1: Sid \"A\" is already used")]
    fn malformed_documents_are_rejected_naming_the_problem(
        #[case] json: &str,
        #[case] message: &str,
    ) {
        let error = error_of(json).to_string();
        assert!(
            error.contains(message),
            "error {error:?} does not mention {message:?}"
        );
    }
}
