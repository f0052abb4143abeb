//! The validated form of a scenario file: what to deploy, what to call, what to expect.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::PathBuf,
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One scenario, loaded from one YAML file and checked against the format's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Unique name across all loaded files; reports and JUnit use it.
    pub name: String,
    /// Free text for humans.
    pub description: Option<String>,
    /// Labels to select scenarios with `--tag`.
    pub tags: Vec<String>,
    /// Stack parameter overrides; scenarios with equal overrides share one deploy.
    pub deploy: DeployOverrides,
    /// What the scenario does: an invoke, or one other AWS request.
    pub action: Action,
    /// What must happen.
    pub expect: Expect,
    /// The faults injected into this scenario's call only.
    pub faults: fault_plan::FaultPlan,
    /// The file the scenario was loaded from, as found while loading.
    pub file: PathBuf,
}

/// The four CloudFormation stacks a scenario may override parameters of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stack {
    /// The callee's artifact bucket (account A).
    S3Callee,
    /// The callee lambda, its roles and the cross-account role (account A).
    CalleeCloudformation,
    /// The caller's artifact bucket (account B).
    S3Caller,
    /// The caller lambda and its role (account B).
    CallerCloudformation,
    /// The deploy role CI assumes, in both A and B (bootstrapped as root).
    DeployRole,
    /// The CI role of the tooling account C (bootstrapped as root).
    Tooling,
}

impl Stack {
    /// The four stacks of the alert chain, in deploy order (the deploy role
    /// is bootstrapped before them, and is not one of them).
    pub const ALL: [Stack; 4] = [
        Stack::S3Callee,
        Stack::CalleeCloudformation,
        Stack::S3Caller,
        Stack::CallerCloudformation,
    ];

    /// The stack's name as written in scenario files and template file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Stack::S3Callee => "s3callee",
            Stack::CalleeCloudformation => "calleecloudformation",
            Stack::S3Caller => "s3caller",
            Stack::CallerCloudformation => "callercloudformation",
            Stack::DeployRole => "deployrole",
            Stack::Tooling => "tooling",
        }
    }
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Canonical stack parameter overrides: stacks without parameters are dropped, maps are sorted.
///
/// Equality and hashing follow the canonical form, so two scenarios that spell the same
/// overrides differently (order, empty stack maps) share one deploy.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DeployOverrides {
    stacks: BTreeMap<Stack, BTreeMap<String, String>>,
}

impl DeployOverrides {
    /// Builds overrides from `(stack, parameters)` pairs; later pairs add to earlier ones.
    pub fn new<I, P>(stacks: I) -> Self
    where
        I: IntoIterator<Item = (Stack, P)>,
        P: IntoIterator<Item = (String, String)>,
    {
        let mut canonical: BTreeMap<Stack, BTreeMap<String, String>> = BTreeMap::new();
        for (stack, parameters) in stacks {
            let entry = canonical.entry(stack).or_default();
            entry.extend(parameters);
        }
        canonical.retain(|_, parameters| !parameters.is_empty());
        Self { stacks: canonical }
    }

    /// True when no stack parameter is overridden (the default deploy).
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    /// The overridden parameters of `stack`, if any.
    pub fn parameters(&self, stack: Stack) -> Option<&BTreeMap<String, String>> {
        self.stacks.get(&stack)
    }

    /// Every stack with overridden parameters, in stack order.
    pub fn iter(&self) -> impl Iterator<Item = (Stack, &BTreeMap<String, String>)> {
        self.stacks
            .iter()
            .map(|(stack, parameters)| (*stack, parameters))
    }

    /// The overrides keyed by stack name (`calleecloudformation`, ...), as deploy code takes them.
    pub fn to_stack_map(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.stacks
            .iter()
            .map(|(stack, parameters)| (stack.as_str().to_owned(), parameters.clone()))
            .collect()
    }

    /// A short stable key of the canonical overrides: 8 lowercase hex digits, usable as a
    /// stack-name suffix.
    ///
    /// # Example
    /// ```
    /// use scenario::{DeployOverrides, Stack};
    ///
    /// let overrides = DeployOverrides::new([(
    ///     Stack::CalleeCloudformation,
    ///     [("ExternalId".to_owned(), "s3cr3t".to_owned())],
    /// )]);
    /// assert_eq!(overrides.key().len(), 8);
    /// assert_ne!(overrides.key(), scenario::DeployOverrides::default().key());
    /// ```
    pub fn key(&self) -> String {
        // JSON of sorted maps is an unambiguous canonical encoding: values may hold any text.
        let canonical = serde_json::to_vec(&self.stacks).unwrap_or_default();
        let digest = Sha256::digest(&canonical);
        digest[..4]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// What a scenario does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Invokes a lambda (`invoke`).
    Invoke(Invoke),
    /// Sends one AWS request as an account root (`request`).
    Request(AwsRequest),
}

impl Scenario {
    /// The invoke, for a scenario that invokes.
    pub fn invoke(&self) -> Option<&Invoke> {
        match &self.action {
            Action::Invoke(invoke) => Some(invoke),
            Action::Request(_) => None,
        }
    }

