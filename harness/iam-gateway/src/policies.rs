//! Fetching what the evaluator needs from the upstream's own IAM, STS and
//! Lambda APIs, with caches.
//!
//! Each account's resources are read as that account's root (access key =
//! the 12-digit account id; LocalStack checks no secret). Identities are
//! cached by access key id for good: a key never changes owner. Roles,
//! identity policies and function policies are cached for a short TTL and
//! dropped whenever a request that may change them passes the gateway
//! ([`PolicySource::invalidate`]), or only what a reported change may have
//! made stale ([`PolicySource::forget`]); each cache's generation counter
//! keeps a fetch that raced with a removal from re-inserting stale data.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use aws_config::{Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_iam::types::AttachedPolicy;
use iam_policy::{NamedPolicy, PolicyKind, Principal, PrincipalKind};

use super::{
    classify::percent_decode,
    stale::{Cached, Reread, Stale},
};
use crate::error::GatewayError;

/// Caches of identities by access key id are cleared beyond this size, bounding memory.
const MAX_IDENTITIES: usize = 10_000;

/// The caller of a request, as resolved from its access key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller as the evaluator sees it.
    pub principal: Principal,
    /// AWS's `aws:userid` (`AROA...:session` for sessions, the account id for a root).
    pub user_id: Option<String>,
}

/// A role as far as `AssumeRole` needs it.
#[derive(Debug, Clone)]
pub struct RoleInfo {
    /// The role's trust policy, named after the role.
    pub trust: NamedPolicy,
    /// `MaxSessionDuration` in seconds.
    pub max_session_duration: Option<i32>,
}

struct Entry<T> {
    value: T,
    fetched: Instant,
}

struct TtlCache<T> {
    entries: Mutex<HashMap<String, Entry<T>>>,
    /// Bumped by every removal: a fetch that read an older one raced with it.
    generation: AtomicU64,
}

impl<T: Clone> TtlCache<T> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// Read before a fetch; [`Self::put`] compares it.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn get(&self, key: &str, ttl: Duration) -> Option<T> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|e| e.fetched.elapsed() < ttl)
            .map(|e| e.value.clone())
    }

    /// Inserts unless something was removed since `generation` was read.
    fn put(&self, key: &str, value: T, generation: u64) {
        if let Ok(mut entries) = self.entries.lock()
            && self.generation() == generation
        {
            entries.insert(
                key.to_owned(),
                Entry {
                    value,
                    fetched: Instant::now(),
                },
            );
        }
    }

    /// Removes the entries whose key is `stale`.
    fn forget_where(&self, stale: impl Fn(&str) -> bool) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|key, _| !stale(key));
        }
    }

    fn clear(&self) {
        self.forget_where(|_| true);
    }

    #[cfg(test)]
    fn holds(&self, key: &str) -> bool {
        self.entries
            .lock()
            .is_ok_and(|entries| entries.contains_key(key))
    }
}

/// Reads identities and policies from the upstream, with caches.
pub struct PolicySource {
    upstream: sdk_config::Endpoint,
    root_keys: sdk_config::RootKeys,
    ttl: Duration,
    configs: Mutex<HashMap<String, SdkConfig>>,
    identities: Mutex<HashMap<String, Caller>>,
    roles: TtlCache<Arc<RoleInfo>>,
    identity_policies: TtlCache<Arc<Vec<NamedPolicy>>>,
    function_policies: TtlCache<Option<Arc<NamedPolicy>>>,
    buckets: TtlCache<Option<Arc<BucketInfo>>>,
    key_policies: TtlCache<Option<Arc<KeyInfo>>>,
    role_arns: TtlCache<Option<String>>,
    proposed: Option<Arc<ProposedPolicies>>,
}

/// The role policies a change would leave (`harness deploy --plan`), laid
/// over what the upstream has, so that the chain can be decided as it would
/// be after the change without making it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProposedPolicies {
    /// Role ARN → its trust policy after the change (JSON).
    pub trust: BTreeMap<String, String>,
    /// Role ARN → inline policy name → its document after the change (JSON),
    /// or `None` when the change removes it.
    pub inline: BTreeMap<String, BTreeMap<String, Option<String>>>,
}

/// A bucket as far as authorizing a request on it needs.
#[derive(Debug, Clone)]
pub struct BucketInfo {
    /// The account that owns it.
    pub owner: String,
    /// Its bucket policy, if it has one.
    pub policy: Option<NamedPolicy>,
    /// The KMS key of its default encryption (`aws:kms`), as configured.
    pub default_kms_key: Option<String>,
    /// Whether S3 Bucket Keys are on, which makes the bucket, not the object,
    /// the KMS encryption context.
    pub bucket_key_enabled: bool,
}

/// A KMS key as far as authorizing its use needs.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// The key's ARN.
    pub arn: String,
    /// Its key policy.
    pub policy: NamedPolicy,
}

impl std::fmt::Debug for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySource")
            .field("upstream", &self.upstream)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Policy documents from IAM are URL-encoded JSON; decode unless it already is JSON.
