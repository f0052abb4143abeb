//! The scenario suite, run once, exactly as `just test-e2e` runs it: the
//! `harness` binary's `run scenarios/ --junit target/harness/junit.xml`, which
//! brings up its own system. Only the ports (free ones, so a developer's
//! running `up` is left alone) and the work directory differ.
//!
//! CI gets every scenario from here, inside the README's `cargo test
//! --workspace`, with the JUnit report where `just test-e2e` leaves it.

use std::{
    net::TcpListener,
    process::{Command, Output},
};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `harness run ARGS` from the workspace root, in its own work directory
/// `name`, on free ports; prints its output (cargo test shows it on failure,
/// and with --nocapture) and returns it with stdout as text.
fn harness_run(name: &str, args: &[&str]) -> (Output, String) {
    let work_dir = harness::workspace::default_work_dir()
        .with_file_name("harness-tests")
        .join(name);
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(harness::workspace::root())
        .arg("run")
        .args(args)
        .arg("--work-dir")
        .arg(&work_dir)
        .args([
            "--gateway-port",
            &free_port().to_string(),
            "--smtp-port",
            "0",
        ])
        .output()
        .expect("the harness binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    (output, stdout)
}

#[test]
fn every_scenario_passes_through_the_harness_cli() {
    let junit = harness::workspace::default_work_dir().join("junit.xml");
    let junit_arg = junit.to_string_lossy();
    let (output, stdout) = harness_run("suite", &["scenarios/", "--junit", &junit_arg]);
    assert!(
        output.status.success(),
        "harness run failed ({}); see the output above",
        output.status
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    let report = std::fs::read_to_string(&junit).expect("the JUnit report");
    assert!(report.contains("<testsuite"), "{report}");
    assert!(!report.contains("<failure"), "{report}");
}

/// The refused deploys are refused by the gateway, not by the emulator: with
/// `--iam off` (LocalStack alone) every one of them deploys, so each scenario
/// that expects `deploy_failed` fails.
#[test]
fn the_refused_deploys_deploy_without_the_gateway() {
    let (output, stdout) = harness_run(
        "deploys-without-gateway",
        &[
            "scenarios/deploy",
            "--tag",
            "deploy-negative",
            "--iam",
            "off",
        ],
    );
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("5 scenarios, 0 passed, 5 failed"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("expected: deploy_failed").count(),
        5,
        "each refused deploy went through: {stdout}"
    );
}
