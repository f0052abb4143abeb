//! Who makes a request, and how `Principal`/`NotPrincipal` entries match them.

use std::fmt;

use crate::error::PolicyError;

/// What kind of identity a request principal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// The account root user, `arn:aws:iam::<account>:root`.
    Root,
    /// An IAM user, `arn:aws:iam::<account>:user/<path/name>`.
    User,
    /// An IAM role acting as itself, `arn:aws:iam::<account>:role/<path/name>`.
    Role,
    /// A role session, `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    AssumedRole,
    /// An AWS service principal such as `lambda.amazonaws.com`.
    Service,
    /// An AWS STS federated user session (`GetFederationToken`),
    /// `arn:aws:sts::<account>:federated-user/<name>`.
    FederatedUser,
    /// An unsigned request; only a resource-based policy naming `*` can allow it.
    Anonymous,
}

impl PrincipalKind {
    /// The value AWS puts in the `aws:PrincipalType` context key ("Principal
    /// key values" in the IAM User Guide's policy variables page).
    pub fn principal_type(self) -> &'static str {
        match self {
            Self::Root => "Account",
            Self::User => "User",
            Self::Role | Self::AssumedRole => "AssumedRole",
            Self::Service => "Service",
            Self::FederatedUser => "FederatedUser",
            Self::Anonymous => "Anonymous",
        }
    }
}

/// The text AWS uses for an anonymous caller in `aws:userid` and
/// `aws:PrincipalAccount`.
const ANONYMOUS: &str = "anonymous";

/// The identity making a request, classified from its ARN.
///
/// A role session's ARN drops the role's path, so [`Principal::from_arn`] on
/// a session cannot know it; [`Principal::role_session`] builds the session
/// from the role ARN and keeps the path for `aws:PrincipalArn`.
///
/// # Example
/// ```
/// use iam_policy::{Principal, PrincipalKind};
/// let caller = Principal::from_arn("arn:aws:sts::111111111111:assumed-role/Invoker/s1")?;
/// assert_eq!(caller.kind(), PrincipalKind::AssumedRole);
/// assert_eq!(caller.account(), Some("111111111111"));
/// assert_eq!(caller.role_arn(), Some("arn:aws:iam::111111111111:role/Invoker"));
///
/// let with_path = Principal::role_session("arn:aws:iam::111111111111:role/team/x/Invoker", "s1")?;
/// assert_eq!(with_path.arn(), "arn:aws:sts::111111111111:assumed-role/Invoker/s1");
/// assert_eq!(with_path.principal_arn(), Some("arn:aws:iam::111111111111:role/team/x/Invoker"));
/// # Ok::<(), iam_policy::PolicyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    arn: String,
    kind: PrincipalKind,
    account: Option<String>,
    role_arn: Option<String>,
    unique_id: Option<String>,
}

