//! Deploys the four stacks into the two emulated accounts: the code buckets,
//! the zips, then the callee and the caller, the caller with the callee's
//! outputs as parameters. Deploying again updates through change sets.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use aws_config::SdkConfig;
use aws_sdk_cloudformation::{
    Client as CfnClient,
    operation::describe_change_set::DescribeChangeSetOutput,
    types::{Capability, ChangeSetStatus, ChangeSetType, Parameter, StackStatus},
};
use aws_sdk_s3::{primitives::ByteStream, types::ServerSideEncryption};
use scenario::{DeployOverrides, Stack};
use sdk_config as aws;
use sdk_config::RootKeys;
use serde::{Deserialize, Serialize};

use crate::{
    deployer::{AccountConfigs, CiIssuer, DeployAs, Deployers},
    error::HarnessError,
    package::{Artifacts, LambdaZip},
    progress::Step,
};

/// The two emulated accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounts {
    /// Account A, where the callee lives.
    pub callee: String,
    /// Account B, where the caller lives.
    pub caller: String,
}

impl Accounts {
    /// Letters for the two accounts, as decision chains show them: A for the
    /// callee's, B for the caller's.
    pub fn letters(&self) -> std::collections::BTreeMap<String, String> {
        [
            (self.callee.clone(), "A".to_owned()),
            (self.caller.clone(), "B".to_owned()),
        ]
        .into()
    }
}

impl Default for Accounts {
    fn default() -> Self {
        Self {
            callee: "111111111111".into(),
            caller: "222222222222".into(),
        }
    }
}

/// How the lambdas are wired for this deployment.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// The accounts.
    pub accounts: Accounts,
    /// Where the templates are read from.
    pub templates_dir: PathBuf,
    /// SMTP host the callee sends to.
    pub smtp_host: String,
    /// SMTP port the callee sends to.
    pub smtp_port: u16,
    /// SMTP TLS mode for the callee.
    pub smtp_tls: mailer::TlsMode,
    /// SMTP AUTH credentials for the callee; the password goes to the stack's
    /// `NoEcho` parameter. `None`: no AUTH.
    pub smtp_credentials: Option<crate::smtp::SmtpCredentials>,
    /// The callee's From address.
    pub mail_from: String,
    /// Domains the callee may send to, comma-separated.
    pub allowed_domains: String,
    /// Hosts `alert.instance_url` may name, comma-separated.
    pub allowed_instance_hosts: String,
    /// Suffix for a variant deployed next to the default stacks.
    pub suffix: Option<String>,
    /// Parameter overrides per stack.
    pub overrides: DeployOverrides,
    /// The account roots' keys this run signs with.
    pub root_keys: RootKeys,
    /// Whose permissions the stacks are deployed with.
    pub deploy_as: DeployAs,
    /// Where the CI role's session is issued; `None` without a gateway.
    pub ci_issuer: Option<CiIssuer>,
    /// Suppress progress output.
    pub quiet: bool,
}

/// What a deployment produced: everything the harness needs to invoke and explain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The accounts.
    pub accounts: Accounts,
    /// Stack names.
    pub stacks: BTreeMap<Stack, String>,
    /// The callee function's ARN.
    pub callee_function_arn: String,
    /// The callee function's name.
    pub callee_function_name: String,
    /// The callee's log group.
    pub callee_log_group: String,
    /// The cross-account role in A that the caller assumes.
    pub cross_account_role_arn: String,
    /// The caller function's ARN.
    pub caller_function_arn: String,
    /// The caller function's name.
    pub caller_function_name: String,
    /// The caller's log group.
    pub caller_log_group: String,
    /// The caller's execution role.
    pub caller_role_arn: String,
    /// Each stack's outputs.
    pub outputs: BTreeMap<Stack, BTreeMap<String, String>>,
    /// Who deployed the stacks.
    #[serde(default)]
    pub deployers: Deployers,
}

fn stack_name(stack: Stack, suffix: Option<&str>) -> String {
    match suffix {
        Some(s) => format!("{stack}-{s}"),
        None => stack.to_string(),
    }
}

/// Reads a stack's template, checking it exists, so a missing file is named clearly.
fn template_body(dir: &Path, stack: Stack) -> Result<String, HarnessError> {
    let path = dir.join(format!("{stack}.yaml"));
    std::fs::read_to_string(&path).map_err(|e| HarnessError::File {
        path,
        reason: format!("cannot read the template: {e}"),
    })
}

