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

/// The Region a request for `action` on `resource` is sent to, when known.
///
/// IAM has one endpoint: "IAM calls are always made to the us-east-1 Region"
/// (IAM User Guide, `aws:RequestedRegion`). A regional resource is reached
/// through its Region's endpoint. STS (global or regional endpoint) and S3
/// ARNs do not say.
fn requested_region<'a>(action: &str, resource: &'a str) -> Option<&'a str> {
    let service = action.split_once(':').map(|(service, _)| service);
    if service.is_some_and(|s| s.eq_ignore_ascii_case("iam")) {
        return Some("us-east-1");
    }
    let fields: Vec<&str> = resource.splitn(6, ':').collect();
    match fields.as_slice() {
        ["arn", _, _, region, _, _] if !region.is_empty() && !region.contains(['*', '?']) => {
            Some(region)
        }
        _ => None,
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
    /// Builds a request and fills the global keys AWS derives from the
    /// principal, the resource and the clock.
    ///
    /// Set, following the IAM User Guide's global condition keys and
    /// "Principal key values":
    /// - `aws:PrincipalType` (`Account`, `User`, `AssumedRole`,
    ///   `FederatedUser`, `Anonymous`; absent for service principals);
    /// - `aws:userid` when it follows from the principal (root, federated
    ///   user, anonymous, or a user/role whose unique id was given with
    ///   [`Principal::with_unique_id`]); `aws:username` for IAM users only;
    /// - `aws:PrincipalArn` (the role ARN, with its path, for a role session)
    ///   and `aws:PrincipalIsAWSService` for signed requests,
    ///   `aws:PrincipalAccount` (`anonymous` for anonymous callers),
    ///   `aws:PrincipalServiceName` for services;
    /// - `aws:ResourceAccount` when the resource's ARN names an account;
    /// - `aws:RequestedRegion`: `us-east-1` for IAM actions, whose single
    ///   endpoint is there, else the resource ARN's Region; a caller that
    ///   knows the endpoint it was sent to (STS, S3) sets or overrides it with
    ///   [`Request::with_context`];
    /// - `aws:CurrentTime` and `aws:EpochTime` from the system clock ("always
    ///   included in the request context"); pin them with [`Request::at`].
    pub fn new(principal: Principal, action: &str, resource: &str) -> Self {
        let mut context = Context::default();
        let kind = principal.kind();
        if kind != PrincipalKind::Anonymous {
            context.insert(
                "aws:PrincipalIsAWSService",
                if kind == PrincipalKind::Service {
                    "true"
                } else {
                    "false"
                },
            );
        }
        if kind == PrincipalKind::Service {
            context.insert("aws:PrincipalServiceName", principal.arn());
        } else {
            context.insert("aws:PrincipalType", kind.principal_type());
        }
        if let Some(arn) = principal.principal_arn() {
            context.insert("aws:PrincipalArn", arn);
        }
        if let Some(account) = principal.principal_account() {
            context.insert("aws:PrincipalAccount", account);
        }
        if let Some(name) = principal.user_name() {
            context.insert("aws:username", name);
        }
        if let Some(user_id) = principal.user_id() {
            context.insert("aws:userid", user_id);
        }
        if let Some(region) = requested_region(action, resource) {
            context.insert("aws:RequestedRegion", region);
        }
        context.set_current_time(SystemTime::now());
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

    /// Sets `aws:CurrentTime` and `aws:EpochTime` to `now`, for reproducible decisions.
    pub fn at(mut self, now: SystemTime) -> Self {
        self.context.set_current_time(now);
        self
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
    fn principal_keys_follow_the_principal_table() {
        let keys = |request: &Request| -> Vec<Option<String>> {
            [
                "aws:PrincipalType",
                "aws:userid",
                "aws:username",
                "aws:PrincipalArn",
                "aws:PrincipalAccount",
            ]
            .iter()
            .map(|k| request.context.get(k).map(|v| v.join(",")))
            .collect()
        };
        let some = |v: &str| Some(v.to_owned());
        let federated =
            Principal::from_arn("arn:aws:sts::111111111111:federated-user/bob").expect("arn");
        let request = Request::new(federated, "s3:GetObject", "arn:aws:s3:::b/k");
        assert_eq!(
            keys(&request),
            [
                some("FederatedUser"),
                some("111111111111:bob"),
                None,
                some("arn:aws:sts::111111111111:federated-user/bob"),
                some("111111111111"),
            ]
        );
        let request = Request::new(Principal::anonymous(), "s3:GetObject", "arn:aws:s3:::b/k");
        assert_eq!(
            keys(&request),
            [
                some("Anonymous"),
                some("anonymous"),
                None,
                None,
                some("anonymous")
            ]
        );
        assert_eq!(request.context.get("aws:PrincipalIsAWSService"), None);
        let root = Principal::from_arn("arn:aws:iam::111111111111:root").expect("arn");
        let request = Request::new(root, "s3:GetObject", "arn:aws:s3:::b/k");
        assert_eq!(
            keys(&request)[..3],
            [some("Account"), some("111111111111"), None]
        );
        let session = Principal::from_arn("arn:aws:sts::111111111111:assumed-role/r/s1")
            .expect("arn")
            .with_unique_id("AROAEXAMPLE");
        let request = Request::new(session, "s3:GetObject", "arn:aws:s3:::b/k");
        assert_eq!(keys(&request)[1], some("AROAEXAMPLE:s1"));
    }

    #[rstest::rstest]
    #[case::regional_resource(
        "lambda:InvokeFunction",
        "arn:aws:lambda:eu-west-1:111111111111:function:f",
        Some("eu-west-1")
    )]
    #[case::iam_is_global("iam:GetRole", "arn:aws:iam::111111111111:role/r", Some("us-east-1"))]
    #[case::sts_endpoint_unknown("sts:AssumeRole", "arn:aws:iam::111111111111:role/r", None)]
    #[case::s3_names_no_region("s3:GetObject", "arn:aws:s3:::b/k", None)]
    fn requested_region_from_the_request(
        #[case] action: &str,
        #[case] resource: &str,
        #[case] expected: Option<&str>,
    ) {
        let root = Principal::from_arn("arn:aws:iam::111111111111:root").expect("arn");
        let request = Request::new(root, action, resource);
        assert_eq!(
            request
                .context
                .get("aws:RequestedRegion")
                .map(|v| v.join(","))
                .as_deref(),
            expected
        );
        assert!(request.context.get("aws:CurrentTime").is_some());
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
        let root = Principal::from_arn("arn:aws:iam::111111111111:root").expect("arn");
        let pinned = Request::new(root, "s3:GetObject", "arn:aws:s3:::b/k")
            .at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(
            pinned.context.get("aws:CurrentTime"),
            context.get("aws:CurrentTime")
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
