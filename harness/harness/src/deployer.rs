//! Who deploys the stacks: CI, the way teams deploy across accounts.
//!
//! A CI server in the tooling account (C) runs with its instance role
//! (`cloudformation/tooling.yaml`), and assumes a deploy role in each target
//! account (`cloudformation/deployrole.yaml`) to deploy that account's stacks.
//! An administrator deploys those two templates once, as root; the harness
//! does the same at the start of every deploy (an unchanged stack is a no-op).
//!
//! Through the IAM gateway every step is decided as AWS would: the CI role's
//! session is issued only if its trust policy trusts EC2, the deploy role is
//! assumed only if it trusts C's CI role (and the external id matches), and
//! CloudFormation's resource handlers act with the deploy role's permissions
//! (the gateway's deploy check). `--deploy-as root` deploys as each account's
//! root instead, as the harness did before.

use std::fmt;

use aws_config::SdkConfig;
use scenario::Stack;
use sdk_config as aws;
use serde::{Deserialize, Serialize};

use crate::{
    deploy::{DeployConfig, StackDeploy},
    error::HarnessError,
    system::OUTSIDE_ACCOUNT,
};

/// The tooling account, where CI runs: account C.
pub const TOOLING_ACCOUNT: &str = OUTSIDE_ACCOUNT;
/// The CI role's name (`tooling.yaml`'s `CiRoleName`).
pub const CI_ROLE_NAME: &str = "harness-ci";
/// The deploy role's name in each target account (`deployrole.yaml`'s `RoleName`).
pub const DEPLOY_ROLE_NAME: &str = "servicenow-deploy";
/// The external id CI presents to every deploy role. The default deploy role
/// requires none; one that sets `ExternalId` must name this one.
pub const CI_EXTERNAL_ID: &str = "servicenow-alert-ci";
/// The session names CI's sessions carry, as CloudTrail would show them.
const CI_SESSION: &str = "harness-ci";
const DEPLOY_SESSION: &str = "harness-deploy";

/// Whose permissions the deploy runs with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DeployAs {
    /// The tooling account's CI role, through each account's deploy role.
    #[default]
    DeployRole,
    /// Each account's root user (no deploy permission is checked).
    Root,
}

impl fmt::Display for DeployAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DeployRole => "deploy-role",
            Self::Root => "root",
        })
    }
}

/// Where the gateway issues the CI role's session, as EC2 hands an instance
/// its profile's role (`iam_gateway::ISSUE_PATH`, with the executor's token).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiIssuer {
    /// The issuer's URL.
    pub url: String,
    /// The token it requires.
    pub token: String,
}

impl fmt::Debug for CiIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CiIssuer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Who deployed each account's stacks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployers {
    /// The CI role in the tooling account; `None` when deployed as root.
    pub ci_role_arn: Option<String>,
    /// Account A's deploy role (its root's ARN with `--deploy-as root`).
    pub callee: String,
    /// Account B's deploy role (its root's ARN with `--deploy-as root`).
    pub caller: String,
}

/// The SDK configurations that deploy into A and B, and who they act as.
#[derive(Debug, Clone)]
pub struct AccountConfigs {
    /// Acting in account A.
    pub callee: SdkConfig,
    /// Acting in account B.
    pub caller: SdkConfig,
    /// Who that is.
    pub deployers: Deployers,
}