    /// The stacks whose resources the scenario's call reaches: an invoke
    /// through the caller reaches both functions, a direct one the callee's;
    /// `get_function` a function, `put_object` a code bucket. A variant can
    /// take the other stacks from the default deployment.
    pub fn stacks_used(&self) -> BTreeSet<Stack> {
        let function = |via: Via| match via {
            Via::Caller => Stack::CallerCloudformation,
            Via::Callee => Stack::CalleeCloudformation,
        };
        match &self.action {
            Action::Invoke(invoke) => match invoke.via {
                Via::Caller => {
                    BTreeSet::from([Stack::CallerCloudformation, Stack::CalleeCloudformation])
                }
                Via::Callee => BTreeSet::from([Stack::CalleeCloudformation]),
            },
            Action::Request(request) => BTreeSet::from([match request.operation {
                Operation::GetFunction(via) => function(via),
                Operation::PutObject(Via::Caller) => Stack::S3Caller,
                Operation::PutObject(Via::Callee) => Stack::S3Callee,
            }]),
        }
    }
}

/// The accounts by the letters decision chains show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum AccountLetter {
    /// Account A, the callee's.
    A,
    /// Account B, the caller's.
    B,
    /// Account C, outside the chain: for trying what a stranger may do.
    C,
}

/// How a request reaches the IAM gateway, which `aws:SecureTransport` reflects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TLS, as AWS's SDKs always use.
    #[default]
    Https,
    /// Plain HTTP, which only an emulator accepts.
    Http,
}

/// One AWS request other than an invoke, sent as an account root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsRequest {
    /// Whose root signs it.
    pub account: AccountLetter,
    /// The operation.
    pub operation: Operation,
    /// HTTPS or plain HTTP.
    pub transport: Transport,
}

/// The operations a `request` can send, each on one of the deployment's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `lambda:GetFunction` on a lambda.
    GetFunction(Via),
    /// `s3:PutObject` of a small zip into a lambda's code bucket, with the bucket's default encryption.
    PutObject(Via),
}

/// Which lambda the scenario invokes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The invoker in account B, which assumes the cross-account role and calls the callee.
    #[default]
    Caller,
    /// The alerting lambda in account A, directly.
    Callee,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Via::Caller => "caller",
            Via::Callee => "callee",
        })
    }
}

/// The Lambda `InvocationType` of the scenario's invoke call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum InvocationType {
    /// Synchronous: the call returns the function's result.
    #[default]
    RequestResponse,
    /// Asynchronous: the call returns at once, the function runs later.
    Event,
    /// Validates parameters and permissions without running the function.
    DryRun,
}

impl InvocationType {
    /// The value of the Lambda API's `InvocationType` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationType::RequestResponse => "RequestResponse",
            InvocationType::Event => "Event",
            InvocationType::DryRun => "DryRun",
        }
    }
}

impl fmt::Display for InvocationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The request body a scenario sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A JSON value (`payload`, `payload_file`), sent compactly encoded.
    Json(serde_json::Value),
    /// Bytes sent exactly as written (`payload_raw`, `payload_file_raw`): duplicate keys,
    /// `\u` escapes and malformed JSON reach the lambda as they are.
    Raw(Vec<u8>),
}

impl Payload {
    /// The bytes of the request body.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            // A `Value`'s Display is its compact JSON and cannot fail.
            Payload::Json(value) => value.to_string().into_bytes(),
            Payload::Raw(bytes) => bytes.clone(),
        }
    }

    /// The JSON value, for a JSON payload.
    pub fn as_json(&self) -> Option<&serde_json::Value> {
        match self {
            Payload::Json(value) => Some(value),
            Payload::Raw(_) => None,
        }
    }
}

/// The invocation of a scenario, with its payload already resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Invoke {
    /// Which lambda is invoked.
    pub via: Via,
    /// The body sent (inline, or read from a payload file; a JSON one then padded).
    pub payload: Payload,
    /// The payload file the payload came from, resolved against the scenario's directory.
    pub payload_file: Option<PathBuf>,
    /// The Lambda invocation type.
    pub invocation_type: InvocationType,
}

/// The status a scenario expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedStatus {
    /// The invocation succeeded.
    Success,
    /// A handler returned an error.
    FunctionError,
    /// AWS denied access somewhere in the chain.
    Denied,
    /// The Lambda service rejected the request before any handler ran.
    InvalidRequest,
    /// Deploying the scenario's overrides failed, so no call was made: for
    /// templates AWS would refuse to deploy. `error_message_contains` matches
    /// the deploy's error.
    DeployFailed,
}