/// Validates all four templates with the emulator's CloudFormation.
pub async fn validate(
    endpoint: &sdk_config::Endpoint,
    config: &DeployConfig,
) -> Result<(), HarnessError> {
    let sdk = aws::root_config(endpoint, &config.root_keys, &config.accounts.callee).await;
    let cfn = CfnClient::new(&sdk);
    for stack in Stack::ALL {
        let body = template_body(&config.templates_dir, stack)?;
        cfn.validate_template()
            .template_body(body)
            .send()
            .await
            .map_err(|e| {
                HarnessError::aws(&format!("cloudformation:ValidateTemplate {stack}"), e)
            })?;
    }
    Ok(())
}

/// Deploys (or updates) all four stacks and uploads the zips.
pub async fn deploy(
    endpoint: &sdk_config::Endpoint,
    artifacts: &Artifacts,
    config: &DeployConfig,
) -> Result<Deployment, HarnessError> {
    let label = match &config.suffix {
        Some(s) => format!("deploying the four stacks (variant {s})"),
        None => "deploying the four stacks".to_string(),
    };
    let own = BTreeSet::from(Stack::ALL);
    deploy_stacks(endpoint, artifacts, config, label, None, &own, None).await
}

/// The stacks a variant with these overrides deploys under its own names,
/// when its scenarios reach the stacks in `used`; it takes every other stack
/// from the default deployment. A stack is the variant's own when it is
/// overridden, or when a stack it depends on is and a scenario reaches it:
/// the callee's code is in s3callee, the caller's in s3caller, and the caller
/// invokes the callee. And a caller of its own that assumes the callee's
/// cross-account role needs a callee of its own, whose trust policy names the
/// variant's caller role (the default callee trusts only the default caller);
/// with `TargetRoleArn` overridden (`""`: a direct invoke, authorised by the
/// callee's function policy, which names the caller's account) it does not.
pub fn variant_stacks(overrides: &DeployOverrides, used: &BTreeSet<Stack>) -> BTreeSet<Stack> {
    // A deploy role of its own deploys every stack: what it may not do is the point.
    if overrides.parameters(Stack::DeployRole).is_some() {
        return BTreeSet::from(Stack::ALL);
    }
    let mut own: BTreeSet<Stack> = overrides
        .iter()
        .map(|(stack, _)| stack)
        .filter(|stack| Stack::ALL.contains(stack))
        .collect();
    let assumes_callee_role = overrides
        .parameters(Stack::CallerCloudformation)
        .is_none_or(|p| !p.contains_key("TargetRoleArn"));
    loop {
        let before = own.len();
        let needed = |own: &BTreeSet<Stack>, stack| own.contains(&stack) || used.contains(&stack);
        if needed(&own, Stack::CalleeCloudformation) && own.contains(&Stack::S3Callee) {
            own.insert(Stack::CalleeCloudformation);
        }
        if needed(&own, Stack::CallerCloudformation)
            && (own.contains(&Stack::S3Caller) || own.contains(&Stack::CalleeCloudformation))
        {
            own.insert(Stack::CallerCloudformation);
        }
        if own.contains(&Stack::CallerCloudformation) && assumes_callee_role {
            own.insert(Stack::CalleeCloudformation);
        }
        if own.len() == before {
            return own;
        }
    }
}

/// Deploys a variant next to `base`, the default deployment: the stacks in
/// `own` (see [`variant_stacks`]) under names ending with the config's
/// suffix, with its overrides; every other stack is `base`'s, untouched.
/// `deployers`: sessions of the deploy roles to deploy with, already
/// bootstrapped and assumed; `None` bootstraps and assumes them first.
pub async fn deploy_variant(
    endpoint: &sdk_config::Endpoint,
    artifacts: &Artifacts,
    config: &DeployConfig,
    base: &Deployment,
    own: &BTreeSet<Stack>,
    deployers: Option<&AccountConfigs>,
) -> Result<Deployment, HarnessError> {
    let names: Vec<&str> = own.iter().map(|s| s.as_str()).collect();
    let label = format!(
        "deploying {} (variant {})",
        names.join(", "),
        config.suffix.as_deref().unwrap_or("default")
    );
    deploy_stacks(
        endpoint,
        artifacts,
        config,
        label,
        Some(base),
        own,
        deployers,
    )
    .await
}

