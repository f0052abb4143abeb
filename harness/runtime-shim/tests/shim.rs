//! Runs the real `runtime-shim` binary with the fixture lambda as `bootstrap`.
//!
//! wiremock stands in for LocalStack's executor endpoint, which on this side
//! is only a sink for the shim's callbacks.

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path, path_regex},
};

const RUNTIME_ID: &str = "exec1";
const SHIM: &str = env!("CARGO_BIN_EXE_runtime-shim");
const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture-lambda");
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:111111111111:function:fixture";

/// A running shim; killed when dropped so no test leaves processes behind.
struct Shim {
    child: Child,
    addr: String,
    _code: tempfile::TempDir,
}

struct ShimOptions {
    timeout_secs: u32,
    extra_env: Vec<(&'static str, &'static str)>,
    with_bootstrap: bool,
}

impl Default for ShimOptions {
    fn default() -> Self {
        Self {
            timeout_secs: 2,
            extra_env: Vec::new(),
            with_bootstrap: true,
        }
    }
}

fn endpoint(server: &MockServer) -> String {
    format!("{}/_localstack_lambda/{RUNTIME_ID}", server.uri())
}

fn callback_path(tail: &str) -> String {
    format!("/_localstack_lambda/{RUNTIME_ID}{tail}")
}

async fn start_shim(server: &MockServer, options: ShimOptions) -> Shim {
    let code = tempfile::tempdir().expect("code dir");
    if options.with_bootstrap {
        std::os::unix::fs::symlink(FIXTURE, code.path().join("bootstrap")).expect("symlink");
    }
    let mut command = Command::new(SHIM);
    command
        .env_clear()
        .env("LOCALSTACK_RUNTIME_ENDPOINT", endpoint(server))
        .env("LOCALSTACK_RUNTIME_ID", RUNTIME_ID)
        .env("LAMBDA_TASK_ROOT", code.path())
        .env("AWS_LAMBDA_FUNCTION_NAME", "fixture")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_FUNCTION_TIMEOUT",
            options.timeout_secs.to_string(),
        )
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("SHIM_LOG", "warn")
        .envs(options.extra_env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("spawn shim");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("shim announces its address in time")
    .expect("read stdout");
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Shim {
        child,
        addr,
        _code: code,
    }
}

async fn sink(server: &MockServer) {
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .with_priority(10)
        .mount(server)
        .await;
}

