//! The callee under cargo-lambda's `watch` emulator, installed from PyPI as
//! `harness bench --compare` installs it, sending through the harness's SMTP
//! capture with STARTTLS and AUTH; and the floor beside it. Skips, saying why,
//! when cargo-lambda cannot be installed (no network, no `python3 -m venv`).

use std::time::Duration;

use harness::{
    compare::{self, CalleeEnv, CargoLambdaWatch, Floor, FloorMail},
    smtp::{CaptureConfig, MailCapture, SmtpCredentials, SmtpSecurity},
    system::{DEFAULT_ALLOWED_DOMAINS, DEFAULT_INSTANCE_HOSTS, DEFAULT_MAIL_FROM, warm_up_payload},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callee_delivers_under_cargo_lambda_watch_and_its_processes_end_with_it() {
    let binary = match tokio::task::spawn_blocking(|| compare::ensure_cargo_lambda(true))
        .await
        .expect("install task")
    {
        Ok(binary) => binary,
        Err(err) => {
            eprintln!(
                "skipping: cargo-lambda {} cannot be installed: {err}",
                compare::CARGO_LAMBDA_VERSION
            );
            return;
        }
    };
    let ca = local_ca::LocalCa::generate().expect("CA");
    let credentials = SmtpCredentials::generate();
    let capture = MailCapture::start(CaptureConfig {
        bind: "127.0.0.1:0".parse().expect("address"),
        spool_dir: None,
        faults: None,
        security: Some(SmtpSecurity {
            tls: ca.server_config(&["127.0.0.1"]).expect("certificate"),
            credentials: credentials.clone(),
        }),
    })
    .expect("capture");
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.certificate_pem()).expect("CA file");
    let env = CalleeEnv {
        mail_from: DEFAULT_MAIL_FROM.into(),
        allowed_domains: DEFAULT_ALLOWED_DOMAINS.into(),
        allowed_instance_hosts: DEFAULT_INSTANCE_HOSTS.into(),
        smtp: capture.addr(),
        smtp_tls: mailer::TlsMode::Required,
        credentials: Some(credentials.clone()),
        ca_file: Some(ca_file),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let payload = warm_up_payload(DEFAULT_ALLOWED_DOMAINS);
    let client = reqwest::Client::new();

    let watch = CargoLambdaWatch::start(&binary, &env, "dev", port, &dir.path().join("watch.log"))
        .expect("cargo lambda watch starts");
    let pgid = watch.pgid();
    watch
        .wait_ready(&client, &payload)
        .await
        .expect("the callee answers under cargo lambda watch");
    compare::email_arrived(&capture, 0)
        .await
        .expect("its email");
    let before = capture.messages().len();
    compare::post_timed(&client, watch.url(), &payload)
        .await
        .expect("a warm invoke succeeds");
    compare::email_arrived(&capture, before)
        .await
        .expect("the warm invoke's email");
    let email = capture.messages().pop().expect("an email");
    assert_eq!(email.to, ["harness-warmup@example.com"]);

    let floor = Floor::start(FloorMail {
        smtp: capture.addr(),
        security: Some(
            FloorMail::security(capture.addr(), &ca.certificate_pem(), credentials)
                .expect("TLS parameters"),
        ),
        envelope: lettre::address::Envelope::new(
            Some("alerts@example.com".parse().expect("from")),
            vec!["oncall@example.com".parse().expect("to")],
        )
        .expect("envelope"),
        message: std::sync::Arc::new(b"Subject: floor\r\n\r\nfloor\r\n".to_vec()),
    })
    .await
    .expect("floor");
    let before = capture.messages().len();
    compare::post_timed(&client, floor.url(), b"")
        .await
        .expect("the floor's session succeeds");
    compare::email_arrived(&capture, before)
        .await
        .expect("the floor's email");

    drop(watch);
    let group_alive = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok();
    assert!(
        !group_alive,
        "cargo lambda watch's process group outlived it"
    );
    let answered = client
        .post(format!(
            "http://127.0.0.1:{port}/2015-03-31/functions/alert-callee/invocations"
        ))
        .timeout(Duration::from_secs(2))
        .body(payload)
        .send()
        .await;
    assert!(answered.is_err(), "something still serves the invoke port");
}
