//! The gateway against a real LocalStack (the harness's host emulator), driven
//! with the Rust SDK as the lambdas and users would drive it.
//!
//! One LocalStack and three gateways (enforce, audit, off) are shared by all
//! tests, on a runtime of their own, because SDK clients belong to the runtime
//! that made them. Nothing is dropped (statics); the emulator module kills
//! LocalStack's process group when the test process exits. Every test names
//! its own roles, users and functions, so tests can run in parallel.

use std::{
    collections::BTreeMap,
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    sync::{LazyLock, OnceLock},
    time::{Duration, Instant},
};

use aws_config::SdkConfig;
use aws_credential_types::{Credentials, provider::SharedCredentialsProvider};
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_sts::error::ProvideErrorMetadata;
use serde_json::{Value, json};

use harness::emulator::host::{HostEmulator, HostOptions};
use iam_gateway::{
    DecisionRecord, Gateway, GatewayConfig, GatewayHandle, Mode, Ruling, explain, format_chain,
    read_log, xml,
};
use sdk_config as aws;
use xray_trace::TraceId;

const A: &str = "111111111111";
const B: &str = "222222222222";
const C: &str = "333333333333";

/// The account roots' keys the gateways know, fresh per test process.
static ROOT_KEYS: LazyLock<aws::RootKeys> = LazyLock::new(|| aws::RootKeys::generate([A, B, C]));

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

struct World {
    upstream: String,
    enforce: GatewayHandle,
    audit: GatewayHandle,
    off: GatewayHandle,
    log_file: PathBuf,
    _emulator: HostEmulator,
}

static WORLD: OnceLock<World> = OnceLock::new();

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn world() -> &'static World {
    WORLD.get_or_init(|| {
        RUNTIME.block_on(async {
            let work_dir = harness::workspace::default_work_dir()
                .with_file_name("harness-tests")
                .join("gateway");
            let _ = std::fs::remove_dir_all(&work_dir);
            std::fs::create_dir_all(&work_dir).expect("work dir");
            let (emulator, upstream) = HostEmulator::start(&HostOptions {
                gateway: SocketAddr::from(([127, 0, 0, 1], free_port())),
                // No function runs in these tests; the shim only has to exist.
                runtime_shim: PathBuf::from("/bin/true"),
                work_dir: work_dir.clone(),
                lambda_endpoint: None,
                lambda_ca_file: None,
                credentials_issuer: None,
                quiet: true,
            })
            .await
            .unwrap_or_else(|err| panic!("LocalStack did not start: {err}"));
            let log_file = work_dir.join("decisions.jsonl");
            let start = |mode: Mode, log_file: Option<PathBuf>| {
                let mut config = GatewayConfig::new(any_port(), upstream.clone());
                config.mode = mode;
                config.log_file = log_file;
                config.root_keys = ROOT_KEYS.clone();
                Gateway::start(config)
            };
            let enforce = start(Mode::Enforce, Some(log_file.clone()))
                .await
                .expect("enforcing gateway");
            let audit = start(Mode::Audit, None).await.expect("auditing gateway");
            let off = start(Mode::Off, None).await.expect("pass-through gateway");
            World {
                upstream,
                enforce,
                audit,
                off,
                log_file,
                _emulator: emulator,
            }
        })
    })
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

async fn root(endpoint: &str, account: &str) -> SdkConfig {
    aws::root_config(&aws::Endpoint::new(endpoint), &ROOT_KEYS, account).await
}

async fn as_credentials(endpoint: &str, credentials: &Credentials) -> SdkConfig {
    root(endpoint, A)
        .await
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials.clone()))
        .build()
}

fn policy(statements: Value) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// Creates a role (through `endpoint`) and returns its ARN.
async fn create_role(
    endpoint: &str,
    account: &str,
    name: &str,
    trust: Value,
    inline: Option<Value>,
) -> String {
    let iam = aws_sdk_iam::Client::new(&root(endpoint, account).await);
    let role = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(policy(trust))
        .send()
        .await
        .expect("CreateRole");
    if let Some(statements) = inline {
        iam.put_role_policy()
            .role_name(name)
            .policy_name("inline")
            .policy_document(policy(statements))
            .send()
            .await
            .expect("PutRolePolicy");
    }
    role.role().map(|r| r.arn().to_owned()).expect("role arn")
}

/// Creates a user with an inline policy and an access key; returns its ARN and credentials.
async fn create_user(
    endpoint: &str,
    account: &str,
    name: &str,
    statements: Value,
) -> (String, Credentials) {
    let iam = aws_sdk_iam::Client::new(&root(endpoint, account).await);
    let user = iam
        .create_user()
        .user_name(name)
        .send()
        .await
        .expect("CreateUser");
    iam.put_user_policy()
        .user_name(name)
        .policy_name("inline")
        .policy_document(policy(statements))
        .send()
        .await
        .expect("PutUserPolicy");
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .expect("CreateAccessKey");
    let key = key.access_key().expect("access key");
    let arn = user.user().map(|u| u.arn().to_owned()).expect("user arn");
    (
        arn,
        Credentials::new(
            key.access_key_id(),
            key.secret_access_key(),
            None,
            None,
            "test",
        ),
    )
}

/// An assumed session, or the error's code, message and HTTP status.
type Assumed = Result<Credentials, (Option<String>, Option<String>, Option<u16>)>;

async fn assume(
    endpoint: &str,
    caller: &Credentials,
    role_arn: &str,
    session: &str,
    external_id: Option<&str>,
) -> Assumed {
    let sts = aws_sdk_sts::Client::new(&as_credentials(endpoint, caller).await);
    let answer = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session)
        .set_external_id(external_id.map(str::to_owned))
        .send()
        .await;
    match answer {
        Ok(out) => {
            let c = out.credentials().expect("credentials");
            Ok(Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_owned()),
                None,
                "assumed",
            ))
        }
        Err(err) => Err((
            err.code().map(str::to_owned),
            err.message().map(str::to_owned),
            err.raw_response().map(|r| r.status().as_u16()),
        )),
    }
}

fn denied(message: &str) -> Assumed {
    Err((
        Some("AccessDenied".to_owned()),
        Some(message.to_owned()),
        Some(403),
    ))
}

/// The chain's shape: a user in B assumes B's execution role, whose session assumes A's target role.
struct Chain {
    target_role: String,
    target_name: String,
    exec_name: String,
    exec_session: Credentials,
}

const EXTERNAL_ID: &str = "ext-ok-1";

async fn chain(exec_policy: Value) -> Chain {
    chain_through(&world().enforce.url(), exec_policy).await
}

