//! What one handler run needs: the schema's list, narrowed by the type's table.

use serde_json::Value;

use crate::{
    Error, Operation, ResourceSchema,
    arn::Place,
    properties::{at, differs, is_set},
    rules::{On, Rule, When, table},
};

/// One permission a handler needs: the action, the resource it is evaluated on, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Required {
    /// The IAM action, e.g. `iam:PassRole`.
    pub action: String,
    /// The resource ARN the action is evaluated on, or `*` (see the crate docs).
    pub resource: String,
    /// A short human reason: "the handler's create list", "Role is set", "Tags changed".
    pub because: String,
}

/// One handler run to compute the permissions of.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Which handler runs.
    pub operation: Operation,
    /// The resolved properties the handler writes: the template's for create and update;
    /// for delete, the deployed ones (used when `previous` is `None`).
    pub properties: &'a Value,
    /// The deployed resource's resolved properties: required for update; for delete, the
    /// properties deleted (preferred over `properties`).
    pub previous: Option<&'a Value>,
    /// The account the stack deploys into.
    pub account: &'a str,
    /// The region the stack deploys into.
    pub region: &'a str,
    /// The physical id, when known (update, delete, or a create whose caller knows the
    /// name CloudFormation generates): names the resource when its name property is
    /// absent, and is the only name of a KMS key (key id) or security group (group id).
    pub physical_id: Option<&'a str>,
}

/// The permissions the `op` handler of `schema`'s type needs for these resolved properties,
/// each with the resource it is evaluated on. See [`required_for`] for the physical id.
///
/// # Example
///
/// ```no_run
/// # fn main() -> Result<(), deploy_permissions::Error> {
/// use deploy_permissions::{Operation, Schemas, required, schemas_dir_in};
/// let schemas = Schemas::open(&schemas_dir_in(std::path::Path::new("/opt/cfn-lint")))?;
/// let function = schemas.get("AWS::Lambda::Function")?;
/// let properties = serde_json::json!({
///     "FunctionName": "servicenow-alert",
///     "Role": "arn:aws:iam::111111111111:role/exec",
///     "Code": {"S3Bucket": "code", "S3Key": "callee.zip"},
/// });
/// for need in required(&function, Operation::Create, &properties, None, "111111111111", "us-east-1")? {
///     println!("{} on {} ({})", need.action, need.resource, need.because);
/// }
/// # Ok(()) }
/// ```
pub fn required(
    schema: &ResourceSchema,
    op: Operation,
    properties: &Value,
    previous: Option<&Value>,
    account: &str,
    region: &str,
) -> Result<Vec<Required>, Error> {
    required_for(
        schema,
        &Request {
            operation: op,
            properties,
            previous,
            account,
            region,
            physical_id: None,
        },
    )
}

/// [`required`], with every input of one handler run, the physical id included.
pub fn required_for(
    schema: &ResourceSchema,
    request: &Request<'_>,
) -> Result<Vec<Required>, Error> {
    let type_name = schema.type_name();
    let op = request.operation;
    let listed = schema
        .handler_permissions(op)
        .ok_or_else(|| Error::NoHandler {
            resource_type: type_name.to_owned(),
            operation: op,
            hint: match op {
                Operation::Update => {
                    ": every change replaces it, so ask for the new resource's create and the old one's delete"
                }
                _ => ": CloudFormation cannot run this operation on it",
            },
        })?;
    let rules = table(type_name).ok_or_else(|| Error::NotNarrowed {
        resource_type: type_name.to_owned(),
        operation: op,
        count: listed.len(),
    })?;
    let run = Run::new(schema, request)?;

    let mut needs: Vec<Required> = Vec::new();
    for permission in listed {
        if !is_iam_action(permission) {
            // cfn-lint's lists carry a few names that are not IAM actions (the Logs list
            // has `s3:REST.PUT.OBJECT`, an S3 access-log operation name); no policy can
            // grant them, so requiring them would deny every deploy.
            continue;
        }
        let rows: Vec<&Rule> = rules
            .iter()
            .filter(|r| r.permission == permission)
            .collect();
        if rows.is_empty() {
            for resource in run.resources(&On::Own, Side::New)? {
                push(
                    &mut needs,
                    permission,
                    resource,
                    format!("the handler's {op} list"),
                );
            }
            continue;
        }
        for row in rows {
            let Some((because, side)) = run.applies(&row.when)? else {
                continue;
            };
            for on in row.on {
                for resource in run.resources(on, side)? {
                    push(&mut needs, permission, resource, because.clone());
                }
            }
        }
    }
    Ok(needs)
}

