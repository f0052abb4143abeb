//! The narrowing tables: per resource type, which handler permissions depend on which
//! property, and which resource each is evaluated on.
//!
//! A permission of a covered type's handler list that no row names is required always, on
//! the resource's own ARN ([`On::Own`]). A row applies to whichever of the create, update
//! and delete lists holds its permission; rows never add a permission the schema does not
//! list.
//!
//! How each row was decided is in the crate docs ("The narrowing rule").

/// When a handler needs a permission. Pointers are below `Properties`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum When {
    /// Every time the handler runs.
    Always,
    /// A setter: create and delete, when any pointer is set; update, when one is set in the
    /// new properties and differs from the previous ones.
    Changed(&'static [&'static str]),
    /// A remover: create, never; delete, when any pointer is set; update, when one was set
    /// before and differs now (removed or changed). Its resources come from the previous
    /// properties.
    Dropped(&'static [&'static str]),
    /// A diff reader: create and delete, when any pointer is set; update, when one differs.
    Touched(&'static [&'static str]),
    /// A boolean switch: create, when the value is `value` and that is not the default
    /// (a new resource starts at the default); update, when it became `value` (absent
    /// counts as the default); delete, never.
    Is {
        pointer: &'static str,
        value: bool,
        default: bool,
    },
}

/// The resource(s) a permission is evaluated on; a row with several gives one requirement
/// each.
#[derive(Debug, Clone, Copy)]
pub(crate) enum On {
    /// `*`: the action has no resource-level permissions.
    Star,
    /// The resource's own ARN (see [`own`](crate::required)).
    Own,
    /// The objects of the bucket itself: `arn:aws:s3:::BUCKET/*`.
    OwnObjects,
    /// Each set pointer's value (a string or list of strings) is an ARN.
    Arns(&'static [&'static str]),
    /// The function code object: `arn:aws:s3:::Code.S3Bucket/Code.S3Key`.
    CodeObject,
    /// The key named at the pointer (key id or ARN).
    KmsKey(&'static str),
    /// On update, the key the pointer named before, when it changed.
    KmsKeyBefore(&'static str),
    /// The VPC named at the pointer, or any VPC of the account (`vpc/*`, the default VPC)
    /// when absent.
    Vpc(&'static str),
    /// IAM entities named at the pointer (a list of names or ARNs) of the given kind
    /// (`role`, `user`, `group`).
    IamNames(&'static str, &'static str),
}

/// One row: a permission, when it is needed, and on what.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    pub(crate) permission: &'static str,
    pub(crate) when: When,
    pub(crate) on: &'static [On],
}

const fn rule(permission: &'static str, when: When, on: &'static [On]) -> Rule {
    Rule {
        permission,
        when,
        on,
    }
}

use On::*;
use When::*;

const OWN: &[On] = &[Own];
const STAR: &[On] = &[Star];

/// The table of `resource_type`, or `None` if this crate does not narrow it.
pub(crate) fn table(resource_type: &str) -> Option<&'static [Rule]> {
    Some(match resource_type {
        "AWS::EC2::SecurityGroup" => EC2_SECURITY_GROUP,
        "AWS::IAM::Policy" => IAM_POLICY,
        "AWS::IAM::Role" => IAM_ROLE,
        "AWS::KMS::Alias" => KMS_ALIAS,
        "AWS::KMS::Key" => KMS_KEY,
        "AWS::Lambda::Function" => LAMBDA_FUNCTION,
        "AWS::Lambda::Permission" => LAMBDA_PERMISSION,
        "AWS::Logs::LogGroup" => LOGS_LOG_GROUP,
        "AWS::S3::Bucket" => S3_BUCKET,
        "AWS::S3::BucketPolicy" => S3_BUCKET_POLICY,
        _ => return None,
    })
}

/// Every type with a table.
pub(crate) const NARROWED_TYPES: &[&str] = &[
    "AWS::EC2::SecurityGroup",
    "AWS::IAM::Policy",
    "AWS::IAM::Role",
    "AWS::KMS::Alias",
    "AWS::KMS::Key",
    "AWS::Lambda::Function",
    "AWS::Lambda::Permission",
    "AWS::Logs::LogGroup",
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
];