/// A chain made through the gateway at `url`, which thereby learns its keys.
async fn chain_through(url: &str, exec_policy: Value) -> Chain {
    let url = url.to_owned();
    let target_name = unique("target");
    let exec_name = unique("exec");
    let target_role = create_role(
        &url,
        A,
        &target_name,
        json!([{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{B}:root")},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}
        }]),
        Some(json!([{
            "Sid": "Invoke", "Effect": "Allow", "Action": "lambda:InvokeFunction",
            "Resource": format!("arn:aws:lambda:*:{A}:function:*")
        }])),
    )
    .await;
    let exec_policy = exec_policy.to_string().replace("TARGET", &target_role);
    let (user_arn, user) = create_user(
        &url,
        B,
        &unique("deployer"),
        json!([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]),
    )
    .await;
    let exec_role = create_role(
        &url,
        B,
        &exec_name,
        json!([{"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}]),
        Some(serde_json::from_str(&exec_policy).expect("policy json")),
    )
    .await;
    let exec_session = assume(&url, &user, &exec_role, "chain", None)
        .await
        .expect("the user assumes its own account's execution role");
    Chain {
        target_role,
        target_name,
        exec_name,
        exec_session,
    }
}

fn may_assume_target() -> Value {
    json!([{"Sid": "Assume", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "TARGET"}])
}

fn denial_for(chain: &Chain) -> String {
    format!(
        "User: arn:aws:sts::{B}:assumed-role/{}/chain is not authorized to perform: sts:AssumeRole on resource: {}",
        chain.exec_name, chain.target_role
    )
}

fn record_for(gateway: &GatewayHandle, principal_contains: &str, resource: &str) -> DecisionRecord {
    gateway
        .decisions()
        .into_iter()
        .rev()
        .find(|r| {
            r.resource.as_deref() == Some(resource)
                && r.principal
                    .as_deref()
                    .is_some_and(|p| p.contains(principal_contains))
        })
        .unwrap_or_else(|| panic!("no decision for {principal_contains} on {resource}"))
}

#[test]
fn the_right_external_id_assumes_the_role_and_the_session_acts_in_a() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let chain = chain(may_assume_target()).await;

        let session = assume(
            &url,
            &chain.exec_session,
            &chain.target_role,
            "callee",
            Some(EXTERNAL_ID),
        )
        .await
        .expect("allowed");

        let sts = aws_sdk_sts::Client::new(&as_credentials(&url, &session).await);
        let identity = sts.get_caller_identity().send().await.expect("identity");
        assert_eq!(
            identity.arn(),
            Some(format!("arn:aws:sts::{A}:assumed-role/{}/callee", chain.target_name).as_str())
        );
        let record = record_for(&world.enforce, &chain.exec_name, &chain.target_role);
        assert_eq!(record.decision, Ruling::Allow);
        assert_eq!(record.status, Some(200));
        let kinds: Vec<(&str, &str)> = record
            .deciding
            .iter()
            .map(|s| (s.kind.as_str(), s.sid_or_index.as_str()))
            .collect();
        assert_eq!(kinds, [("trust", "0"), ("identity", "Assume")]);
    });
}

#[test]
fn a_missing_or_wrong_external_id_is_denied() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let chain = chain(may_assume_target()).await;
        for external_id in [None, Some("ext-wrong")] {
            let answer = assume(
                &url,
                &chain.exec_session,
                &chain.target_role,
                "chain",
                external_id,
            )
            .await;
            assert_eq!(
                answer,
                denied(&denial_for(&chain)),
                "external id {external_id:?}"
            );
        }
        let record = record_for(&world.enforce, &chain.exec_name, &chain.target_role);
        assert_eq!(record.decision, Ruling::Deny);
        assert_eq!(record.reason, "no_resource_based_policy_allows");
    });
}

#[test]
fn a_trust_policy_naming_another_account_denies_with_aws_shape() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let chain = chain(may_assume_target()).await;
        let outsider = unique("outsider");
        let (outsider_arn, credentials) = create_user(
            &url,
            C,
            &outsider,
            json!([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]),
        )
        .await;
        let expected = format!(
            "User: {outsider_arn} is not authorized to perform: sts:AssumeRole on resource: {}",
            chain.target_role
        );

        let answer = assume(&url, &credentials, &chain.target_role, "x", Some(EXTERNAL_ID)).await;
        assert_eq!(answer, denied(&expected));

        // The raw answer, as any client sees it.
        let (status, headers, body) = send_signed(
            &url,
            "/",
            &credentials,
            "sts",
            &[("content-type", "application/x-www-form-urlencoded")],
            format!(
                "Action=AssumeRole&Version=2011-06-15&RoleSessionName=x&ExternalId={EXTERNAL_ID}&RoleArn={}",
                chain.target_role
            )
            .into_bytes(),
            std::time::SystemTime::now(),
        )
        .await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(headers["content-type"], "text/xml");
        let texts = xml::element_texts(&body).expect("well-formed xml");
        assert_eq!(xml::find(&texts, "ErrorResponse/Error/Code"), Some("AccessDenied"));
        assert_eq!(xml::find(&texts, "ErrorResponse/Error/Type"), Some("Sender"));
        assert_eq!(
            xml::find(&texts, "ErrorResponse/Error/Message"),
            Some(expected.as_str())
        );
        assert!(xml::find(&texts, "ErrorResponse/RequestId").is_some());
    });
}

#[test]
fn a_caller_without_assume_role_permission_is_denied() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let chain =
            chain(json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])).await;
        let answer = assume(
            &url,
            &chain.exec_session,
            &chain.target_role,
            "chain",
            Some(EXTERNAL_ID),
        )
        .await;
        assert_eq!(answer, denied(&denial_for(&chain)));
        let record = record_for(&world.enforce, &chain.exec_name, &chain.target_role);
        assert_eq!(record.reason, "no_identity_based_policy_allows");
    });
}

#[test]
fn an_explicit_deny_in_the_callers_policy_wins() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let chain = chain(json!([
            {"Sid": "Assume", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "TARGET"},
            {"Sid": "NoCrossAccount", "Effect": "Deny", "Action": "sts:*", "Resource": format!("arn:aws:iam::{A}:role/*")}
        ]))
        .await;
        let answer = assume(&url, &chain.exec_session, &chain.target_role, "chain", Some(EXTERNAL_ID)).await;
        assert_eq!(answer, denied(&denial_for(&chain)));
        let record = record_for(&world.enforce, &chain.exec_name, &chain.target_role);
        assert_eq!(record.reason, "explicit_deny");
        assert_eq!(record.deciding.len(), 1);
        assert_eq!(record.deciding[0].sid_or_index, "NoCrossAccount");
    });
}

#[test]
fn a_duration_above_the_roles_maximum_is_a_validation_error() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let role = create_role(
            &url,
            A,
            &unique("short"),
            json!([{"Effect": "Allow", "Principal": {"AWS": B}, "Action": "sts:AssumeRole"}]),
            None,
        )
        .await;
        let (_, user) = create_user(
            &url,
            B,
            &unique("long-sessions"),
            json!([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role}]),
        )
        .await;
        let sts = aws_sdk_sts::Client::new(&as_credentials(&url, &user).await);
        let err = sts
            .assume_role()
            .role_arn(&role)
            .role_session_name("s")
            .duration_seconds(7200)
            .send()
            .await
            .expect_err("above MaxSessionDuration");
        assert_eq!(err.code(), Some("ValidationError"));
        assert_eq!(
            err.message(),
            Some("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
        );
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));

        let within = sts
            .assume_role()
            .role_arn(&role)
            .role_session_name("s")
            .duration_seconds(3600)
            .send()
            .await;
        assert!(within.is_ok(), "{within:?}");
    });
}