pub fn decode_policy_document(text: &str) -> Option<String> {
    if text.trim_start().starts_with('{') {
        Some(text.to_owned())
    } else {
        percent_decode(text)
    }
}

pub(super) fn parse_policy(
    kind: PolicyKind,
    name: &str,
    document: &str,
    what: &str,
) -> Result<NamedPolicy, GatewayError> {
    let json = decode_policy_document(document).ok_or_else(|| GatewayError::PolicyEncoding {
        what: what.to_string(),
    })?;
    NamedPolicy::parse(kind, name, &json).map_err(|source| GatewayError::Policy {
        what: what.to_string(),
        source,
    })
}

/// The last `/`-separated segment: a role's or user's name without its path.
fn last_segment(resource: &str) -> &str {
    resource.rsplit('/').next().unwrap_or(resource)
}

/// Whether `arn` is the ARN of a role or user (`kind` is `role/` or `user/`)
/// in `account` named `name` (any name when `None`).
fn holder_named(arn: &str, kind: &str, account: &str, name: Option<&str>) -> bool {
    iam_arn_parts(arn).is_some_and(|(owner, resource)| {
        owner == account
            && resource.starts_with(kind)
            && name.is_none_or(|n| n == last_segment(resource))
    })
}

/// `(account, resource)` of an IAM ARN like `arn:aws:iam::<account>:role/<path/name>`.
fn iam_arn_parts(arn: &str) -> Option<(&str, &str)> {
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    match fields.as_slice() {
        ["arn", _, "iam", "", account, resource] => Some((account, resource)),
        _ => None,
    }
}

impl PolicySource {
    /// A source reading from `upstream`, caching policies for `ttl`.
    pub fn new(upstream: sdk_config::Endpoint, ttl: Duration) -> Self {
        Self {
            upstream,
            root_keys: sdk_config::RootKeys::default(),
            ttl,
            configs: Mutex::new(HashMap::new()),
            identities: Mutex::new(HashMap::new()),
            roles: TtlCache::new(),
            identity_policies: TtlCache::new(),
            function_policies: TtlCache::new(),
            buckets: TtlCache::new(),
            key_policies: TtlCache::new(),
            role_arns: TtlCache::new(),
            proposed: None,
        }
    }

    /// Answers with `proposed` laid over the upstream's role policies.
    pub fn with_proposed(mut self, proposed: ProposedPolicies) -> Self {
        self.proposed = Some(Arc::new(proposed));
        self
    }

    /// Signs with these root keys: for reading through an IAM gateway rather
    /// than from the emulator itself.
    pub fn with_root_keys(mut self, keys: sdk_config::RootKeys) -> Self {
        self.root_keys = keys;
        self
    }

    /// Drops what a change may have made stale: everything, or the parts it names.
    pub fn forget(&self, stale: &Stale) {
        let parts = match stale {
            Stale::Everything => return self.invalidate(),
            Stale::Only(parts) => parts,
        };
        for part in parts {
            match part {
                Cached::Role { account, name } => {
                    let named = |key: &str| holder_named(key, "role/", account, name.as_deref());
                    self.roles.forget_where(named);
                    self.identity_policies.forget_where(named);
                    self.role_arns.forget_where(|key| {
                        key.split_once('/').is_some_and(|(owner, role)| {
                            owner == account && name.as_deref().is_none_or(|n| n == role)
                        })
                    });
                }
                Cached::User { account, name } => self
                    .identity_policies
                    .forget_where(|key| holder_named(key, "user/", account, name.as_deref())),
                Cached::Function { account, name } => {
                    self.function_policies.forget_where(|key| {
                        let fields: Vec<&str> = key.split(':').collect();
                        matches!(
                            fields.as_slice(),
                            ["arn", _, "lambda", _, owner, "function", function, ..]
                                if owner == account && name.as_deref().is_none_or(|n| n == *function)
                        )
                    });
                }
                Cached::Buckets => self.buckets.clear(),
                Cached::Keys => self.key_policies.clear(),
            }
        }
    }

    /// Caches an empty trust policy and no identity policies for each role.
    #[cfg(test)]
    pub(crate) fn cache_roles_for_test(&self, role_arns: &[&str]) {
        for arn in role_arns {
            let trust = parse_policy(
                PolicyKind::Trust,
                "t",
                r#"{"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"}]}"#,
                "t",
            )
                .expect("a policy");
            let info = Arc::new(RoleInfo {
                trust,
                max_session_duration: None,
            });
            self.roles.put(arn, info, self.roles.generation());
            self.identity_policies.put(
                arn,
                Arc::new(Vec::new()),
                self.identity_policies.generation(),
            );
        }
    }

    /// Whether each role is still cached.
    #[cfg(test)]
    pub(crate) fn cached_roles_for_test<const N: usize>(&self, role_arns: &[&str; N]) -> [bool; N] {
        role_arns.map(|arn| self.roles.holds(arn))
    }

    /// Drops every cached role and policy (identities stay: keys do not change owner).
    pub fn invalidate(&self) {
        self.roles.clear();
        self.identity_policies.clear();
        self.function_policies.clear();
        self.buckets.clear();
        self.key_policies.clear();
        self.role_arns.clear();
    }

