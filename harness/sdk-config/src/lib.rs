//! The one place that builds AWS SDK configuration for the harness: endpoint,
//! region, per-account credentials, retries and timeouts. Everything in the
//! harness that talks to AWS (deploy, invoke, the IAM gateway's policy
//! fetches) gets its configuration here.
#![warn(missing_docs)]

use std::{collections::BTreeMap, fmt, time::Duration};

use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig};
use aws_credential_types::Credentials;

/// The region every emulated account lives in.
pub const REGION: &str = "us-east-1";

/// The secret used for the emulator's own API, which checks none (LocalStack
/// selects the account from the 12-digit key id alone). Only the IAM gateway's
/// policy fetches, which go straight to the emulator, use it.
pub const EMULATOR_SECRET: &str = "the-emulator-checks-no-secret";

/// Each account root's secret access key, generated afresh for every run of
/// the harness. The access key id stays the 12-digit account id, which is how
/// the emulator tells accounts apart; the IAM gateway verifies every signature
/// against these secrets.
///
/// `Debug` names the accounts only: secrets are never logged or printed.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct RootKeys(BTreeMap<String, String>);

/// 40 characters from the OS's randomness (two v4 UUIDs, 160 random bits in all),
/// the length of an AWS secret access key.
pub fn random_secret() -> String {
    let mut secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    secret.truncate(40);
    secret
}

impl RootKeys {
    /// A fresh [`random_secret`] for each account.
    pub fn generate<'a>(accounts: impl IntoIterator<Item = &'a str>) -> Self {
        Self(
            accounts
                .into_iter()
                .map(|account| (account.to_owned(), random_secret()))
                .collect(),
        )
    }

    /// The root secret of `account`, if it is one of these accounts.
    pub fn secret(&self, account: &str) -> Option<&str> {
        self.0.get(account).map(String::as_str)
    }

    /// `(account, secret)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(a, s)| (a.as_str(), s.as_str()))
    }
}

impl fmt::Debug for RootKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootKeys")
            .field("accounts", &self.0.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Where a client sends its AWS requests: a URL and, for `https://`, the one
/// CA it trusts there (the harness's local CA), instead of the system's roots.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: String,
    ca_pem: Option<String>,
}

impl Endpoint {
    /// A plain-HTTP endpoint (e.g. the emulator's own port), or an `https://`
    /// one trusting the system's roots.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ca_pem: None,
        }
    }

    /// An endpoint whose TLS certificate is trusted when `ca_pem` (PEM) signed it.
    pub fn trusting(url: impl Into<String>, ca_pem: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ca_pem: Some(ca_pem.into()),
        }
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("trusts_local_ca", &self.ca_pem.is_some())
            .finish()
    }
}

/// SDK configuration acting as the root of `account`, with `secret`, against `endpoint`.
pub async fn account_config(endpoint: &Endpoint, account: &str, secret: &str) -> SdkConfig {
    credentials_config(
        endpoint,
        Credentials::new(account, secret, None, None, "harness"),
    )
    .await
}

/// SDK configuration signing with a session's temporary `credentials`
/// (an assumed role's), against `endpoint`.
pub async fn session_config(
    endpoint: &Endpoint,
    access_key_id: &str,
    secret_access_key: &str,
    session_token: &str,
) -> SdkConfig {
    credentials_config(
        endpoint,
        Credentials::new(
            access_key_id,
            secret_access_key,
            Some(session_token.to_owned()),
            None,
            "harness-session",
        ),
    )
    .await
}

async fn credentials_config(endpoint: &Endpoint, credentials: Credentials) -> SdkConfig {
    use aws_smithy_http_client::tls;
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(pem) = &endpoint.ca_pem {
        // Trusts only the local CA. (`build` cannot fail today; were it to, the
        // system's roots would not know the local CA either, so requests fail.)
        let context = tls::TlsContext::builder()
            .with_trust_store(tls::TrustStore::empty().with_pem_certificate(pem.as_bytes()))
            .build()
            .unwrap_or_default();
        loader = loader.http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(context)
                .build_https(),
        );
    }
    loader
        .region(Region::new(REGION))
        .endpoint_url(endpoint.url())
        // Explicit credentials: never a developer's real profile or IMDS.
        .credentials_provider(credentials)
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

/// SDK configuration acting as the root of `account` with its key from `keys`
/// (a key the gateway does not know, if `account` has none there).
pub async fn root_config(endpoint: &Endpoint, keys: &RootKeys, account: &str) -> SdkConfig {
    account_config(
        endpoint,
        account,
        keys.secret(account).unwrap_or(EMULATOR_SECRET),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_keys_are_fresh_per_generation_and_never_shown() {
        let keys = RootKeys::generate(["111111111111", "222222222222"]);
        let again = RootKeys::generate(["111111111111", "222222222222"]);
        let secret = keys.secret("111111111111").expect("a secret for A");
        assert_eq!(secret.len(), 40);
        assert_ne!(keys.secret("111111111111"), keys.secret("222222222222"));
        assert_ne!(keys, again);
        assert_eq!(keys.secret("333333333333"), None);
        let shown = format!("{keys:?}");
        assert!(
            shown.contains("111111111111") && !shown.contains(secret),
            "{shown}"
        );
        let json = serde_json::to_string(&keys).expect("json");
        assert_eq!(
            serde_json::from_str::<RootKeys>(&json).expect("parse"),
            keys
        );
    }
}