#[test]
fn a_trust_policy_change_through_the_gateway_applies_at_once() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let chain = chain(may_assume_target()).await;
        assume(
            &url,
            &chain.exec_session,
            &chain.target_role,
            "chain",
            Some(EXTERNAL_ID),
        )
        .await
        .expect("allowed before the change (and now cached)");

        let iam = aws_sdk_iam::Client::new(&root(&url, A).await);
        iam.update_assume_role_policy()
            .role_name(&chain.target_name)
            .policy_document(policy(json!([{
                "Effect": "Allow", "Principal": {"AWS": C}, "Action": "sts:AssumeRole"
            }])))
            .send()
            .await
            .expect("UpdateAssumeRolePolicy");

        let answer = assume(
            &url,
            &chain.exec_session,
            &chain.target_role,
            "chain",
            Some(EXTERNAL_ID),
        )
        .await;
        assert_eq!(answer, denied(&denial_for(&chain)));
    });
}

/// A function in A whose policy lets account B (not C) invoke it; returns its ARN.
async fn function(endpoint: &str) -> String {
    let name = unique("alert");
    let exec = create_role(
        endpoint,
        A,
        &unique("alert-exec"),
        json!([{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]),
        None,
    )
    .await;
    let lambda = aws_sdk_lambda::Client::new(&root(endpoint, A).await);
    let created = lambda
        .create_function()
        .function_name(&name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(exec)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_smithy_types::Blob::new(bootstrap_zip()))
                .build(),
        )
        .send()
        .await
        .expect("CreateFunction");
    lambda
        .add_permission()
        .function_name(&name)
        .statement_id("invoke-b")
        .action("lambda:InvokeFunction")
        .principal(B)
        .send()
        .await
        .expect("AddPermission");
    created.function_arn().expect("function arn").to_owned()
}

/// A function zip whose `bootstrap` exits at once: no function runs in these tests.
fn bootstrap_zip() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let binary = dir.path().join("bootstrap");
    std::fs::write(&binary, b"#!/bin/sh\nexit 1\n").expect("bootstrap");
    let zip = dir.path().join("bootstrap.zip");
    harness::package::zip_bootstrap(&binary, &zip).expect("zip");
    std::fs::read(&zip).expect("zip bytes")
}

async fn dry_run(
    endpoint: &str,
    account: &str,
    function: &str,
) -> Result<(), (Option<String>, Option<String>)> {
    let lambda = aws_sdk_lambda::Client::new(&root(endpoint, account).await);
    match lambda
        .invoke()
        .function_name(function)
        .invocation_type(InvocationType::DryRun)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) => Err((
            err.code().map(str::to_owned),
            err.message().map(str::to_owned),
        )),
    }
}

fn not_denied_by_gateway(answer: &Result<(), (Option<String>, Option<String>)>) -> bool {
    !matches!(answer, Err((Some(code), _)) if code == "AccessDeniedException")
}

#[test]
fn an_invoke_the_function_policy_allows_is_forwarded() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let function = function(&url).await;
        let answer = dry_run(&url, B, &function).await;
        // The function cannot run here; any answer but the gateway's denial means it was forwarded.
        assert!(not_denied_by_gateway(&answer), "{answer:?}");
        let record = record_for(&world.enforce, &format!("{B}:root"), &function);
        assert_eq!(record.decision, Ruling::Allow);
        assert_eq!(record.deciding[0].kind, "resource");
        assert_eq!(record.deciding[0].sid_or_index, "invoke-b");
        assert_ne!(record.status, Some(403));

        // A plain name resolves in the caller's own account, where A's root may do anything.
        let name = function.rsplit(':').next().expect("name");
        let answer = dry_run(&url, A, name).await;
        assert!(not_denied_by_gateway(&answer), "{answer:?}");
        assert_eq!(
            record_for(&world.enforce, &format!("{A}:root"), &function).decision,
            Ruling::Allow
        );
    });
}

#[test]
fn a_function_policy_naming_another_account_denies_a_direct_invoke() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let function = function(&url).await;
        let expected = format!(
            "User: arn:aws:iam::{C}:root is not authorized to perform: lambda:InvokeFunction on resource: {function} because no resource-based policy allows the lambda:InvokeFunction action"
        );
        assert_eq!(
            dry_run(&url, C, &function).await,
            Err((Some("AccessDeniedException".into()), Some(expected.clone())))
        );

        let (status, headers, body) = raw(
            &url,
            &format!("/2015-03-31/functions/{}/invocations", function.replace(':', "%3A")),
            C,
            "lambda",
            &[],
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(headers["x-amzn-errortype"], "AccessDeniedException");
        assert_eq!(headers["content-type"], "application/json");
        assert!(headers.contains_key("x-amzn-requestid"));
        let body: Value = serde_json::from_str(&body).expect("json body");
        assert_eq!(body, json!({"Type": "User", "Message": expected}));
    });
}

#[test]
fn audit_mode_forwards_what_it_would_deny() {
    let world = world();
    RUNTIME.block_on(async {
        let function = function(&world.enforce.url()).await;
        let answer = dry_run(&world.audit.url(), C, &function).await;
        assert!(not_denied_by_gateway(&answer), "{answer:?}");
        let record = record_for(&world.audit, &format!("{C}:root"), &function);
        assert_eq!(record.decision, Ruling::WouldDeny);
        assert_eq!(record.reason, "no_resource_based_policy_allows");

        let chain = chain_through(&world.audit.url(), may_assume_target()).await;
        let session = assume(
            &world.audit.url(),
            &chain.exec_session,
            &chain.target_role,
            "chain",
            Some("ext-wrong"),
        )
        .await;
        assert!(
            session.is_ok(),
            "LocalStack itself lets it through: {session:?}"
        );
        assert_eq!(
            record_for(&world.audit, &chain.exec_name, &chain.target_role).decision,
            Ruling::WouldDeny
        );
    });
}

#[test]
fn off_mode_is_a_plain_proxy() {
    let world = world();
    RUNTIME.block_on(async {
        let function = function(&world.enforce.url()).await;
        let answer = dry_run(&world.off.url(), C, &function).await;
        assert!(not_denied_by_gateway(&answer), "{answer:?}");
        assert!(world.off.decisions().is_empty());
        assert!(world.off.overhead().requests > 0);
    });
}