fn push(needs: &mut Vec<Required>, action: &str, resource: String, because: String) {
    if !needs
        .iter()
        .any(|n| n.action == action && n.resource == resource)
    {
        needs.push(Required {
            action: action.to_owned(),
            resource,
            because,
        });
    }
}

/// `service:Action`: what an IAM policy can name.
fn is_iam_action(permission: &str) -> bool {
    let Some((service, action)) = permission.split_once(':') else {
        return false;
    };
    !service.is_empty()
        && service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !action.is_empty()
        && action.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Which property set a requirement's resource comes from.
#[derive(Debug, Clone, Copy)]
enum Side {
    /// The properties the handler writes (for delete: those deleted).
    New,
    /// The deployed properties (update only; for create and delete, the same as `New`).
    Old,
}

struct Run<'a> {
    type_name: &'a str,
    op: Operation,
    /// Create, update: the properties written. Delete: the properties deleted.
    new: &'a Value,
    /// Update: the deployed properties.
    old: Option<&'a Value>,
    place: Place<'a>,
    physical_id: Option<&'a str>,
}

fn label(pointer: &str) -> &str {
    pointer.trim_start_matches('/')
}

impl<'a> Run<'a> {
    fn new(schema: &'a ResourceSchema, request: &Request<'a>) -> Result<Self, Error> {
        let type_name = schema.type_name();
        let (new, old) = match request.operation {
            Operation::Create => (request.properties, None),
            Operation::Update => (
                request.properties,
                Some(request.previous.ok_or_else(|| Error::MissingPrevious {
                    resource_type: type_name.to_owned(),
                })?),
            ),
            Operation::Delete => (request.previous.unwrap_or(request.properties), None),
        };
        for (which, value) in [("properties", Some(new)), ("previous", old)] {
            if let Some(value) = value
                && !value.is_object()
            {
                return Err(Error::Property {
                    resource_type: type_name.to_owned(),
                    property: String::new(),
                    problem: format!("the {which} are not a JSON object"),
                });
            }
        }
        Ok(Self {
            type_name,
            op: request.operation,
            new,
            old,
            place: Place {
                account: request.account,
                region: request.region,
            },
            physical_id: request.physical_id.filter(|id| !id.is_empty()),
        })
    }

    fn error(&self, pointer: &str, problem: impl Into<String>) -> Error {
        Error::Property {
            resource_type: self.type_name.to_owned(),
            property: pointer.to_owned(),
            problem: problem.into(),
        }
    }

    /// Whether `when` holds for this run, why, and which side its resources come from.
    fn applies(&self, when: &When) -> Result<Option<(String, Side)>, Error> {
        let set_in_new = |pointers: &[&str]| {
            pointers
                .iter()
                .find(|p| is_set(self.new, p))
                .map(|p| format!("{} is set", label(p)))
        };
        Ok(match (*when, self.op, self.old) {
            (When::Always, op, _) => Some((format!("the handler's {op} list"), Side::New)),
            (When::Changed(ps), Operation::Update, Some(old)) => ps
                .iter()
                .find(|p| is_set(self.new, p) && differs(self.new, old, p))
                .map(|p| (format!("{} changed", label(p)), Side::New)),
            (When::Dropped(ps), Operation::Update, Some(old)) => ps
                .iter()
                .find(|p| is_set(old, p) && differs(self.new, old, p))
                .map(|p| (format!("{} was removed or changed", label(p)), Side::Old)),
            (When::Touched(ps), Operation::Update, Some(old)) => ps
                .iter()
                .find(|p| differs(self.new, old, p))
                .map(|p| (format!("{} changed", label(p)), Side::New)),
            (When::Dropped(_), Operation::Create, _) => None,
            (When::Changed(ps) | When::Dropped(ps) | When::Touched(ps), _, _) => {
                set_in_new(ps).map(|why| (why, Side::New))
            }
            (
                When::Is {
                    pointer,
                    value,
                    default,
                },
                op,
                old,
            ) => {
                let now = self.flag(self.new, pointer, default)?;
                // A switch is called only to move the resource off the state it is in:
                // on create, the state a new resource starts in (the default).
                let holds = match (op, old) {
                    (Operation::Create, _) => now == value && value != default,
                    (Operation::Update, Some(old)) => {
                        now == value && self.flag(old, pointer, default)? != value
                    }
                    _ => false,
                };
                holds.then(|| (format!("{} is {value}", label(pointer)), Side::New))
            }
        })
    }