/// Returns the configurations to deploy with: the roots' for `--deploy-as
/// root`; otherwise bootstraps the CI and deploy roles (as root) and returns
/// the deploy roles' sessions, assumed by the CI role.
pub async fn account_configs(
    endpoint: &sdk_config::Endpoint,
    config: &DeployConfig,
) -> Result<AccountConfigs, HarnessError> {
    let root = |account: String| async move {
        aws::root_config(endpoint, &config.root_keys, &account).await
    };
    let (root_a, root_b) = tokio::join!(
        root(config.accounts.callee.clone()),
        root(config.accounts.caller.clone())
    );
    if config.deploy_as == DeployAs::Root {
        return Ok(AccountConfigs {
            callee: root_a,
            caller: root_b,
            deployers: Deployers {
                ci_role_arn: None,
                callee: format!("arn:aws:iam::{}:root", config.accounts.callee),
                caller: format!("arn:aws:iam::{}:root", config.accounts.caller),
            },
        });
    }
    let root_c = root(TOOLING_ACCOUNT.to_owned()).await;
    let (ci_role_arn, role_a, role_b) = bootstrap(&root_a, &root_b, &root_c, config).await?;
    let ci = ci_session(endpoint, &root_c, &ci_role_arn, config.ci_issuer.as_ref()).await?;
    // A's first, then B's: a refusal always names the same account's role.
    let callee = assume_deploy_role(endpoint, &ci, &role_a).await?;
    let caller = assume_deploy_role(endpoint, &ci, &role_b).await?;
    Ok(AccountConfigs {
        callee,
        caller,
        deployers: Deployers {
            ci_role_arn: Some(ci_role_arn),
            callee: role_a,
            caller: role_b,
        },
    })
}

/// The deploy role's name: a variant that overrides its parameters gets its own.
pub fn deploy_role_name(config: &DeployConfig) -> String {
    match (
        config.overrides.parameters(Stack::DeployRole),
        &config.suffix,
    ) {
        (Some(_), Some(suffix)) => format!("{DEPLOY_ROLE_NAME}-{suffix}"),
        _ => DEPLOY_ROLE_NAME.to_owned(),
    }
}

/// Deploys the CI role into C and the deploy role into A and B, as their
/// roots; returns the CI role's and the two deploy roles' ARNs.
async fn bootstrap(
    root_a: &SdkConfig,
    root_b: &SdkConfig,
    root_c: &SdkConfig,
    config: &DeployConfig,
) -> Result<(String, String, String), HarnessError> {
    let overridden = config.overrides.parameters(Stack::DeployRole);
    let suffix = overridden.and(config.suffix.as_deref());
    let mut params = std::collections::BTreeMap::new();
    params.insert("ToolingAccountId".to_owned(), TOOLING_ACCOUNT.to_owned());
    params.insert("CiRoleName".to_owned(), CI_ROLE_NAME.to_owned());
    params.insert("RoleName".to_owned(), deploy_role_name(config));
    let overrides = overridden.cloned().unwrap_or_default();
    let tooling = StackDeploy::new(root_c, config, Stack::Tooling, None);
    let in_a = StackDeploy::new(root_a, config, Stack::DeployRole, suffix);
    let in_b = StackDeploy::new(root_b, config, Stack::DeployRole, suffix);
    let ci_params =
        std::collections::BTreeMap::from([("CiRoleName".to_owned(), CI_ROLE_NAME.to_owned())]);
    let (out_c, out_a, out_b) = tokio::try_join!(
        tooling.apply(ci_params, Default::default()),
        in_a.apply(params.clone(), overrides.clone()),
        in_b.apply(params, overrides),
    )?;
    let output = |outputs: &std::collections::BTreeMap<String, String>, stack, key| {
        crate::deploy::out(outputs, stack, key)
    };
    Ok((
        output(&out_c, Stack::Tooling, "CiRoleArn")?,
        output(&out_a, Stack::DeployRole, "DeployRoleArn")?,
        output(&out_b, Stack::DeployRole, "DeployRoleArn")?,
    ))
}