#[test]
fn one_trace_is_logged_to_the_file_and_formats_as_a_chain() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let function = function(&url).await;
        let chain = chain(may_assume_target()).await;
        let root = TraceId::new();
        let trace = format!("{};Parent=53995c3f42cd8ad8", root.header());

        let sts = aws_sdk_sts::Client::new(&as_credentials(&url, &chain.exec_session).await);
        let out = sts
            .assume_role()
            .role_arn(&chain.target_role)
            .role_session_name("callee")
            .external_id(EXTERNAL_ID)
            .customize()
            .mutate_request({
                let trace = trace.clone();
                move |req| {
                    req.headers_mut().insert("x-amzn-trace-id", trace.clone());
                }
            })
            .send()
            .await
            .expect("allowed");
        let c = out.credentials().expect("credentials");
        let session = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "assumed",
        );
        let lambda = aws_sdk_lambda::Client::new(&as_credentials(&url, &session).await);
        let answer = lambda
            .invoke()
            .function_name(&function)
            .invocation_type(InvocationType::DryRun)
            .customize()
            .mutate_request(move |req| {
                req.headers_mut().insert("x-amzn-trace-id", trace.clone());
            })
            .send()
            .await;
        assert!(
            !matches!(&answer, Err(e) if e.code() == Some("AccessDeniedException")),
            "{answer:?}"
        );

        let from_file: Vec<_> = read_log(&world.log_file)
            .expect("log file")
            .into_iter()
            .filter(|r| r.trace.as_ref() == Some(&root))
            .collect();
        assert_eq!(from_file, world.enforce.decisions_of(&root));
        let actions: Vec<&str> = from_file.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["sts:AssumeRole", "lambda:InvokeFunction"]);

        let accounts = BTreeMap::from([(A.to_owned(), "A".to_owned()), (B.to_owned(), "B".to_owned())]);
        let text = format_chain(&from_file, &accounts);
        let lines: Vec<&str> = text.lines().collect();
        let function_name = function.rsplit(':').next().expect("name");
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with(&format!(
                "B:role/{} → sts:AssumeRole → A:role/{}  ALLOW (trust policy {} statement 0; identity policy inline/Assume)",
                chain.exec_name, chain.target_name, chain.target_name
            )),
            "{text}"
        );
        assert_eq!(
            lines[1],
            format!("  → lambda:InvokeFunction A:function:{function_name}  ALLOW (identity policy inline/Invoke)"),
        );
    });
}

/// Creates the caller function in B the way the caller stack does: an execution role and the target's variables.
async fn caller_function(
    endpoint: &str,
    chain: &Chain,
    target_role: &str,
    target_function: &str,
    external_id: &str,
) -> String {
    let exec = format!("arn:aws:iam::{B}:role/{}", chain.exec_name);
    let lambda = aws_sdk_lambda::Client::new(&root(endpoint, B).await);
    let created = lambda
        .create_function()
        .function_name(unique("invoker"))
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(exec)
        .environment(
            aws_sdk_lambda::types::Environment::builder()
                .variables("TARGET_ROLE_ARN", target_role)
                .variables("TARGET_FUNCTION_ARN", target_function)
                .variables("EXTERNAL_ID", external_id)
                .variables("ROLE_SESSION_NAME", "servicenow-invoker")
                .build(),
        )
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_smithy_types::Blob::new(bootstrap_zip()))
                .build(),
        )
        .send()
        .await
        .expect("CreateFunction");
    created.function_arn().expect("function arn").to_owned()
}

/// The function name at the end of a function ARN.
fn function_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

#[test]
fn explain_decides_both_hops_from_the_deployed_configuration() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let target = function(&url).await;
        let chain = chain(may_assume_target()).await;

        let good = caller_function(&url, &chain, &chain.target_role, &target, EXTERNAL_ID).await;
        let hops = explain(&aws::Endpoint::new(world.enforce.url()), &ROOT_KEYS, &good).await.expect("explain");
        assert_eq!(hops.len(), 2);
        // Lambda names the execution role's session after the function.
        assert_eq!(
            hops[0].principal,
            format!("arn:aws:sts::{B}:assumed-role/{}/{}", chain.exec_name, function_name(&good))
        );
        assert_eq!(hops[0].resource, chain.target_role);
        assert_eq!(hops[0].external_id.as_deref(), Some(EXTERNAL_ID));
        assert!(hops[0].allowed, "{}", hops[0]);
        assert_eq!(
            hops[1].principal,
            format!("arn:aws:sts::{A}:assumed-role/{}/servicenow-invoker", chain.target_name)
        );
        assert_eq!(hops[1].resource, target);
        assert!(hops[1].allowed, "{}", hops[1]);

        let wrong = caller_function(&url, &chain, &chain.target_role, &target, "ext-wrong").await;
        let hops = explain(&aws::Endpoint::new(world.enforce.url()), &ROOT_KEYS, &wrong).await.expect("explain");
        assert!(!hops[0].allowed);
        assert_eq!(hops[0].reason, "no_resource_based_policy_allows");
        assert_eq!(
            hops[0].denial.as_deref(),
            Some(
                format!(
                    "User: arn:aws:sts::{B}:assumed-role/{}/{} is not authorized to perform: sts:AssumeRole on resource: {}",
                    chain.exec_name, function_name(&wrong), chain.target_role
                )
                .as_str()
            )
        );
    });
}

#[test]
fn explain_decides_one_hop_for_a_caller_in_direct_mode() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let target = function(&url).await;
        let chain = chain(may_assume_target()).await;
        // No TARGET_ROLE_ARN: the caller invokes with its own role, whose
        // policies here allow only sts:AssumeRole.
        let direct = caller_function(&url, &chain, "", &target, "").await;

        let hops = explain(&aws::Endpoint::new(world.enforce.url()), &ROOT_KEYS, &direct).await.expect("explain");

        assert_eq!(hops.len(), 1, "{hops:?}");
        let exec_session = format!(
            "arn:aws:sts::{B}:assumed-role/{}/{}",
            chain.exec_name,
            function_name(&direct)
        );
        assert_eq!(hops[0].principal, exec_session);
        assert_eq!(hops[0].action, "lambda:InvokeFunction");
        assert_eq!(hops[0].resource, target);
        assert!(!hops[0].allowed, "{}", hops[0]);
        let denial = hops[0].denial.clone().unwrap_or_default();
        assert!(
            denial.starts_with(&format!(
                "User: {exec_session} is not authorized to perform: lambda:InvokeFunction on resource: {target} because no "
            )),
            "{denial}"
        );
    });
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

