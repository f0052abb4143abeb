//! The request being authorized: principal, action, resource and context keys.

use std::{collections::BTreeMap, time::SystemTime};

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    pattern::arn_account,
    principal::{Principal, PrincipalKind},
};

/// Condition keys and their values; keys compare case-insensitively, values do not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    // Keyed by the lowercased key; the original spelling is kept for export.
    entries: BTreeMap<String, (String, Vec<String>)>,
}

impl Context {
    /// Sets a single-valued key, replacing any earlier value.
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.insert_values(key, [value.into()]);
    }

    /// Sets a multi-valued key (e.g. `aws:TagKeys`), replacing any earlier values.
    pub fn insert_values<I, V>(&mut self, key: &str, values: I)
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        self.entries.insert(
            key.to_lowercase(),
            (key.to_owned(), values.into_iter().map(Into::into).collect()),
        );
    }

    /// Removes a key so that it is absent from the request.
    pub fn remove(&mut self, key: &str) {
        self.entries.remove(&key.to_lowercase());
    }

    /// The values of a key, if the request carries it.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.entries
            .get(&key.to_lowercase())
            .map(|(_, values)| values.as_slice())
    }

    /// Every key (as first spelled) with its values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.entries
            .values()
            .map(|(key, values)| (key.as_str(), values.as_slice()))
    }

    /// Sets `aws:CurrentTime` (ISO 8601) and `aws:EpochTime` (seconds) from `now`.
    pub fn set_current_time(&mut self, now: SystemTime) {
        let instant = OffsetDateTime::from(now);
        let iso = instant
            .replace_nanosecond(0)
            .ok()
            .and_then(|i| i.format(&Rfc3339).ok());
        if let Some(iso) = iso {
            self.insert("aws:CurrentTime", iso);
        }
        self.insert("aws:EpochTime", instant.unix_timestamp().to_string());
    }
}

/// One authorization question: may `principal` perform `action` on `resource`?
///
/// # Example
/// ```
/// use iam_policy::{Principal, Request};
/// let caller = Principal::from_arn("arn:aws:sts::222222222222:assumed-role/Invoker/s1")?;
/// let request = Request::new(caller, "sts:AssumeRole", "arn:aws:iam::111111111111:role/CrossAccount")
///     .with_context("sts:ExternalId", "alerts");
/// assert_eq!(request.context.get("aws:PrincipalAccount"), Some(&["222222222222".to_owned()][..]));
/// assert_eq!(request.resource_account(), Some("111111111111"));
/// # Ok::<(), iam_policy::PolicyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Who is asking.
    pub principal: Principal,
    /// The action, e.g. `lambda:InvokeFunction`.
    pub action: String,
    /// The resource ARN, e.g. a function or role ARN.
    pub resource: String,
    /// Condition keys visible to policies.
    pub context: Context,
    resource_account: Option<String>,
}

impl Request {
    /// Builds a request and fills the global keys AWS derives from the principal.
    ///
    /// Set: `aws:PrincipalArn` (the role ARN for a role session),
    /// `aws:PrincipalAccount`, `aws:PrincipalType`, `aws:PrincipalIsAWSService`,
    /// `aws:ResourceAccount` when the resource's ARN names an account,
    /// `aws:username` for users and `aws:PrincipalServiceName` for services. Time keys are left to the
    /// caller ([`Context::set_current_time`]) so decisions stay reproducible.
    pub fn new(principal: Principal, action: &str, resource: &str) -> Self {
        let mut context = Context::default();
        let service = principal.kind() == PrincipalKind::Service;
        context.insert(
            "aws:PrincipalIsAWSService",
            if service { "true" } else { "false" },
        );
        if service {
            context.insert("aws:PrincipalServiceName", principal.arn());
        } else {
            context.insert("aws:PrincipalArn", principal.principal_arn());
            context.insert("aws:PrincipalType", principal.kind().principal_type());
        }
        if let Some(account) = principal.account() {
            context.insert("aws:PrincipalAccount", account);
        }
        if let Some(name) = principal.user_name() {
            context.insert("aws:username", name);
        }
        let resource_account = arn_account(resource).map(str::to_owned);
        if let Some(account) = &resource_account {
            context.insert("aws:ResourceAccount", account.clone());
        }
        Self {
            resource_account,
            principal,
            action: action.to_owned(),
            resource: resource.to_owned(),
            context,
        }
    }

