//! Scenario files for the alerting harness: the format and its loader, and the checker that
//! compares an expected result with the actual [`Outcome`].
//!
//! The harness loads scenarios with [`load`], narrows them with a [`Filter`], deploys once
//! per [`deploy_groups`] group, runs each scenario, fills in an [`Outcome`], and hands it to
//! [`check`].
#![warn(missing_docs)]

mod check;
mod error;
mod group;
mod load;
mod model;
mod outcome;

pub use check::{EXHAUSTIVE_LIMIT, EmailPair, Mismatch, Verdict, check};
pub use error::ScenarioError;
pub use group::deploy_groups;
pub use load::{Filter, discover, load, load_file, parse_str};
pub use model::{
    Decision, DeployOverrides, Expect, ExpectedEmail, ExpectedIamDecision, ExpectedStatus,
    InvocationType, Invoke, Scenario, Stack, SubjectRule, Via,
};
pub use outcome::{CapturedEmail, IamDecision, Outcome, OutcomeStatus};