#[test]
fn the_gateway_adds_little_latency_to_a_warm_invoke() {
    let world = world();
    RUNTIME.block_on(async {
        let function = function(&world.enforce.url()).await;
        let mut config = GatewayConfig::new(any_port(), world.upstream.clone());
        config.root_keys = ROOT_KEYS.clone();
        let bench = Gateway::start(config).await.expect("benchmark gateway");
        let direct = aws_sdk_lambda::Client::new(&root(&world.upstream, B).await);
        let proxied = aws_sdk_lambda::Client::new(&root(&bench.url(), B).await);
        let mut timings = [Vec::new(), Vec::new()];
        for round in 0..120 {
            for (i, client) in [&direct, &proxied].into_iter().enumerate() {
                let started = Instant::now();
                let _ = client
                    .invoke()
                    .function_name(&function)
                    .invocation_type(InvocationType::DryRun)
                    .send()
                    .await;
                // The first rounds warm connections and the policy cache.
                if round >= 20 {
                    timings[i].push(started.elapsed());
                }
            }
        }
        let [direct_times, proxied_times] = timings;
        let overhead = bench.overhead();
        eprintln!(
            "warm DryRun invoke: direct median {:?}, through the gateway median {:?}; gateway's own overhead median {} us, p90 {} us, max {} us over {} requests",
            median(direct_times),
            median(proxied_times),
            overhead.median_us,
            overhead.p90_us,
            overhead.max_us,
            overhead.requests
        );
        assert_eq!(overhead.requests, 120);
        assert!(
            overhead.median_us < 5_000,
            "median overhead {} us is above the 5 ms budget",
            overhead.median_us
        );
        assert!(bench.decisions().iter().all(|r| r.decision == Ruling::Allow));
    });
}

#[test]
fn other_requests_pass_through_with_large_bodies_intact() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let s3 = aws::s3_client(&root(&url, A).await);
        let bucket = unique("bodies");
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("CreateBucket");
        // About the largest synchronous Lambda payload, in a pattern that shows any reordering.
        let body: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        s3.put_object()
            .bucket(&bucket)
            .key("payload")
            .body(body.clone().into())
            .send()
            .await
            .expect("PutObject");

        let head = s3
            .head_object()
            .bucket(&bucket)
            .key("payload")
            .send()
            .await
            .expect("HeadObject");
        assert_eq!(head.content_length(), Some(body.len() as i64));
        let got = s3
            .get_object()
            .bucket(&bucket)
            .key("payload")
            .send()
            .await
            .expect("GetObject");
        let bytes = got.body.collect().await.expect("object body").into_bytes();
        assert!(
            bytes.as_ref() == body.as_slice(),
            "the object came back changed"
        );

        let missing = s3
            .get_object()
            .bucket(&bucket)
            .key("missing")
            .send()
            .await
            .expect_err("no such key");
        assert_eq!(
            missing.raw_response().map(|r| r.status().as_u16()),
            Some(404)
        );

        // Each S3 operation is named and evaluated; a root in its own
        // bucket with no bucket policy is allowed every one.
        let s3_records: Vec<(String, Ruling)> = world
            .enforce
            .decisions()
            .into_iter()
            .filter(|r| {
                r.action.starts_with("s3:")
                    && r.resource
                        .as_deref()
                        .is_some_and(|res| res.contains(&bucket))
            })
            .map(|r| (r.action, r.decision))
            .collect();
        let expected: Vec<(String, Ruling)> = [
            "s3:CreateBucket",
            "s3:PutObject",
            "s3:GetObject",
            "s3:GetObject",
            "s3:GetObject",
        ]
        .iter()
        .map(|a| ((*a).to_owned(), Ruling::Allow))
        .collect();
        assert_eq!(s3_records, expected);
    });
}

/// A raw request signed (in scope only: nobody checks the signature) by `account`'s root for `service`.
/// SigV4 headers for a request, made by the AWS SDK's own signer.
fn sigv4_headers(
    method: &str,
    url: &str,
    key: &Credentials,
    service: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    at: std::time::SystemTime,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        sign,
    };
    let identity = key.clone().into();
    let mut settings = SigningSettings::default();
    if service == "s3" {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(at)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let host = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("a host");
    let mut all: Vec<(&str, &str)> = vec![("host", host)];
    all.extend_from_slice(headers);
    let signable =
        SignableRequest::new(method, url, all.iter().copied(), SignableBody::Bytes(body))
            .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    instructions
        .headers()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Sends a POST signed with `account`'s root key, as a hand-made client would.
async fn raw(
    url: &str,
    path: &str,
    account: &str,
    service: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, hyper::HeaderMap, String) {
    let key = Credentials::new(
        account,
        ROOT_KEYS.secret(account).expect("a root key"),
        None,
        None,
        "root",
    );
    send_signed(
        url,
        path,
        &key,
        service,
        headers,
        body,
        std::time::SystemTime::now(),
    )
    .await
}

async fn send_signed(
    url: &str,
    path: &str,
    key: &Credentials,
    service: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    at: std::time::SystemTime,
) -> (u16, hyper::HeaderMap, String) {
    let full = format!("{url}{path}");
    let mut request = reqwest::Client::new().post(&full);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    for (name, value) in sigv4_headers("POST", &full, key, service, headers, &body, at) {
        request = request.header(name, value);
    }
    let response = request.body(body).send().await.expect("gateway answers");
    let status = response.status().as_u16();
    let mut out = hyper::HeaderMap::new();
    for (name, value) in response.headers() {
        out.insert(name.clone(), value.clone());
    }
    (status, out, response.text().await.expect("body"))
}

/// A wrong secret, a key nobody issued, a stale date and an incomplete
/// signature are refused with AWS's codes before anything is evaluated,
/// while the same request signed right goes through.
#[test]
fn signatures_are_verified_against_the_keys_the_gateway_knows() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let form = [("content-type", "application/x-www-form-urlencoded")];
        let body = b"Action=GetCallerIdentity&Version=2011-06-15".to_vec();
        let now = std::time::SystemTime::now();
        let secret = ROOT_KEYS.secret(B).expect("B's key");
        let code = |text: &str| {
            let texts = xml::element_texts(text).expect("well-formed xml");
            xml::find(&texts, "ErrorResponse/Error/Code").map(str::to_owned)
        };

        let key = |id: &str, secret: &str| Credentials::new(id, secret, None, None, "test");
        let (status, _, text) = send_signed(&url, "/", &key(B, secret), "sts", &form, body.clone(), now).await;
        assert_eq!(status, 200, "{text}");
        assert!(text.contains(&format!("arn:aws:iam::{B}:root")), "{text}");

        // (what, (key id, secret), signing time, status, code)
        type Case<'a> = (&'a str, (&'a str, &'a str), std::time::SystemTime, u16, &'a str);
        let cases: [Case<'_>; 4] = [
            ("wrong secret", (B, "not-the-secret"), now, 403, "SignatureDoesNotMatch"),
            ("forged key", ("AKIAFORGEDFORGED0000", secret), now, 403, "InvalidClientTokenId"),
            ("unknown account", ("444444444444", secret), now, 403, "InvalidClientTokenId"),
            ("stale date", (B, secret), now - Duration::from_secs(16 * 60), 403, "SignatureDoesNotMatch"),
        ];
        for (what, key_id_secret, at, status, expected) in cases {
            let (got, headers, text) = send_signed(&url, "/", &key(key_id_secret.0, key_id_secret.1), "sts", &form, body.clone(), at).await;
            assert_eq!(got, status, "{what}: {text}");
            assert_eq!(headers["content-type"], "text/xml", "{what}");
            assert_eq!(code(&text).as_deref(), Some(expected), "{what}: {text}");
        }

        // A signature that lacks its Signature part, as AWS words it.
        let response = reqwest::Client::new()
            .post(format!("{url}/"))
            .header("content-type", form[0].1)
            .header("x-amz-date", "20260101T000000Z")
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential={B}/20260101/us-east-1/sts/aws4_request, SignedHeaders=host"),
            )
            .body(body.clone())
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status().as_u16(), 400);
        let text = response.text().await.expect("body");
        assert_eq!(code(&text).as_deref(), Some("IncompleteSignature"), "{text}");

        // Lambda spells the same refusals its own way.
        let function = function(&url).await;
        let path = format!("/2015-03-31/functions/{}/invocations", function.replace(':', "%3A"));
        let (status, headers, text) =
            send_signed(&url, &path, &key(A, "not-the-secret"), "lambda", &[], b"{}".to_vec(), now).await;
        assert_eq!(status, 403, "{text}");
        assert_eq!(headers["x-amzn-errortype"], "InvalidSignatureException");

        let refused: Vec<_> = world
            .enforce
            .decisions()
            .into_iter()
            .filter(|r| r.reason == "authentication_failed")
            .collect();
        assert!(refused.len() >= 6, "{refused:?}");
        assert!(refused.iter().all(|r| r.decision == Ruling::Deny && r.principal.is_none()));
    });
}

