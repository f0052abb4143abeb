//! The IAM permissions a CloudFormation resource handler needs to create, update or delete
//! one resource with its actual (resolved) properties, each on the resource ARN AWS
//! evaluates it on; and which property changes make CloudFormation replace a resource.
//!
//! # Data source
//!
//! The handler permission lists are AWS's CloudFormation resource provider schemas, as the
//! PyPI package **cfn-lint 1.58.0** ships them: `cfnlint/data/schemas/providers/us-east-1.json`
//! maps each resource type to a file id, and `cfnlint/data/schemas/resources/<id>.json` is the
//! schema (`handlers.{create,update,delete}.permissions`, `createOnlyProperties`,
//! `primaryIdentifier`). The harness installs it with
//! `pip install --no-deps --target DIR cfn-lint==1.58.0`; [`schemas_dir_in`]`(DIR)` is the
//! directory [`Schemas::open`] takes. No permission list is typed here, and nothing is read
//! from the network.
//!
//! # The narrowing rule
//!
//! A handler's list is a superset: it names every permission the handler may use, for
//! features a template may not use (a function's VPC lookups, EFS mounts, KMS key, layers,
//! concurrency...). Requiring the whole list would deny deploys AWS accepts. The rule:
//!
//! - **Compatibility.** AWS grows a handler's list as it adds features, and a template that
//!   does not use a new feature keeps deploying with the deploy role it always had. So a
//!   permission that serves a feature is needed only when the property that turns the
//!   feature on is set. The permissions that create, read back, update and delete the
//!   resource itself (`lambda:CreateFunction`, `lambda:GetFunction`, `iam:GetRole`,
//!   `logs:DescribeLogGroups`, `s3:ListBucket`...) are needed every time.
//! - **A table per resource type** (`src/rules.rs`) names each feature permission with the
//!   property (a JSON pointer below `Properties`) that selects it, read from the schema's
//!   own property names (`PutFunctionConcurrency` ↔ `ReservedConcurrentExecutions`,
//!   `ec2:DescribeSubnets` ↔ `VpcConfig`, `kms:*` ↔ `KmsKeyArn`, `iam:PassRole` ↔ `Role`).
//!   Every permission of the list that the table does not name is **required always**.
//!   "Set" means present, not null, and not an empty string, list or object.
//! - **Per operation.** Create needs a feature's setters when its property is set. Update
//!   needs a setter when its property is set and changed, a remover (`Delete*`, `Untag*`,
//!   `Detach*`, `Disassociate*`) when its property was set before and is removed or changed,
//!   and a diff reader (`Get*`, `List*`) when its property changed at all. Delete needs a
//!   feature's permissions when the deleted resource had the property. A boolean switch
//!   (`kms:EnableKeyRotation`, `kms:DisableKey`) is needed when the property is, or on update
//!   becomes, the value that calls it.
//! - **Not IAM actions** are dropped: a list entry that is not `service:Action` (the Logs
//!   lists carry `s3:REST.PUT.OBJECT`, an S3 access-log operation name) cannot be granted by
//!   any policy, so requiring it would deny every deploy.
//! - **Uncovered types are refused** ([`Error::NotNarrowed`]): without a table the list
//!   cannot be narrowed, and neither the superset (denies what AWS accepts) nor nothing
//!   (allows what AWS denies) is an answer. The gateway then fails closed. Covered:
//!   `AWS::EC2::SecurityGroup`, `AWS::IAM::Policy`, `AWS::IAM::Role`, `AWS::KMS::Alias`,
//!   `AWS::KMS::Key`, `AWS::Lambda::Function`, `AWS::Lambda::Permission`,
//!   `AWS::Logs::LogGroup`, `AWS::S3::Bucket`, `AWS::S3::BucketPolicy`.
//!
//! Tests hold the tables to the data: every row's permission is in the type's lists in
//! cfn-lint 1.58.0, and the project's templates need exactly the permissions their tests
//! expect, so a cfn-lint upgrade that adds a permission shows up as a failing test.
//!
//! # Resource ARNs
//!
//! Each permission is evaluated on the resource AWS evaluates it on, built from the resolved
//! properties (the new ones; for a remover on update, the previous ones; for delete, the
//! deleted ones):
//!
//! - The resource's own operations: its ARN, e.g. `arn:aws:lambda:REGION:ACCOUNT:function:NAME`,
//!   `arn:aws:iam::ACCOUNT:role{Path}{RoleName}`, `arn:aws:logs:REGION:ACCOUNT:log-group:NAME`,
//!   `arn:aws:s3:::BUCKET`, `arn:aws:kms:REGION:ACCOUNT:alias/NAME`; an
//!   `AWS::Lambda::Permission` on its `FunctionName` (name, partial ARN or ARN); an
//!   `AWS::IAM::Policy` on each of its `Roles` / `Users` / `Groups` (names, with the default
//!   path `/`); a KMS alias on the alias and on its target key (and, on update, the old key).
//! - Permissions on another resource: `iam:PassRole` on the role ARN (`Role`,
//!   `ReplicationConfiguration.Role`); `s3:GetObject`/`GetObjectVersion` on
//!   `arn:aws:s3:::Code.S3Bucket/Code.S3Key`; a function's `kms:*` on `KmsKeyArn` /
//!   `Code.SourceKMSKeyArn`; `lambda:GetLayerVersion` on each layer version ARN;
//!   `ec2:CreateSecurityGroup` on the group and on `vpc/VpcId` (`vpc/*` without one).
//! - A name CloudFormation generates (no `FunctionName`, `RoleName`, `LogGroupName`,
//!   `BucketName`), and KMS key ids and security group ids, come from
//!   [`Request::physical_id`] when the caller knows it; otherwise the name is `*`
//!   (`arn:aws:iam::ACCOUNT:role/*`), which only a policy allowing every such name matches.
//! - `*` for actions without resource-level permissions: `kms:CreateKey`,
//!   `ec2:Describe*`, `logs:DescribeLogGroups`, `logs:CreateLogDelivery`,
//!   `logs:*ResourcePolic*`; and for features whose resource is not a property of this
//!   resource (`elasticfilesystem:DescribeMountTargets`, `lambda:PassCapacityProvider`,
//!   `s3tables:*`).
//!
//! # Fail closed
//!
//! What cannot be computed is an [`Error`] naming the type, property or file and what to
//! do: an unknown or uncovered type, a missing handler, an update without previous
//! properties, a property of the wrong shape, or a name property that is required to build
//! an ARN and is absent. Never an empty list.