impl Principal {
    /// Classifies a caller ARN (root, user, role, assumed-role session or
    /// federated user session).
    pub fn from_arn(arn: &str) -> Result<Self, PolicyError> {
        let invalid = |reason| PolicyError::InvalidPrincipalArn {
            arn: arn.to_owned(),
            reason,
        };
        let fields: Vec<&str> = arn.splitn(6, ':').collect();
        let ["arn", partition, service, "", account, resource] = fields.as_slice() else {
            return Err(invalid("is not an arn with an empty region field"));
        };
        if !is_account_id(account) {
            return Err(invalid("has no 12-digit account id"));
        }
        let (kind, role_arn) = match (*service, *resource) {
            ("iam", "root") => (PrincipalKind::Root, None),
            ("iam", r) if r.starts_with("user/") && r.len() > "user/".len() => {
                (PrincipalKind::User, None)
            }
            ("iam", r) if r.starts_with("role/") && r.len() > "role/".len() => {
                (PrincipalKind::Role, Some(arn.to_owned()))
            }
            ("sts", r) if r.starts_with("federated-user/") => {
                let name = &r["federated-user/".len()..];
                if name.is_empty() || name.contains('/') {
                    return Err(invalid("is not a federated-user arn"));
                }
                (PrincipalKind::FederatedUser, None)
            }
            ("sts", r) => {
                let mut parts = r.splitn(3, '/');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some("assumed-role"), Some(role), Some(session))
                        if !role.is_empty() && !session.is_empty() =>
                    {
                        // The session ARN drops the role's path, so the role
                        // ARN rebuilt here has none either.
                        let role_arn = format!("arn:{partition}:iam::{account}:role/{role}");
                        (PrincipalKind::AssumedRole, Some(role_arn))
                    }
                    _ => return Err(invalid("is not an assumed-role session arn")),
                }
            }
            _ => return Err(invalid("is of an unsupported type")),
        };
        Ok(Self {
            arn: arn.to_owned(),
            kind,
            account: Some((*account).to_owned()),
            role_arn,
            unique_id: None,
        })
    }

    /// A session of `role_arn` (which may have a path) named `session_name`.
    ///
    /// The session's ARN is `arn:<p>:sts::<account>:assumed-role/<name>/<session>`,
    /// without the path, while `aws:PrincipalArn` is the role ARN with it: "For
    /// IAM roles, the request context returns the ARN of the role, not the ARN
    /// of the user that assumed the role" (IAM User Guide, `aws:PrincipalArn`).
    pub fn role_session(role_arn: &str, session_name: &str) -> Result<Self, PolicyError> {
        let role = Self::from_arn(role_arn)?;
        let invalid = |reason| PolicyError::InvalidPrincipalArn {
            arn: role_arn.to_owned(),
            reason,
        };
        if role.kind != PrincipalKind::Role {
            return Err(invalid("is not a role arn"));
        }
        if session_name.is_empty() || session_name.contains('/') {
            return Err(invalid("needs a session name without `/`"));
        }
        let (partition, account, name) =
            split_role_arn(role_arn).ok_or_else(|| invalid("is not a role arn"))?;
        let mut session = Self::from_arn(&format!(
            "arn:{partition}:sts::{account}:assumed-role/{name}/{session_name}"
        ))?;
        session.role_arn = Some(role_arn.to_owned());
        Ok(session)
    }

    /// An AWS service principal such as `s3.amazonaws.com`; it belongs to no account.
    pub fn service(name: &str) -> Self {
        Self {
            arn: name.to_owned(),
            kind: PrincipalKind::Service,
            account: None,
            role_arn: None,
            unique_id: None,
        }
    }

    /// An anonymous (unsigned) caller; it belongs to no account and has no identity policies.
    pub fn anonymous() -> Self {
        Self {
            arn: ANONYMOUS.to_owned(),
            kind: PrincipalKind::Anonymous,
            account: None,
            role_arn: None,
            unique_id: None,
        }
    }

    /// Records IAM's unique id of the user or role (`AIDA...`, `AROA...`),
    /// which `aws:userid` carries; ARNs do not contain it.
    pub fn with_unique_id(mut self, unique_id: &str) -> Self {
        self.unique_id = Some(unique_id.to_owned());
        self
    }

    /// The caller's ARN (a service principal's name for services), as AWS prints it in errors.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// The caller's kind.
    pub fn kind(&self) -> PrincipalKind {
        self.kind
    }

    /// The caller's account id; `None` for service principals.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// The role behind a role or role session, with its path unless the
    /// session was read from its ARN alone.
    pub fn role_arn(&self) -> Option<&str> {
        self.role_arn.as_deref()
    }

    /// The value AWS puts in `aws:PrincipalArn`: the role ARN for a role
    /// session; `None` for services and anonymous callers, whose requests do
    /// not carry the key.
    pub fn principal_arn(&self) -> Option<&str> {
        match self.kind {
            PrincipalKind::AssumedRole => self.role_arn.as_deref(),
            PrincipalKind::Service | PrincipalKind::Anonymous => None,
            _ => Some(&self.arn),
        }
    }

    /// The last path segment of a user ARN, which AWS exposes as `aws:username`.
    pub(crate) fn user_name(&self) -> Option<&str> {
        match self.kind {
            PrincipalKind::User => self.arn.rsplit('/').next(),
            _ => None,
        }
    }

    /// The value of `aws:userid` (IAM User Guide, "Principal key values"): the
    /// account id for the root user, `account:name` for a federated user,
    /// `anonymous` for anonymous callers; the unique id for a user or role and
    /// `unique-id:session` for a role session, when the unique id is known.
    pub(crate) fn user_id(&self) -> Option<String> {
        match self.kind {
            PrincipalKind::Root => self.account.clone(),
            PrincipalKind::FederatedUser => {
                let name = self.arn.rsplit('/').next()?;
                Some(format!("{}:{name}", self.account.as_deref()?))
            }
            PrincipalKind::Anonymous => Some(ANONYMOUS.to_owned()),
            PrincipalKind::User | PrincipalKind::Role => self.unique_id.clone(),
            PrincipalKind::AssumedRole => {
                let session = self.arn.rsplit('/').next()?;
                Some(format!("{}:{session}", self.unique_id.as_deref()?))
            }
            PrincipalKind::Service => None,
        }
    }

    /// The value of `aws:PrincipalAccount`: "For anonymous requests, the
    /// request context returns `anonymous`" (IAM User Guide).
    pub(crate) fn principal_account(&self) -> Option<&str> {
        match self.kind {
            PrincipalKind::Anonymous => Some(ANONYMOUS),
            _ => self.account.as_deref(),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

/// One entry of a `Principal` or `NotPrincipal` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrincipalEntry {
    /// `"*"` or `{"AWS": "*"}`: AWS documents both as "everyone".
    Any,
    /// An account given as `123456789012` or `arn:aws:iam::123456789012:root`.
    Account(String),
    /// A user, role, or role-session ARN (or an unrecognised id, which matches nothing).
    Arn(String),
    /// `{"Service": "..."}`.
    Service(String),
    /// `{"Federated": ...}` or `{"CanonicalUser": ...}`: parsed, never matches the
    /// principals this evaluator models.
    Other(String),
}

impl PrincipalEntry {
    /// Classifies an `AWS` principal value.
    pub(crate) fn aws(value: &str) -> Self {
        if value == "*" {
            return Self::Any;
        }
        if is_account_id(value) {
            return Self::Account(value.to_owned());
        }
        let fields: Vec<&str> = value.splitn(6, ':').collect();
        if let ["arn", _, "iam", "", account, "root"] = fields.as_slice() {
            return Self::Account((*account).to_owned());
        }
        Self::Arn(value.to_owned())
    }
}

/// How a resource-based statement's `Principal` matched the caller.
///
/// The distinction decides whether the caller's identity policies are needed:
/// naming the account delegates the decision to the account's own IAM
/// policies, naming the caller does not (IAM User Guide, "AWS JSON policy
/// elements: Principal", AWS account principals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalMatch {
    /// The statement named the caller itself, its role, or everyone (`*`).
    Direct,
    /// The statement named the caller's account.
    Account,
}

fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a role ARN (possibly with a path) is the role of an assumed-role caller.
///
/// Role names are unique regardless of case in IAM, so the name compares
/// case-insensitively; partition and account must be equal.
fn role_is_callers_role(role_arn: &str, caller: &Principal) -> bool {
    let Some(caller_role) = caller.role_arn() else {
        return false;
    };
    let (Some(entry), Some(own)) = (split_role_arn(role_arn), split_role_arn(caller_role)) else {
        return false;
    };
    entry.0 == own.0 && entry.1 == own.1 && entry.2.eq_ignore_ascii_case(own.2)
}

/// `(partition, account, role name)` of `arn:<p>:iam::<account>:role/<path/>name`.
fn split_role_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    match fields.as_slice() {
        ["arn", partition, "iam", "", account, resource] => {
            let path_and_name = resource.strip_prefix("role/")?;
            let name = path_and_name.rsplit('/').next()?;
            Some((partition, account, name))
        }
        _ => None,
    }
}

/// How one `Principal` entry matches the caller, if at all.
pub(crate) fn entry_matches(entry: &PrincipalEntry, caller: &Principal) -> Option<PrincipalMatch> {
    match entry {
        PrincipalEntry::Any => Some(PrincipalMatch::Direct),
        PrincipalEntry::Account(account) => {
            (caller.account() == Some(account.as_str())).then_some(PrincipalMatch::Account)
        }
        PrincipalEntry::Arn(arn) => {
            let direct = arn == caller.arn()
                || (caller.kind() == PrincipalKind::AssumedRole
                    && role_is_callers_role(arn, caller));
            direct.then_some(PrincipalMatch::Direct)
        }
        PrincipalEntry::Service(name) => (caller.kind() == PrincipalKind::Service
            && name == caller.arn())
        .then_some(PrincipalMatch::Direct),
        PrincipalEntry::Other(_) => None,
    }
}

