//! Tests against cfn-lint's real schemas and the project's templates.
//!
//! The schemas are found through `CFN_LINT_SCHEMAS` (a `data/schemas` directory) or, failing
//! that, the cfn-lint on PATH: its own python (the `python3` beside it, as in the tools venv
//! CI puts on PATH) tells where `cfnlint` is. Without either, each test says why and skips.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use rstest::rstest;
use serde_json::{Value, json};

use crate::{Operation, Request, Schemas, required, required_for, rules};

const A: &str = "111111111111";
const REGION: &str = "us-east-1";

fn find_schemas() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("CFN_LINT_SCHEMAS") {
        return Ok(PathBuf::from(dir));
    }
    let path = std::env::var_os("PATH").ok_or("CFN_LINT_SCHEMAS and PATH are unset")?;
    let bin = std::env::split_paths(&path)
        .find(|dir| dir.join("cfn-lint").is_file())
        .ok_or("CFN_LINT_SCHEMAS is unset and no cfn-lint is on PATH")?;
    let venv_python = bin.join("python3");
    let python = if venv_python.is_file() {
        venv_python
    } else {
        PathBuf::from("python3")
    };
    let output = Command::new(&python)
        .args([
            "-c",
            "import cfnlint,os;print(os.path.dirname(cfnlint.__file__))",
        ])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} cannot import cfnlint: {}",
            python.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let package = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Ok(Path::new(&package).join("data").join("schemas"))
}

/// The real schemas, or `None` (with the reason printed) when they cannot be found.
fn schemas() -> Option<&'static Schemas> {
    static SCHEMAS: OnceLock<Result<Schemas, String>> = OnceLock::new();
    let found = SCHEMAS.get_or_init(|| {
        let dir = find_schemas()?;
        Schemas::open(&dir).map_err(|e| e.to_string())
    });
    match found {
        Ok(schemas) => Some(schemas),
        Err(why) => {
            eprintln!(
                "skipped: cfn-lint's schemas not found ({why}); set CFN_LINT_SCHEMAS or put the tools venv's bin on PATH"
            );
            None
        }
    }
}

fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(a, r)| (a.to_string(), r.to_string()))
        .collect()
}

fn needs(
    resource_type: &str,
    op: Operation,
    properties: &Value,
    previous: Option<&Value>,
    physical_id: Option<&str>,
) -> Option<BTreeSet<(String, String)>> {
    let schemas = schemas()?;
    let schema = schemas.get(resource_type).unwrap();
    let needs = required_for(
        &schema,
        &Request {
            operation: op,
            properties,
            previous,
            account: A,
            region: REGION,
            physical_id,
        },
    )
    .unwrap();
    Some(needs.into_iter().map(|n| (n.action, n.resource)).collect())
}

#[test]
fn every_table_row_names_a_permission_the_schema_lists() {
    let Some(schemas) = schemas() else { return };
    for resource_type in rules::NARROWED_TYPES {
        let schema = schemas.get(resource_type).unwrap();
        let listed: BTreeSet<&str> = [Operation::Create, Operation::Update, Operation::Delete]
            .into_iter()
            .flat_map(|op| schema.handler_permissions(op).unwrap_or_default())
            .map(String::as_str)
            .collect();
        for row in rules::table(resource_type).unwrap() {
            assert!(
                listed.contains(row.permission),
                "{resource_type}: the table names {} but cfn-lint's schema lists no such permission",
                row.permission
            );
        }
    }
}

#[test]
fn unknown_type_is_an_error() {
    let Some(schemas) = schemas() else { return };
    let error = schemas.get("AWS::Lambda::Functoin").unwrap_err();
    assert!(
        error.to_string().contains("unknown resource type"),
        "{error}"
    );
}

#[test]
fn an_uncovered_type_is_refused_not_guessed() {
    let Some(schemas) = schemas() else { return };
    let queue = schemas.get("AWS::SQS::Queue").unwrap();
    let error = required(&queue, Operation::Create, &json!({}), None, A, REGION).unwrap_err();
    assert!(matches!(error, crate::Error::NotNarrowed { .. }), "{error}");
}

