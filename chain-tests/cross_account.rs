//! The whole chain on one machine: the caller in account B assumes the role in
//! account A through STS, invokes the callee, and the callee's email reaches
//! the SMTP capture server.

mod support;

use std::collections::BTreeSet;

use harness::observe::{Call, EmailWait, observe};
use scenario::{DeployOverrides, InvocationType, OutcomeStatus, Stack, Via};
use serde_json::json;

/// The payload of the callee's public contract, as users send it.
fn p1_payload() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/payloads/p1.json");
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn an_alert_travels_from_the_caller_through_sts_to_the_callee_and_smtp() {
    let system = support::system("cross_account");

    let call = Call::new(Via::Caller, p1_payload(), InvocationType::RequestResponse);
    let outcome = support::block_on(system.call(call, EmailWait::NONE))
        .expect("the call is observed")
        .outcome;
    let emails = &outcome.emails;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Success,
        "{:?}: {:?}\nlogs: {:#?}",
        outcome.error_type,
        outcome.error_message,
        outcome.logs
    );
    assert_eq!(emails.len(), 1, "exactly one email for this call");
    let email = &emails[0];
    assert_eq!(email.to, ["oncall@example.com"]);
    assert_eq!(email.from, "alerts@example.com");
    assert_eq!(
        email.subject,
        "[P1] INC0012345: Database cluster unreachable"
    );
    let text = email.text.as_deref().expect("a text part");
    assert!(text.contains("INC0012345"), "{text}");
    let response = outcome.response.clone().expect("a response");
    assert_eq!(response["accepted"], json!(["oncall@example.com"]));
    // The chain really crossed accounts: the caller lives in B, the callee in A.
    assert!(
        system
            .running
            .deployment
            .caller_function_arn
            .contains(":222222222222:")
    );
    assert!(
        system
            .running
            .deployment
            .callee_function_arn
            .contains(":111111111111:")
    );
}

#[test]
fn a_bad_payload_comes_back_through_the_caller_as_callee_failed_without_email() {
    let system = support::system("cross_account");
    let payload = serde_json::to_vec(&json!({
        "alert": { "number": "INC0012346", "sys_id": "9d385017c611228701d22104cc95c371",
                   "priority": 2, "state": "New" },
        "recipients": { "to": ["oncall@example.com"] }
    }))
    .expect("a payload");

    let call = Call::new(Via::Caller, payload, InvocationType::RequestResponse);
    let outcome = support::block_on(system.call(call, EmailWait::NONE))
        .expect("the call is observed")
        .outcome;

    assert_eq!(outcome.status, OutcomeStatus::FunctionError);
    assert_eq!(outcome.error_type.as_deref(), Some("CalleeFailed"));
    let message = outcome.error_message.clone().unwrap_or_default();
    assert!(message.starts_with("ValidationError: "), "{message}");
    assert!(message.contains("alert.short_description"), "{message}");
    assert!(outcome.emails.is_empty());
}

/// A stack update that takes `lambda:InvokeFunction` from the cross-account
/// role is decided on by the very next call, and so is the update that gives
/// it back: the gateway drops the role's cached policies when the executor
/// plugin reports the policy's handler, well within their 5 s lifetime. The
/// calls go to stacks of this test's own, next to the shared deployment.
#[test]
fn a_policy_changed_by_a_stack_update_decides_the_next_call() {
    let system = support::system("cross_account");
    let endpoint = system.running.aws_endpoint();
    let deploy = |action: Option<&str>| {
        let mut config = system.running.deploy_config(true);
        config.suffix = Some("policy-update".into());
        config.overrides = DeployOverrides::new(action.map(|action| {
            (
                Stack::CalleeCloudformation,
                [("CrossAccountInvokeAction".to_owned(), action.to_owned())],
            )
        }));
        support::block_on(harness::deploy::deploy_variant(
            &endpoint,
            &system.artifacts,
            &config,
            &system.running.deployment,
            &BTreeSet::from([Stack::CalleeCloudformation, Stack::CallerCloudformation]),
            None,
        ))
        .unwrap_or_else(|err| panic!("deploy: {err}"))
    };
    let call = |deployment: &harness::deploy::Deployment| {
        let call = Call::new(Via::Caller, p1_payload(), InvocationType::RequestResponse);
        support::block_on(observe(
            &system.target(),
            deployment,
            &call,
            EmailWait::NONE,
        ))
        .expect("the call is observed")
        .outcome
    };

    let deployment = deploy(None);
    let allowed = call(&deployment);
    assert_eq!(allowed.status, OutcomeStatus::Success, "{allowed:?}");

    let deployment = deploy(Some("lambda:GetFunction"));
    let denied = call(&deployment);
    assert_eq!(denied.status, OutcomeStatus::Denied, "{denied:?}");
    assert_eq!(denied.error_type.as_deref(), Some("InvokeDenied"));

    let deployment = deploy(None);
    let allowed_again = call(&deployment);
    assert_eq!(
        allowed_again.status,
        OutcomeStatus::Success,
        "{allowed_again:?}"
    );
}
