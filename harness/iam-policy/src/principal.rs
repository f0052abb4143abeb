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
}

impl PrincipalKind {
    /// The value AWS puts in the `aws:PrincipalType` context key.
    pub fn principal_type(self) -> &'static str {
        match self {
            Self::Root => "Account",
            Self::User => "User",
            Self::Role | Self::AssumedRole => "AssumedRole",
            Self::Service => "Service",
        }
    }
}

/// The identity making a request, classified from its ARN.
///
/// # Example
/// ```
/// use iam_policy::{Principal, PrincipalKind};
/// let caller = Principal::from_arn("arn:aws:sts::111111111111:assumed-role/Invoker/s1")?;
/// assert_eq!(caller.kind(), PrincipalKind::AssumedRole);
/// assert_eq!(caller.account(), Some("111111111111"));
/// assert_eq!(caller.role_arn(), Some("arn:aws:iam::111111111111:role/Invoker"));
/// # Ok::<(), iam_policy::PolicyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    arn: String,
    kind: PrincipalKind,
    account: Option<String>,
    role_arn: Option<String>,
}

impl Principal {
    /// Classifies a caller ARN (root, user, role or assumed-role session).
    pub fn from_arn(arn: &str) -> Result<Self, PolicyError> {
        let invalid = |reason| PolicyError::InvalidPrincipalArn {
            arn: arn.to_owned(),
            reason,
        };
        let fields: Vec<&str> = arn.splitn(6, ':').collect();
        let ["arn", partition, service, "", account, resource] = fields.as_slice() else {
            return Err(invalid("is not an arn with an empty region field"));
        };
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
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
        })
    }

    /// An AWS service principal such as `s3.amazonaws.com`; it belongs to no account.
    pub fn service(name: &str) -> Self {
        Self {
            arn: name.to_owned(),
            kind: PrincipalKind::Service,
            account: None,
            role_arn: None,
        }
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

    /// The role behind a role or role session (without the role's path for sessions).
    pub fn role_arn(&self) -> Option<&str> {
        self.role_arn.as_deref()
    }

    /// The value AWS puts in `aws:PrincipalArn`: the role ARN for a role session.
    pub fn principal_arn(&self) -> &str {
        match self.kind {
            PrincipalKind::AssumedRole => self.role_arn.as_deref().unwrap_or(&self.arn),
            _ => &self.arn,
        }
    }

    /// The last path segment of a user ARN, which AWS exposes as `aws:username`.
    pub(crate) fn user_name(&self) -> Option<&str> {
        match self.kind {
            PrincipalKind::User => self.arn.rsplit('/').next(),
            _ => None,
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
        PrincipalKind::User | PrincipalKind::Role => account_listed() && arn_listed(caller.arn()),
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

    #[test]
    fn session_principal_arn_is_the_role() {
        let caller = Principal::from_arn(SESSION).expect("test arn is valid");
        assert_eq!(
            caller.principal_arn(),
            "arn:aws:iam::111111111111:role/Invoker"
        );
    }
}