const FUNCTION: &str = "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert";
const EXEC_ROLE: &str = "arn:aws:iam::111111111111:role/callee-ExecutionRole-ABC123";
const CODE: &str = "arn:aws:s3:::servicenow-alert-code-111111111111-us-east-1/callee.zip";
const BUCKET: &str = "arn:aws:s3:::servicenow-alert-code-111111111111-us-east-1";
const LOG_GROUP: &str =
    "arn:aws:logs:us-east-1:111111111111:log-group:/aws/lambda/servicenow-alert";
const KEY_ID: &str = "0b2e3c4d-1111-2222-3333-444455556666";

fn callee_function() -> Value {
    json!({
        "FunctionName": "servicenow-alert",
        "Description": "Renders a ServiceNow alert into an email and sends it over SMTP.",
        "Runtime": "provided.al2023",
        "Handler": "bootstrap",
        "Architectures": ["x86_64"],
        "Timeout": 30,
        "MemorySize": 256,
        "Role": EXEC_ROLE,
        "Code": {
            "S3Bucket": "servicenow-alert-code-111111111111-us-east-1",
            "S3Key": "callee.zip",
            "S3ObjectVersion": "v1"
        },
        "LoggingConfig": {"LogGroup": "/aws/lambda/servicenow-alert"},
        "Environment": {"Variables": {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": "2525"}}
    })
}

#[test]
fn callee_function_create_needs_its_calls_pass_role_and_the_code_object_only() {
    let Some(got) = needs(
        "AWS::Lambda::Function",
        Operation::Create,
        &callee_function(),
        None,
        None,
    ) else {
        return;
    };
    assert_eq!(
        got,
        set(&[
            ("lambda:CreateFunction", FUNCTION),
            ("lambda:GetFunction", FUNCTION),
            ("iam:PassRole", EXEC_ROLE),
            ("s3:GetObject", CODE),
            ("s3:GetObjectVersion", CODE),
        ])
    );
}

#[rstest]
#[case::timeout_only(
    json!({"Timeout": 60}),
    &[("lambda:UpdateFunctionConfiguration", FUNCTION), ("lambda:GetFunction", FUNCTION)][..],
)]
#[case::new_code_version(
    json!({"Code": {"S3Bucket": "servicenow-alert-code-111111111111-us-east-1", "S3Key": "callee.zip", "S3ObjectVersion": "v2"}}),
    &[("lambda:UpdateFunctionConfiguration", FUNCTION), ("lambda:GetFunction", FUNCTION),
      ("lambda:UpdateFunctionCode", FUNCTION), ("s3:GetObject", CODE), ("s3:GetObjectVersion", CODE)][..],
)]
#[case::new_role(
    json!({"Role": "arn:aws:iam::111111111111:role/other"}),
    &[("lambda:UpdateFunctionConfiguration", FUNCTION), ("lambda:GetFunction", FUNCTION),
      ("iam:PassRole", "arn:aws:iam::111111111111:role/other")][..],
)]
#[case::into_a_vpc(
    json!({"VpcConfig": {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}}),
    &[("lambda:UpdateFunctionConfiguration", FUNCTION), ("lambda:GetFunction", FUNCTION),
      ("ec2:DescribeSecurityGroups", "*"), ("ec2:DescribeSubnets", "*"), ("ec2:DescribeVpcs", "*")][..],
)]
fn callee_function_update_needs_what_the_change_uses(
    #[case] change: Value,
    #[case] expected: &[(&str, &str)],
) {
    let previous = callee_function();
    let mut properties = previous.clone();
    for (key, value) in change.as_object().unwrap() {
        properties[key] = value.clone();
    }
    let Some(got) = needs(
        "AWS::Lambda::Function",
        Operation::Update,
        &properties,
        Some(&previous),
        None,
    ) else {
        return;
    };
    assert_eq!(got, set(expected));
}

#[test]
fn function_delete_outside_a_vpc_needs_no_ec2() {
    let Some(got) = needs(
        "AWS::Lambda::Function",
        Operation::Delete,
        &json!({}),
        Some(&callee_function()),
        None,
    ) else {
        return;
    };
    assert_eq!(
        got,
        set(&[
            ("lambda:DeleteFunction", FUNCTION),
            ("lambda:GetFunction", FUNCTION)
        ])
    );
}

/// One resource of the project's templates with a plausible resolved property set (what
/// CloudFormation would hand its handler in account A), and what its create needs.
struct Deployed {
    logical_id: &'static str,
    resource_type: &'static str,
    properties: Value,
    create_needs: Option<&'static [(&'static str, &'static str)]>,
}