const EGRESS: &[&str] = &["/SecurityGroupEgress"];
const INGRESS: &[&str] = &["/SecurityGroupIngress"];
const TAGS: &[&str] = &["/Tags"];

const EC2_SECURITY_GROUP: &[Rule] = &[
    // EC2 authorizes CreateSecurityGroup on the new group and on the VPC it goes in.
    rule("ec2:CreateSecurityGroup", Always, &[Own, Vpc("/VpcId")]),
    rule("ec2:DescribeSecurityGroups", Always, STAR),
    rule("ec2:DescribeInstances", Always, STAR),
    // The create handler revokes the default allow-all egress rule only to put the
    // template's own egress rules in its place.
    rule("ec2:RevokeSecurityGroupEgress", Changed(EGRESS), OWN),
    rule("ec2:RevokeSecurityGroupEgress", Dropped(EGRESS), OWN),
    rule("ec2:AuthorizeSecurityGroupEgress", Changed(EGRESS), OWN),
    rule("ec2:RevokeSecurityGroupIngress", Dropped(INGRESS), OWN),
    rule("ec2:AuthorizeSecurityGroupIngress", Changed(INGRESS), OWN),
    rule(
        "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
        Changed(EGRESS),
        OWN,
    ),
    rule(
        "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
        Changed(INGRESS),
        OWN,
    ),
    rule("ec2:CreateTags", Changed(TAGS), OWN),
    rule("ec2:DeleteTags", Dropped(TAGS), OWN),
];

const ROLES: &[&str] = &["/Roles"];
const USERS: &[&str] = &["/Users"];
const GROUPS: &[&str] = &["/Groups"];
// A renamed policy is deleted from every entity it was on.
const ROLES_OR_NAME: &[&str] = &["/Roles", "/PolicyName"];
const USERS_OR_NAME: &[&str] = &["/Users", "/PolicyName"];
const GROUPS_OR_NAME: &[&str] = &["/Groups", "/PolicyName"];

const IAM_POLICY: &[Rule] = &[
    // The handler writes the inline policy to every entity listed, each update included
    // (the document may be what changed), and reads it back.
    rule(
        "iam:GetRolePolicy",
        Touched(ROLES),
        &[IamNames("/Roles", "role")],
    ),
    rule(
        "iam:GetUserPolicy",
        Touched(USERS),
        &[IamNames("/Users", "user")],
    ),
    rule(
        "iam:GetGroupPolicy",
        Touched(GROUPS),
        &[IamNames("/Groups", "group")],
    ),
    rule(
        "iam:PutRolePolicy",
        Changed(ROLES),
        &[IamNames("/Roles", "role")],
    ),
    rule(
        "iam:PutUserPolicy",
        Changed(USERS),
        &[IamNames("/Users", "user")],
    ),
    rule(
        "iam:PutGroupPolicy",
        Changed(GROUPS),
        &[IamNames("/Groups", "group")],
    ),
    rule(
        "iam:DeleteRolePolicy",
        Dropped(ROLES_OR_NAME),
        &[IamNames("/Roles", "role")],
    ),
    rule(
        "iam:DeleteUserPolicy",
        Dropped(USERS_OR_NAME),
        &[IamNames("/Users", "user")],
    ),
    rule(
        "iam:DeleteGroupPolicy",
        Dropped(GROUPS_OR_NAME),
        &[IamNames("/Groups", "group")],
    ),
];

const POLICIES: &[&str] = &["/Policies"];
const MANAGED: &[&str] = &["/ManagedPolicyArns"];
const BOUNDARY: &[&str] = &["/PermissionsBoundary"];

const IAM_ROLE: &[Rule] = &[
    rule("iam:PutRolePolicy", Changed(POLICIES), OWN),
    rule("iam:GetRolePolicy", Touched(POLICIES), OWN),
    rule("iam:DeleteRolePolicy", Dropped(POLICIES), OWN),
    rule("iam:AttachRolePolicy", Changed(MANAGED), OWN),
    rule("iam:DetachRolePolicy", Dropped(MANAGED), OWN),
    rule("iam:TagRole", Changed(TAGS), OWN),
    rule("iam:UntagRole", Dropped(TAGS), OWN),
    rule("iam:PutRolePermissionsBoundary", Changed(BOUNDARY), OWN),
    rule("iam:DeleteRolePermissionsBoundary", Dropped(BOUNDARY), OWN),
    rule(
        "iam:UpdateAssumeRolePolicy",
        Changed(&["/AssumeRolePolicyDocument"]),
        OWN,
    ),
    rule(
        "iam:UpdateRole",
        Touched(&["/Description", "/MaxSessionDuration"]),
        OWN,
    ),
    rule("iam:UpdateRoleDescription", Touched(&["/Description"]), OWN),
];