    /// A boolean property; resolved templates may carry `"true"`/`"false"` strings.
    fn flag(&self, properties: &Value, pointer: &str, default: bool) -> Result<bool, Error> {
        match at(properties, pointer) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            Some(other) => Err(self.error(pointer, format!("expected a boolean, got {other}"))),
        }
    }

    fn side(&self, side: Side) -> &'a Value {
        match (side, self.old) {
            (Side::Old, Some(old)) => old,
            _ => self.new,
        }
    }

    fn string(&self, properties: &Value, pointer: &str) -> Result<Option<String>, Error> {
        match at(properties, pointer) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.error(pointer, format!("expected a string, got {other}"))),
        }
    }

    fn strings(&self, properties: &Value, pointer: &str) -> Result<Vec<String>, Error> {
        match at(properties, pointer) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        self.error(pointer, format!("expected a list of strings, got {item}"))
                    })
                })
                .collect(),
            Some(other) => Err(self.error(
                pointer,
                format!("expected a string or a list of strings, got {other}"),
            )),
        }
    }

    /// The name at `pointer`, else the physical id, else `*` (CloudFormation generates it).
    fn name(&self, properties: &Value, pointer: &str) -> Result<String, Error> {
        Ok(self
            .string(properties, pointer)?
            .or_else(|| self.physical_id.map(str::to_owned))
            .unwrap_or_else(|| self.generated()))
    }

    /// A resource named only by its physical id (a key id, a group id): that id, else `*`.
    fn generated(&self) -> String {
        self.physical_id.unwrap_or("*").to_owned()
    }

    fn resources(&self, on: &On, side: Side) -> Result<Vec<String>, Error> {
        let properties = self.side(side);
        let place = &self.place;
        Ok(match *on {
            On::Star => vec!["*".to_owned()],
            On::Own => vec![self.own(properties)?],
            On::OwnObjects => vec![format!("{}/*", self.own(properties)?)],
            On::Arns(pointers) => {
                let mut arns = Vec::new();
                for pointer in pointers {
                    arns.extend(self.strings(properties, pointer)?);
                }
                arns
            }
            On::CodeObject => {
                let bucket = self.string(properties, "/Code/S3Bucket")?;
                let key = self.string(properties, "/Code/S3Key")?;
                match (bucket, key) {
                    (Some(bucket), Some(key)) => vec![place.s3(&format!("{bucket}/{key}"))],
                    (None, None) => Vec::new(),
                    _ => {
                        return Err(self.error(
                            "/Code",
                            "S3Bucket and S3Key must be given together (the code object is BUCKET/KEY)",
                        ));
                    }
                }
            }
            On::KmsKey(pointer) => match self.string(properties, pointer)? {
                Some(key) => vec![place.kms_key(&key)],
                None => return Err(self.error(pointer, "is required to name the key")),
            },
            On::KmsKeyBefore(pointer) => match (self.op, self.old) {
                (Operation::Update, Some(old)) if differs(self.new, old, pointer) => self
                    .string(old, pointer)?
                    .map(|key| place.kms_key(&key))
                    .into_iter()
                    .collect(),
                _ => Vec::new(),
            },
            On::Vpc(pointer) => {
                let vpc = self
                    .string(properties, pointer)?
                    .unwrap_or_else(|| "*".to_owned());
                vec![place.regional("ec2", &format!("vpc/{vpc}"))]
            }
            On::IamNames(pointer, kind) => self
                .strings(properties, pointer)?
                .into_iter()
                .map(|name| {
                    if name.starts_with("arn:") {
                        name
                    } else {
                        place.iam(&format!("{kind}/{name}"))
                    }
                })
                .collect(),
        })
    }

    /// The ARN the resource's own operations are evaluated on.
    fn own(&self, properties: &Value) -> Result<String, Error> {
        let place = &self.place;
        Ok(match self.type_name {
            "AWS::Lambda::Function" => place.regional(
                "lambda",
                &format!("function:{}", self.name(properties, "/FunctionName")?),
            ),
            "AWS::Lambda::Permission" => match self.string(properties, "/FunctionName")? {
                Some(function) => place.function(&function),
                None => return Err(self.error("/FunctionName", "is required to name the function")),
            },
            "AWS::Logs::LogGroup" => place.regional(
                "logs",
                &format!("log-group:{}", self.name(properties, "/LogGroupName")?),
            ),
            "AWS::S3::Bucket" => place.s3(&self.name(properties, "/BucketName")?),
            "AWS::S3::BucketPolicy" => match self.string(properties, "/Bucket")? {
                Some(bucket) => place.s3(&bucket),
                None => return Err(self.error("/Bucket", "is required to name the bucket")),
            },
            "AWS::IAM::Role" => {
                let path = self
                    .string(properties, "/Path")?
                    .unwrap_or_else(|| "/".to_owned());
                place.iam(&format!(
                    "role{path}{}",
                    self.name(properties, "/RoleName")?
                ))
            }
            "AWS::KMS::Key" => place.regional("kms", &format!("key/{}", self.generated())),
            "AWS::KMS::Alias" => match self.string(properties, "/AliasName")? {
                Some(alias) => place.regional("kms", &alias),
                None => return Err(self.error("/AliasName", "is required to name the alias")),
            },
            "AWS::EC2::SecurityGroup" => {
                place.regional("ec2", &format!("security-group/{}", self.generated()))
            }
            other => {
                return Err(Error::Property {
                    resource_type: other.to_owned(),
                    property: String::new(),
                    problem: "deploy-permissions does not know the ARN of this resource type; add it to `own` in harness/deploy-permissions/src/required.rs".to_owned(),
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::{Value, json};

    use super::*;

    const ACCOUNT: &str = "111111111111";
    const REGION: &str = "us-east-1";

    /// A schema of `type_name` whose every handler lists `permissions`.
    fn schema(type_name: &str, permissions: &[&str]) -> ResourceSchema {
        let list = serde_json::to_string(permissions).unwrap();
        ResourceSchema::parse(&format!(
            r#"{{"typeName": "{type_name}", "handlers": {{
                "create": {{"permissions": {list}}},
                "update": {{"permissions": {list}}},
                "delete": {{"permissions": {list}}}}}}}"#
        ))
        .unwrap()
    }

    fn pairs(needs: &[Required]) -> Vec<(String, String)> {
        let mut pairs: Vec<_> = needs
            .iter()
            .map(|n| (n.action.clone(), n.resource.clone()))
            .collect();
        pairs.sort();
        pairs
    }

    fn expect(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut pairs: Vec<_> = pairs
            .iter()
            .map(|(a, r)| (a.to_string(), r.to_string()))
            .collect();
        pairs.sort();
        pairs
    }

    const FUNCTION_CREATE: &[&str] = &[
        "lambda:CreateFunction",
        "lambda:GetFunction",
        "lambda:PutFunctionConcurrency",
        "iam:PassRole",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "ec2:DescribeSubnets",
        "elasticfilesystem:DescribeMountTargets",
        "kms:Decrypt",
        "lambda:GetLayerVersion",
        "lambda:TagResource",
    ];
    const FN: &str = "arn:aws:lambda:us-east-1:111111111111:function:f";
    const ROLE: &str = "arn:aws:iam::111111111111:role/exec";

    #[rstest]
    #[case::bare_function_needs_only_its_own_calls(
        json!({"FunctionName": "f", "Role": ROLE, "Code": {"ZipFile": "x"}}),
        &[("lambda:CreateFunction", FN), ("lambda:GetFunction", FN), ("iam:PassRole", ROLE)][..],
    )]
    #[case::s3_code_needs_the_object(
        json!({"FunctionName": "f", "Role": ROLE, "Code": {"S3Bucket": "b", "S3Key": "k.zip"}}),
        &[("lambda:CreateFunction", FN), ("lambda:GetFunction", FN), ("iam:PassRole", ROLE),
          ("s3:GetObject", "arn:aws:s3:::b/k.zip")][..],
    )]
    #[case::a_version_needs_get_object_version(
        json!({"FunctionName": "f", "Role": ROLE, "Code": {"S3Bucket": "b", "S3Key": "k.zip", "S3ObjectVersion": "v1"}}),
        &[("lambda:CreateFunction", FN), ("lambda:GetFunction", FN), ("iam:PassRole", ROLE),
          ("s3:GetObject", "arn:aws:s3:::b/k.zip"), ("s3:GetObjectVersion", "arn:aws:s3:::b/k.zip")][..],
    )]
    #[case::vpc_kms_layers_concurrency_tags_efs(
        json!({"FunctionName": "f", "Role": ROLE, "Code": {"ZipFile": "x"},
               "VpcConfig": {"SubnetIds": ["subnet-1"]}, "KmsKeyArn": "arn:aws:kms:us-east-1:111111111111:key/k",
               "Layers": ["arn:aws:lambda:us-east-1:111111111111:layer:l:1"], "ReservedConcurrentExecutions": 0,
               "Tags": [{"Key": "a", "Value": "b"}], "FileSystemConfigs": [{"Arn": "x", "LocalMountPath": "/mnt/x"}]}),
        &[("lambda:CreateFunction", FN), ("lambda:GetFunction", FN), ("iam:PassRole", ROLE),
          ("ec2:DescribeSubnets", "*"), ("kms:Decrypt", "arn:aws:kms:us-east-1:111111111111:key/k"),
          ("lambda:GetLayerVersion", "arn:aws:lambda:us-east-1:111111111111:layer:l:1"),
          ("lambda:PutFunctionConcurrency", FN), ("lambda:TagResource", FN),
          ("elasticfilesystem:DescribeMountTargets", "*")][..],
    )]
    #[case::empty_vpc_config_is_no_vpc(
        json!({"FunctionName": "f", "Role": ROLE, "VpcConfig": {"SubnetIds": [], "SecurityGroupIds": []}, "Tags": []}),
        &[("lambda:CreateFunction", FN), ("lambda:GetFunction", FN), ("iam:PassRole", ROLE)][..],
    )]
    #[case::generated_name_is_any_function(
        json!({"Role": ROLE}),
        &[("lambda:CreateFunction", "arn:aws:lambda:us-east-1:111111111111:function:*"),
          ("lambda:GetFunction", "arn:aws:lambda:us-east-1:111111111111:function:*"), ("iam:PassRole", ROLE)][..],
    )]
    fn function_create_needs_what_its_properties_use(
        #[case] properties: Value,
        #[case] expected: &[(&str, &str)],
    ) {
        let schema = schema("AWS::Lambda::Function", FUNCTION_CREATE);
        let needs = required(
            &schema,
            Operation::Create,
            &properties,
            None,
            ACCOUNT,
            REGION,
        )
        .unwrap();
        assert_eq!(pairs(&needs), expect(expected));
    }

    #[test]
    fn because_names_the_property_or_the_list() {
        let schema = schema("AWS::Lambda::Function", FUNCTION_CREATE);
        let needs = required(
            &schema,
            Operation::Create,
            &json!({"FunctionName": "f", "Role": ROLE}),
            None,
            ACCOUNT,
            REGION,
        )
        .unwrap();
        let because = |action: &str| {
            needs
                .iter()
                .find(|n| n.action == action)
                .map(|n| n.because.as_str())
        };
        assert_eq!(because("iam:PassRole"), Some("Role is set"));
        assert_eq!(
            because("lambda:CreateFunction"),
            Some("the handler's create list")
        );
    }

    const ROLE_ARN: &str = "arn:aws:iam::111111111111:role/servicenow-invoke";
    const ROLE_PERMISSIONS: &[&str] = &[
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "iam:TagRole",
        "iam:UntagRole",
        "iam:GetRole",
        "iam:DeleteRolePolicy",
        "iam:DetachRolePolicy",
        "iam:UpdateAssumeRolePolicy",
    ];

    #[rstest]
    #[case::bare_role(
        json!({"RoleName": "servicenow-invoke", "AssumeRolePolicyDocument": {}}),
        &["iam:CreateRole", "iam:GetRole"][..],
    )]
    #[case::inline_policies(
        json!({"RoleName": "servicenow-invoke", "Policies": [{"PolicyName": "p"}]}),
        &["iam:CreateRole", "iam:GetRole", "iam:PutRolePolicy"][..],
    )]
    #[case::managed_policies(
        json!({"RoleName": "servicenow-invoke", "ManagedPolicyArns": ["arn:aws:iam::aws:policy/x"]}),
        &["iam:AttachRolePolicy", "iam:CreateRole", "iam:GetRole"][..],
    )]
    #[case::tags(
        json!({"RoleName": "servicenow-invoke", "Tags": [{"Key": "k", "Value": "v"}]}),
        &["iam:CreateRole", "iam:GetRole", "iam:TagRole"][..],
    )]
    fn role_create_needs_put_attach_tag_only_with_their_property(
        #[case] properties: Value,
        #[case] expected: &[&str],
    ) {
        let schema = schema("AWS::IAM::Role", ROLE_PERMISSIONS);
        let needs = required(
            &schema,
            Operation::Create,
            &properties,
            None,
            ACCOUNT,
            REGION,
        )
        .unwrap();
        let mut actions: Vec<&str> = needs.iter().map(|n| n.action.as_str()).collect();
        actions.sort_unstable();
        assert_eq!(actions, expected);
        assert!(needs.iter().all(|n| n.resource == ROLE_ARN), "{needs:?}");
    }

    #[rstest]
    #[case::default_path(json!({"RoleName": "r"}), None, "arn:aws:iam::111111111111:role/r")]
    #[case::path(json!({"RoleName": "r", "Path": "/svc/"}), None, "arn:aws:iam::111111111111:role/svc/r")]
    #[case::generated_name(json!({}), None, "arn:aws:iam::111111111111:role/*")]
    #[case::generated_name_known(json!({}), Some("stack-Exec-ABC"), "arn:aws:iam::111111111111:role/stack-Exec-ABC")]
    fn role_arn_has_path_and_name(
        #[case] properties: Value,
        #[case] physical_id: Option<&str>,
        #[case] expected: &str,
    ) {
        let schema = schema("AWS::IAM::Role", &["iam:CreateRole"]);
        let needs = required_for(
            &schema,
            &Request {
                operation: Operation::Create,
                properties: &properties,
                previous: None,
                account: ACCOUNT,
                region: REGION,
                physical_id,
            },
        )
        .unwrap();
        assert_eq!(pairs(&needs), expect(&[("iam:CreateRole", expected)]));
    }

    #[rstest]
    #[case::only_the_trust_changed(
        json!({"RoleName": "r", "AssumeRolePolicyDocument": {"v": 2}, "Policies": [1], "Tags": [1]}),
        json!({"RoleName": "r", "AssumeRolePolicyDocument": {"v": 1}, "Policies": [1], "Tags": [1]}),
        &["iam:UpdateAssumeRolePolicy"][..],
    )]
    #[case::a_policy_added(
        json!({"RoleName": "r", "Policies": [1, 2]}),
        json!({"RoleName": "r", "Policies": [1]}),
        &["iam:DeleteRolePolicy", "iam:PutRolePolicy"][..],
    )]
    #[case::every_policy_removed(
        json!({"RoleName": "r"}),
        json!({"RoleName": "r", "Policies": [1], "Tags": [1]}),
        &["iam:DeleteRolePolicy", "iam:UntagRole"][..],
    )]
    #[case::tags_first_given(
        json!({"RoleName": "r", "Tags": [1]}),
        json!({"RoleName": "r"}),
        &["iam:TagRole"][..],
    )]
    fn role_update_needs_what_changed(
        #[case] properties: Value,
        #[case] previous: Value,
        #[case] expected: &[&str],
    ) {
        let schema = schema(
            "AWS::IAM::Role",
            &[
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateAssumeRolePolicy",
            ],
        );
        let needs = required(
            &schema,
            Operation::Update,
            &properties,
            Some(&previous),
            ACCOUNT,
            REGION,
        )
        .unwrap();
        let mut actions: Vec<&str> = needs.iter().map(|n| n.action.as_str()).collect();
        actions.sort_unstable();
        assert_eq!(actions, expected);
    }

    const BUCKET: &str = "arn:aws:s3:::code";

    #[rstest]
    #[case::bare_bucket(json!({"BucketName": "code"}), &[("s3:CreateBucket", BUCKET)][..])]
    #[case::encryption_configured(
        json!({"BucketName": "code", "BucketEncryption": {"ServerSideEncryptionConfiguration": [{"x": 1}]}}),
        &[("s3:CreateBucket", BUCKET), ("s3:PutEncryptionConfiguration", BUCKET)][..],
    )]
    #[case::replication_passes_its_role(
        json!({"BucketName": "code", "ReplicationConfiguration": {"Role": "arn:aws:iam::111111111111:role/repl", "Rules": []}}),
        &[("s3:CreateBucket", BUCKET), ("s3:PutReplicationConfiguration", BUCKET),
          ("iam:PassRole", "arn:aws:iam::111111111111:role/repl")][..],
    )]
    fn bucket_create_needs_put_and_pass_role_only_with_their_property(
        #[case] properties: Value,
        #[case] expected: &[(&str, &str)],
    ) {
        let schema = schema(
            "AWS::S3::Bucket",
            &[
                "s3:CreateBucket",
                "s3:PutEncryptionConfiguration",
                "s3:PutReplicationConfiguration",
                "iam:PassRole",
            ],
        );
        let needs = required(
            &schema,
            Operation::Create,
            &properties,
            None,
            ACCOUNT,
            REGION,
        )
        .unwrap();
        assert_eq!(pairs(&needs), expect(expected));
    }

    #[test]
    fn non_iam_actions_are_dropped() {
        let schema = schema(
            "AWS::Logs::LogGroup",
            &["logs:CreateLogGroup", "s3:REST.PUT.OBJECT"],
        );
        let needs = required(
            &schema,
            Operation::Create,
            &json!({"LogGroupName": "/aws/lambda/f"}),
            None,
            ACCOUNT,
            REGION,
        )
        .unwrap();
        assert_eq!(
            pairs(&needs),
            expect(&[(
                "logs:CreateLogGroup",
                "arn:aws:logs:us-east-1:111111111111:log-group:/aws/lambda/f"
            )])
        );
    }

    #[rstest]
    #[case::name(
        "servicenow-alert",
        "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert"
    )]
    #[case::arn(
        "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert",
        "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert"
    )]
    fn permission_is_evaluated_on_its_function(#[case] function: &str, #[case] expected: &str) {
        let schema = schema("AWS::Lambda::Permission", &["lambda:AddPermission"]);
        let needs = required(
            &schema,
            Operation::Create,
            &json!({"FunctionName": function, "Action": "lambda:InvokeFunction", "Principal": "222222222222"}),
            None,
            ACCOUNT,
            REGION,
        )
        .unwrap();
        assert_eq!(pairs(&needs), expect(&[("lambda:AddPermission", expected)]));
    }

    #[test]
    fn policy_is_put_on_each_role_and_deleted_from_the_dropped_ones() {
        let schema = schema(
            "AWS::IAM::Policy",
            &[
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:PutUserPolicy",
            ],
        );
        let needs = required(
            &schema,
            Operation::Update,
            &json!({"PolicyName": "invoke", "Roles": ["b"], "PolicyDocument": {"v": 2}}),
            Some(&json!({"PolicyName": "invoke", "Roles": ["a"], "PolicyDocument": {"v": 1}})),
            ACCOUNT,
            REGION,
        )
        .unwrap();
        assert_eq!(
            pairs(&needs),
            expect(&[
                ("iam:PutRolePolicy", "arn:aws:iam::111111111111:role/b"),
                ("iam:DeleteRolePolicy", "arn:aws:iam::111111111111:role/a"),
            ])
        );
    }

    #[rstest]
    #[case::create_with_rotation(Operation::Create, json!({"EnableKeyRotation": true}), None, &["kms:CreateKey", "kms:EnableKeyRotation"][..])]
    #[case::create_without_rotation(Operation::Create, json!({"EnableKeyRotation": "false"}), None, &["kms:CreateKey"][..])]
    #[case::create_with_default_rotation(Operation::Create, json!({}), None, &["kms:CreateKey"][..])]
    #[case::update_turns_rotation_off(Operation::Update, json!({}), Some(json!({"EnableKeyRotation": true})), &["kms:DisableKeyRotation"][..])]
    #[case::update_keeps_rotation(Operation::Update, json!({"EnableKeyRotation": true, "Description": "d"}), Some(json!({"EnableKeyRotation": true})), &["kms:UpdateKeyDescription"][..])]
    fn key_switches_follow_their_value(
        #[case] op: Operation,
        #[case] properties: Value,
        #[case] previous: Option<Value>,
        #[case] expected: &[&str],
    ) {
        let schema = ResourceSchema::parse(
            r#"{"typeName": "AWS::KMS::Key", "handlers": {
                "create": {"permissions": ["kms:CreateKey", "kms:EnableKeyRotation", "kms:DisableKeyRotation"]},
                "update": {"permissions": ["kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:UpdateKeyDescription"]}}}"#,
        )
        .unwrap();
        let needs = required(&schema, op, &properties, previous.as_ref(), ACCOUNT, REGION).unwrap();
        let mut actions: Vec<&str> = needs.iter().map(|n| n.action.as_str()).collect();
        actions.sort_unstable();
        assert_eq!(actions, expected);
    }

    #[test]
    fn alias_is_evaluated_on_the_alias_and_both_keys() {
        let schema = schema("AWS::KMS::Alias", &["kms:UpdateAlias"]);
        let needs = required(
            &schema,
            Operation::Update,
            &json!({"AliasName": "alias/code", "TargetKeyId": "new"}),
            Some(&json!({"AliasName": "alias/code", "TargetKeyId": "old"})),
            ACCOUNT,
            REGION,
        )
        .unwrap();
        assert_eq!(
            pairs(&needs),
            expect(&[
                (
                    "kms:UpdateAlias",
                    "arn:aws:kms:us-east-1:111111111111:alias/code"
                ),
                (
                    "kms:UpdateAlias",
                    "arn:aws:kms:us-east-1:111111111111:key/new"
                ),
                (
                    "kms:UpdateAlias",
                    "arn:aws:kms:us-east-1:111111111111:key/old"
                ),
            ])
        );
    }

    #[rstest]
    #[case::with_vpc(json!({"VpcId": "vpc-1", "GroupDescription": "d"}), "arn:aws:ec2:us-east-1:111111111111:vpc/vpc-1")]
    #[case::default_vpc(json!({"GroupDescription": "d"}), "arn:aws:ec2:us-east-1:111111111111:vpc/*")]
    fn security_group_is_created_on_the_group_and_its_vpc(
        #[case] properties: Value,
        #[case] vpc: &str,
    ) {
        let schema = schema(
            "AWS::EC2::SecurityGroup",
            &["ec2:CreateSecurityGroup", "ec2:DescribeSecurityGroups"],
        );
        let needs = required(
            &schema,
            Operation::Create,
            &properties,
            None,
            ACCOUNT,
            REGION,
        )
        .unwrap();
        assert_eq!(
            pairs(&needs),
            expect(&[
                (
                    "ec2:CreateSecurityGroup",
                    "arn:aws:ec2:us-east-1:111111111111:security-group/*"
                ),
                ("ec2:CreateSecurityGroup", vpc),
                ("ec2:DescribeSecurityGroups", "*"),
            ])
        );
    }

    #[test]
    fn delete_uses_the_deleted_properties() {
        let schema = schema(
            "AWS::Lambda::Function",
            &["lambda:DeleteFunction", "ec2:DescribeNetworkInterfaces"],
        );
        let needs = required(
            &schema,
            Operation::Delete,
            &json!({}),
            Some(&json!({"FunctionName": "f", "VpcConfig": {"SubnetIds": ["s"]}})),
            ACCOUNT,
            REGION,
        )
        .unwrap();
        assert_eq!(
            pairs(&needs),
            expect(&[
                ("lambda:DeleteFunction", FN),
                ("ec2:DescribeNetworkInterfaces", "*")
            ])
        );
    }

    #[rstest]
    #[case::uncovered_type(
        "AWS::SQS::Queue", Operation::Create, json!({}), None,
        "cannot narrow the create permissions of AWS::SQS::Queue"
    )]
    #[case::update_without_previous(
        "AWS::IAM::Role", Operation::Update, json!({}), None,
        "without its previous properties"
    )]
    #[case::code_bucket_without_key(
        "AWS::Lambda::Function", Operation::Create, json!({"Role": ROLE, "Code": {"S3Bucket": "b"}}), None,
        "S3Bucket and S3Key must be given together"
    )]
    #[case::unresolved_role(
        "AWS::Lambda::Function", Operation::Create, json!({"Role": {"Fn::GetAtt": ["R", "Arn"]}}), None,
        "property /Role: expected a string"
    )]
    #[case::permission_without_function(
        "AWS::Lambda::Permission", Operation::Create, json!({}), None,
        "property /FunctionName: is required"
    )]
    #[case::properties_not_an_object(
        "AWS::IAM::Role", Operation::Create, json!([]), None,
        "not a JSON object"
    )]
    fn what_cannot_be_computed_is_an_error(
        #[case] type_name: &str,
        #[case] op: Operation,
        #[case] properties: Value,
        #[case] previous: Option<Value>,
        #[case] message: &str,
    ) {
        let schema = schema(
            type_name,
            &[
                "iam:CreateRole",
                "iam:PassRole",
                "s3:GetObject",
                "lambda:AddPermission",
                "sqs:CreateQueue",
            ],
        );
        let error =
            required(&schema, op, &properties, previous.as_ref(), ACCOUNT, REGION).unwrap_err();
        assert!(error.to_string().contains(message), "{error}");
    }

    #[test]
    fn a_type_without_an_update_handler_says_it_is_replaced() {
        let schema = ResourceSchema::parse(
            r#"{"typeName": "AWS::Lambda::Permission", "handlers": {"create": {"permissions": ["lambda:AddPermission"]}}}"#,
        )
        .unwrap();
        let error = required(
            &schema,
            Operation::Update,
            &json!({}),
            Some(&json!({})),
            ACCOUNT,
            REGION,
        )
        .unwrap_err();
        assert!(matches!(error, Error::NoHandler { .. }), "{error}");
        assert!(
            error.to_string().contains("every change replaces it"),
            "{error}"
        );
    }

    #[rstest]
    #[case::action("lambda:CreateFunction", true)]
    #[case::hyphenated_service("elasticfilesystem:DescribeMountTargets", true)]
    #[case::rest_operation("s3:REST.PUT.OBJECT", false)]
    #[case::no_service("CreateFunction", false)]
    #[case::wildcard("kms:*", false)]
    fn is_iam_action_accepts_service_colon_action(
        #[case] permission: &str,
        #[case] expected: bool,
    ) {
        assert_eq!(is_iam_action(permission), expected);
    }
}