fn deployed(template: &str) -> Vec<Deployed> {
    let role = |name: &str| format!("arn:aws:iam::111111111111:role/{name}");
    let log_group = |function: &str| json!({"LogGroupName": format!("/aws/lambda/{function}"), "RetentionInDays": 14});
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "lambda:InvokeFunction", "Resource": FUNCTION}]});
    let code_stack = |prefix: &str| {
        let bucket = format!("{prefix}-code-111111111111-us-east-1");
        vec![
            Deployed {
                logical_id: "CodeKey",
                resource_type: "AWS::KMS::Key",
                properties: json!({"Description": "Encrypts the lambda code.",
                    "EnableKeyRotation": true, "KeyPolicy": policy}),
                create_needs: Some(&[
                    ("kms:CreateKey", "*"),
                    (
                        "kms:EnableKeyRotation",
                        "arn:aws:kms:us-east-1:111111111111:key/*",
                    ),
                    (
                        "kms:PutKeyPolicy",
                        "arn:aws:kms:us-east-1:111111111111:key/*",
                    ),
                ]),
            },
            Deployed {
                logical_id: "CodeKeyAlias",
                resource_type: "AWS::KMS::Alias",
                properties: json!({"AliasName": format!("alias/{prefix}-code"), "TargetKeyId": KEY_ID}),
                create_needs: None,
            },
            Deployed {
                logical_id: "CodeBucket",
                resource_type: "AWS::S3::Bucket",
                properties: json!({
                    "BucketName": bucket,
                    "BucketEncryption": {"ServerSideEncryptionConfiguration": [{
                        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": format!("arn:aws:kms:us-east-1:111111111111:key/{KEY_ID}")},
                        "BucketKeyEnabled": true}]},
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "PublicAccessBlockConfiguration": {"BlockPublicAcls": true, "BlockPublicPolicy": true,
                        "IgnorePublicAcls": true, "RestrictPublicBuckets": true},
                    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
                }),
                create_needs: None,
            },
            Deployed {
                logical_id: "CodeBucketPolicy",
                resource_type: "AWS::S3::BucketPolicy",
                properties: json!({"Bucket": bucket, "PolicyDocument": policy}),
                create_needs: None,
            },
        ]
    };
    match template {
        "s3callee.yaml" => code_stack("servicenow-alert"),
        "s3caller.yaml" => code_stack("servicenow-invoker"),
        "calleecloudformation.yaml" => vec![
            Deployed {
                logical_id: "LogGroup",
                resource_type: "AWS::Logs::LogGroup",
                properties: log_group("servicenow-alert"),
                create_needs: Some(&[
                    ("logs:DescribeLogGroups", "*"),
                    ("logs:CreateLogGroup", LOG_GROUP),
                    ("logs:PutRetentionPolicy", LOG_GROUP),
                ]),
            },
            Deployed {
                logical_id: "ExecutionRole",
                resource_type: "AWS::IAM::Role",
                properties: json!({"RoleName": "servicenow-alert-exec", "AssumeRolePolicyDocument": trust,
                    "Description": "Execution role.", "Policies": [{"PolicyName": "logs", "PolicyDocument": policy}]}),
                create_needs: Some(&[
                    (
                        "iam:CreateRole",
                        "arn:aws:iam::111111111111:role/servicenow-alert-exec",
                    ),
                    (
                        "iam:GetRole",
                        "arn:aws:iam::111111111111:role/servicenow-alert-exec",
                    ),
                    (
                        "iam:PutRolePolicy",
                        "arn:aws:iam::111111111111:role/servicenow-alert-exec",
                    ),
                    (
                        "iam:GetRolePolicy",
                        "arn:aws:iam::111111111111:role/servicenow-alert-exec",
                    ),
                ]),
            },
            Deployed {
                logical_id: "SmtpSecurityGroup",
                resource_type: "AWS::EC2::SecurityGroup",
                properties: json!({"GroupDescription": "SMTP egress.", "VpcId": "vpc-0abc",
                    "SecurityGroupEgress": [{"IpProtocol": "tcp", "FromPort": 2525, "ToPort": 2525,
                        "CidrIp": "0.0.0.0/0"}]}),
                create_needs: Some(&[
                    (
                        "ec2:CreateSecurityGroup",
                        "arn:aws:ec2:us-east-1:111111111111:security-group/*",
                    ),
                    (
                        "ec2:CreateSecurityGroup",
                        "arn:aws:ec2:us-east-1:111111111111:vpc/vpc-0abc",
                    ),
                    ("ec2:DescribeSecurityGroups", "*"),
                    (
                        "ec2:RevokeSecurityGroupEgress",
                        "arn:aws:ec2:us-east-1:111111111111:security-group/*",
                    ),
                    (
                        "ec2:AuthorizeSecurityGroupEgress",
                        "arn:aws:ec2:us-east-1:111111111111:security-group/*",
                    ),
                ]),
            },
            Deployed {
                logical_id: "Function",
                resource_type: "AWS::Lambda::Function",
                properties: {
                    let mut f = callee_function();
                    f["VpcConfig"] =
                        json!({"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]});
                    f
                },
                create_needs: None,
            },
            Deployed {
                logical_id: "CrossAccountRole",
                resource_type: "AWS::IAM::Role",
                properties: json!({"RoleName": "servicenow-invoke", "AssumeRolePolicyDocument": trust,
                    "Description": "Assumed by the invoker.", "MaxSessionDuration": 3600}),
                create_needs: Some(&[
                    (
                        "iam:CreateRole",
                        "arn:aws:iam::111111111111:role/servicenow-invoke",
                    ),
                    (
                        "iam:GetRole",
                        "arn:aws:iam::111111111111:role/servicenow-invoke",
                    ),
                ]),
            },
            Deployed {
                logical_id: "CrossAccountInvokePolicy",
                resource_type: "AWS::IAM::Policy",
                properties: json!({"PolicyName": "invoke", "PolicyDocument": policy,
                    "Roles": ["servicenow-invoke"]}),
                create_needs: Some(&[
                    (
                        "iam:GetRolePolicy",
                        "arn:aws:iam::111111111111:role/servicenow-invoke",
                    ),
                    (
                        "iam:PutRolePolicy",
                        "arn:aws:iam::111111111111:role/servicenow-invoke",
                    ),
                ]),
            },
            Deployed {
                logical_id: "AllowCrossAccountRoleInvoke",
                resource_type: "AWS::Lambda::Permission",
                properties: json!({"FunctionName": FUNCTION, "Action": "lambda:InvokeFunction",
                    "Principal": "222222222222"}),
                create_needs: Some(&[("lambda:AddPermission", FUNCTION)]),
            },
        ],
        "callercloudformation.yaml" => {
            let invoker = "arn:aws:lambda:us-east-1:111111111111:function:servicenow-invoker";
            let mut function = callee_function();
            function["FunctionName"] = json!("servicenow-invoker");
            function["Role"] = json!(role("servicenow-invoker-exec"));
            vec![
                Deployed {
                    logical_id: "LogGroup",
                    resource_type: "AWS::Logs::LogGroup",
                    properties: log_group("servicenow-invoker"),
                    create_needs: None,
                },
                Deployed {
                    logical_id: "ExecutionRole",
                    resource_type: "AWS::IAM::Role",
                    properties: json!({"RoleName": "servicenow-invoker-exec", "AssumeRolePolicyDocument": trust,
                        "Description": "Execution role.", "Policies": [{"PolicyName": "logs", "PolicyDocument": policy}]}),
                    create_needs: None,
                },
                Deployed {
                    logical_id: "DirectInvokePolicy",
                    resource_type: "AWS::IAM::Policy",
                    properties: json!({"PolicyName": "direct-invoke", "PolicyDocument": policy,
                        "Roles": ["servicenow-invoker-exec"]}),
                    create_needs: None,
                },
                Deployed {
                    logical_id: "ExplicitDenyPolicy",
                    resource_type: "AWS::IAM::Policy",
                    properties: json!({"PolicyName": "explicit-deny", "PolicyDocument": policy,
                        "Roles": ["servicenow-invoker-exec"]}),
                    create_needs: None,
                },
                Deployed {
                    logical_id: "Function",
                    resource_type: "AWS::Lambda::Function",
                    properties: function,
                    create_needs: None,
                },
                Deployed {
                    logical_id: "AllowAccountInvoke",
                    resource_type: "AWS::Lambda::Permission",
                    properties: json!({"FunctionName": invoker, "Action": "lambda:InvokeFunction",
                        "Principal": "111111111111"}),
                    create_needs: None,
                },
            ]
        }
        "deployrole.yaml" | "tooling.yaml" => {
            let (id, name) = match template {
                "deployrole.yaml" => ("DeployRole", "servicenow-deploy"),
                _ => ("CiInstanceRole", "harness-ci"),
            };
            vec![Deployed {
                logical_id: id,
                resource_type: "AWS::IAM::Role",
                properties: json!({"RoleName": name, "AssumeRolePolicyDocument": trust,
                    "Description": "Deploys.", "Policies": [{"PolicyName": "deploy", "PolicyDocument": policy}]}),
                create_needs: None,
            }]
        }
        other => panic!("no plausible properties for {other}; add them to `deployed`"),
    }
}

/// `(logical id, type, top-level property names)` of each resource of a template. Tags
/// such as `!Ref` are dropped by the parser; their values stay, which is all this needs.
fn template_resources(template: &str) -> Vec<(String, String, BTreeSet<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../cloudformation")
        .join(template);
    let text = std::fs::read_to_string(&path).unwrap();
    let parsed: Value = serde_saphyr::from_str(&text).unwrap();
    parsed["Resources"]
        .as_object()
        .unwrap_or_else(|| panic!("{} has no Resources", path.display()))
        .iter()
        .map(|(id, resource)| {
            let properties = resource["Properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            (
                id.clone(),
                resource["Type"].as_str().unwrap_or_default().to_owned(),
                properties,
            )
        })
        .collect()
}

#[test]
fn the_templates_are_the_four_this_test_knows() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cloudformation");
    let mut templates: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    templates.sort();
    // A new template needs its resources added to `deployed`.
    assert_eq!(
        templates,
        [
            "calleecloudformation.yaml",
            "callercloudformation.yaml",
            "deployrole.yaml",
            "s3callee.yaml",
            "s3caller.yaml",
            "tooling.yaml"
        ]
    );
}