const KMS_ALIAS: &[Rule] = &[
    // KMS authorizes alias operations on the alias and on each key involved.
    rule("kms:CreateAlias", Always, &[Own, KmsKey("/TargetKeyId")]),
    rule(
        "kms:UpdateAlias",
        Always,
        &[Own, KmsKey("/TargetKeyId"), KmsKeyBefore("/TargetKeyId")],
    ),
    rule("kms:DeleteAlias", Always, &[Own, KmsKey("/TargetKeyId")]),
];

const KMS_KEY: &[Rule] = &[
    rule("kms:CreateKey", Always, STAR),
    rule(
        "kms:EnableKeyRotation",
        Is {
            pointer: "/EnableKeyRotation",
            value: true,
            default: false,
        },
        OWN,
    ),
    rule(
        "kms:DisableKeyRotation",
        Is {
            pointer: "/EnableKeyRotation",
            value: false,
            default: false,
        },
        OWN,
    ),
    rule(
        "kms:DisableKey",
        Is {
            pointer: "/Enabled",
            value: false,
            default: true,
        },
        OWN,
    ),
    rule(
        "kms:EnableKey",
        Is {
            pointer: "/Enabled",
            value: true,
            default: true,
        },
        OWN,
    ),
    rule("kms:PutKeyPolicy", Changed(&["/KeyPolicy"]), OWN),
    rule("kms:TagResource", Changed(TAGS), OWN),
    rule("kms:UntagResource", Dropped(TAGS), OWN),
    rule("kms:ListResourceTags", Touched(TAGS), OWN),
    rule("kms:UpdateKeyDescription", Touched(&["/Description"]), OWN),
];

const VPC: &[&str] = &["/VpcConfig/SubnetIds", "/VpcConfig/SecurityGroupIds"];
const FILE_SYSTEMS: &[&str] = &["/FileSystemConfigs"];
const FUNCTION_KEYS: &[&str] = &["/KmsKeyArn", "/Code/SourceKMSKeyArn"];
const CODE_SIGNING: &[&str] = &["/CodeSigningConfigArn"];
const RUNTIME_MANAGEMENT: &[&str] = &["/RuntimeManagementConfig"];
const RECURSION: &[&str] = &["/RecursiveLoop"];
const CONCURRENCY: &[&str] = &["/ReservedConcurrentExecutions"];
const S3_CODE: &[&str] = &["/Code/S3Bucket", "/Code/S3Key", "/Code/S3ObjectVersion"];
// lambda:AssociateRuntimeAlias serves no property of its own; it arrived with these
// features, and a function that uses none of them deploys without it.
const NEWER_COMPUTE: &[&str] = &[
    "/CapacityProviderConfig",
    "/PublishToLatestPublished",
    "/TenancyConfig",
    "/DurableConfig",
];