/// Each request form that once reached the emulator unchecked, sent by a
/// principal no policy allows: every one is evaluated and denied, or refused,
/// in the service's own error shape.
#[test]
fn request_forms_that_once_passed_unchecked_are_denied() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let function = function(&url).await;
        let name = function.rsplit(':').next().expect("a name").to_owned();
        let not_authorized = format!(
            "User: arn:aws:iam::{C}:root is not authorized to perform: lambda:InvokeFunction"
        );
        let lambda_denials = [
            (
                "signed for s3",
                format!("/2015-03-31/functions/{name}/invocations"),
                "s3",
            ),
            (
                "doubled trailing slash",
                format!("/2015-03-31/functions/{name}/invocations//"),
                "lambda",
            ),
            (
                "region:account:function:name",
                format!("/2015-03-31/functions/us-east-1%3A{A}%3Afunction%3A{name}/invocations"),
                "lambda",
            ),
        ];
        for (form, path, service) in lambda_denials {
            // A plain name resolves in the caller's own account, where no such
            // function exists: the full forms name A.
            let path = path.replace(
                &format!("functions/{name}/"),
                &format!("functions/arn%3Aaws%3Alambda%3Aus-east-1%3A{A}%3Afunction%3A{name}/"),
            );
            let (status, headers, body) = raw(&url, &path, C, service, &[], b"{}".to_vec()).await;
            assert_eq!(status, 403, "{form}: {body}");
            assert_eq!(headers["x-amzn-errortype"], "AccessDeniedException", "{form}");
            let body: Value = serde_json::from_str(&body).expect("json");
            assert!(
                body["Message"].as_str().is_some_and(|m| m.starts_with(&not_authorized)),
                "{form}: {body}"
            );
        }

        let chain = chain(may_assume_target()).await;
        let role = chain.target_role.replace(':', "%3A").replace('/', "%2F");
        let form = "application/x-www-form-urlencoded";
        let assume = format!("Action=AssumeRole&RoleSessionName=x&RoleArn={role}");
        let gzip = {
            use std::io::Write as _;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(assume.as_bytes()).expect("gzip");
            encoder.finish().expect("gzip")
        };
        let multipart = format!(
            "--b\r\nContent-Disposition: form-data; name=\"Action\"\r\n\r\nAssumeRole\r\n--b\r\nContent-Disposition: form-data; name=\"RoleArn\"\r\n\r\n{}\r\n--b--\r\n",
            chain.target_role
        );
        // (form, headers, body, signing service, status, code)
        type StsDenial<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, &'a str, u16, &'a str);
        let sts_denials: [StsDenial<'_>; 4] = [
            ("gzip body", vec![("content-type", form), ("content-encoding", "gzip")], gzip, "sts", 403, "AccessDenied"),
            ("no Version, signed for iam", vec![("content-type", form)], assume.clone().into_bytes(), "iam", 403, "AccessDenied"),
            ("multipart body", vec![("content-type", "multipart/form-data; boundary=b")], multipart.into_bytes(), "sts", 403, "AccessDenied"),
            (
                "AssumeRoleWithWebIdentity",
                vec![("content-type", form)],
                format!("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleSessionName=x&WebIdentityToken=t&RoleArn={role}").into_bytes(),
                "sts",
                403,
                "AccessDenied",
            ),
        ];
        for (what, headers, body, service, status, code) in sts_denials {
            let (got, response_headers, text) = raw(&url, "/", C, service, &headers, body).await;
            assert_eq!(got, status, "{what}: {text}");
            assert_eq!(response_headers["content-type"], "text/xml", "{what}");
            let texts = xml::element_texts(&text).expect("well-formed xml");
            assert_eq!(xml::find(&texts, "ErrorResponse/Error/Code"), Some(code), "{what}: {text}");
        }

        // Two credentials: the gateway would evaluate one and the emulator act as another.
        let (status, _, text) = raw(
            &url,
            &format!("/?X-Amz-Credential={A}%2F20250101%2Fus-east-1%2Fsts%2Faws4_request"),
            C,
            "sts",
            &[("content-type", form)],
            assume.clone().into_bytes(),
        )
        .await;
        assert_eq!(status, 400, "{text}");
        let texts = xml::element_texts(&text).expect("well-formed xml");
        assert_eq!(xml::find(&texts, "ErrorResponse/Error/Code"), Some("IncompleteSignature"));
    });
}

/// `GetFunction` shows a function's environment (the callee's SMTP password):
/// a function policy that lets another account invoke does not let it read,
/// while the owner's root reads it and the same account may still invoke.
#[test]
fn cross_account_get_function_is_denied_while_the_owner_reads_it() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let function = function(&url).await;
        for (action, answer) in [
            (
                "lambda:GetFunction",
                aws_sdk_lambda::Client::new(&root(&url, B).await)
                    .get_function()
                    .function_name(&function)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| (e.code().map(str::to_owned), e.message().map(str::to_owned))),
            ),
            (
                "lambda:GetFunctionConfiguration",
                aws_sdk_lambda::Client::new(&root(&url, B).await)
                    .get_function_configuration()
                    .function_name(&function)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| (e.code().map(str::to_owned), e.message().map(str::to_owned))),
            ),
            (
                "lambda:AddPermission",
                aws_sdk_lambda::Client::new(&root(&url, C).await)
                    .add_permission()
                    .function_name(&function)
                    .statement_id("grab")
                    .action("lambda:*")
                    .principal(C)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| (e.code().map(str::to_owned), e.message().map(str::to_owned))),
            ),
        ] {
            let (code, message) = answer.expect_err(action);
            assert_eq!(code.as_deref(), Some("AccessDeniedException"), "{action}");
            let message = message.unwrap_or_default();
            assert!(
                message.contains(&format!(
                    "is not authorized to perform: {action} on resource: {function}"
                )),
                "{action}: {message}"
            );
        }
        let owner = aws_sdk_lambda::Client::new(&root(&url, A).await);
        let read = owner
            .get_function()
            .function_name(&function)
            .send()
            .await
            .expect("the owner reads");
        assert_eq!(
            read.configuration().and_then(|c| c.function_arn()),
            Some(function.as_str())
        );
        let record = record_for(&world.enforce, &format!("{B}:root"), &function);
        assert_eq!(record.decision, Ruling::Deny);
    });
}