#[rstest]
#[case("calleecloudformation.yaml")]
#[case("callercloudformation.yaml")]
#[case("deployrole.yaml")]
#[case("s3callee.yaml")]
#[case("s3caller.yaml")]
#[case("tooling.yaml")]
fn every_resource_of_the_templates_is_covered(#[case] template: &str) {
    let Some(schemas) = schemas() else { return };
    let in_template = template_resources(template);
    let plausible = deployed(template);
    assert_eq!(
        in_template
            .iter()
            .map(|(id, _, _)| id.as_str())
            .collect::<BTreeSet<_>>(),
        plausible
            .iter()
            .map(|d| d.logical_id)
            .collect::<BTreeSet<_>>(),
        "{template}: its resources and this test's plausible property sets differ"
    );
    for (id, resource_type, property_names) in &in_template {
        let deployed = plausible.iter().find(|d| d.logical_id == id).unwrap();
        assert_eq!(resource_type, deployed.resource_type, "{template} {id}");
        let given: BTreeSet<String> = deployed
            .properties
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let missing: Vec<_> = property_names.difference(&given).collect();
        assert!(
            missing.is_empty(),
            "{template} {id}: the plausible properties lack {missing:?}"
        );

        let schema = schemas.get(resource_type).unwrap();
        let create = required(
            &schema,
            Operation::Create,
            &deployed.properties,
            None,
            A,
            REGION,
        )
        .unwrap_or_else(|e| panic!("{template} {id}: {e}"));
        assert!(!create.is_empty(), "{template} {id}: create needs nothing");
        if let Some(expected) = deployed.create_needs {
            let got: BTreeSet<(String, String)> =
                create.into_iter().map(|n| (n.action, n.resource)).collect();
            assert_eq!(got, set(expected), "{template} {id}");
        }
        // A redeploy with nothing changed (update handler, if any) and the delete.
        if schema.handler_permissions(Operation::Update).is_some() {
            required(
                &schema,
                Operation::Update,
                &deployed.properties,
                Some(&deployed.properties),
                A,
                REGION,
            )
            .unwrap_or_else(|e| panic!("{template} {id} update: {e}"));
        }
        let delete = required(
            &schema,
            Operation::Delete,
            &deployed.properties,
            None,
            A,
            REGION,
        )
        .unwrap_or_else(|e| panic!("{template} {id} delete: {e}"));
        assert!(!delete.is_empty(), "{template} {id}: delete needs nothing");
    }
}