const LAMBDA_FUNCTION: &[Rule] = &[
    rule("iam:PassRole", Changed(&["/Role"]), &[Arns(&["/Role"])]),
    rule("s3:GetObject", Changed(S3_CODE), &[CodeObject]),
    rule(
        "s3:GetObjectVersion",
        Changed(&["/Code/S3ObjectVersion"]),
        &[CodeObject],
    ),
    rule("lambda:UpdateFunctionCode", Changed(&["/Code"]), OWN),
    rule("ec2:DescribeSecurityGroups", Changed(VPC), STAR),
    rule("ec2:DescribeSubnets", Changed(VPC), STAR),
    rule("ec2:DescribeVpcs", Changed(VPC), STAR),
    // Lambda waits for the function's network interfaces to go before it is deleted.
    rule("ec2:DescribeNetworkInterfaces", Changed(VPC), STAR),
    rule(
        "elasticfilesystem:DescribeMountTargets",
        Changed(FILE_SYSTEMS),
        STAR,
    ),
    rule("s3files:ListMountTargets", Changed(FILE_SYSTEMS), STAR),
    rule(
        "kms:CreateGrant",
        Changed(FUNCTION_KEYS),
        &[Arns(FUNCTION_KEYS)],
    ),
    rule(
        "kms:Decrypt",
        Changed(FUNCTION_KEYS),
        &[Arns(FUNCTION_KEYS)],
    ),
    rule(
        "kms:DescribeKey",
        Changed(FUNCTION_KEYS),
        &[Arns(FUNCTION_KEYS)],
    ),
    rule(
        "kms:Encrypt",
        Changed(FUNCTION_KEYS),
        &[Arns(FUNCTION_KEYS)],
    ),
    rule(
        "kms:GenerateDataKey",
        Changed(FUNCTION_KEYS),
        &[Arns(FUNCTION_KEYS)],
    ),
    rule(
        "lambda:GetCodeSigningConfig",
        Changed(CODE_SIGNING),
        &[Arns(CODE_SIGNING)],
    ),
    rule(
        "lambda:GetFunctionCodeSigningConfig",
        Touched(CODE_SIGNING),
        OWN,
    ),
    rule(
        "lambda:PutFunctionCodeSigningConfig",
        Changed(CODE_SIGNING),
        &[Own, Arns(CODE_SIGNING)],
    ),
    rule(
        "lambda:DeleteFunctionCodeSigningConfig",
        Dropped(CODE_SIGNING),
        OWN,
    ),
    rule(
        "lambda:GetLayerVersion",
        Changed(&["/Layers"]),
        &[Arns(&["/Layers"])],
    ),
    rule("lambda:PutFunctionConcurrency", Changed(CONCURRENCY), OWN),
    rule(
        "lambda:DeleteFunctionConcurrency",
        Dropped(CONCURRENCY),
        OWN,
    ),
    rule(
        "lambda:GetRuntimeManagementConfig",
        Touched(RUNTIME_MANAGEMENT),
        OWN,
    ),
    rule(
        "lambda:PutRuntimeManagementConfig",
        Touched(RUNTIME_MANAGEMENT),
        OWN,
    ),
    rule("lambda:TagResource", Changed(TAGS), OWN),
    rule("lambda:UntagResource", Dropped(TAGS), OWN),
    rule("lambda:GetFunctionRecursionConfig", Touched(RECURSION), OWN),
    rule("lambda:PutFunctionRecursionConfig", Touched(RECURSION), OWN),
    rule(
        "lambda:PutFunctionScalingConfig",
        Changed(&["/FunctionScalingConfig"]),
        OWN,
    ),
    rule(
        "lambda:PassCapacityProvider",
        Changed(&["/CapacityProviderConfig"]),
        STAR,
    ),
    rule("lambda:AssociateRuntimeAlias", Changed(NEWER_COMPUTE), OWN),
    rule(
        "lambda:PublishVersion",
        Changed(&["/PublishToLatestPublished"]),
        OWN,
    ),
];

// Every permission of both lists is the resource's own operation.
const LAMBDA_PERMISSION: &[Rule] = &[];

const DATA_PROTECTION: &[&str] = &["/DataProtectionPolicy"];
const RETENTION: &[&str] = &["/RetentionInDays"];
const RESOURCE_POLICY: &[&str] = &["/ResourcePolicyDocument"];
const INDEX_POLICIES: &[&str] = &["/FieldIndexPolicies"];
const KMS_KEY_ID: &[&str] = &["/KmsKeyId"];

