//! The one place that builds AWS SDK configuration for the harness: endpoint,
//! region, per-account credentials, retries and timeouts. Everything in the
//! harness that talks to AWS (deploy, invoke, the IAM gateway's policy
//! fetches) gets its configuration here.
#![warn(missing_docs)]

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig};
use aws_credential_types::Credentials;

/// The region every emulated account lives in.
pub const REGION: &str = "us-east-1";

/// SDK configuration acting as the root of `account` against `endpoint`.
///
/// LocalStack selects the account from a 12-digit access key id; the secret is
/// not checked, so a fixed placeholder is used (it is no secret).
pub async fn account_config(endpoint: &str, account: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        // Explicit credentials: never a developer's real profile or IMDS.
        .credentials_provider(Credentials::new(account, "harness", None, None, "harness"))
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(120))
                .build(),
        )
        .load()
        .await
}

/// An S3 client for the emulator: path-style addressing, since bucket
/// subdomains of 127.0.0.1 do not resolve.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}
