//! Callbacks to LocalStack's executor endpoint: environment status and invocation results.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri, header};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tracing::{debug, instrument};

use crate::{config::Config, error::ShimError};

/// A keep-alive HTTP client for `LOCALSTACK_RUNTIME_ENDPOINT`.
#[derive(Clone)]
pub struct Callback {
    client: Client<HttpConnector, Full<Bytes>>,
    endpoint: String,
    runtime_id: String,
}

impl Callback {
    /// Builds the client for the endpoint and environment id in `config`.
    pub fn new(config: &Config) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            client,
            endpoint: config.runtime_endpoint.clone(),
            runtime_id: config.runtime_id.clone(),
        }
    }

    /// Tells LocalStack the environment finished its init and takes invocations.
    pub async fn status_ready(&self) -> Result<(), ShimError> {
        let path = format!("/status/{}/ready", self.runtime_id);
        self.post(&path, Bytes::new()).await
    }

    /// Tells LocalStack the environment failed to start; `payload` becomes the invoke's error.
    pub async fn status_error(&self, payload: Bytes) -> Result<(), ShimError> {
        let path = format!("/status/{}/error", self.runtime_id);
        self.post(&path, payload).await
    }

    /// Posts an invocation's logs; LocalStack needs them before the result.
    pub async fn logs(&self, request_id: &str, logs: &str) -> Result<(), ShimError> {
        let body = serde_json::json!({ "logs": logs }).to_string();
        self.post(&format!("/invocations/{request_id}/logs"), body.into())
            .await
    }

    /// Posts an invocation's successful result.
    pub async fn response(&self, request_id: &str, body: Bytes) -> Result<(), ShimError> {
        self.post(&format!("/invocations/{request_id}/response"), body)
            .await
    }

    /// Posts an invocation's error result.
    pub async fn error(&self, request_id: &str, body: Bytes) -> Result<(), ShimError> {
        self.post(&format!("/invocations/{request_id}/error"), body)
            .await
    }

    #[instrument(skip(self, body), fields(bytes = body.len()))]
    async fn post(&self, path: &str, body: Bytes) -> Result<(), ShimError> {
        let url = format!("{}{path}", self.endpoint);
        let failed = |reason: String| ShimError::Callback {
            url: url.clone(),
            reason,
        };
        let uri: Uri = url
            .parse()
            .map_err(|e| failed(format!("invalid url: {e}")))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| failed(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        // Reading the body to its end lets the connection go back to the pool.
        let _ = response.into_body().collect().await;
        debug!(%status, "callback answered");
        if status.is_success() {
            Ok(())
        } else {
            Err(failed(format!("http status {status}")))
        }
    }
}
