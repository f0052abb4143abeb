//! A pure AWS IAM policy evaluator for the harness's IAM gateway.
//!
//! LocalStack's free edition enforces no IAM, so the gateway in front of it
//! asks this crate whether AWS would allow `sts:AssumeRole` and
//! `lambda:InvokeFunction`, and why. No networking happens here.
//!
//! # Example
//! ```
//! use iam_policy::{NamedPolicy, PolicyKind, Principal, Request, authorize_assume_role};
//!
//! let trust = NamedPolicy::parse(PolicyKind::Trust, "CrossAccountRole", r#"{
//!   "Version": "2012-10-17",
//!   "Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
//!                 "Action": "sts:AssumeRole"}}"#)?;
//! let caller_role = NamedPolicy::parse(PolicyKind::Identity, "invoker-assume", r#"{
//!   "Version": "2012-10-17",
//!   "Statement": {"Sid": "Assume", "Effect": "Allow", "Action": "sts:AssumeRole",
//!                 "Resource": "arn:aws:iam::111111111111:role/CrossAccountRole"}}"#)?;
//! let caller = Principal::from_arn("arn:aws:sts::222222222222:assumed-role/Invoker/s1")?;
//! let request = Request::new(caller, "sts:AssumeRole", "arn:aws:iam::111111111111:role/CrossAccountRole");
//!
//! let decision = authorize_assume_role(&request, &trust, &[caller_role]);
//! assert!(decision.allowed);
//! assert_eq!(
//!     decision.to_string(),
//!     "ALLOW (trust policy CrossAccountRole statement 0; identity policy invoker-assume/Assume)"
//! );
//! # Ok::<(), iam_policy::PolicyError>(())
//! ```
//!
//! # Why not an existing crate
//! Two crates on crates.io were checked against what the gateway needs:
//! - `iam-rs` 0.8: an account principal matches only the account's root ARN,
//!   not the other principals of that account; an assumed-role session never
//!   matches the role ARN named in a policy; principal ARNs are wildcard
//!   matched although AWS forbids that; it has no identity + resource-based,
//!   same- vs cross-account combination.
//! - `scratchstack-aspen` 0.3: no `ForAnyValue`/`ForAllValues`; a role ARN
//!   principal is compared by equality, so sessions never match it; its policy
//!   set reports which *policies* decided, not which statements; no
//!   combination rules either.
//!
//! Both would need the combination layer, the principal rules and the
//! explanation written around them anyway, so the evaluator is written here.
//!
//! # Semantics
//! From the IAM User Guide ("Policy evaluation logic", "IAM JSON policy
//! element reference", "Condition operators"):
//! - explicit deny wins over any allow; nothing applicable is a default deny;
//! - actions match case-insensitively with `*` and `?`;
//! - resource ARNs match case-sensitively, field by field for the first five
//!   colon-separated fields, with `*` spanning `/` and `:` in the resource
//!   part (see [`authorize_invoke`] for qualified Lambda ARNs);
//! - `Principal` `*`, `{"AWS": ...}` (account id, `:root` ARN, user, role or
//!   session ARN), `{"Service": ...}`; a role ARN matches that role's
//!   sessions; naming an account matches any caller in it but leaves the
//!   decision to the caller's identity policies;
//! - a `kms:` action on a KMS key needs its key policy to allow, by naming the
//!   caller or by delegating to the caller's account; identity policies alone
//!   never grant use of a key (see [`authorize`]);
//! - `NotPrincipal` exempts a caller only when its whole chain (account, role,
//!   session / account, user) is listed;
//! - condition operators: String*, Arn*, Bool, Null, Numeric*, Date*
//!   (ISO 8601 or epoch seconds), IpAddress/NotIpAddress, BinaryEquals, their
//!   `IfExists` forms and `ForAnyValue:`/`ForAllValues:`; keys are
//!   case-insensitive, values case-sensitive unless the operator says otherwise;
//! - policy variables `${key}` and `${key, 'default'}` are substituted for
//!   `Version` `2012-10-17`, in the resource portion of a `Resource` ARN
//!   (after the fifth colon) and in the values of String and ARN condition
//!   operators, nowhere else; an absent key without a default makes the
//!   element not match; `${*}`, `${?}` and `${$}` stand for those characters,
//!   literally.
//!
//! - callers: the root user, IAM users, roles and role sessions (with the
//!   role's path when built by [`Principal::role_session`]), AWS STS
//!   federated user sessions, service principals and anonymous callers, each
//!   with the `aws:PrincipalType`/`aws:userid`/`aws:username` values of the
//!   User Guide's "Principal key values".
//!
//! Not modelled: SCPs, RCPs, session policies (so a federated user session is
//! evaluated on the identity policies it is given), VPC endpoint policies,
//! grants, web identity and SAML callers. Permissions boundaries are applied by
//! [`simulate`] only (the gateway does not read them yet).

#![warn(missing_docs)]

mod condition;
mod decision;
mod error;
mod evaluate;
mod pattern;
mod policy;
mod principal;
mod request;
mod simulate;
mod variable;

pub use decision::{Decision, DecisionReason, authorize, authorize_assume_role, authorize_invoke};
pub use error::PolicyError;
pub use evaluate::{Evaluation, NamedPolicy, Outcome, PolicyKind, StatementRef, evaluate_policies};
pub use policy::{Effect, PolicyDocument, PolicyVersion, Statement};
pub use principal::{Principal, PrincipalKind, PrincipalMatch};
pub use request::{Context, Request};
pub use simulate::{
    ContextEntry, EvaluationResult, MatchedStatement, SimulateError, SimulateInput, SimulateOutput,
    simulate,
};