    /// Remembers who a key belongs to, e.g. from an `AssumeRole` response, saving a lookup later.
    pub fn remember_identity(&self, access_key_id: &str, caller: Caller) {
        if let Ok(mut identities) = self.identities.lock() {
            if identities.len() >= MAX_IDENTITIES {
                identities.clear();
            }
            identities.insert(access_key_id.to_owned(), caller);
        }
    }

    /// The cached identity of a key, without asking the upstream.
    pub fn known_identity(&self, access_key_id: &str) -> Option<Caller> {
        if super::sigv4::is_account_id(access_key_id) {
            return root_caller(access_key_id);
        }
        self.identities.lock().ok()?.get(access_key_id).cloned()
    }

    async fn config(&self, account: &str) -> SdkConfig {
        if let Some(config) = self
            .configs
            .lock()
            .ok()
            .and_then(|c| c.get(account).cloned())
        {
            return config;
        }
        let config = sdk_config::root_config(&self.upstream, &self.root_keys, account).await;
        if let Ok(mut configs) = self.configs.lock() {
            configs.insert(account.to_owned(), config.clone());
        }
        config
    }

    async fn iam(&self, account: &str) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config(account).await)
    }

    /// STS client acting as `account`'s root.
    pub async fn sts(&self, account: &str) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config(account).await)
    }

    /// Lambda client acting as `account`'s root in `region`.
    async fn s3(&self, account: &str) -> aws_sdk_s3::Client {
        sdk_config::s3_client(&self.config(account).await)
    }

    async fn kms(&self, account: &str, region: &str) -> aws_sdk_kms::Client {
        let config = self.config(account).await;
        aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::config::Builder::from(&config)
                .region(aws_config::Region::new(region.to_owned()))
                .build(),
        )
    }

    /// The bucket's owner, policy and default encryption; `None` when no
    /// account the gateway knows owns a bucket of that name.
    pub async fn bucket(&self, bucket: &str) -> Result<Option<Arc<BucketInfo>>, GatewayError> {
        if let Some(info) = self.buckets.get(bucket, self.ttl) {
            return Ok(info);
        }
        let generation = self.buckets.generation();
        let mut owner = None;
        let accounts: Vec<String> = self.root_keys.iter().map(|(a, _)| a.to_owned()).collect();
        for account in accounts {
            let listed = self
                .s3(&account)
                .await
                .list_buckets()
                .send()
                .await
                .map_err(|err| GatewayError::aws("s3:ListAllMyBuckets", err))?;
            if listed.buckets().iter().any(|b| b.name() == Some(bucket)) {
                owner = Some(account);
                break;
            }
        }
        let Some(owner) = owner else {
            self.buckets.put(bucket, None, generation);
            return Ok(None);
        };
        let s3 = self.s3(&owner).await;
        let (policy, encryption) = tokio::join!(
            s3.get_bucket_policy().bucket(bucket).send(),
            s3.get_bucket_encryption().bucket(bucket).send()
        );
        let policy = match policy {
            Ok(out) => match out.policy() {
                Some(document) => Some(parse_policy(
                    PolicyKind::Resource,
                    bucket,
                    document,
                    &format!("the bucket policy of {bucket}"),
                )?),
                None => None,
            },
            Err(err)
                if err
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() == 404) =>
            {
                None
            }
            Err(err) => return Err(GatewayError::aws("s3:GetBucketPolicy", err)),
        };
        let rule = match encryption {
            Ok(out) => out
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first().cloned()),
            Err(err)
                if err
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() == 404) =>
            {
                None
            }
            Err(err) => return Err(GatewayError::aws("s3:GetEncryptionConfiguration", err)),
        };
        let default_kms_key = rule
            .as_ref()
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .filter(|d| d.sse_algorithm().as_str().starts_with("aws:kms"))
            .and_then(|d| d.kms_master_key_id().map(str::to_owned));
        let info = Some(Arc::new(BucketInfo {
            owner,
            policy,
            default_kms_key,
            bucket_key_enabled: rule.and_then(|r| r.bucket_key_enabled()).unwrap_or(false),
        }));
        self.buckets.put(bucket, info.clone(), generation);
        Ok(info)
    }

    /// The key `key` names (an ARN, or a key id or alias in `account`), with
    /// its key policy; `None` when there is no such key.
    pub async fn key(
        &self,
        key: &str,
        account: &str,
    ) -> Result<Option<Arc<KeyInfo>>, GatewayError> {
        let cache_key = format!("{account}/{key}");
        if let Some(info) = self.key_policies.get(&cache_key, self.ttl) {
            return Ok(info);
        }
        let generation = self.key_policies.generation();
        // The key's own account and region, when named by ARN.
        let fields: Vec<&str> = key.splitn(6, ':').collect();
        let (account, region) = match fields.as_slice() {
            ["arn", _, "kms", region, owner, _] => (*owner, *region),
            _ => (account, sdk_config::REGION),
        };
        let kms = self.kms(account, region).await;
        let described = match kms.describe_key().key_id(key).send().await {
            Ok(out) => out,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_not_found_exception()) =>
            {
                self.key_policies.put(&cache_key, None, generation);
                return Ok(None);
            }
            Err(err) => return Err(GatewayError::aws("kms:DescribeKey", err)),
        };
        let Some(arn) = described
            .key_metadata()
            .and_then(|m| m.arn())
            .map(str::to_owned)
        else {
            return Ok(None);
        };
        let document = kms
            .get_key_policy()
            .key_id(&arn)
            // The only policy name KMS knows; LocalStack requires it.
            .policy_name("default")
            .send()
            .await
            .map_err(|err| GatewayError::aws("kms:GetKeyPolicy", err))?;
        let policy = parse_policy(
            PolicyKind::Resource,
            &arn,
            document.policy().unwrap_or("{}"),
            &format!("the key policy of {arn}"),
        )?;
        let info = Some(Arc::new(KeyInfo { arn, policy }));
        self.key_policies.put(&cache_key, info.clone(), generation);
        Ok(info)
    }

    pub async fn lambda(&self, account: &str, region: &str) -> aws_sdk_lambda::Client {
        let config = aws_sdk_lambda::config::Builder::from(&self.config(account).await)
            .region(Region::new(region.to_owned()))
            .build();
        aws_sdk_lambda::Client::from_conf(config)
    }

    /// Who owns an access key: the root for a 12-digit key, else the upstream's `GetCallerIdentity`.
    pub async fn caller(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
    ) -> Result<Caller, GatewayError> {
        if let Some(caller) = self.known_identity(access_key_id) {
            return Ok(caller);
        }
        // The upstream maps the key id and verifies no signature; the gateway verified it.
        let credentials = Credentials::new(
            access_key_id,
            sdk_config::EMULATOR_SECRET,
            session_token.map(str::to_owned),
            None,
            "iam-gateway",
        );
        let config = aws_sdk_sts::config::Builder::from(&self.config("000000000000").await)
            .credentials_provider(credentials)
            .build();
        let identity = aws_sdk_sts::Client::from_conf(config)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| GatewayError::aws("sts:GetCallerIdentity", e))?;
        let arn = identity
            .arn()
            .ok_or_else(|| GatewayError::IncompleteAnswer {
                operation: "sts:GetCallerIdentity",
                missing: "an Arn".into(),
            })?;
        let principal = Principal::from_arn(arn).map_err(|source| GatewayError::Policy {
            what: format!("the caller `{arn}`"),
            source,
        })?;
        let principal = self.with_role_path(principal).await?;
        let user_id = match principal.kind() {
            PrincipalKind::Root => principal.account().map(str::to_owned),
            _ => identity.user_id().map(str::to_owned),
        };
        let caller = Caller { principal, user_id };
        self.remember_identity(access_key_id, caller.clone());
        Ok(caller)
    }

    /// An assumed-role session whose `aws:PrincipalArn` is its role's ARN with
    /// the role's path, which the session ARN (`assumed-role/<name>/<session>`)
    /// does not carry; any other principal unchanged. A role that no longer
    /// exists leaves the session as it was.
    pub async fn with_role_path(&self, principal: Principal) -> Result<Principal, GatewayError> {
        if principal.kind() != PrincipalKind::AssumedRole {
            return Ok(principal);
        }
        let fields: Vec<&str> = principal.arn().splitn(6, ':').collect();
        let ["arn", _, "sts", "", account, resource] = fields.as_slice() else {
            return Ok(principal);
        };
        let Some((name, session)) = resource
            .strip_prefix("assumed-role/")
            .and_then(|rest| rest.split_once('/'))
        else {
            return Ok(principal);
        };
        let key = format!("{account}/{name}");
        let role_arn = match self.role_arns.get(&key, self.ttl) {
            Some(arn) => arn,
            None => {
                let generation = self.role_arns.generation();
                let arn = self
                    .get_role(account, name)
                    .await?
                    .and_then(|out| out.role.map(|r| r.arn().to_owned()));
                self.role_arns.put(&key, arn.clone(), generation);
                arn
            }
        };
        let Some(role_arn) = role_arn else {
            return Ok(principal);
        };
        Principal::role_session(&role_arn, session).map_err(|source| GatewayError::Policy {
            what: format!("the session `{}`", principal.arn()),
            source,
        })
    }

    /// The role's trust policy and session limit; `None` if the role does not exist.
    pub async fn role(&self, role_arn: &str) -> Result<Option<Arc<RoleInfo>>, GatewayError> {
        let upstream = self.upstream_role(role_arn).await?;
        let Some(trust) = self
            .proposed
            .as_ref()
            .and_then(|proposed| proposed.trust.get(role_arn))
        else {
            return Ok(upstream);
        };
        let name = last_segment(role_arn);
        let trust = parse_policy(
            PolicyKind::Trust,
            name,
            trust,
            &format!("the proposed trust policy of {role_arn}"),
        )?;
        Ok(Some(Arc::new(RoleInfo {
            trust,
            max_session_duration: upstream.and_then(|role| role.max_session_duration),
        })))
    }

    async fn upstream_role(&self, role_arn: &str) -> Result<Option<Arc<RoleInfo>>, GatewayError> {
        if let Some(role) = self.roles.get(role_arn, self.ttl) {
            return Ok(Some(role));
        }
        let Some((account, resource)) = iam_arn_parts(role_arn) else {
            return Ok(None);
        };
        let Some(path) = resource.strip_prefix("role/") else {
            return Ok(None);
        };
        let role = self.read_role(account, last_segment(path)).await?;
        // A role recreated under the same name with another path is another role.
        Ok(role
            .filter(|(arn, _)| arn == role_arn)
            .map(|(_, info)| info))
    }

    /// `iam:GetRole` of the role named `name` in `account`; `None` if there is no such role.
    async fn get_role(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Option<aws_sdk_iam::operation::get_role::GetRoleOutput>, GatewayError> {
        match self
            .iam(account)
            .await
            .get_role()
            .role_name(name)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out)),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(GatewayError::aws("iam:GetRole", err)),
        }
    }

    /// Reads the role named `name` in `account` (its ARN, trust policy and
    /// session limit) and caches it; `None` if there is no such role.
    async fn read_role(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Option<(String, Arc<RoleInfo>)>, GatewayError> {
        let (generation, arns_generation) = (self.roles.generation(), self.role_arns.generation());
        let Some(out) = self.get_role(account, name).await? else {
            return Ok(None);
        };
        let role = out.role.ok_or_else(|| GatewayError::IncompleteAnswer {
            operation: "iam:GetRole",
            missing: format!("the Role of {name} in {account}"),
        })?;
        let role_arn = role.arn().to_owned();
        let document = role.assume_role_policy_document().unwrap_or_default();
        let trust = parse_policy(
            PolicyKind::Trust,
            name,
            document,
            &format!("the trust policy of {role_arn}"),
        )?;
        let info = Arc::new(RoleInfo {
            trust,
            max_session_duration: role.max_session_duration(),
        });
        self.roles.put(&role_arn, info.clone(), generation);
        // What `with_role_path` asks of a session of this role, answered by
        // the same read: an AssumeRole's answer needs it next.
        self.role_arns.put(
            &format!("{account}/{name}"),
            Some(role_arn.clone()),
            arns_generation,
        );
        Ok(Some((role_arn, info)))
    }

    /// Reads into the caches what a decision is about to need.
    pub async fn reread(&self, read: &Reread) -> Result<(), GatewayError> {
        match read {
            Reread::FunctionPolicy(arn) => self.function_policy(arn).await.map(|_| ()),
            Reread::Role { account, name } => self.prefetch_role(account, name).await,
        }
    }

    /// Reads the role named `name` in `account` and its identity policies
    /// into the caches.
    async fn prefetch_role(&self, account: &str, name: &str) -> Result<(), GatewayError> {
        let Some((role_arn, _)) = self.read_role(account, name).await? else {
            return Ok(());
        };
        let principal = Principal::from_arn(&role_arn).map_err(|source| GatewayError::Policy {
            what: format!("the role `{role_arn}`"),
            source,
        })?;
        self.upstream_identity_policies(&principal).await?;
        Ok(())
    }

    /// The caller's identity-based policies (inline and managed; for users also their groups').
    pub async fn identity_policies(
        &self,
        principal: &Principal,
    ) -> Result<Arc<Vec<NamedPolicy>>, GatewayError> {
        let changes = self.proposed.as_ref().and_then(|proposed| {
            let role = principal.role_arn()?;
            proposed.inline.get(role).map(|changes| (role, changes))
        });
        let Some((role, changes)) = changes else {
            return self.upstream_identity_policies(principal).await;
        };
        // A role the change creates has no policies upstream yet.
        let mut policies = match self.upstream_role(role).await? {
            Some(_) => self
                .upstream_identity_policies(principal)
                .await?
                .as_ref()
                .clone(),
            None => Vec::new(),
        };
        policies.retain(|policy| !changes.contains_key(policy.name()));
        for (name, document) in changes {
            if let Some(document) = document {
                policies.push(parse_policy(
                    PolicyKind::Identity,
                    name,
                    document,
                    &format!("the proposed inline policy {name} of {role}"),
                )?);
            }
        }
        Ok(Arc::new(policies))
    }

    async fn upstream_identity_policies(
        &self,
        principal: &Principal,
    ) -> Result<Arc<Vec<NamedPolicy>>, GatewayError> {
        let holder = match principal.kind() {
            // A federated session's policies are its IAM user's intersected with a
            // session policy; neither can be read from the session ARN.
            PrincipalKind::Root
            | PrincipalKind::Service
            | PrincipalKind::FederatedUser
            | PrincipalKind::Anonymous => return Ok(Arc::new(Vec::new())),
            PrincipalKind::Role | PrincipalKind::AssumedRole => principal.role_arn(),
            PrincipalKind::User => Some(principal.arn()),
        };
        let Some((account, resource)) = holder.and_then(iam_arn_parts) else {
            return Ok(Arc::new(Vec::new()));
        };
        let holder = holder.unwrap_or_default();
        if let Some(policies) = self.identity_policies.get(holder, self.ttl) {
            return Ok(policies);
        }
        let generation = self.identity_policies.generation();
        let iam = self.iam(account).await;
        let name = last_segment(resource);
        let policies = if principal.kind() == PrincipalKind::User {
            user_policies(&iam, name).await?
        } else {
            role_policies(&iam, name).await?
        };
        let policies = Arc::new(policies);
        self.identity_policies
            .put(holder, policies.clone(), generation);
        Ok(policies)
    }

    /// The function's resource-based policy (for a qualifier, that version's or alias's); `None` if it has none.
    pub async fn function_policy(
        &self,
        function_arn: &str,
    ) -> Result<Option<Arc<NamedPolicy>>, GatewayError> {
        if let Some(policy) = self.function_policies.get(function_arn, self.ttl) {
            return Ok(policy);
        }
        let fields: Vec<&str> = function_arn.split(':').collect();
        let [
            "arn",
            _,
            "lambda",
            region,
            account,
            "function",
            name,
            rest @ ..,
        ] = fields.as_slice()
        else {
            return Ok(None);
        };
        let generation = self.function_policies.generation();
        let answer = self
            .lambda(account, region)
            .await
            .get_policy()
            .function_name(*name)
            .set_qualifier(rest.first().map(|q| (*q).to_owned()))
            .send()
            .await;
        let policy = match answer {
            Ok(out) => match out.policy() {
                Some(document) => Some(Arc::new(parse_policy(
                    PolicyKind::Resource,
                    name,
                    document,
                    &format!("the resource policy of {function_arn}"),
                )?)),
                None => None,
            },
            // No policy and no function answer alike; either way nothing grants access.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                None
            }
            Err(err) => return Err(GatewayError::aws("lambda:GetPolicy", err)),
        };
        self.function_policies
            .put(function_arn, policy.clone(), generation);
        Ok(policy)
    }
}