impl ExpectedStatus {
    /// The status as written in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpectedStatus::Success => "success",
            ExpectedStatus::FunctionError => "function_error",
            ExpectedStatus::Denied => "denied",
            ExpectedStatus::InvalidRequest => "invalid_request",
            ExpectedStatus::DeployFailed => "deploy_failed",
        }
    }
}

impl fmt::Display for ExpectedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a scenario expects; absent optional parts are not checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// The expected status.
    pub status: ExpectedStatus,
    /// The exact `errorType`, only for error statuses.
    pub error_type: Option<String>,
    /// A substring of the `errorMessage`, only for error statuses.
    pub error_message_contains: Option<String>,
    /// A subset of the JSON response (see [`crate::check`] for the rules).
    pub response: Option<serde_json::Value>,
    /// Exactly these emails in any order; `Some(vec![])` means none, `None` means not checked.
    pub emails: Option<Vec<ExpectedEmail>>,
    /// How long the harness waits for emails, in milliseconds.
    pub within_ms: Option<u64>,
    /// Substrings that must each appear in the call's lambda logs (any lambda's).
    pub logs_contain: Vec<String>,
    /// Substrings that must appear in none of the call's lambda logs.
    pub logs_not_contain: Vec<String>,
    /// IAM decisions that must have been recorded.
    pub iam: Vec<ExpectedIamDecision>,
}

/// How an email's subject is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectRule {
    /// The subject equals this text.
    Exact(String),
    /// The subject contains this text.
    Contains(String),
}

/// One expected email; every absent field is not checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectedEmail {
    /// The `To` addresses, compared as a set (domain case-insensitive).
    pub to: Option<Vec<String>>,
    /// The `Cc` addresses, compared as a set (domain case-insensitive).
    pub cc: Option<Vec<String>>,
    /// Addresses expected on the SMTP envelope only (blind copies), in no header.
    ///
    /// Whenever `to`, `cc` or `bcc` is stated, the envelope recipients must be exactly the
    /// received `To` and `Cc` addresses plus these, so an unlisted recipient cannot hide there.
    pub bcc: Option<Vec<String>>,
    /// The `From` address.
    pub from: Option<String>,
    /// The subject rule.
    pub subject: Option<SubjectRule>,
    /// Substrings the text part must contain.
    pub text_contains: Vec<String>,
    /// Substrings the HTML part must contain.
    pub html_contains: Vec<String>,
    /// Substrings the HTML part must not contain.
    pub html_not_contains: Vec<String>,
    /// Headers that must be present with exactly these values (names case-insensitive).
    pub headers: BTreeMap<String, String>,
}

/// An IAM decision: allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The request was allowed.
    Allow,
    /// The request was denied.
    Deny,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        })
    }
}

/// An IAM decision the harness's gateway must have recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedIamDecision {
    /// The IAM action, e.g. `sts:AssumeRole` (case-insensitive).
    pub action: String,
    /// The decision taken.
    pub decision: Decision,
    /// A substring of the principal ARN.
    pub principal: Option<String>,
    /// A substring of the resource ARN.
    pub resource: Option<String>,
}

impl fmt::Display for ExpectedIamDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.decision, self.action)?;
        if let Some(principal) = &self.principal {
            write!(f, " by principal containing {principal:?}")?;
        }
        if let Some(resource) = &self.resource {
            write!(f, " on resource containing {resource:?}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::invoke_through_the_caller_reaches_both_functions(
        "invoke: { payload: {} }",
        &[Stack::CalleeCloudformation, Stack::CallerCloudformation]
    )]
    #[case::direct_invoke_reaches_the_callee_only(
        "invoke: { via: callee, payload: {} }",
        &[Stack::CalleeCloudformation]
    )]
    #[case::get_function_reaches_that_function(
        "request: { as: B, get_function: caller }",
        &[Stack::CallerCloudformation]
    )]
    #[case::put_object_reaches_that_code_bucket(
        "request: { as: A, put_object: callee }",
        &[Stack::S3Callee]
    )]
    #[case::put_object_into_the_callers_bucket(
        "request: { as: B, put_object: caller }",
        &[Stack::S3Caller]
    )]
    fn a_scenario_uses_the_stacks_its_call_reaches(
        #[case] action: &str,
        #[case] expected: &[Stack],
    ) {
        let text = format!("name: a\n{action}\nexpect: {{ status: success }}\n");
        let scenario = crate::parse_str(Path::new("s.yaml"), &text).expect("a scenario");

        assert_eq!(
            scenario.stacks_used(),
            expected.iter().copied().collect::<BTreeSet<_>>()
        );
    }
}
