//! The one error type of this crate.

use crate::evaluate::PolicyKind;

/// Why a policy document, a principal ARN or a request could not be used.
///
/// Statement indexes are 0-based, in document order, the same numbering
/// [`crate::StatementRef`] uses in explanations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not JSON at all.
    #[error("policy document is not valid json: {message}")]
    Json {
        /// The parser's description of the problem.
        message: String,
    },
    /// The document, a statement or a block has the wrong JSON type.
    #[error("{location}: element `{element}` must be {expected}")]
    WrongType {
        /// `policy` or `statement N`.
        location: String,
        /// The element with the wrong type.
        element: String,
        /// What the element must be instead.
        expected: &'static str,
    },
    /// An element this evaluator does not know; AWS rejects unknown elements too.
    #[error("{location}: unknown element `{element}`; check its spelling and case")]
    UnknownElement {
        /// `policy` or `statement N`.
        location: String,
        /// The unknown element name.
        element: String,
    },
    /// `Version` is neither `2012-10-17` nor `2008-10-17`.
    #[error("policy: unsupported Version `{version}`; use \"2012-10-17\"")]
    UnsupportedVersion {
        /// The version found.
        version: String,
    },
    /// The document has no `Statement`, or an empty one.
    #[error("policy: element `Statement` is missing or empty")]
    MissingStatement,
    /// A required element is absent from a statement.
    #[error("statement {statement}: element `{element}` is required")]
    MissingElement {
        /// The statement index.
        statement: usize,
        /// The missing element, e.g. `Effect` or `Action or NotAction`.
        element: &'static str,
    },
    /// Two mutually exclusive elements (e.g. `Action` and `NotAction`) are both present.
    #[error("statement {statement}: elements `{first}` and `{second}` cannot both be present")]
    ConflictingElements {
        /// The statement index.
        statement: usize,
        /// The first element.
        first: &'static str,
        /// The second element.
        second: &'static str,
    },
    /// `Effect` is not exactly `Allow` or `Deny`.
    #[error("statement {statement}: element `Effect` must be \"Allow\" or \"Deny\", got {value:?}")]
    InvalidEffect {
        /// The statement index.
        statement: usize,
        /// The value found.
        value: String,
    },
    /// A list element such as `Action` is an empty array.
    #[error("statement {statement}: element `{element}` must not be empty")]
    EmptyElement {
        /// The statement index.
        statement: usize,
        /// The empty element.
        element: String,
    },
    /// Two statements share a `Sid`.
    #[error("statement {statement}: Sid {sid:?} is already used by another statement")]
    DuplicateSid {
        /// The index of the second statement with that Sid.
        statement: usize,
        /// The duplicated Sid.
        sid: String,
    },
    /// An action is neither `*` nor `service:action`.
    #[error("statement {statement}: action {action:?} must be \"*\" or \"service:action\"")]
    InvalidAction {
        /// The statement index.
        statement: usize,
        /// The offending action.
        action: String,
    },
    /// A resource is neither `*` nor an ARN, or its ARN is unusable.
    #[error("statement {statement}: resource {resource:?} {reason}")]
    InvalidResource {
        /// The statement index.
        statement: usize,
        /// The offending resource.
        resource: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A principal entry cannot be used.
    #[error("statement {statement}: principal {principal:?} {reason}")]
    InvalidPrincipal {
        /// The statement index.
        statement: usize,
        /// The offending principal.
        principal: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `Condition` operator this evaluator does not know.
    #[error("statement {statement}: unknown condition operator `{operator}`")]
    UnknownConditionOperator {
        /// The statement index.
        statement: usize,
        /// The unknown operator.
        operator: String,
    },
    /// A `Condition` value is not a string, number or boolean, or not valid for its operator.
    #[error("statement {statement}: condition `{operator}` key `{key}`: {reason}")]
    InvalidConditionValue {
        /// The statement index.
        statement: usize,
        /// The condition operator.
        operator: String,
        /// The condition key.
        key: String,
        /// What is wrong with the value.
        reason: &'static str,
    },
    /// An element that the policy's kind forbids, e.g. `Principal` in an identity policy.
    #[error("statement {statement}: element `{element}` is not allowed in {kind} policies")]
    ElementNotAllowed {
        /// The statement index.
        statement: usize,
        /// The forbidden element.
        element: &'static str,
        /// The policy kind.
        kind: PolicyKind,
    },
    /// An element that the policy's kind requires, e.g. `Principal` in a trust policy.
    #[error("statement {statement}: element `{element}` is required in {kind} policies")]
    ElementRequired {
        /// The statement index.
        statement: usize,
        /// The required element.
        element: &'static str,
        /// The policy kind.
        kind: PolicyKind,
    },
    /// A request principal ARN this evaluator cannot classify.
    #[error("principal arn {arn:?} {reason}; use an account root, user, role or assumed-role arn")]
    InvalidPrincipalArn {
        /// The offending ARN.
        arn: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}