/// Seed 002's lab conditions a trust policy on `aws:UserAgent`: the caller's
/// own agent is allowed, any other denied.
#[test]
fn a_trust_policy_on_the_user_agent_allows_only_that_agent() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let (_, user) = create_user(
            &url,
            B,
            &unique("ua-user"),
            json!([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]),
        )
        .await;
        let role = create_role(
            &url,
            A,
            &unique("ua-gated"),
            json!([{
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{B}:root")},
                "Action": "sts:AssumeRole",
                "Condition": {"StringLike": {"aws:UserAgent": "alert-caller/*"}}
            }]),
            None,
        )
        .await;
        let body = format!(
            "Action=AssumeRole&Version=2011-06-15&RoleSessionName=ua&RoleArn={}",
            role.replace(':', "%3A").replace('/', "%2F")
        );
        for (agent, status) in [("alert-caller/1.0 lambda", 200), ("curl/8.5.0", 403)] {
            let headers = [
                ("content-type", "application/x-www-form-urlencoded"),
                ("user-agent", agent),
            ];
            let (got, _, text) = send_signed(
                &url,
                "/",
                &user,
                "sts",
                &headers,
                body.clone().into_bytes(),
                std::time::SystemTime::now(),
            )
            .await;
            assert_eq!(got, status, "{agent}: {text}");
        }
        let record = record_for(&world.enforce, &format!("{B}:user/"), &role);
        assert_eq!(record.decision, Ruling::Deny);
    });
}

/// Requests to services whose resource policies the gateway does not read are
/// still decided on the caller's identity policies: a session allowed only
/// `sts:AssumeRole` cannot list IAM roles or KMS keys, while it may ask who it
/// is, and an account root may do both.
#[test]
fn other_services_are_decided_on_identity_policies() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let chain = chain(may_assume_target()).await;
        let session = as_credentials(&url, &chain.exec_session).await;

        let iam = aws_sdk_iam::Client::new(&session).list_roles().send().await;
        let err = iam.expect_err("no identity policy allows iam:ListRoles");
        assert_eq!(err.code(), Some("AccessDenied"), "{err:?}");
        assert!(
            err.message()
                .unwrap_or_default()
                .contains("is not authorized to perform: iam:ListRoles"),
            "{err:?}"
        );
        let (status, headers, body) = send_signed(
            &url,
            "/",
            &chain.exec_session,
            "kms",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "TrentService.ListKeys"),
            ],
            b"{}".to_vec(),
            std::time::SystemTime::now(),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(headers["x-amzn-errortype"], "AccessDeniedException");
        let body: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(body["__type"], "AccessDeniedException");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("kms:ListKeys"),
            "{body}"
        );

        let me = aws_sdk_sts::Client::new(&session)
            .get_caller_identity()
            .send()
            .await
            .expect("GetCallerIdentity needs no permission");
        assert!(me.arn().unwrap_or_default().contains(&chain.exec_name));

        aws_sdk_iam::Client::new(&root(&url, B).await)
            .list_roles()
            .send()
            .await
            .expect("the root lists its roles");
    });
}

/// A key policy that delegates everything to account A's IAM policies, or
/// (`delegates: false`) lets A's root only administer the key.
fn key_policy(delegates: bool) -> String {
    let actions = if delegates {
        json!("kms:*")
    } else {
        json!(["kms:Describe*", "kms:Get*", "kms:Put*", "kms:List*"])
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "RootOfA",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{A}:root")},
            "Action": actions,
            "Resource": "*"
        }]
    })
    .to_string()
}

/// A bucket in A encrypted by default with a new key under `key_policy`, and
/// a bucket policy denying every request that is not over TLS.
async fn encrypted_bucket(setup: &SdkConfig, key_policy: String) -> (String, String) {
    use aws_sdk_s3::types::{
        ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
        ServerSideEncryptionRule,
    };
    let key = aws_sdk_kms::Client::new(setup)
        .create_key()
        .policy(key_policy)
        .send()
        .await
        .expect("a key");
    let key_arn = key
        .key_metadata()
        .and_then(|m| m.arn())
        .expect("key arn")
        .to_owned();
    let bucket = unique("code-bucket");
    let s3 = aws::s3_client(setup);
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let by_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::AwsKms)
        .kms_master_key_id(&key_arn)
        .build()
        .expect("default encryption");
    s3.put_bucket_encryption()
        .bucket(&bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(by_default)
                        .bucket_key_enabled(true)
                        .build(),
                )
                .build()
                .expect("configuration"),
        )
        .send()
        .await
        .expect("encryption");
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]
    });
    s3.put_bucket_policy()
        .bucket(&bucket)
        .policy(policy.to_string())
        .send()
        .await
        .expect("bucket policy");
    (bucket, key_arn)
}

async fn upload(config: &SdkConfig, bucket: &str) -> Result<(), (Option<u16>, String, String)> {
    aws::s3_client(config)
        .put_object()
        .bucket(bucket)
        .key("code/bootstrap.zip")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"PK\x05\x06zip",
        ))
        .send()
        .await
        .map(|_| ())
        .map_err(|err| {
            (
                err.raw_response().map(|r| r.status().as_u16()),
                err.code().unwrap_or_default().to_owned(),
                err.message().unwrap_or_default().to_owned(),
            )
        })
}