    /// Adds or replaces a single-valued context key.
    pub fn with_context(mut self, key: &str, value: impl Into<String>) -> Self {
        self.context.insert(key, value);
        self
    }

    /// Adds or replaces a multi-valued context key.
    pub fn with_context_values<I, V>(mut self, key: &str, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        self.context.insert_values(key, values);
        self
    }

    /// Removes a context key, including one [`Request::new`] filled in.
    pub fn without_context(mut self, key: &str) -> Self {
        self.context.remove(key);
        self
    }

    /// Names the account owning the resource when its ARN does not (e.g. S3
    /// buckets, `*`): it decides same- versus cross-account evaluation and
    /// `aws:ResourceAccount`.
    pub fn with_resource_account(mut self, account: &str) -> Self {
        self.resource_account = Some(account.to_owned());
        self.context.insert("aws:ResourceAccount", account);
        self
    }

    /// The account owning the resource: from the ARN, or as set explicitly.
    pub fn resource_account(&self) -> Option<&str> {
        self.resource_account.as_deref()
    }

    /// Whether caller and resource are in the same account; unknown counts as different.
    pub fn is_same_account(&self) -> bool {
        matches!((self.principal.account(), self.resource_account()), (Some(a), Some(b)) if a == b)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn context_keys_are_case_insensitive_values_are_not() {
        let mut context = Context::default();
        context.insert("sts:ExternalId", "Alerts");
        assert_eq!(
            context.get("STS:EXTERNALID"),
            Some(&["Alerts".to_owned()][..])
        );
        assert_ne!(
            context.get("sts:externalid"),
            Some(&["alerts".to_owned()][..])
        );
    }

    #[test]
    fn global_keys_say_whether_a_service_calls_and_whose_resource_it_is() {
        let key = |request: &Request, name: &str| request.context.get(name).map(<[String]>::to_vec);
        let role = Principal::from_arn("arn:aws:sts::222222222222:assumed-role/r/s").expect("arn");
        let request = Request::new(
            role,
            "lambda:InvokeFunction",
            "arn:aws:lambda:us-east-1:111111111111:function:f",
        );
        assert_eq!(
            key(&request, "aws:PrincipalIsAWSService"),
            Some(vec!["false".to_owned()])
        );
        assert_eq!(
            key(&request, "aws:ResourceAccount"),
            Some(vec!["111111111111".to_owned()])
        );
        assert_eq!(key(&request, "aws:PrincipalServiceName"), None);

        let lambda = Principal::service("lambda.amazonaws.com");
        let request = Request::new(
            lambda,
            "sts:AssumeRole",
            "arn:aws:iam::111111111111:role/exec",
        );
        assert_eq!(
            key(&request, "aws:PrincipalIsAWSService"),
            Some(vec!["true".to_owned()])
        );
        assert_eq!(key(&request, "aws:PrincipalArn"), None);

        // S3 ARNs name no account.
        let root = Principal::from_arn("arn:aws:iam::111111111111:root").expect("arn");
        let request = Request::new(root, "s3:GetObject", "arn:aws:s3:::bucket/key");
        assert_eq!(key(&request, "aws:ResourceAccount"), None);
    }

    #[test]
    fn current_time_sets_both_keys() {
        let mut context = Context::default();
        context.set_current_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(
            context.get("aws:CurrentTime"),
            Some(&["2023-11-14T22:13:20Z".to_owned()][..])
        );
        assert_eq!(
            context.get("aws:EpochTime"),
            Some(&["1700000000".to_owned()][..])
        );
    }

    #[test]
    fn user_request_gets_username_and_type() {
        let caller = Principal::from_arn("arn:aws:iam::111111111111:user/ops/alice")
            .expect("test arn is valid");
        let request = Request::new(caller, "s3:GetObject", "arn:aws:s3:::bucket/key");
        assert_eq!(
            request.context.get("aws:username"),
            Some(&["alice".to_owned()][..])
        );
        assert_eq!(
            request.context.get("aws:PrincipalType"),
            Some(&["User".to_owned()][..])
        );
        assert_eq!(request.resource_account(), None);
        assert!(!request.is_same_account());
    }
}