async fn invoke(shim: &Shim, request_id: &str, payload: Value, extra: Value) -> u16 {
    let mut body = json!({
        "invoke-id": request_id,
        "invoked-function-arn": FUNCTION_ARN,
        "payload": payload.to_string(),
        "trace-id": "Root=1-67890abc-0123456789abcdef01234567;Parent=1a2b3c4d5e6f7a8b;Sampled=0",
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    post(&format!("http://{}/invoke", shim.addr), body.to_string()).await
}

async fn post(url: &str, body: String) -> u16 {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    client
        .request(request)
        .await
        .expect("invoke reaches the shim")
        .status()
        .as_u16()
}

/// Invokes asking for the result in the answer, as the harness's plugin does:
/// the status, the outcome header, the logs and the payload.
async fn invoke_inline(
    shim: &Shim,
    request_id: &str,
    payload: Value,
) -> (u16, String, String, Value) {
    use http_body_util::BodyExt;
    let body = json!({
        "invoke-id": request_id,
        "invoked-function-arn": FUNCTION_ARN,
        "payload": payload.to_string(),
    });
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = hyper::Request::post(format!("http://{}/invoke", shim.addr))
        .header("content-type", "application/json")
        .header(runtime_shim::executor::INLINE_RESULT_HEADER, "inline")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let answer = client
        .request(request)
        .await
        .expect("invoke reaches the shim");
    let status = answer.status().as_u16();
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let outcome = header(runtime_shim::executor::OUTCOME_HEADER);
    let logs_length: usize = header(runtime_shim::executor::LOGS_LENGTH_HEADER)
        .parse()
        .expect("a logs length");
    let body = answer.into_body().collect().await.expect("body").to_bytes();
    let logs = String::from_utf8(body[..logs_length].to_vec()).expect("utf-8 logs");
    let payload = serde_json::from_slice(&body[logs_length..]).expect("a JSON payload");
    (status, outcome, logs, payload)
}

/// Waits until the mock received a request on `tail` and returns it with its arrival index.
async fn wait_for(server: &MockServer, tail: &str, within: Duration) -> (usize, Request) {
    let wanted = callback_path(tail);
    let start = Instant::now();
    loop {
        let requests = server.received_requests().await.unwrap_or_default();
        if let Some(found) = requests
            .into_iter()
            .enumerate()
            .find(|(_, r)| r.url.path() == wanted)
        {
            return found;
        }
        assert!(
            start.elapsed() < within,
            "no request on {wanted} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn received_on(server: &MockServer, tail: &str) -> usize {
    let wanted = callback_path(tail);
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == wanted)
        .count()
}

fn json_body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("callback body is json")
}

fn logs_of(request: &Request) -> String {
    json_body(request)["logs"]
        .as_str()
        .expect("logs is a string")
        .to_owned()
}

/// True once `pid` is gone or only a zombie waiting for its new parent to reap it.
fn process_is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

async fn wait_dead(pid: u32, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if process_is_dead(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn ready(server: &MockServer) {
    wait_for(
        server,
        &format!("/status/{RUNTIME_ID}/ready"),
        Duration::from_secs(10),
    )
    .await;
}

async fn describe(server: &MockServer, shim: &Shim, request_id: &str, extra: Value) -> Value {
    assert_eq!(
        invoke(shim, request_id, json!({"describe": true}), extra).await,
        202
    );
    let (_, response) = wait_for(
        server,
        &format!("/invocations/{request_id}/response"),
        Duration::from_secs(10),
    )
    .await;
    json_body(&response)
}

#[tokio::test]
async fn echo_invoke_posts_ready_then_logs_before_response() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(callback_path(&format!("/status/{RUNTIME_ID}/ready"))))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    sink(&server).await;
    let shim = start_shim(&server, ShimOptions::default()).await;
    ready(&server).await;

    let payload = json!({"stdout": "hello from stdout", "stderr": "hello from stderr", "n": 1});
    assert_eq!(
        invoke(&shim, "req-1", payload.clone(), json!({})).await,
        202
    );

    let (response_at, response) = wait_for(
        &server,
        "/invocations/req-1/response",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(json_body(&response), payload);
    let (logs_at, logs) = wait_for(&server, "/invocations/req-1/logs", Duration::ZERO).await;
    assert!(
        logs_at < response_at,
        "logs must arrive before the response"
    );
    let logs = logs_of(&logs);
    let expected_order = [
        "fixture init\n",
        "START RequestId: req-1 Version: $LATEST\n",
        "hello from stdout\n",
        "hello from stderr\n",
        "END RequestId: req-1\n",
        "REPORT RequestId: req-1\tDuration: ",
    ];
    let mut from = 0;
    for part in expected_order {
        let at = logs[from..]
            .find(part)
            .unwrap_or_else(|| panic!("{part:?} missing or out of order in {logs:?}"));
        from += at + part.len();
    }
    assert!(
        logs.contains("Init Duration: "),
        "first invoke reports init: {logs:?}"
    );

    // A second invocation's logs hold only its own output and no init line.
    let payload = json!({"stdout": "second"});
    assert_eq!(
        invoke(&shim, "req-2", payload.clone(), json!({})).await,
        202
    );
    wait_for(
        &server,
        "/invocations/req-2/response",
        Duration::from_secs(10),
    )
    .await;
    let (_, logs) = wait_for(&server, "/invocations/req-2/logs", Duration::ZERO).await;
    let logs = logs_of(&logs);
    assert!(
        logs.starts_with("START RequestId: req-2 Version: $LATEST\nsecond\nEND RequestId: req-2\n"),
        "{logs:?}"
    );
    assert!(!logs.contains("hello from stdout"));
    assert!(!logs.contains("Init Duration"));
}

#[tokio::test]
async fn invocation_context_reaches_the_function() {
    let server = MockServer::start().await;
    sink(&server).await;
    let shim = start_shim(
        &server,
        ShimOptions {
            extra_env: vec![("SHIM_DEBUG", "0")],
            ..ShimOptions::default()
        },
    )
    .await;
    ready(&server).await;

    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let described = describe(
        &server,
        &shim,
        "req-ctx",
        json!({"client-context": r#"{"custom":{"team":"sre"},"env":{}}"#}),
    )
    .await;

    assert_eq!(described["request_id"], "req-ctx");
    assert_eq!(described["invoked_function_arn"], FUNCTION_ARN);
    let trace = "Root=1-67890abc-0123456789abcdef01234567;Parent=1a2b3c4d5e6f7a8b;Sampled=0";
    assert_eq!(described["xray_trace_id"], trace);
    assert_eq!(described["env_trace_id"], trace);
    assert_eq!(described["client_context"], json!({"team": "sre"}));
    assert_eq!(described["aws_endpoint_url"], "http://127.0.0.1:1");
    assert_eq!(
        described["shim_vars"], 0,
        "SHIM_* settings stay with the shim"
    );
    let code_dir = shim._code.path().to_str().expect("utf8 path");
    assert_eq!(described["task_root"], code_dir);
    assert_eq!(
        Path::new(described["cwd"].as_str().expect("cwd")),
        shim._code.path()
    );
    let deadline = described["deadline_ms"].as_u64().expect("deadline");
    assert!(
        deadline >= before_ms + 1_000 && deadline <= before_ms + 2_000 + 1_000,
        "deadline {deadline} is about now + 2 s (now {before_ms})"
    );
}

#[tokio::test]
async fn timeout_reports_sandbox_timedout_and_resets_the_environment() {
    let server = MockServer::start().await;
    // The timed-out invocation's late answer must never reach LocalStack.
    Mock::given(path(callback_path("/invocations/req-slow/response")))
        .respond_with(ResponseTemplate::new(202))
        .expect(0)
        .mount(&server)
        .await;
    sink(&server).await;
    let shim = start_shim(
        &server,
        ShimOptions {
            timeout_secs: 1,
            ..ShimOptions::default()
        },
    )
    .await;
    ready(&server).await;
    let first_pid = describe(&server, &shim, "req-pid-1", json!({})).await["pid"].clone();

    let started = Instant::now();
    assert_eq!(
        invoke(
            &shim,
            "req-slow",
            json!({"sleep_ms": 2500, "stdout": "going to sleep"}),
            json!({})
        )
        .await,
        202
    );
    let (error_at, error) = wait_for(
        &server,
        "/invocations/req-slow/error",
        Duration::from_secs(5),
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(950) && elapsed < Duration::from_millis(2000),
        "timed out after {elapsed:?}, expected about 1 s"
    );
    assert_eq!(
        json_body(&error),
        json!({
            "errorType": "Sandbox.Timedout",
            "errorMessage": "RequestId: req-slow Error: Task timed out after 1.00 seconds",
        })
    );
    let (logs_at, logs) = wait_for(&server, "/invocations/req-slow/logs", Duration::ZERO).await;
    assert!(logs_at < error_at);
    let logs = logs_of(&logs);
    assert!(logs.contains("going to sleep\n"), "{logs:?}");
    assert!(logs.contains("Status: timeout"), "{logs:?}");
    assert!(
        logs.contains("req-slow Task timed out after 1.00 seconds\n"),
        "{logs:?}"
    );

    // The next invocation runs in a fresh bootstrap.
    let second_pid = describe(&server, &shim, "req-pid-2", json!({})).await["pid"].clone();
    assert_ne!(first_pid, second_pid, "the environment was reset");
    let first_pid = first_pid.as_u64().expect("pid") as u32;
    assert!(
        wait_dead(first_pid, Duration::from_secs(2)).await,
        "timed-out bootstrap was killed"
    );

    // Give a late answer the chance to show up before the mock verifies `expect(0)`.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(
        received_on(&server, "/invocations/req-slow/response").await,
        0
    );
}

#[tokio::test]
async fn bootstrap_exit_reports_runtime_exit_error_and_next_invoke_reinitialises() {
    let server = MockServer::start().await;
    sink(&server).await;
    let shim = start_shim(&server, ShimOptions::default()).await;
    ready(&server).await;

    let started = Instant::now();
    assert_eq!(
        invoke(
            &shim,
            "req-exit",
            json!({"exit": 3, "stdout": "about to exit"}),
            json!({})
        )
        .await,
        202
    );
    let (_, error) = wait_for(
        &server,
        "/invocations/req-exit/error",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a crash is reported at once, not at the timeout"
    );
    assert_eq!(
        json_body(&error),
        json!({
            "errorType": "Runtime.ExitError",
            "errorMessage": "RequestId: req-exit Error: Runtime exited with error: exit status 3",
        })
    );
    let (_, logs) = wait_for(&server, "/invocations/req-exit/logs", Duration::ZERO).await;
    let logs = logs_of(&logs);
    assert!(logs.contains("about to exit\n"), "{logs:?}");
    assert!(logs.contains("Runtime.ExitError\n"), "{logs:?}");

    assert_eq!(
        invoke(&shim, "req-after", json!({"again": true}), json!({})).await,
        202
    );
    let (_, response) = wait_for(
        &server,
        "/invocations/req-after/response",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(json_body(&response), json!({"again": true}));
    let (_, logs) = wait_for(&server, "/invocations/req-after/logs", Duration::ZERO).await;
    let logs = logs_of(&logs);
    assert!(
        logs.contains("fixture init\n"),
        "re-init output belongs to this invocation: {logs:?}"
    );
    assert!(logs.contains("Init Duration: "), "{logs:?}");
}

#[tokio::test]
async fn function_error_is_returned_as_the_invocation_error() {
    let server = MockServer::start().await;
    sink(&server).await;
    let shim = start_shim(&server, ShimOptions::default()).await;
    ready(&server).await;

    assert_eq!(
        invoke(
            &shim,
            "req-fail",
            json!({"fail": "validation went wrong"}),
            json!({})
        )
        .await,
        202
    );
    let (_, error) = wait_for(
        &server,
        "/invocations/req-fail/error",
        Duration::from_secs(5),
    )
    .await;
    let body = json_body(&error);
    assert_eq!(body["errorMessage"], "validation went wrong");
    assert!(body["errorType"].is_string(), "{body}");
    assert_eq!(
        received_on(&server, "/invocations/req-fail/response").await,
        0
    );
}

/// AWS's limit on a function's response body (6 MiB and 100 bytes).
const MAX_RESPONSE_BYTES: u64 = 6 * 1024 * 1024 + 100;

#[tokio::test]
async fn a_response_over_6_mb_is_function_response_size_too_large() {
    let server = MockServer::start().await;
    sink(&server).await;
    let shim = start_shim(&server, ShimOptions::default()).await;
    ready(&server).await;

    let size = MAX_RESPONSE_BYTES + 1;
    assert_eq!(
        invoke(&shim, "req-big", json!({"respond_bytes": size}), json!({})).await,
        202
    );
    let (_, error) = wait_for(
        &server,
        "/invocations/req-big/error",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        json_body(&error),
        json!({
            "errorType": "Function.ResponseSizeTooLarge",
            "errorMessage": "Response payload size (6291557 bytes) exceeded maximum allowed payload size (6291556 bytes).",
        })
    );
    assert_eq!(
        received_on(&server, "/invocations/req-big/response").await,
        0,
        "the oversized body never reaches the invoker"
    );

    // The environment serves the next invocation as usual.
    assert_eq!(
        invoke(&shim, "req-next", json!({"n": 2}), json!({})).await,
        202
    );
    let (_, response) = wait_for(
        &server,
        "/invocations/req-next/response",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(json_body(&response), json!({"n": 2}));
}

#[tokio::test]
async fn a_response_of_exactly_the_limit_reaches_the_invoker() {
    let server = MockServer::start().await;
    sink(&server).await;
    let shim = start_shim(&server, ShimOptions::default()).await;
    ready(&server).await;

    assert_eq!(
        invoke(
            &shim,
            "req-limit",
            json!({"respond_bytes": MAX_RESPONSE_BYTES}),
            json!({})
        )
        .await,
        202
    );
    let (_, response) = wait_for(
        &server,
        "/invocations/req-limit/response",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(response.body.len() as u64, MAX_RESPONSE_BYTES);
    assert_eq!(
        received_on(&server, "/invocations/req-limit/error").await,
        0
    );
}

#[tokio::test]
async fn reported_init_error_fails_startup_at_once() {
    let server = MockServer::start().await;
    sink(&server).await;
    let started = Instant::now();
    let mut shim = start_shim(
        &server,
        ShimOptions {
            extra_env: vec![("FIXTURE_INIT_FAIL", "1")],
            ..ShimOptions::default()
        },
    )
    .await;
    let (_, status) = wait_for(
        &server,
        &format!("/status/{RUNTIME_ID}/error"),
        Duration::from_secs(5),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        json_body(&status),
        json!({"errorType": "Fixture.InitError", "errorMessage": "init failed on purpose"})
    );
    let exit = tokio::time::timeout(Duration::from_secs(5), shim.child.wait())
        .await
        .expect("shim exits after a failed init")
        .expect("wait");
    assert!(!exit.success());
    assert_eq!(
        received_on(&server, &format!("/status/{RUNTIME_ID}/ready")).await,
        0
    );
}

#[tokio::test]
async fn bootstrap_exit_during_init_fails_startup_with_exit_error() {
    let server = MockServer::start().await;
    sink(&server).await;
    let _shim = start_shim(
        &server,
        ShimOptions {
            extra_env: vec![("FIXTURE_INIT_FAIL", "exit")],
            ..ShimOptions::default()
        },
    )
    .await;
    let (_, status) = wait_for(
        &server,
        &format!("/status/{RUNTIME_ID}/error"),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        json_body(&status),
        json!({"errorType": "Runtime.ExitError", "errorMessage": "Error: Runtime exited with error: exit status 1"})
    );
}

#[tokio::test]
async fn missing_bootstrap_fails_startup_with_invalid_entrypoint() {
    let server = MockServer::start().await;
    sink(&server).await;
    let _shim = start_shim(
        &server,
        ShimOptions {
            with_bootstrap: false,
            ..ShimOptions::default()
        },
    )
    .await;
    let (_, status) = wait_for(
        &server,
        &format!("/status/{RUNTIME_ID}/error"),
        Duration::from_secs(5),
    )
    .await;
    let body = json_body(&status);
    assert_eq!(body["errorType"], "Runtime.InvalidEntrypoint");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("bootstrap"),
        "{body}"
    );
}

#[tokio::test]
async fn malformed_invoke_is_rejected() {
    let server = MockServer::start().await;
    sink(&server).await;
    let shim = start_shim(&server, ShimOptions::default()).await;
    ready(&server).await;
    let url = format!("http://{}/invoke", shim.addr);
    assert_eq!(post(&url, "not json".into()).await, 400);
    let traversal =
        json!({"invoke-id": "../x", "invoked-function-arn": FUNCTION_ARN, "payload": "{}"});
    assert_eq!(post(&url, traversal.to_string()).await, 400);
}

/// How the test ends the shim.
enum Ending {
    StdinEof,
    Sigterm,
    Sigkill,
}

async fn assert_shim_and_bootstrap_die(ending: Ending) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(".*"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    let mut shim = start_shim(
        &server,
        ShimOptions {
            timeout_secs: 60,
            ..ShimOptions::default()
        },
    )
    .await;
    ready(&server).await;
    let bootstrap_pid = describe(&server, &shim, "req-pid", json!({})).await["pid"]
        .as_u64()
        .expect("pid") as u32;
    let shim_pid = shim.child.id().expect("shim pid");
    // Busy in a long invocation, the function would not notice on its own
    // that the Runtime API went away.
    assert_eq!(
        invoke(&shim, "req-busy", json!({"sleep_ms": 30_000}), json!({})).await,
        202
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!process_is_dead(bootstrap_pid));

    match ending {
        Ending::StdinEof => drop(shim.child.stdin.take()),
        Ending::Sigterm => {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(shim_pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            )
            .expect("signal shim");
        }
        Ending::Sigkill => shim.child.start_kill().expect("kill shim"),
    }
    let exit = tokio::time::timeout(Duration::from_secs(5), shim.child.wait())
        .await
        .expect("shim exits")
        .expect("wait");
    if !matches!(ending, Ending::Sigkill) {
        assert!(exit.success(), "orderly shutdown exits 0, got {exit}");
    }
    assert!(
        wait_dead(bootstrap_pid, Duration::from_secs(3)).await,
        "bootstrap {bootstrap_pid} outlived the shim"
    );
}

#[tokio::test]
async fn stdin_eof_ends_shim_and_bootstrap() {
    assert_shim_and_bootstrap_die(Ending::StdinEof).await;
}

#[tokio::test]
async fn sigterm_ends_shim_and_bootstrap() {
    assert_shim_and_bootstrap_die(Ending::Sigterm).await;
}

#[tokio::test]
async fn sigkill_of_the_shim_still_kills_the_bootstrap() {
    assert_shim_and_bootstrap_die(Ending::Sigkill).await;
}

#[tokio::test]
async fn an_inline_invoke_answers_with_logs_and_result_and_posts_no_callback() {
    let server = MockServer::start().await;
    sink(&server).await;
    let shim = start_shim(&server, ShimOptions::default()).await;
    ready(&server).await;

    let payload = json!({"stdout": "inline", "n": 2});
    let (status, outcome, logs, response) =
        invoke_inline(&shim, "req-inline", payload.clone()).await;
    assert_eq!((status, outcome.as_str()), (200, "response"));
    assert_eq!(response, payload);
    assert!(logs.contains("START RequestId: req-inline"), "{logs:?}");
    assert!(logs.contains("inline\n"), "{logs:?}");
    assert!(
        logs.contains("REPORT RequestId: req-inline\tDuration: "),
        "{logs:?}"
    );

    let (status, outcome, _, error) =
        invoke_inline(&shim, "req-inline-fail", json!({"fail": "boom"})).await;
    assert_eq!((status, outcome.as_str()), (200, "error"));
    assert_eq!(error["errorMessage"], "boom");

    for tail in [
        "/invocations/req-inline/logs",
        "/invocations/req-inline/response",
        "/invocations/req-inline-fail/error",
    ] {
        assert_eq!(received_on(&server, tail).await, 0, "{tail} was posted");
    }
}
