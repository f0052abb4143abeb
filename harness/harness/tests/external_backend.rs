//! `--backend external --iam enforce`: a harness pointed at an emulator it did
//! not start attaches that emulator's executor to its IAM gateway, so the
//! lambdas' own `sts:AssumeRole` and `lambda:InvokeFunction` calls are
//! evaluated as with the host backend. Without Docker, the external emulator
//! is a host-backend LocalStack started here with no gateway at all.

mod support;

use std::net::SocketAddr;

use harness::{
    emulator::{self, Backend, Emulator, EmulatorOptions},
    package::{self, BuildOptions},
    system::{Launch, System, SystemConfig},
};
use iam_gateway::{Mode, Ruling, read_log};
use support::free_port;

#[test]
fn an_external_emulator_runs_the_lambdas_behind_the_enforcing_gateway() {
    let runtime = support::runtime();
    let work_dir = support::work_dir("external-backend");

    // The outside emulator: LocalStack with the executor plugin, started with
    // no gateway settings, as someone else would run it.
    let artifacts = package::build(&BuildOptions {
        profile: "dev".into(),
        out_dir: work_dir.join("outside").join("lambda"),
        with_shim: true,
        quiet: true,
    })
    .expect("the runtime shim builds");
    let outside = runtime
        .block_on(Emulator::start(&EmulatorOptions {
            backend: Backend::Host,
            gateway: SocketAddr::from(([127, 0, 0, 1], free_port())),
            endpoint: None,
            image: String::new(),
            runtime_shim: artifacts.runtime_shim.clone().expect("the shim"),
            container_plugin: false,
            work_dir: work_dir.join("outside"),
            lambda_endpoint: None,
            lambda_ca_file: None,
            credentials_issuer: None,
            quiet: true,
        }))
        .expect("the outside emulator starts");

    let mut config = SystemConfig::defaults().expect("the default system");
    config.backend = Backend::External;
    config.endpoint = Some(outside.endpoint().to_owned());
    config.iam = Mode::Enforce;
    config.gateway_port = free_port();
    config.smtp_port = 0;
    let launch = Launch {
        work_dir: work_dir.join("attached"),
        spool: false,
        // One call through the chain, which must deliver its email.
        warm_up: true,
        viewer: None,
        quiet: true,
    };
    let system = runtime
        .block_on(System::up(&config, &launch))
        .unwrap_or_else(|err| panic!("harness up against the external emulator failed: {err}"));

    // The warm-up call's hops were the lambdas' own, decided by the gateway.
    let log = system.running.iam_log.clone().expect("a decision log");
    let records = read_log(&log).expect("the decision log reads");
    let by_lambda = |action: &str, principal: &str| {
        records.iter().any(|r| {
            r.action == action
                && r.decision == Ruling::Allow
                && r.principal
                    .as_deref()
                    .is_some_and(|p| p.contains(principal))
        })
    };
    assert!(
        by_lambda("sts:AssumeRole", ":assumed-role/servicenow-invoker-exec"),
        "the caller's AssumeRole was not evaluated: {records:#?}"
    );
    assert!(
        by_lambda("lambda:InvokeFunction", ":assumed-role/servicenow-invoke"),
        "the caller's Invoke of the callee was not evaluated: {records:#?}"
    );
    assert_eq!(system.capture.messages().len(), 1, "the warm-up email");

    // While this harness lives, a second one cannot re-point the emulator's
    // functions, and is told why.
    let again = runtime.block_on(emulator::attach(
        outside.endpoint(),
        &emulator::Attach {
            lambda_endpoint: "https://127.0.0.1:1".into(),
            ca_pem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".into(),
            credentials_url: "http://127.0.0.1:1/issue".into(),
            credentials_token: "other".into(),
        },
    ));
    let refused = again.expect_err("a second attach is refused").to_string();
    assert!(refused.contains("another harness is attached"), "{refused}");

    let _inside = runtime.enter();
    drop(system);
    drop(outside);
}
