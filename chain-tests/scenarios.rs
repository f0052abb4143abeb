//! Every scenario file under `scenarios/` as its own test case, against one
//! shared system: `cargo test --test scenarios` lists one test per file.

mod support;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use harness::{
    deploy::Deployment,
    suite::{self, SuiteTarget},
};
use rstest::rstest;

/// Variant deployments, one per distinct set of overrides, shared by the
/// scenarios that name the same overrides; the lock per key keeps two tests
/// from deploying the same variant at once.
type VariantSlot = Arc<tokio::sync::Mutex<Option<Deployment>>>;
static VARIANTS: Mutex<Option<HashMap<String, VariantSlot>>> = Mutex::new(None);

fn variant_slot(key: &str) -> VariantSlot {
    let mut variants = VARIANTS.lock().unwrap_or_else(|p| p.into_inner());
    variants
        .get_or_insert_with(HashMap::new)
        .entry(key.to_owned())
        .or_default()
        .clone()
}

#[rstest]
fn scenario_file(#[files("../scenarios/**/*.yaml")] path: PathBuf) {
    let scenario = scenario::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let system = support::system("scenarios");
    let target = SuiteTarget::of(system);

    let outcome = support::block_on(async {
        if scenario.deploy.is_empty() {
            return suite::run_one(&target.target, &target.deployment, &scenario).await;
        }
        let slot = variant_slot(&scenario.deploy.key());
        let mut deployment = slot.lock().await;
        if deployment.is_none() {
            let deployed = suite::deploy_variant(&target, &scenario.deploy)
                .await
                .unwrap_or_else(|e| panic!("deploying the scenario's overrides failed: {e}"));
            *deployment = Some(deployed);
        }
        let deployment = deployment.clone().expect("deployed above");
        suite::run_one(&target.target, &deployment, &scenario).await
    });

    let verdict = scenario::check(&scenario, &outcome);
    assert!(
        verdict.passed(),
        "{}\nlogs: {:#?}",
        scenario::render_diff(&verdict, false),
        outcome.logs
    );
}