async fn deploy_stacks(
    endpoint: &sdk_config::Endpoint,
    artifacts: &Artifacts,
    config: &DeployConfig,
    label: String,
    base: Option<&Deployment>,
    own: &BTreeSet<Stack>,
    deployers: Option<&AccountConfigs>,
) -> Result<Deployment, HarnessError> {
    let step = Step::start(label, config.quiet);
    match deploy_inner(endpoint, artifacts, config, base, own, deployers, &step).await {
        Ok(deployment) => {
            step.done();
            Ok(deployment)
        }
        Err(err) => {
            step.failed();
            Err(err)
        }
    }
}

async fn deploy_inner(
    endpoint: &sdk_config::Endpoint,
    artifacts: &Artifacts,
    config: &DeployConfig,
    base: Option<&Deployment>,
    own: &BTreeSet<Stack>,
    deployers: Option<&AccountConfigs>,
    step: &Step,
) -> Result<Deployment, HarnessError> {
    let deployed_by = match deployers {
        Some(deployers) => deployers.clone(),
        None => {
            if config.deploy_as == DeployAs::DeployRole {
                step.detail("CI and deploy roles");
            }
            crate::deployer::account_configs(endpoint, config).await?
        }
    };
    let (sdk_a, sdk_b) = (&deployed_by.callee, &deployed_by.caller);
    let suffix = config.suffix.as_deref();
    let overrides = |stack: Stack| {
        config
            .overrides
            .parameters(stack)
            .cloned()
            .unwrap_or_default()
    };
    // A stack that is not this deployment's own is the base deployment's.
    let reused = |stack: Stack| -> Result<(String, BTreeMap<String, String>), HarnessError> {
        let from_base = base.and_then(|b| Some((b.stacks.get(&stack)?, b.outputs.get(&stack)?)));
        match from_base {
            Some((name, outputs)) => Ok((name.clone(), outputs.clone())),
            None => Err(HarnessError::StackFailed {
                stack: stack.to_string(),
                status: "not deployed".into(),
                events: "the default deployment has no such stack to reuse".into(),
            }),
        }
    };
    let is_own = |stack: Stack| own.contains(&stack);

    step.detail("code buckets");
    // A variant bucket stack needs its own bucket name and key alias.
    let bucket_params = |short: &str| {
        let mut params = BTreeMap::new();
        if let Some(s) = suffix {
            params.insert("NamePrefix".to_string(), format!("{short}-{s}"));
        }
        params
    };
    // One after the other: creating both buckets at once (two accounts) made
    // LocalStack 4.8.1 fail now and then with NoSuchBucket on the
    // PutBucketVersioning that follows CreateBucket (seen twice in ~20 runs).
    let (s3callee_name, out_s3a) = if is_own(Stack::S3Callee) {
        let s3callee = StackDeploy::new(sdk_a, config, Stack::S3Callee, suffix);
        let outputs = s3callee
            .apply(bucket_params("alert"), overrides(Stack::S3Callee))
            .await?;
        (s3callee.name, outputs)
    } else {
        reused(Stack::S3Callee)?
    };
    let (s3caller_name, out_s3b) = if is_own(Stack::S3Caller) {
        let s3caller = StackDeploy::new(sdk_b, config, Stack::S3Caller, suffix);
        let outputs = s3caller
            .apply(bucket_params("invoker"), overrides(Stack::S3Caller))
            .await?;
        (s3caller.name, outputs)
    } else {
        reused(Stack::S3Caller)?
    };

    // A zip goes to a code bucket of this deployment's own, and wherever a
    // function of its own reads it from.
    step.detail("uploading the zips");
    let upload_to = |stack: Stack, function: Stack| is_own(stack) || is_own(function);
    let (key_a, key_b) = tokio::try_join!(
        async {
            match upload_to(Stack::S3Callee, Stack::CalleeCloudformation) {
                true => upload(sdk_a, Stack::S3Callee, &out_s3a, &artifacts.callee)
                    .await
                    .map(Some),
                false => Ok(None),
            }
        },
        async {
            match upload_to(Stack::S3Caller, Stack::CallerCloudformation) {
                true => upload(sdk_b, Stack::S3Caller, &out_s3b, &artifacts.caller)
                    .await
                    .map(Some),
                false => Ok(None),
            }
        },
    )?;

    let names = |base: &str| match suffix {
        Some(s) => format!("{base}-{s}"),
        None => base.to_string(),
    };
    let caller_role_name = names("servicenow-invoker-exec");

    let (callee_name, out_callee) = if is_own(Stack::CalleeCloudformation) {
        step.detail("callee stack (account A)");
        let callee = StackDeploy::new(sdk_a, config, Stack::CalleeCloudformation, suffix);
        let mut params = BTreeMap::new();
        params.insert("FunctionName".into(), names("servicenow-alert"));
        params.insert("CrossAccountRoleName".into(), names("servicenow-invoke"));
        params.insert(
            "CodeBucket".into(),
            out(&out_s3a, Stack::S3Callee, "CodeBucketName")?,
        );
        params.insert(
            "CodeKey".into(),
            key_a.expect("a callee of its own has its zip uploaded"),
        );
        params.insert("CallerAccountId".into(), config.accounts.caller.clone());
        params.insert("CallerRoleName".into(), caller_role_name.clone());
        params.insert("SmtpHost".into(), config.smtp_host.clone());
        params.insert("SmtpPort".into(), config.smtp_port.to_string());
        params.insert("SmtpTls".into(), config.smtp_tls.to_string());
        if let Some(credentials) = &config.smtp_credentials {
            params.insert("SmtpUsername".into(), credentials.username.clone());
            params.insert("SmtpPassword".into(), credentials.password.clone());
        }
        params.insert("MailFrom".into(), config.mail_from.clone());
        params.insert(
            "AllowedRecipientDomains".into(),
            config.allowed_domains.clone(),
        );
        params.insert(
            "AllowedInstanceHosts".into(),
            config.allowed_instance_hosts.clone(),
        );
        let outputs = callee
            .apply(params, overrides(Stack::CalleeCloudformation))
            .await?;
        (callee.name, outputs)
    } else {
        reused(Stack::CalleeCloudformation)?
    };

    let (caller_name, out_caller) = if is_own(Stack::CallerCloudformation) {
        step.detail("caller stack (account B)");
        let caller = StackDeploy::new(sdk_b, config, Stack::CallerCloudformation, suffix);
        let mut params = BTreeMap::new();
        params.insert("FunctionName".into(), names("servicenow-invoker"));
        params.insert("ExecutionRoleName".into(), caller_role_name);
        params.insert(
            "CodeBucket".into(),
            out(&out_s3b, Stack::S3Caller, "CodeBucketName")?,
        );
        params.insert(
            "CodeKey".into(),
            key_b.expect("a caller of its own has its zip uploaded"),
        );
        params.insert(
            "TargetRoleArn".into(),
            out(
                &out_callee,
                Stack::CalleeCloudformation,
                "CrossAccountRoleArn",
            )?,
        );
        params.insert(
            "TargetFunctionArn".into(),
            out(&out_callee, Stack::CalleeCloudformation, "FunctionArn")?,
        );
        // The caller must present the same external id the callee's trust policy
        // requires, unless a scenario deliberately sets its own.
        if let Some(id) = config
            .overrides
            .parameters(Stack::CalleeCloudformation)
            .and_then(|o| o.get("ExternalId"))
        {
            params.insert("ExternalId".into(), id.clone());
        }
        let outputs = caller
            .apply(params, overrides(Stack::CallerCloudformation))
            .await?;
        (caller.name, outputs)
    } else {
        reused(Stack::CallerCloudformation)?
    };

    let stacks = BTreeMap::from([
        (Stack::S3Callee, s3callee_name),
        (Stack::S3Caller, s3caller_name),
        (Stack::CalleeCloudformation, callee_name),
        (Stack::CallerCloudformation, caller_name),
    ]);
    let callee_out = |key| out(&out_callee, Stack::CalleeCloudformation, key);
    let caller_out = |key| out(&out_caller, Stack::CallerCloudformation, key);
    let deployment = Deployment {
        accounts: config.accounts.clone(),
        stacks,
        callee_function_arn: callee_out("FunctionArn")?,
        callee_function_name: callee_out("FunctionName")?,
        callee_log_group: callee_out("LogGroupName")?,
        cross_account_role_arn: callee_out("CrossAccountRoleArn")?,
        caller_function_arn: caller_out("FunctionArn")?,
        caller_function_name: caller_out("FunctionName")?,
        caller_log_group: caller_out("LogGroupName")?,
        caller_role_arn: caller_out("ExecutionRoleArn")?,
        outputs: BTreeMap::new(),
        deployers: deployed_by.deployers.clone(),
    };
    Ok(Deployment {
        outputs: BTreeMap::from([
            (Stack::S3Callee, out_s3a),
            (Stack::S3Caller, out_s3b),
            (Stack::CalleeCloudformation, out_callee),
            (Stack::CallerCloudformation, out_caller),
        ]),
        ..deployment
    })
}