#![warn(missing_docs)]

mod arn;
mod error;
mod properties;
#[cfg(test)]
mod real_schemas;
mod required;
mod rules;
mod schema;

use std::path::{Path, PathBuf};

pub use error::Error;
pub use properties::{changed_properties, replaced_by};
pub use required::{Request, Required, required, required_for};
pub use schema::{Operation, ResourceSchema, Schemas};

/// The schemas directory of a cfn-lint installed with `pip install --target TARGET`:
/// `TARGET/cfnlint/data/schemas`.
pub fn schemas_dir_in(target: &Path) -> PathBuf {
    target.join("cfnlint").join("data").join("schemas")
}

/// The resource types whose handler lists this crate narrows; [`required`] refuses others.
pub fn narrowed_types() -> &'static [&'static str] {
    rules::NARROWED_TYPES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_dir_in_a_pip_target() {
        assert_eq!(
            schemas_dir_in(Path::new("/opt/tools")),
            Path::new("/opt/tools/cfnlint/data/schemas")
        );
    }

    #[test]
    fn schemas_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Schemas>();
        shared::<std::sync::Arc<ResourceSchema>>();
    }

    #[test]
    fn every_narrowed_type_has_a_table() {
        for resource_type in narrowed_types() {
            assert!(rules::table(resource_type).is_some(), "{resource_type}");
        }
        assert!(rules::table("AWS::SQS::Queue").is_none());
    }
}