/// The strongest match among a `Principal` element's entries.
pub(crate) fn principal_matches(
    entries: &[PrincipalEntry],
    caller: &Principal,
) -> Option<PrincipalMatch> {
    let mut best = None;
    for entry in entries {
        match entry_matches(entry, caller) {
            Some(PrincipalMatch::Direct) => return Some(PrincipalMatch::Direct),
            Some(PrincipalMatch::Account) => best = Some(PrincipalMatch::Account),
            None => {}
        }
    }
    best
}

/// Whether a `NotPrincipal` element exempts the caller.
///
/// AWS evaluates a caller as the chain account → role → session (or
/// account → user) and "might validate the account first, then the role,
/// and then the assumed-role user", so a caller is exempt only when every
/// link of its chain is listed (IAM User Guide, "AWS JSON policy elements:
/// NotPrincipal": "include both the ARN for a role and the ARN for the
/// account containing that role"). Listing only Bob leaves Bob's account,
/// and therefore Bob, unexempted.
pub(crate) fn not_principal_exempts(entries: &[PrincipalEntry], caller: &Principal) -> bool {
    if entries.contains(&PrincipalEntry::Any) {
        return true;
    }
    let account_listed = || {
        entries.iter().any(
            |e| matches!(e, PrincipalEntry::Account(a) if Some(a.as_str()) == caller.account()),
        )
    };
    let arn_listed = |arn: &str| {
        entries
            .iter()
            .any(|e| matches!(e, PrincipalEntry::Arn(listed) if listed == arn))
    };
    let role_listed = || {
        entries.iter().any(
            |e| matches!(e, PrincipalEntry::Arn(listed) if role_is_callers_role(listed, caller)),
        )
    };
    match caller.kind() {
        PrincipalKind::Service => entries
            .iter()
            .any(|e| matches!(e, PrincipalEntry::Service(s) if s == caller.arn())),
        PrincipalKind::Root => account_listed(),
        PrincipalKind::User | PrincipalKind::Role | PrincipalKind::FederatedUser => {
            account_listed() && arn_listed(caller.arn())
        }
        // Only `*` (handled above) names an anonymous caller.
        PrincipalKind::Anonymous => false,
        PrincipalKind::AssumedRole => account_listed() && role_listed() && arn_listed(caller.arn()),
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const SESSION: &str = "arn:aws:sts::111111111111:assumed-role/Invoker/s1";

    #[rstest]
    #[case::root("arn:aws:iam::111111111111:root", PrincipalKind::Root)]
    #[case::user("arn:aws:iam::111111111111:user/ops/alice", PrincipalKind::User)]
    #[case::role("arn:aws:iam::111111111111:role/Invoker", PrincipalKind::Role)]
    #[case::session(SESSION, PrincipalKind::AssumedRole)]
    #[case::federated_user(
        "arn:aws:sts::111111111111:federated-user/bob",
        PrincipalKind::FederatedUser
    )]
    fn caller_kind_from_arn(#[case] arn: &str, #[case] kind: PrincipalKind) {
        let caller = Principal::from_arn(arn).expect("test arn is valid");
        assert_eq!(caller.kind(), kind);
        assert_eq!(caller.account(), Some("111111111111"));
    }

    #[rstest]
    #[case::not_an_arn("alice")]
    #[case::short_account("arn:aws:iam::1111:root")]
    #[case::session_without_name("arn:aws:sts::111111111111:assumed-role/Invoker")]
    #[case::unsupported_service("arn:aws:s3:::bucket")]
    #[case::group_is_not_a_caller("arn:aws:iam::111111111111:group/admins")]
    #[case::federated_user_without_name("arn:aws:sts::111111111111:federated-user/")]
    fn caller_arn_rejected(#[case] arn: &str) {
        assert!(matches!(
            Principal::from_arn(arn),
            Err(PolicyError::InvalidPrincipalArn { .. })
        ));
    }

    #[rstest]
    #[case::role_with_path_matches_session(
        "arn:aws:iam::111111111111:role/team/Invoker",
        Some(PrincipalMatch::Direct)
    )]
    #[case::role_name_case_insensitive(
        "arn:aws:iam::111111111111:role/invoker",
        Some(PrincipalMatch::Direct)
    )]
    #[case::other_role("arn:aws:iam::111111111111:role/Other", None)]
    #[case::same_role_other_account("arn:aws:iam::222222222222:role/Invoker", None)]
    #[case::account_id("111111111111", Some(PrincipalMatch::Account))]
    #[case::root_arn("arn:aws:iam::111111111111:root", Some(PrincipalMatch::Account))]
    #[case::exact_session(SESSION, Some(PrincipalMatch::Direct))]
    #[case::other_session("arn:aws:sts::111111111111:assumed-role/Invoker/s2", None)]
    fn aws_entry_against_session(#[case] value: &str, #[case] expected: Option<PrincipalMatch>) {
        let caller = Principal::from_arn(SESSION).expect("test arn is valid");
        assert_eq!(
            entry_matches(&PrincipalEntry::aws(value), &caller),
            expected
        );
    }

    #[rstest]
    #[case::user_is_not_a_role("arn:aws:iam::111111111111:user/alice", "s1")]
    #[case::session_is_not_a_role(SESSION, "s1")]
    #[case::empty_session_name("arn:aws:iam::111111111111:role/r", "")]
    fn role_session_needs_a_role_and_a_name(#[case] role: &str, #[case] session: &str) {
        assert!(matches!(
            Principal::role_session(role, session),
            Err(PolicyError::InvalidPrincipalArn { .. })
        ));
    }

    #[test]
    fn role_session_keeps_the_path_and_matches_the_role() {
        let caller = Principal::role_session("arn:aws:iam::111111111111:role/a/b/Invoker", "s1")
            .expect("valid role");
        assert_eq!(caller.arn(), SESSION);
        assert_eq!(
            caller.principal_arn(),
            Some("arn:aws:iam::111111111111:role/a/b/Invoker")
        );
        assert_eq!(
            entry_matches(&PrincipalEntry::aws(SESSION), &caller),
            Some(PrincipalMatch::Direct)
        );
    }

    #[test]
    fn anonymous_matches_only_everyone() {
        let anonymous = Principal::anonymous();
        assert_eq!(
            entry_matches(&PrincipalEntry::Any, &anonymous),
            Some(PrincipalMatch::Direct)
        );
        assert_eq!(
            entry_matches(&PrincipalEntry::aws("111111111111"), &anonymous),
            None
        );
        assert_eq!(anonymous.principal_arn(), None);
        assert_eq!(anonymous.user_id().as_deref(), Some("anonymous"));
    }

    #[test]
    fn session_principal_arn_is_the_role() {
        let caller = Principal::from_arn(SESSION).expect("test arn is valid");
        assert_eq!(
            caller.principal_arn(),
            Some("arn:aws:iam::111111111111:role/Invoker")
        );
    }
}