/// Whether a YAML template declares outputs: a top-level `Outputs` key.
fn declares_outputs(template: &str) -> bool {
    template.lines().any(|line| {
        line.strip_prefix("Outputs:")
            .is_some_and(|rest| rest.trim().is_empty() || rest.trim_start().starts_with('#'))
    })
}

pub(crate) fn out(
    outputs: &BTreeMap<String, String>,
    stack: Stack,
    key: &str,
) -> Result<String, HarnessError> {
    outputs
        .get(key)
        .cloned()
        .ok_or_else(|| HarnessError::StackFailed {
            stack: stack.to_string(),
            status: "missing output".into(),
            events: format!("the template has no output `{key}`, which the harness needs"),
        })
}

/// Uploads a zip under a content-addressed key, encrypted with the bucket's key,
/// so changed code always means a changed `CodeKey` and thus a function update.
async fn upload(
    sdk: &SdkConfig,
    bucket_stack: Stack,
    bucket_outputs: &BTreeMap<String, String>,
    zip: &LambdaZip,
) -> Result<String, HarnessError> {
    let bucket = out(bucket_outputs, bucket_stack, "CodeBucketName")?;
    let key_arn = out(bucket_outputs, bucket_stack, "KmsKeyArn")?;
    let key = format!("{}/{}/bootstrap.zip", zip.name, &zip.sha256[..16]);
    let s3 = aws::s3_client(sdk);
    // The key names the content, so an object already there is this zip:
    // variants reuse what the default deployment uploaded.
    match s3.head_object().bucket(&bucket).key(&key).send().await {
        Ok(_) => return Ok(key),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => {}
        Err(err) => {
            return Err(HarnessError::aws(
                &format!("s3:HeadObject s3://{bucket}/{key}"),
                err,
            ));
        }
    }
    let body = ByteStream::from_path(&zip.zip)
        .await
        .map_err(|e| HarnessError::File {
            path: zip.zip.clone(),
            reason: e.to_string(),
        })?;
    s3.put_object()
        .bucket(&bucket)
        .key(&key)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(key_arn)
        .body(body)
        .send()
        .await
        .map_err(|e| HarnessError::aws(&format!("s3:PutObject s3://{bucket}/{key}"), e))?;
    Ok(key)
}