/// The account root's identity for a 12-digit key.
pub fn root_caller(account: &str) -> Option<Caller> {
    let principal = Principal::from_arn(&format!("arn:aws:iam::{account}:root")).ok()?;
    Some(Caller {
        principal,
        user_id: Some(account.to_owned()),
    })
}

async fn managed_policies(
    iam: &aws_sdk_iam::Client,
    arns: Vec<(String, String)>,
    holder: &str,
) -> Result<Vec<NamedPolicy>, GatewayError> {
    futures::future::try_join_all(arns.into_iter().map(|(name, arn)| async move {
        let policy = iam
            .get_policy()
            .policy_arn(&arn)
            .send()
            .await
            .map_err(|e| GatewayError::aws("iam:GetPolicy", e))?;
        let version = policy
            .policy()
            .and_then(|p| p.default_version_id())
            .unwrap_or("v1");
        let document = iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| GatewayError::aws("iam:GetPolicyVersion", e))?;
        let text = document
            .policy_version()
            .and_then(|v| v.document())
            .unwrap_or_default();
        parse_policy(
            PolicyKind::Identity,
            &name,
            text,
            &format!("managed policy {arn} attached to {holder}"),
        )
    }))
    .await
}

/// Fetches and parses inline policies by name; `fetch` returns a policy's document.
async fn inline_policies<F, Fut>(
    names: Vec<String>,
    holder: &str,
    fetch: F,
) -> Result<Vec<NamedPolicy>, GatewayError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<String, GatewayError>>,
{
    futures::future::try_join_all(names.into_iter().map(|name| {
        let document = fetch(name.clone());
        async move {
            parse_policy(
                PolicyKind::Identity,
                &name,
                &document.await?,
                &format!("inline policy {name} of {holder}"),
            )
        }
    }))
    .await
}