#[test]
fn bucket_and_key_policies_decide_an_upload_over_http_and_https() {
    let world = world();
    RUNTIME.block_on(async {
        let ca = local_ca::LocalCa::generate().expect("a CA");
        let mut config = GatewayConfig::new(any_port(), world.upstream.clone());
        config.root_keys = ROOT_KEYS.clone();
        config.tls = Some(ca.server_config(&["127.0.0.1"]).expect("certificate"));
        let gateway = Gateway::start(config).await.expect("a TLS gateway");
        let over_tls = aws::Endpoint::trusting(gateway.url(), ca.certificate_pem());
        let https = aws::root_config(&over_tls, &ROOT_KEYS, A).await;
        let http = root(&gateway.plain_url(), A).await;
        let setup = root(&world.upstream, A).await;

        // The bucket policy's DenyInsecureTransport binds even the account root.
        let (bucket, _) = encrypted_bucket(&setup, key_policy(true)).await;
        let (status, code, message) = upload(&http, &bucket)
            .await
            .map(|()| gateway.decisions())
            .expect_err("plain HTTP");
        assert_eq!((status, code.as_str()), (Some(403), "AccessDenied"));
        assert_eq!(
            message,
            format!(
                "User: arn:aws:iam::{A}:root is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::{bucket}/code/bootstrap.zip\" with an explicit deny in a resource-based policy"
            )
        );
        upload(&https, &bucket).await.expect("the same upload over HTTPS");

        // A key policy that does not delegate to the account: S3's data key request fails.
        let (bucket, key_arn) = encrypted_bucket(&setup, key_policy(false)).await;
        let (status, code, message) = upload(&https, &bucket)
            .await
            .expect_err("the key policy allows A's root no kms:GenerateDataKey");
        assert_eq!((status, code.as_str()), (Some(403), "AccessDenied"));
        assert!(
            message.contains(&format!(
                "is not authorized to perform: kms:GenerateDataKey on resource: {key_arn}"
            )),
            "{message}"
        );
        let decisions = gateway.decisions();
        let denied: Vec<(&str, &str)> = decisions
            .iter()
            .filter(|r| r.decision == Ruling::Deny)
            .map(|r| (r.action.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(
            denied,
            [
                ("s3:PutObject", "explicit_deny"),
                ("s3:PutObject", "no_resource_based_policy_allows")
            ],
            "{decisions:#?}"
        );
    });
}

#[test]
fn a_session_of_a_role_with_a_path_is_matched_on_the_role_arn_with_its_path() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let (user_arn, user) = create_user(
            &url,
            B,
            &unique("pathuser"),
            json!([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]),
        )
        .await;
        let exec_name = unique("pathexec");
        let exec_role = aws_sdk_iam::Client::new(&root(&url, B).await)
            .create_role()
            .role_name(&exec_name)
            .path("/team/alerts/")
            .assume_role_policy_document(policy(json!([{
                "Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"
            }])))
            .send()
            .await
            .expect("CreateRole with a path")
            .role()
            .map(|r| r.arn().to_owned())
            .expect("role arn");
        assert_eq!(
            exec_role,
            format!("arn:aws:iam::{B}:role/team/alerts/{exec_name}")
        );
        aws_sdk_iam::Client::new(&root(&url, B).await)
            .put_role_policy()
            .role_name(&exec_name)
            .policy_name("inline")
            .policy_document(policy(json!([{
                "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"
            }])))
            .send()
            .await
            .expect("PutRolePolicy");
        let session = assume(&url, &user, &exec_role, "pathy", None)
            .await
            .expect("the user assumes the role");
        // Trusted by the role ARN with its path (what aws:PrincipalArn holds) or without it.
        let target = |path: &'static str| {
            let url = url.clone();
            let exec_name = exec_name.clone();
            async move {
                create_role(
                    &url,
                    A,
                    &unique("pathtarget"),
                    json!([{
                        "Effect": "Allow",
                        "Principal": {"AWS": format!("arn:aws:iam::{B}:root")},
                        "Action": "sts:AssumeRole",
                        "Condition": {"ArnEquals": {
                            "aws:PrincipalArn": format!("arn:aws:iam::{B}:role{path}{exec_name}")
                        }}
                    }]),
                    None,
                )
                .await
            }
        };
        let with_path = target("/team/alerts/").await;
        let without_path = target("/").await;
        assume(&url, &session, &with_path, "on", None)
            .await
            .expect("aws:PrincipalArn is the role ARN with its path");
        let refused = assume(&url, &session, &without_path, "on", None).await;
        assert!(
            refused.is_err(),
            "the path-less ARN is not the principal's: {refused:?}"
        );
    });
}

#[test]
fn kms_calls_on_a_key_are_decided_by_its_key_policy_roots_included() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        let kms_a = aws_sdk_kms::Client::new(&root(&url, A).await);
        let new_key = |policy: String| {
            let kms = kms_a.clone();
            async move {
                kms.create_key()
                    .policy(policy)
                    .send()
                    .await
                    .expect("A's root creates a key: an operation on no key")
                    .key_metadata()
                    .and_then(|m| m.arn())
                    .expect("key arn")
                    .to_owned()
            }
        };
        let delegating = new_key(key_policy(true)).await;
        let admin_only = new_key(key_policy(false)).await;
        let encrypt = |kms: aws_sdk_kms::Client, key: String| async move {
            kms.encrypt()
                .key_id(key)
                .plaintext(aws_sdk_kms::primitives::Blob::new("alert"))
                .send()
                .await
        };

        encrypt(kms_a.clone(), delegating.clone())
            .await
            .expect("the key policy grants A's root kms:*");
        let err = encrypt(kms_a.clone(), admin_only.clone())
            .await
            .expect_err("the key policy grants A's root administration only");
        assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
        assert!(
            err.message().unwrap_or_default().contains("kms:Encrypt"),
            "{err:?}"
        );
        // B's root, full access in B, has none on A's key, whose policy names only A.
        let kms_b = aws_sdk_kms::Client::new(&root(&url, B).await);
        let err = encrypt(kms_b, delegating.clone())
            .await
            .expect_err("A's key policy does not name B");
        assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");

        let record = record_for(&world.enforce, &format!("{A}:root"), &admin_only);
        assert_eq!(record.action, "kms:Encrypt");
        assert_eq!(record.decision, Ruling::Deny, "{record:?}");
    });
}

#[test]
fn a_roots_request_no_policy_of_the_gateway_can_decide_is_refused() {
    let world = world();
    RUNTIME.block_on(async {
        let url = world.enforce.url();
        // SQS queue policies are not read: refused, in SQS's (JSON) shape.
        let (status, _, body) = raw(
            &url,
            "/",
            A,
            "sqs",
            &[
                ("content-type", "application/x-amz-json-1.0"),
                ("x-amz-target", "AmazonSQS.ListQueues"),
            ],
            b"{}".to_vec(),
        )
        .await;
        // SQS answers in the protocol it was asked in: awsJson, 400.
        assert_eq!(status, 400, "{body}");
        assert!(
            body.contains("\"__type\":\"AccessDeniedException\""),
            "{body}"
        );
        assert!(
            body.contains("resource policies of sqs are not evaluated"),
            "{body}"
        );
        // Another account's log group, named by ARN, is not the root's to read.
        let foreign = format!(
            r#"{{"logGroupIdentifier":"arn:aws:logs:us-east-1:{B}:log-group:/aws/lambda/x"}}"#
        );
        let (status, _, body) = raw(
            &url,
            "/",
            A,
            "logs",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "Logs_20140328.FilterLogEvents"),
            ],
            foreign.into_bytes(),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body.contains(&format!("names a resource of account {B}")),
            "{body}"
        );
        // Its own log groups are its own.
        let (status, _, body) = raw(
            &url,
            "/",
            A,
            "logs",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "Logs_20140328.DescribeLogGroups"),
            ],
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    });
}