/// One stack's deploy: create, or update through a change set.
pub(crate) struct StackDeploy<'a> {
    cfn: CfnClient,
    config: &'a DeployConfig,
    stack: Stack,
    name: String,
}

impl<'a> StackDeploy<'a> {
    pub(crate) fn new(
        sdk: &SdkConfig,
        config: &'a DeployConfig,
        stack: Stack,
        suffix: Option<&str>,
    ) -> Self {
        Self {
            cfn: CfnClient::new(sdk),
            config,
            stack,
            name: stack_name(stack, suffix),
        }
    }

    /// Creates the stack, or updates it through a change set; returns its outputs.
    pub(crate) async fn apply(
        &self,
        params: BTreeMap<String, String>,
        overrides: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, HarnessError> {
        let started = Instant::now();
        let outputs = self.apply_inner(params, overrides).await;
        tracing::info!(
            stack = %self.name,
            ms = started.elapsed().as_millis() as u64,
            ok = outputs.is_ok(),
            "stack applied"
        );
        outputs
    }

    async fn apply_inner(
        &self,
        mut params: BTreeMap<String, String>,
        overrides: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, HarnessError> {
        params.extend(overrides);
        let body = template_body(&self.config.templates_dir, self.stack)?;
        let declared = declares_outputs(&body);
        let parameters: Vec<Parameter> = params
            .iter()
            .map(|(k, v)| {
                Parameter::builder()
                    .parameter_key(k)
                    .parameter_value(v)
                    .build()
            })
            .collect();
        let existing = self.status().await?;
        let change_type = match existing {
            None => ChangeSetType::Create,
            Some(StackStatus::RollbackComplete) | Some(StackStatus::RollbackFailed) => {
                // A stack that failed its creation cannot be updated: start over.
                self.delete().await?;
                ChangeSetType::Create
            }
            Some(_) => ChangeSetType::Update,
        };
        let change_set = format!("harness-{}", unique());
        self.cfn
            .create_change_set()
            .stack_name(&self.name)
            .change_set_name(&change_set)
            .change_set_type(change_type.clone())
            .template_body(body)
            .set_parameters(Some(parameters))
            .capabilities(Capability::CapabilityNamedIam)
            .capabilities(Capability::CapabilityIam)
            .send()
            .await
            .map_err(|e| {
                HarnessError::aws(&format!("cloudformation:CreateChangeSet {}", self.name), e)
            })?;
        if !self.wait_change_set(&change_set).await? {
            // Nothing to change: the stack already matches.
            return self.outputs().await;
        }
        self.cfn
            .execute_change_set()
            .stack_name(&self.name)
            .change_set_name(&change_set)
            .send()
            .await
            .map_err(|e| {
                HarnessError::aws(&format!("cloudformation:ExecuteChangeSet {}", self.name), e)
            })?;
        let settled = self.wait_stack().await?;
        self.completed_outputs(declared, settled).await
    }

    /// The outputs of a stack that has just completed. LocalStack 4.8.1's
    /// change-set executor marks the stack complete before it stores the
    /// outputs (`cloudformation/v2/provider.py`, `execute_change_set`), so a
    /// poll that lands between the two sees a complete stack without them
    /// (seen under load in CI: "missing output"). `settled` holds the outputs
    /// of the read that saw the stack complete; when the template declares
    /// outputs and that read had none, they are read again until they
    /// appear, for at most 2 s.
    async fn completed_outputs(
        &self,
        declared: bool,
        settled: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, HarnessError> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut outputs = settled;
        loop {
            if !outputs.is_empty() || !declared || Instant::now() >= deadline {
                return Ok(outputs);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            outputs = self.outputs().await?;
        }
    }

    async fn status(&self) -> Result<Option<StackStatus>, HarnessError> {
        Ok(self.described().await?.map(|(status, _)| status))
    }

    /// The stack's status and outputs; `None` when there is no such stack
    /// (never created, or deleted) or only a change set's review of one.
    async fn described(
        &self,
    ) -> Result<Option<(StackStatus, BTreeMap<String, String>)>, HarnessError> {
        match self
            .cfn
            .describe_stacks()
            .stack_name(&self.name)
            .send()
            .await
        {
            Ok(resp) => Ok(resp.stacks().first().and_then(|stack| {
                stack
                    .stack_status()
                    .filter(|s| **s != StackStatus::DeleteComplete)
                    .filter(|s| **s != StackStatus::ReviewInProgress)
                    .map(|status| (status.clone(), outputs_of(stack)))
            })),
            Err(err) => {
                let text = aws_smithy_types::error::display::DisplayErrorContext(&err).to_string();
                if text.contains("does not exist") {
                    Ok(None)
                } else {
                    Err(HarnessError::aws(
                        &format!("cloudformation:DescribeStacks {}", self.name),
                        err,
                    ))
                }
            }
        }
    }

    async fn delete(&self) -> Result<(), HarnessError> {
        self.cfn
            .delete_stack()
            .stack_name(&self.name)
            .send()
            .await
            .map_err(|e| {
                HarnessError::aws(&format!("cloudformation:DeleteStack {}", self.name), e)
            })?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if self.status().await?.is_none() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(HarnessError::StackFailed {
            stack: self.name.clone(),
            status: "DELETE_IN_PROGRESS".into(),
            events: "the failed stack did not delete within 120 s".into(),
        })
    }

    /// Returns whether the change set has changes to execute.
    async fn wait_change_set(&self, change_set: &str) -> Result<bool, HarnessError> {
        let created = created_change_set(&self.cfn, &self.name, change_set, false).await?;
        Ok(created.is_some_and(|described| !described.changes().is_empty()))
    }

    /// Waits until the stack settles; returns the outputs of the read that
    /// saw it complete.
    async fn wait_stack(&self) -> Result<BTreeMap<String, String>, HarnessError> {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            let described = self.described().await?;
            let text = described
                .as_ref()
                .map(|(s, _)| s.as_str())
                .unwrap_or("DELETED");
            if text.ends_with("_IN_PROGRESS") {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            if text.ends_with("_COMPLETE") && !text.contains("ROLLBACK") {
                return Ok(described.map(|(_, outputs)| outputs).unwrap_or_default());
            }
            return Err(HarnessError::StackFailed {
                stack: self.name.clone(),
                status: text.to_string(),
                events: self.failure_events().await,
            });
        }
        Err(HarnessError::StackFailed {
            stack: self.name.clone(),
            status: "timeout".into(),
            events: "the stack did not settle within 300 s".into(),
        })
    }

    /// The failing resources and their reasons, oldest first.
    async fn failure_events(&self) -> String {
        let Ok(resp) = self
            .cfn
            .describe_stack_events()
            .stack_name(&self.name)
            .send()
            .await
        else {
            return "(the stack events could not be read)".into();
        };
        let failed: Vec<(&str, &str, Option<&str>)> = resp
            .stack_events()
            .iter()
            .filter(|e| {
                e.resource_status()
                    .is_some_and(|s| s.as_str().ends_with("_FAILED"))
            })
            .map(|e| {
                (
                    e.logical_resource_id().unwrap_or("?"),
                    e.resource_type().unwrap_or("?"),
                    e.resource_status_reason().filter(|r| !r.is_empty()),
                )
            })
            .collect();
        failure_lines(&failed)
    }

    async fn outputs(&self) -> Result<BTreeMap<String, String>, HarnessError> {
        let resp = self
            .cfn
            .describe_stacks()
            .stack_name(&self.name)
            .send()
            .await
            .map_err(|e| {
                HarnessError::aws(&format!("cloudformation:DescribeStacks {}", self.name), e)
            })?;
        Ok(resp.stacks().first().map(outputs_of).unwrap_or_default())
    }
}

/// A described stack's outputs, by key.
fn outputs_of(stack: &aws_sdk_cloudformation::types::Stack) -> BTreeMap<String, String> {
    stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect()
}

/// The failed events, oldest first. Events that give no reason are the
/// knock-on failures of the one that does (the stack, its dependants), so they
/// are listed only when no event gives a reason.
fn failure_lines(newest_first: &[(&str, &str, Option<&str>)]) -> String {
    let with_reason: Vec<_> = newest_first
        .iter()
        .filter(|(_, _, r)| r.is_some())
        .collect();
    let shown: Vec<_> = if with_reason.is_empty() {
        newest_first.iter().collect()
    } else {
        with_reason
    };
    if shown.is_empty() {
        return "  (no resource reported a failure)".into();
    }
    shown
        .iter()
        .rev()
        .map(|(id, kind, reason)| {
            format!("  {id} ({kind}): {}", reason.unwrap_or("no reason given"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A name no other change set of this process has.
pub(crate) fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}{:x}", nanos, std::process::id())
}

/// Waits until CloudFormation has created `change_set` of `stack` and returns
/// it (with the properties' values before and after when `with_values`), or
/// `None` when it holds no changes: CloudFormation then fails it, saying so.
pub(crate) async fn created_change_set(
    cfn: &CfnClient,
    stack: &str,
    change_set: &str,
    with_values: bool,
) -> Result<Option<DescribeChangeSetOutput>, HarnessError> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let described = cfn
            .describe_change_set()
            .stack_name(stack)
            .change_set_name(change_set)
            .include_property_values(with_values)
            .send()
            .await
            .map_err(|e| {
                HarnessError::aws(&format!("cloudformation:DescribeChangeSet {stack}"), e)
            })?;
        match described.status() {
            Some(ChangeSetStatus::CreateComplete) => return Ok(Some(described)),
            Some(ChangeSetStatus::Failed) => {
                let reason = described.status_reason().unwrap_or_default();
                if reason.contains("didn't contain changes") || reason.contains("No updates") {
                    return Ok(None);
                }
                return Err(HarnessError::StackFailed {
                    stack: stack.to_owned(),
                    status: "change set FAILED".into(),
                    events: reason.to_string(),
                });
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Err(HarnessError::StackFailed {
        stack: stack.to_owned(),
        status: "change set timeout".into(),
        events: "the change set was not ready within 120 s".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(stacks: &[(Stack, &str, &str)]) -> DeployOverrides {
        DeployOverrides::new(
            stacks
                .iter()
                .map(|(stack, k, v)| (*stack, [(k.to_string(), v.to_string())])),
        )
    }

    const CALLER: Stack = Stack::CallerCloudformation;
    const CALLEE: Stack = Stack::CalleeCloudformation;
    const VIA_CALLER: &[Stack] = &[CALLER, CALLEE];

    #[test]
    fn every_stack_template_declares_its_outputs_and_a_nested_key_does_not_count() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cloudformation");
        for stack in [
            Stack::S3Callee,
            Stack::CalleeCloudformation,
            Stack::S3Caller,
            Stack::CallerCloudformation,
            Stack::DeployRole,
        ] {
            let body = template_body(&dir, stack).expect("template");
            assert!(declares_outputs(&body), "{stack}");
        }
        assert!(!declares_outputs("Resources:\n  Outputs:\n    Type: X\n"));
        assert!(!declares_outputs("Resources: {}\n# Outputs: none\n"));
        assert!(declares_outputs(
            "Outputs: # what the harness reads\n  A:\n"
        ));
    }

    #[rstest::rstest]
    #[case::a_callee_override_for_calls_through_the_caller_gets_a_caller_pointing_at_it(
        &[(CALLEE, "Timeout", "3")], VIA_CALLER, &[CALLEE, CALLER]
    )]
    #[case::a_callee_override_for_direct_calls_only_keeps_the_default_caller(
        &[(CALLEE, "Timeout", "3")], &[CALLEE], &[CALLEE]
    )]
    #[case::a_caller_that_assumes_the_callee_role_needs_a_callee_trusting_its_role(
        &[(CALLER, "ExplicitDenyAction", "sts:AssumeRole")], VIA_CALLER, &[CALLEE, CALLER]
    )]
    #[case::a_direct_invoking_caller_reuses_the_default_callee(
        &[(CALLER, "TargetRoleArn", "")], VIA_CALLER, &[CALLER]
    )]
    #[case::both_overridden_deploy_both(
        &[(CALLEE, "ExternalId", "x1"), (CALLER, "ExternalId", "x1")], VIA_CALLER, &[CALLEE, CALLER]
    )]
    #[case::a_bucket_override_for_requests_on_the_bucket_deploys_the_bucket_only(
        &[(Stack::S3Callee, "KeyUse", "administration-only")], &[Stack::S3Callee], &[Stack::S3Callee]
    )]
    #[case::a_callee_bucket_override_for_calls_through_the_caller_deploys_the_chain(
        &[(Stack::S3Callee, "KeyUse", "administration-only")], VIA_CALLER,
        &[Stack::S3Callee, CALLEE, CALLER]
    )]
    #[case::a_caller_bucket_override_for_calls_through_the_caller_needs_a_callee_trusting_it(
        &[(Stack::S3Caller, "KeyUse", "administration-only")], VIA_CALLER,
        &[CALLEE, Stack::S3Caller, CALLER]
    )]
    #[case::a_deploy_role_of_its_own_deploys_all_four_stacks(
        &[(Stack::DeployRole, "PassRoleResource", "arn:aws:iam::*:role/x")], &[CALLEE],
        &[Stack::S3Callee, CALLEE, Stack::S3Caller, CALLER]
    )]
    #[case::an_overridden_stack_is_deployed_even_when_no_scenario_reaches_it(
        &[(CALLER, "TargetRoleArn", "")], &[Stack::S3Callee], &[CALLER]
    )]
    fn a_variant_deploys_what_its_overrides_change_and_what_its_calls_reach_through_them(
        #[case] stacks: &[(Stack, &str, &str)],
        #[case] used: &[Stack],
        #[case] expected: &[Stack],
    ) {
        let used = used.iter().copied().collect();

        let own = variant_stacks(&overrides(stacks), &used);

        assert_eq!(own, expected.iter().copied().collect::<BTreeSet<_>>());
    }

    #[test]
    fn variants_are_named_next_to_the_defaults() {
        assert_eq!(
            stack_name(Stack::CalleeCloudformation, None),
            "calleecloudformation"
        );
        assert_eq!(
            stack_name(Stack::CalleeCloudformation, Some("ab12cd34")),
            "calleecloudformation-ab12cd34"
        );
    }

    #[test]
    fn failures_show_the_resources_that_give_a_reason_oldest_first() {
        let events = [
            ("calleecloudformation", "AWS::CloudFormation::Stack", None),
            ("AllowInvoke", "AWS::Lambda::Permission", None),
            (
                "Function",
                "AWS::Lambda::Function",
                Some("runtime is invalid"),
            ),
            ("Role", "AWS::IAM::Role", Some("name taken")),
        ];

        let text = failure_lines(&events);

        assert_eq!(
            text,
            "  Role (AWS::IAM::Role): name taken\n  Function (AWS::Lambda::Function): runtime is invalid"
        );
        let no_reasons = failure_lines(&events[..2]);
        assert!(no_reasons.contains("AllowInvoke (AWS::Lambda::Permission): no reason given"));
    }

    #[test]
    fn a_missing_template_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = template_body(dir.path(), Stack::S3Callee).unwrap_err();
        assert!(err.to_string().contains("s3callee.yaml"), "{err}");
    }

    #[test]
    fn a_missing_output_names_stack_and_key() {
        let err = out(&BTreeMap::new(), Stack::CalleeCloudformation, "FunctionArn").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("calleecloudformation") && msg.contains("FunctionArn"),
            "{msg}"
        );
    }
}
