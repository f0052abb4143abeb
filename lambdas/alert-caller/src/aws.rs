//! The single place where AWS SDK configuration is built and clients are derived from it.

use aws_config::{BehaviorVersion, SdkConfig, retry::RetryConfig};
use aws_credential_types::{Credentials, provider::SharedCredentialsProvider};

use crate::config::RetryPolicy;

/// Loads the SDK configuration from the standard environment (region, credentials and
/// `AWS_ENDPOINT_URL*`), so one binary runs on AWS and against LocalStack alike.
pub async fn load_sdk_config(retry: &RetryPolicy) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config(retry))
        .load()
        .await
}

/// The explicit retry configuration: standard mode with the policy's attempts and backoff.
pub fn retry_config(retry: &RetryPolicy) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(retry.max_attempts)
        .with_initial_backoff(retry.initial_backoff)
}

/// Builds the STS client that assumes the cross-account role with the function's own identity.
pub fn sts_client(base: &SdkConfig) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(base)
}

/// Builds the Lambda client of direct mode, which signs with the function's own identity.
pub fn own_lambda_client(base: &SdkConfig) -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::new(base)
}

/// Builds a Lambda client that signs with `credentials` but keeps every other setting
/// (endpoints, region, retry policy) of `base`.
pub fn lambda_client(base: &SdkConfig, credentials: Credentials) -> aws_sdk_lambda::Client {
    let config = base
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build();
    aws_sdk_lambda::Client::new(&config)
}
