//! Scenario faults of the function's runtime: before each invocation, the
//! shim asks the harness's IAM gateway what the call's plan says
//! (`POST {FAULTS_PATH}{root}/invocation`): start cold, time out, crash, fail
//! its init, and whether to report the `bootstrap`'s process for the SMTP
//! capture. An invocation without a trace, a shim without a gateway, or a
//! gateway that does not answer, gets no fault.

use std::time::Duration;

use bytes::Bytes;
use fault_plan::{FAULTS_PATH, InvocationFaults};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, header};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tracing::{debug, info};
use xray_trace::TraceId;

/// How long the shim waits for the gateway's answer before running the invocation unfaulted.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks the gateway about each invocation's faults.
#[derive(Clone)]
pub struct FaultClient {
    client: Client<HttpConnector, Full<Bytes>>,
    endpoint: String,
}

impl FaultClient {
    /// A client of the gateway at `endpoint` (`http://host:port`).
    pub fn new(endpoint: String) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            endpoint,
        }
    }

    async fn post(&self, trace: &TraceId, tail: &str, body: String) -> Option<Bytes> {
        let uri = format!("{}{FAULTS_PATH}{}/{tail}", self.endpoint, trace.root());
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .ok()?;
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, async {
            let response = self.client.request(request).await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            response
                .into_body()
                .collect()
                .await
                .ok()
                .map(|b| b.to_bytes())
        })
        .await;
        match answer {
            Ok(answer) => answer,
            Err(_) => {
                debug!("the gateway did not answer about faults in time");
                None
            }
        }
    }

    /// What the call's plan says about this invocation of `function_arn`;
    /// `running` is the `bootstrap` already up, which serves this invocation now.
    pub async fn ask(
        &self,
        trace_header: &str,
        function_arn: &str,
        running: Option<u32>,
    ) -> (Option<TraceId>, InvocationFaults) {
        let Some(trace) = TraceId::from_header(trace_header) else {
            return (None, InvocationFaults::default());
        };
        let body = serde_json::json!({ "function": function_arn, "pid": running }).to_string();
        let answer = self
            .post(&trace, "invocation", body)
            .await
            .and_then(|bytes| serde_json::from_slice::<InvocationFaults>(&bytes).ok())
            .unwrap_or_default();
        if answer != InvocationFaults::default() {
            info!(?answer, "scenario faults for this invocation");
        }
        (Some(trace), answer)
    }

    /// Tells the gateway that process `pid` serves an invocation of `trace`.
    pub async fn report_process(&self, trace: &TraceId, pid: u32) {
        let body = serde_json::json!({ "pid": pid }).to_string();
        self.post(trace, "process", body).await;
    }
}
