//! Scenario files for the alerting harness: the format and its loader, the checker that
//! compares an expected result with the actual [`Outcome`], and the reports (per-scenario
//! directories, a summary and JUnit XML).
//!
//! The harness loads scenarios with [`load`], narrows them with a [`Filter`], deploys once
//! per [`deploy_groups`] group, runs each scenario, fills in an [`Outcome`], and hands it to
//! [`check`], [`write_report`], [`write_summary`] and [`write_junit`].
#![warn(missing_docs)]

mod check;
mod error;
mod faults;
mod group;
mod junit;
mod load;
mod model;
mod outcome;
mod render;
mod report;

pub use check::{EXHAUSTIVE_LIMIT, EmailPair, Mismatch, Verdict, check};
pub use error::ScenarioError;
pub use group::{Shard, deploy_groups, shard};
pub use junit::{junit_xml, merge_junit, write_junit};
pub use load::{Filter, discover, load, load_file, parse_str};
pub use model::{
    AccountLetter, Action, AwsRequest, Decision, DeployOverrides, Expect, ExpectedEmail,
    ExpectedIamDecision, ExpectedStatus, InvocationType, Invoke, Operation, Payload, Scenario,
    Stack, SubjectRule, Transport, Via,
};
pub use outcome::{CapturedEmail, IamDecision, Outcome, OutcomeStatus};
pub use render::{ScenarioResult, render_diff, render_failure, write_summary};
pub use report::{DEFAULT_REPORT_DIR, slug, write_report};