#[test]
fn code_bucket_create_needs_exactly_its_configured_features() {
    let Some(got) = needs(
        "AWS::S3::Bucket",
        Operation::Create,
        &deployed("s3callee.yaml")
            .into_iter()
            .find(|d| d.logical_id == "CodeBucket")
            .unwrap()
            .properties,
        None,
        None,
    ) else {
        return;
    };
    let objects = format!("{BUCKET}/*");
    assert_eq!(
        got,
        set(&[
            ("s3:CreateBucket", BUCKET),
            ("s3:ListBucket", BUCKET),
            ("s3:DeleteObject", &objects),
            ("s3:PutEncryptionConfiguration", BUCKET),
            ("s3:PutBucketVersioning", BUCKET),
            ("s3:PutBucketPublicAccessBlock", BUCKET),
            ("s3:PutBucketOwnershipControls", BUCKET),
        ])
    );
}

#[test]
fn alias_is_created_on_the_alias_and_its_key() {
    let Some(got) = needs(
        "AWS::KMS::Alias",
        Operation::Create,
        &json!({"AliasName": "alias/servicenow-alert-code", "TargetKeyId": KEY_ID}),
        None,
        None,
    ) else {
        return;
    };
    let key = format!("arn:aws:kms:us-east-1:111111111111:key/{KEY_ID}");
    assert_eq!(
        got,
        set(&[
            (
                "kms:CreateAlias",
                "arn:aws:kms:us-east-1:111111111111:alias/servicenow-alert-code"
            ),
            ("kms:CreateAlias", &key),
        ])
    );
}

