//! `harness deploy --plan` against a whole running system: three edits of the
//! callee template, each planned without being deployed.

mod support;

use harness::{plan, resource_schemas};
use scenario::Stack;

/// The callee template with `edit` applied; panics if the edit matched nothing.
fn edited(edit: impl Fn(&str) -> String) -> String {
    let original = std::fs::read_to_string(
        harness::workspace::templates_dir().join("calleecloudformation.yaml"),
    )
    .expect("the callee template");
    let changed = edit(&original);
    assert_ne!(changed, original, "the edit changed nothing");
    changed
}

#[test]
fn plans_of_callee_template_edits_show_modification_replacement_and_a_hop_turning_deny() {
    let running = support::Running::up("deploy-plan");
    let state = &running.system().running;
    let schemas = resource_schemas::ensure(true).expect("the resource schemas");
    let plan_of = |template: String| {
        running
            .block_on(plan::plan(
                state,
                &schemas,
                &[(Stack::CalleeCloudformation, template)],
            ))
            .expect("a plan")
    };
    let function_change = |plan: &plan::Plan| {
        plan.stacks[0]
            .changes
            .iter()
            .find(|c| c.logical_id == "Function")
            .cloned()
            .unwrap_or_else(|| panic!("no change of Function: {plan:#?}"))
    };

    // A Timeout change modifies the function in place.
    let timeout = plan_of(edited(|t| {
        t.replacen("    Default: 30\n    MinValue: 1\n    MaxValue: 900\n    Description: Function timeout", "    Default: 20\n    MinValue: 1\n    MaxValue: 900\n    Description: Function timeout", 1)
    }));
    let change = function_change(&timeout);
    assert_eq!(change.action, "Modify", "{timeout:#?}");
    assert!(!change.replacement, "{timeout:#?}");
    assert_eq!(change.properties, ["Timeout"], "{timeout:#?}");
    assert!(timeout.passes(), "{timeout:#?}");

    // A FunctionName change replaces it (a create-only property).
    let renamed = plan_of(edited(|t| {
        t.replacen(
            "      FunctionName: !Ref FunctionName\n",
            "      FunctionName: !Sub \"${FunctionName}-v2\"\n",
            1,
        )
    }));
    let change = function_change(&renamed);
    assert!(change.replacement, "{renamed:#?}");
    assert_eq!(change.replaced_by, ["FunctionName"], "{renamed:#?}");
    // Replacing creates the new function as the deploy role, which may.
    assert!(
        change
            .permissions
            .iter()
            .any(|p| p.action == "lambda:CreateFunction" && p.allowed),
        "{renamed:#?}"
    );

    // A trust policy naming another account turns the AssumeRole hop deny.
    let distrusted = plan_of(edited(|t| {
        t.replacen(
            "  TrustedAccountId:\n    Type: String\n    Default: \"\"",
            "  TrustedAccountId:\n    Type: String\n    Default: \"444444444444\"",
            1,
        )
    }));
    let hop = distrusted
        .chain
        .iter()
        .find(|h| h.after.action == "sts:AssumeRole")
        .expect("an AssumeRole hop");
    assert!(hop.turns_deny(), "{distrusted:#?}");
    assert!(!distrusted.passes(), "{distrusted:#?}");
    assert!(
        distrusted
            .problems
            .iter()
            .any(|p| p.contains("the sts:AssumeRole hop turns deny")),
        "{distrusted:#?}"
    );
    // Nothing was deployed: the chain still delivers as before.
    let again = plan_of(edited(|t| t.replacen("Default: 30", "Default: 30 ", 1)));
    assert!(again.chain.iter().all(|h| h.before.allowed), "{again:#?}");
}
