//! A test Lambda whose behaviour the event selects; the shim's integration tests run it as `bootstrap`.
//!
//! Event fields, applied in this order (all optional):
//! - `"stdout"` / `"stderr"`: a line to print;
//! - `"sleep_ms"`: sleep before answering;
//! - `"exit"`: exit the process with this code instead of answering;
//! - `"fail"`: answer with a function error carrying this message;
//! - `"describe": true`: answer with the invocation context instead of the event;
//! - `"respond_bytes": N`: answer with a JSON string whose encoding is exactly N bytes
//!   (N - 2 `x`s between the quotes), for the response size limit.
//!
//! Otherwise the event is echoed back. At init it prints `fixture init`; with
//! `FIXTURE_INIT_FAIL=1` it reports an init error through the Runtime API and
//! exits 1, with `FIXTURE_INIT_FAIL=exit` it exits 1 at once.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    println!("fixture init");
    match std::env::var("FIXTURE_INIT_FAIL").as_deref() {
        Ok("1") => {
            report_init_error()?;
            std::process::exit(1);
        }
        Ok("exit") => std::process::exit(1),
        _ => {}
    }
    lambda_runtime::run(service_fn(handle)).await
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    if let Some(line) = payload.get("stdout").and_then(Value::as_str) {
        println!("{line}");
    }
    if let Some(line) = payload.get("stderr").and_then(Value::as_str) {
        eprintln!("{line}");
    }
    if let Some(ms) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(code) = payload.get("exit").and_then(Value::as_i64) {
        std::process::exit(i32::try_from(code).unwrap_or(1));
    }
    if let Some(message) = payload.get("fail").and_then(Value::as_str) {
        return Err(message.into());
    }
    if payload.get("describe").and_then(Value::as_bool) == Some(true) {
        return Ok(json!({
            "request_id": context.request_id,
            "invoked_function_arn": context.invoked_function_arn,
            "xray_trace_id": context.xray_trace_id,
            "env_trace_id": std::env::var("_X_AMZN_TRACE_ID").ok(),
            "deadline_ms": context.deadline,
            "client_context": context.client_context.map(|c| c.custom),
            "cwd": std::env::current_dir().ok(),
            "task_root": std::env::var("LAMBDA_TASK_ROOT").ok(),
            "aws_endpoint_url": std::env::var("AWS_ENDPOINT_URL").ok(),
            "shim_vars": std::env::vars().filter(|(k, _)| k.starts_with("SHIM_")).count(),
            "pid": std::process::id(),
        }));
    }
    if let Some(size) = payload.get("respond_bytes").and_then(Value::as_u64) {
        let inner = usize::try_from(size.saturating_sub(2)).unwrap_or(0);
        return Ok(Value::String("x".repeat(inner)));
    }
    Ok(payload)
}

/// Posts to `/runtime/init/error` with a plain HTTP/1.1 request, as a runtime would.
fn report_init_error() -> std::io::Result<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(std::io::Error::other)?;
    let body = r#"{"errorType":"Fixture.InitError","errorMessage":"init failed on purpose"}"#;
    let mut stream = TcpStream::connect(&api)?;
    write!(
        stream,
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\nLambda-Runtime-Function-Error-Type: Fixture.InitError\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(())
}