/// A session's keys.
struct Session {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Issued {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
}

/// The CI role's session: from the gateway's issuer, as EC2 gives an
/// instance its role; without a gateway (`--iam off`), from the emulator's
/// STS as C's root, which the emulator allows and AWS would not.
async fn ci_session(
    endpoint: &sdk_config::Endpoint,
    root_c: &SdkConfig,
    ci_role_arn: &str,
    issuer: Option<&CiIssuer>,
) -> Result<SdkConfig, HarnessError> {
    let session = match issuer {
        Some(issuer) => {
            let answer = reqwest::Client::new()
                .post(&issuer.url)
                .header(iam_gateway::ISSUER_TOKEN_HEADER, &issuer.token)
                .json(&serde_json::json!({
                    "RoleArn": ci_role_arn,
                    "Service": "ec2.amazonaws.com",
                    "SessionName": CI_SESSION,
                }))
                .send()
                .await
                .map_err(|e| {
                    HarnessError::Config(format!(
                        "the IAM gateway did not issue the CI role's session ({ci_role_arn}): {e}"
                    ))
                })?;
            let status = answer.status();
            let body = answer.text().await.unwrap_or_default();
            if !status.is_success() {
                return Err(HarnessError::Config(format!(
                    "the IAM gateway refused the CI role's session ({ci_role_arn}): {status} {body}"
                )));
            }
            let issued: Issued = serde_json::from_str(&body).map_err(|e| {
                HarnessError::Config(format!("the IAM gateway's CI session was unreadable: {e}"))
            })?;
            Session {
                access_key_id: issued.access_key_id,
                secret_access_key: issued.secret_access_key,
                session_token: issued.session_token,
            }
        }
        None => {
            let assumed = aws_sdk_sts::Client::new(root_c)
                .assume_role()
                .role_arn(ci_role_arn)
                .role_session_name(CI_SESSION)
                .send()
                .await
                .map_err(|e| HarnessError::aws(&format!("sts:AssumeRole {ci_role_arn}"), e))?;
            session_of(assumed.credentials(), ci_role_arn)?
        }
    };
    Ok(aws::session_config(
        endpoint,
        &session.access_key_id,
        &session.secret_access_key,
        &session.session_token,
    )
    .await)
}

fn session_of(
    credentials: Option<&aws_sdk_sts::types::Credentials>,
    role_arn: &str,
) -> Result<Session, HarnessError> {
    let credentials = credentials.ok_or_else(|| {
        HarnessError::Config(format!(
            "sts:AssumeRole {role_arn} answered without credentials"
        ))
    })?;
    Ok(Session {
        access_key_id: credentials.access_key_id().to_owned(),
        secret_access_key: credentials.secret_access_key().to_owned(),
        session_token: credentials.session_token().to_owned(),
    })
}

/// Assumes `role_arn` with the CI session, presenting [`CI_EXTERNAL_ID`];
/// returns the session's configuration.
async fn assume_deploy_role(
    endpoint: &sdk_config::Endpoint,
    ci: &SdkConfig,
    role_arn: &str,
) -> Result<SdkConfig, HarnessError> {
    let assumed = aws_sdk_sts::Client::new(ci)
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(DEPLOY_SESSION)
        .external_id(CI_EXTERNAL_ID)
        .send()
        .await
        .map_err(|e| HarnessError::aws(&format!("sts:AssumeRole {role_arn}"), e))?;
    let session = session_of(assumed.credentials(), role_arn)?;
    Ok(aws::session_config(
        endpoint,
        &session.access_key_id,
        &session.secret_access_key,
        &session.session_token,
    )
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuers_token_is_never_shown() {
        let issuer = CiIssuer {
            url: "http://127.0.0.1:4566/_harness/execution-role-credentials".into(),
            token: "s3cr3t-token".into(),
        };
        let shown = format!("{issuer:?}");
        assert!(shown.contains("execution-role-credentials"), "{shown}");
        assert!(!shown.contains("s3cr3t-token"), "{shown}");
    }

    #[test]
    fn deploy_as_reads_as_its_flag() {
        assert_eq!(DeployAs::default(), DeployAs::DeployRole);
        assert_eq!(DeployAs::DeployRole.to_string(), "deploy-role");
        assert_eq!(
            serde_json::to_string(&DeployAs::Root).expect("json"),
            "\"root\""
        );
    }
}