#[test]
fn role_delete_cleans_up_what_the_role_had() {
    let Some(got) = needs(
        "AWS::IAM::Role",
        Operation::Delete,
        &json!({}),
        Some(&json!({"AssumeRolePolicyDocument": {}, "Policies": [{"PolicyName": "logs"}]})),
        Some("callee-ExecutionRole-ABC123"),
    ) else {
        return;
    };
    assert_eq!(
        got,
        set(&[
            ("iam:DeleteRole", EXEC_ROLE),
            ("iam:GetRole", EXEC_ROLE),
            ("iam:ListAttachedRolePolicies", EXEC_ROLE),
            ("iam:ListRolePolicies", EXEC_ROLE),
            ("iam:DeleteRolePolicy", EXEC_ROLE),
        ])
    );
}

#[test]
fn log_group_drops_the_s3_access_log_operation() {
    let Some(schemas) = schemas() else { return };
    let schema = schemas.get("AWS::Logs::LogGroup").unwrap();
    // The data still lists it: if a cfn-lint upgrade drops it, this test says the
    // filter may be obsolete.
    assert!(
        schema
            .handler_permissions(Operation::Create)
            .unwrap()
            .iter()
            .any(|p| p == "s3:REST.PUT.OBJECT")
    );
    let needs = required(
        &schema,
        Operation::Create,
        &json!({"LogGroupName": "g", "DataProtectionPolicy": {"Name": "p"}}),
        None,
        A,
        REGION,
    )
    .unwrap();
    assert!(needs.iter().all(|n| n.action != "s3:REST.PUT.OBJECT"));
    assert!(
        needs
            .iter()
            .any(|n| n.action == "logs:PutDataProtectionPolicy")
    );
}

#[rstest]
#[case::function_name(json!({"FunctionName": "b"}), &["FunctionName"][..])]
#[case::timeout(json!({"Timeout": 60}), &[][..])]
#[case::code(json!({"Code": {"S3Bucket": "x", "S3Key": "y"}}), &[][..])]
fn function_replacement_follows_create_only_properties(
    #[case] change: Value,
    #[case] expected: &[&str],
) {
    let Some(schemas) = schemas() else { return };
    let schema = schemas.get("AWS::Lambda::Function").unwrap();
    let previous = callee_function();
    let mut properties = previous.clone();
    for (key, value) in change.as_object().unwrap() {
        properties[key] = value.clone();
    }
    assert_eq!(
        crate::replaced_by(&schema, &properties, &previous),
        expected
    );
}
