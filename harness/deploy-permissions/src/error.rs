//! The crate's one error type.

use std::path::PathBuf;

use crate::Operation;

/// Everything this crate cannot answer. Each is a refusal: the caller fails closed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A schema file could not be read.
    #[error(
        "cannot read {path}: {source}; is cfn-lint 1.58.0 installed there (`pip install --no-deps --target DIR cfn-lint==1.58.0`)?"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A schema file is not the JSON cfn-lint ships.
    #[error("{path} is not a CloudFormation provider schema or index: {source}")]
    Parse {
        /// The file (or `<inline>` for a schema given as text).
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// The resource type is not in cfn-lint's schemas.
    #[error(
        "unknown resource type {resource_type}: cfn-lint's schemas in {dir} have no provider schema for it; check the spelling (Service::Resource names are case-sensitive)"
    )]
    UnknownType {
        /// The type asked for.
        resource_type: String,
        /// The schemas directory searched.
        dir: PathBuf,
    },
    /// The schema has no handler for this operation.
    #[error("{resource_type} has no {operation} handler in its provider schema{hint}")]
    NoHandler {
        /// The resource type.
        resource_type: String,
        /// The operation asked for.
        operation: Operation,
        /// What to do instead.
        hint: &'static str,
    },
    /// The type's handler lists are not narrowed by this crate, so its needs cannot be computed.
    #[error(
        "cannot narrow the {operation} permissions of {resource_type}: deploy-permissions has no rule table for it, and its handler list ({count} permissions) is a superset that would deny deploys AWS accepts; add a table for it in harness/deploy-permissions/src/rules.rs"
    )]
    NotNarrowed {
        /// The resource type.
        resource_type: String,
        /// The operation asked for.
        operation: Operation,
        /// How many permissions the handler lists.
        count: usize,
    },
    /// An update was asked for without the resource's previous properties.
    #[error(
        "cannot compute the update permissions of {resource_type} without its previous properties: pass the properties of the deployed resource as `previous`"
    )]
    MissingPrevious {
        /// The resource type.
        resource_type: String,
    },
    /// A property has a shape the rules cannot turn into a resource ARN.
    #[error(
        "{resource_type} property {property}: {problem}; properties must arrive resolved (no Ref, Fn::* left)"
    )]
    Property {
        /// The resource type.
        resource_type: String,
        /// The property, as a JSON pointer below `Properties`.
        property: String,
        /// What is wrong with it.
        problem: String,
    },
}