/// `(name, arn)` of each attached managed policy.
fn attached_arns(attached: Vec<AttachedPolicy>) -> Vec<(String, String)> {
    attached
        .into_iter()
        .filter_map(|a| Some((a.policy_name()?.to_owned(), a.policy_arn()?.to_owned())))
        .collect()
}

async fn role_policies(
    iam: &aws_sdk_iam::Client,
    role: &str,
) -> Result<Vec<NamedPolicy>, GatewayError> {
    let (names, attached) = tokio::try_join!(
        async {
            iam.list_role_policies()
                .role_name(role)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| GatewayError::aws("iam:ListRolePolicies", e))
        },
        async {
            iam.list_attached_role_policies()
                .role_name(role)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| GatewayError::aws("iam:ListAttachedRolePolicies", e))
        }
    )?;
    let holder = format!("role {role}");
    let mut policies = inline_policies(names, &holder, |name| async move {
        let out = iam
            .get_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
            .map_err(|e| GatewayError::aws("iam:GetRolePolicy", e))?;
        Ok(out.policy_document().to_owned())
    })
    .await?;
    policies.extend(managed_policies(iam, attached_arns(attached), &holder).await?);
    Ok(policies)
}

async fn user_policies(
    iam: &aws_sdk_iam::Client,
    user: &str,
) -> Result<Vec<NamedPolicy>, GatewayError> {
    let (names, attached, groups) = tokio::try_join!(
        async {
            iam.list_user_policies()
                .user_name(user)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| GatewayError::aws("iam:ListUserPolicies", e))
        },
        async {
            iam.list_attached_user_policies()
                .user_name(user)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| GatewayError::aws("iam:ListAttachedUserPolicies", e))
        },
        async {
            iam.list_groups_for_user()
                .user_name(user)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| GatewayError::aws("iam:ListGroupsForUser", e))
        }
    )?;
    let holder = format!("user {user}");
    let mut policies = inline_policies(names, &holder, |name| async move {
        let out = iam
            .get_user_policy()
            .user_name(user)
            .policy_name(name)
            .send()
            .await
            .map_err(|e| GatewayError::aws("iam:GetUserPolicy", e))?;
        Ok(out.policy_document().to_owned())
    })
    .await?;
    let mut arns = attached_arns(attached);
    for group in groups {
        let group = group.group_name().to_owned();
        let (names, attached) = tokio::try_join!(
            async {
                iam.list_group_policies()
                    .group_name(&group)
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .map_err(|e| GatewayError::aws("iam:ListGroupPolicies", e))
            },
            async {
                iam.list_attached_group_policies()
                    .group_name(&group)
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .map_err(|e| GatewayError::aws("iam:ListAttachedGroupPolicies", e))
            }
        )?;
        let group = &group;
        let of_group = format!("group {group}");
        policies.extend(
            inline_policies(names, &of_group, |name| async move {
                let out = iam
                    .get_group_policy()
                    .group_name(group)
                    .policy_name(name)
                    .send()
                    .await
                    .map_err(|e| GatewayError::aws("iam:GetGroupPolicy", e))?;
                Ok(out.policy_document().to_owned())
            })
            .await?,
        );
        arns.extend(attached_arns(attached));
    }
    // A managed policy attached to the user and one of its groups counts once.
    arns.sort();
    arns.dedup();
    policies.extend(managed_policies(iam, arns, &holder).await?);
    Ok(policies)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::url_encoded(
        "%7B%22Version%22%3A%20%222012-10-17%22%7D",
        Some("{\"Version\": \"2012-10-17\"}")
    )]
    #[case::plain_json_keeps_percent("{\"a\": \"50%\"}", Some("{\"a\": \"50%\"}"))]
    #[case::broken_escape("%7B%2", None)]
    fn policy_documents(#[case] text: &str, #[case] expected: Option<&str>) {
        assert_eq!(decode_policy_document(text).as_deref(), expected);
    }

    #[test]
    fn unusable_policy_errors_name_the_policy() {
        let err = parse_policy(
            PolicyKind::Identity,
            "p",
            "%7B%22Statement%22%3A%20%5B%5D%7D",
            "inline policy p of role r",
        )
        .unwrap_err();
        let msg = err.chain();
        assert!(msg.contains("inline policy p of role r"), "{msg}");
        assert!(msg.contains("Statement"), "{msg}");
    }

    fn source() -> PolicySource {
        PolicySource::new(
            sdk_config::Endpoint::new("http://127.0.0.1:1"),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn a_removal_discards_a_fetch_that_started_before_it() {
        let source = source();
        let generation = source.function_policies.generation();
        source.invalidate();
        source.function_policies.put("f", None, generation);
        assert!(source.function_policies.get("f", source.ttl).is_none());

        let generation = source.function_policies.generation();
        source.function_policies.put("f", None, generation);
        assert_eq!(source.function_policies.get("f", source.ttl), Some(None));
        assert!(source.function_policies.get("f", Duration::ZERO).is_none());
        source.invalidate();
        assert!(source.function_policies.get("f", source.ttl).is_none());

        // Forgetting another entry of the same cache discards the fetch too:
        // generations are per cache, not per entry.
        let generation = source.function_policies.generation();
        source.forget(&Stale::Only(BTreeSet::from([Cached::Function {
            account: "111111111111".into(),
            name: Some("other".into()),
        }])));
        source.function_policies.put("f", None, generation);
        assert!(!source.function_policies.holds("f"));
    }

    const ROLE_A: &str = "arn:aws:iam::111111111111:role/service/exec";
    const ROLE_B: &str = "arn:aws:iam::111111111111:role/invoke";
    const ROLE_OTHER_ACCOUNT: &str = "arn:aws:iam::222222222222:role/exec";
    const USER: &str = "arn:aws:iam::111111111111:user/ops/alice";
    const FUNCTION: &str = "arn:aws:lambda:us-east-1:111111111111:function:f";
    const FUNCTION_VERSION: &str = "arn:aws:lambda:us-east-1:111111111111:function:f:1";
    const OTHER_FUNCTION: &str = "arn:aws:lambda:us-east-1:111111111111:function:g";

    /// A source holding one entry of every kind.
    fn filled() -> PolicySource {
        let source = source();
        source.cache_roles_for_test(&[ROLE_A, ROLE_B, ROLE_OTHER_ACCOUNT]);
        source.identity_policies.put(USER, Arc::new(Vec::new()), 0);
        source
            .role_arns
            .put("111111111111/exec", Some(ROLE_A.into()), 0);
        source.role_arns.put("111111111111/invoke", None, 0);
        for function in [FUNCTION, FUNCTION_VERSION, OTHER_FUNCTION] {
            source.function_policies.put(function, None, 0);
        }
        source.buckets.put("b", None, 0);
        source.key_policies.put("111111111111/alias/k", None, 0);
        source
    }

    /// Which of the filled entries are still cached.
    fn kept(source: &PolicySource) -> Vec<&'static str> {
        let mut kept = Vec::new();
        for role in [ROLE_A, ROLE_B, ROLE_OTHER_ACCOUNT] {
            if source.roles.holds(role) {
                kept.push(role);
            }
            assert_eq!(
                source.roles.holds(role),
                source.identity_policies.holds(role),
                "a role's trust and policies go together"
            );
        }
        let named = [
            (source.identity_policies.holds(USER), USER),
            (source.function_policies.holds(FUNCTION), FUNCTION),
            (
                source.function_policies.holds(FUNCTION_VERSION),
                FUNCTION_VERSION,
            ),
            (
                source.function_policies.holds(OTHER_FUNCTION),
                OTHER_FUNCTION,
            ),
        ];
        kept.extend(named.iter().filter(|(held, _)| *held).map(|(_, k)| *k));
        let others = [
            (source.role_arns.holds("111111111111/exec"), "arn of exec"),
            (
                source.role_arns.holds("111111111111/invoke"),
                "arn of invoke",
            ),
            (source.buckets.holds("b"), "bucket"),
            (source.key_policies.holds("111111111111/alias/k"), "key"),
        ];
        kept.extend(others.iter().filter(|(held, _)| *held).map(|(_, k)| *k));
        kept
    }

    fn part(stale: Cached) -> Stale {
        Stale::Only(BTreeSet::from([stale]))
    }

    #[rstest]
    #[case::one_role_by_name(
        part(Cached::Role { account: "111111111111".into(), name: Some("exec".into()) }),
        vec![ROLE_B, ROLE_OTHER_ACCOUNT, USER, FUNCTION, FUNCTION_VERSION, OTHER_FUNCTION, "arn of invoke", "bucket", "key"]
    )]
    #[case::every_role_of_an_account(
        part(Cached::Role { account: "111111111111".into(), name: None }),
        vec![ROLE_OTHER_ACCOUNT, USER, FUNCTION, FUNCTION_VERSION, OTHER_FUNCTION, "bucket", "key"]
    )]
    #[case::one_user(
        part(Cached::User { account: "111111111111".into(), name: Some("alice".into()) }),
        vec![ROLE_A, ROLE_B, ROLE_OTHER_ACCOUNT, FUNCTION, FUNCTION_VERSION, OTHER_FUNCTION, "arn of exec", "arn of invoke", "bucket", "key"]
    )]
    #[case::one_function_with_its_versions(
        part(Cached::Function { account: "111111111111".into(), name: Some("f".into()) }),
        vec![ROLE_A, ROLE_B, ROLE_OTHER_ACCOUNT, USER, OTHER_FUNCTION, "arn of exec", "arn of invoke", "bucket", "key"]
    )]
    #[case::functions_of_another_account(
        part(Cached::Function { account: "222222222222".into(), name: None }),
        vec![ROLE_A, ROLE_B, ROLE_OTHER_ACCOUNT, USER, FUNCTION, FUNCTION_VERSION, OTHER_FUNCTION, "arn of exec", "arn of invoke", "bucket", "key"]
    )]
    #[case::buckets(
        part(Cached::Buckets),
        vec![ROLE_A, ROLE_B, ROLE_OTHER_ACCOUNT, USER, FUNCTION, FUNCTION_VERSION, OTHER_FUNCTION, "arn of exec", "arn of invoke", "key"]
    )]
    #[case::keys(
        part(Cached::Keys),
        vec![ROLE_A, ROLE_B, ROLE_OTHER_ACCOUNT, USER, FUNCTION, FUNCTION_VERSION, OTHER_FUNCTION, "arn of exec", "arn of invoke", "bucket"]
    )]
    #[case::nothing(
        Stale::Only(BTreeSet::new()),
        vec![ROLE_A, ROLE_B, ROLE_OTHER_ACCOUNT, USER, FUNCTION, FUNCTION_VERSION, OTHER_FUNCTION, "arn of exec", "arn of invoke", "bucket", "key"]
    )]
    #[case::everything(Stale::Everything, vec![])]
    fn forgetting_drops_only_the_stale_part(#[case] stale: Stale, #[case] expected: Vec<&str>) {
        let source = filled();
        source.forget(&stale);
        assert_eq!(kept(&source), expected);
    }

    #[test]
    fn twelve_digit_keys_are_roots_without_lookup() {
        let source = source();
        let caller = source.known_identity("222222222222").expect("root");
        assert_eq!(caller.principal.arn(), "arn:aws:iam::222222222222:root");
        assert_eq!(caller.user_id.as_deref(), Some("222222222222"));
        assert_eq!(source.known_identity("LSIAXXXXXXXXXXXXXXXX"), None);
    }
}