const LOGS_LOG_GROUP: &[Rule] = &[
    // Listing log groups has no resource-level permissions.
    rule("logs:DescribeLogGroups", Always, STAR),
    rule("logs:PutRetentionPolicy", Changed(RETENTION), OWN),
    rule("logs:DeleteRetentionPolicy", Dropped(RETENTION), OWN),
    rule("logs:TagResource", Changed(TAGS), OWN),
    rule("logs:UntagResource", Dropped(TAGS), OWN),
    rule("logs:ListTagsForResource", Touched(TAGS), OWN),
    rule(
        "logs:GetDataProtectionPolicy",
        Touched(DATA_PROTECTION),
        OWN,
    ),
    rule(
        "logs:PutDataProtectionPolicy",
        Changed(DATA_PROTECTION),
        OWN,
    ),
    rule(
        "logs:DeleteDataProtectionPolicy",
        Dropped(DATA_PROTECTION),
        OWN,
    ),
    // Delivering a data protection policy's audit findings (to S3, Firehose) sets up a
    // log delivery; CreateLogDelivery has no resource-level permissions, and the
    // Firehose stream is not a property of the log group.
    rule("logs:CreateLogDelivery", Changed(DATA_PROTECTION), STAR),
    rule("firehose:TagDeliveryStream", Changed(DATA_PROTECTION), STAR),
    rule("logs:PutResourcePolicy", Changed(RESOURCE_POLICY), STAR),
    rule(
        "logs:DescribeResourcePolicies",
        Touched(RESOURCE_POLICY),
        STAR,
    ),
    rule("logs:DeleteResourcePolicy", Dropped(RESOURCE_POLICY), STAR),
    rule("logs:PutIndexPolicy", Changed(INDEX_POLICIES), OWN),
    rule("logs:DescribeIndexPolicies", Touched(INDEX_POLICIES), OWN),
    rule("logs:DeleteIndexPolicy", Dropped(INDEX_POLICIES), OWN),
    rule("logs:AssociateKmsKey", Changed(KMS_KEY_ID), OWN),
    rule("logs:DisassociateKmsKey", Dropped(KMS_KEY_ID), OWN),
    rule(
        "logs:PutBearerTokenAuthentication",
        Touched(&["/BearerTokenAuthenticationEnabled"]),
        OWN,
    ),
    rule(
        "logs:PutLogGroupDeletionProtection",
        Touched(&["/DeletionProtectionEnabled"]),
        OWN,
    ),
];

const METADATA: &[&str] = &["/MetadataConfiguration", "/MetadataTableConfiguration"];
const REPLICATION: &[&str] = &["/ReplicationConfiguration"];
const OBJECT_LOCK: &[&str] = &["/ObjectLockConfiguration", "/ObjectLockEnabled"];
const PASSED_BUCKET_ROLES: &[&str] = &[
    "/ReplicationConfiguration/Role",
    "/MetadataConfiguration/AnnotationTableConfiguration/Role",
];

const S3_BUCKET: &[Rule] = &[
    // S3 checks object operations on the objects, not the bucket. The create handler
    // lists s3:DeleteObject with no property that selects it, so it stays unconditional.
    rule("s3:DeleteObject", Always, &[OwnObjects]),
    rule("s3:PutBucketTagging", Changed(TAGS), OWN),
    rule("s3:TagResource", Changed(TAGS), OWN),
    rule("s3:UntagResource", Dropped(TAGS), OWN),
    rule("s3:PutBucketAbac", Touched(&["/AbacStatus"]), OWN),
    rule(
        "s3:PutAnalyticsConfiguration",
        Changed(&["/AnalyticsConfigurations"]),
        OWN,
    ),
    rule(
        "s3:DeleteBucketAnalyticsConfiguration",
        Dropped(&["/AnalyticsConfigurations"]),
        OWN,
    ),
    rule(
        "s3:PutEncryptionConfiguration",
        Changed(&["/BucketEncryption"]),
        OWN,
    ),
    rule(
        "s3:DeleteBucketEncryption",
        Dropped(&["/BucketEncryption"]),
        OWN,
    ),
    rule("s3:PutBucketCORS", Changed(&["/CorsConfiguration"]), OWN),
    rule("s3:DeleteBucketCors", Dropped(&["/CorsConfiguration"]), OWN),
    rule(
        "s3:PutInventoryConfiguration",
        Touched(&["/InventoryConfigurations"]),
        OWN,
    ),
    rule(
        "s3:PutLifecycleConfiguration",
        Changed(&["/LifecycleConfiguration"]),
        OWN,
    ),
    rule(
        "s3:DeleteBucketLifecycle",
        Dropped(&["/LifecycleConfiguration"]),
        OWN,
    ),
    rule(
        "s3:PutMetricsConfiguration",
        Changed(&["/MetricsConfigurations"]),
        OWN,
    ),
    rule(
        "s3:DeleteBucketMetricsConfiguration",
        Dropped(&["/MetricsConfigurations"]),
        OWN,
    ),
    rule(
        "s3:PutBucketNotification",
        Touched(&["/NotificationConfiguration"]),
        OWN,
    ),
    rule("s3:PutBucketReplication", Changed(REPLICATION), OWN),
    rule("s3:PutReplicationConfiguration", Changed(REPLICATION), OWN),
    rule("s3:DeleteBucketReplication", Dropped(REPLICATION), OWN),
    rule(
        "iam:PassRole",
        Changed(PASSED_BUCKET_ROLES),
        &[Arns(PASSED_BUCKET_ROLES)],
    ),
    rule(
        "s3:PutBucketWebsite",
        Changed(&["/WebsiteConfiguration"]),
        OWN,
    ),
    rule(
        "s3:DeleteBucketWebsite",
        Dropped(&["/WebsiteConfiguration"]),
        OWN,
    ),
    rule(
        "s3:PutAccelerateConfiguration",
        Touched(&["/AccelerateConfiguration"]),
        OWN,
    ),
    rule(
        "s3:PutBucketPublicAccessBlock",
        Touched(&["/PublicAccessBlockConfiguration"]),
        OWN,
    ),
    rule("s3:PutBucketAcl", Touched(&["/AccessControl"]), OWN),
    // A canned ACL is applied to the bucket's objects too, and checked against the
    // bucket's current ACL.
    rule(
        "s3:PutObjectAcl",
        Touched(&["/AccessControl"]),
        &[OwnObjects],
    ),
    rule(
        "s3:GetBucketAcl",
        Touched(&["/AccessControl", "/LoggingConfiguration"]),
        OWN,
    ),
    rule(
        "s3:PutBucketObjectLockConfiguration",
        Touched(OBJECT_LOCK),
        OWN,
    ),
    rule("s3:PutObjectLockConfiguration", Touched(OBJECT_LOCK), OWN),
    rule(
        "s3:PutBucketLogging",
        Touched(&["/LoggingConfiguration"]),
        OWN,
    ),
    rule(
        "s3:PutBucketVersioning",
        Touched(&["/VersioningConfiguration"]),
        OWN,
    ),
    rule(
        "s3:PutBucketOwnershipControls",
        Touched(&["/OwnershipControls"]),
        OWN,
    ),
    rule(
        "s3:PutIntelligentTieringConfiguration",
        Touched(&["/IntelligentTieringConfigurations"]),
        OWN,
    ),
    rule(
        "s3:GetBucketMetadataTableConfiguration",
        Touched(METADATA),
        OWN,
    ),
    rule(
        "s3:CreateBucketMetadataTableConfiguration",
        Changed(METADATA),
        OWN,
    ),
    rule(
        "s3:DeleteBucketMetadataTableConfiguration",
        Dropped(METADATA),
        OWN,
    ),
    rule(
        "s3:UpdateBucketMetadataJournalTableConfiguration",
        Changed(METADATA),
        OWN,
    ),
    rule(
        "s3:UpdateBucketMetadataInventoryTableConfiguration",
        Changed(METADATA),
        OWN,
    ),
    rule(
        "s3:UpdateBucketMetadataAnnotationTableConfiguration",
        Changed(METADATA),
        OWN,
    ),
    // S3 Tables back the metadata tables; their table bucket is AWS-managed, not a
    // property of this bucket.
    rule("s3tables:CreateNamespace", Changed(METADATA), STAR),
    rule("s3tables:CreateTable", Changed(METADATA), STAR),
    rule("s3tables:CreateTableBucket", Changed(METADATA), STAR),
    rule("s3tables:GetTable", Changed(METADATA), STAR),
    rule("s3tables:PutTableBucketPolicy", Changed(METADATA), STAR),
    rule("s3tables:PutTableEncryption", Changed(METADATA), STAR),
    rule("s3tables:PutTablePolicy", Changed(METADATA), STAR),
    rule("s3tables:GetTableMetadataLocation", Changed(METADATA), STAR),
    rule(
        "s3tables:UpdateTableMetadataLocation",
        Changed(METADATA),
        STAR,
    ),
];

// Every permission of the three lists is the policy's own operation, on the bucket.
const S3_BUCKET_POLICY: &[Rule] = &[];
