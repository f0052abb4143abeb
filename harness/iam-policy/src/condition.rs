//! `Condition` operators, their parsing and their evaluation against a request context.

use std::{fmt, net::IpAddr};

use time::{
    Date, OffsetDateTime,
    format_description::well_known::{Iso8601, Rfc3339},
    macros::format_description,
};

use crate::{
    error::PolicyError,
    pattern::{Pattern, arn_matches},
    request::Context,
    variable::expand,
};

/// The comparison at the heart of a condition operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    ArnLike,
    Bool,
    BinaryEquals,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    IpAddress,
    Null,
}

impl Comparison {
    /// Whether AWS substitutes policy variables in this operator's values:
    /// only the string and ARN operators take them.
    fn takes_variables(self) -> bool {
        matches!(
            self,
            Self::StringEquals | Self::StringEqualsIgnoreCase | Self::StringLike | Self::ArnLike
        )
    }
}

/// `ForAnyValue:` / `ForAllValues:` qualifiers for multi-valued keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    ForAnyValue,
    ForAllValues,
}

/// A parsed condition operator such as `ForAllValues:StringNotLikeIfExists`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Operator {
    name: String,
    set: Option<SetQualifier>,
    comparison: Comparison,
    negated: bool,
    if_exists: bool,
}

impl Operator {
    /// Parses an operator name; names compare case-insensitively.
    fn parse(name: &str, statement: usize) -> Result<Self, PolicyError> {
        let unknown = || PolicyError::UnknownConditionOperator {
            statement,
            operator: name.to_owned(),
        };
        let lower = name.to_ascii_lowercase();
        let (set, rest) = if let Some(rest) = lower.strip_prefix("foranyvalue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else if let Some(rest) = lower.strip_prefix("forallvalues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else {
            (None, lower.as_str())
        };
        let (base, if_exists) = match rest.strip_suffix("ifexists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        use Comparison as C;
        let (comparison, negated) = match base {
            "stringequals" => (C::StringEquals, false),
            "stringnotequals" => (C::StringEquals, true),
            "stringequalsignorecase" => (C::StringEqualsIgnoreCase, false),
            "stringnotequalsignorecase" => (C::StringEqualsIgnoreCase, true),
            "stringlike" => (C::StringLike, false),
            "stringnotlike" => (C::StringLike, true),
            // AWS documents ArnEquals and ArnLike as the same comparison.
            "arnequals" | "arnlike" => (C::ArnLike, false),
            "arnnotequals" | "arnnotlike" => (C::ArnLike, true),
            "bool" => (C::Bool, false),
            "binaryequals" => (C::BinaryEquals, false),
            "numericequals" => (C::NumericEquals, false),
            "numericnotequals" => (C::NumericEquals, true),
            "numericlessthan" => (C::NumericLessThan, false),
            "numericlessthanequals" => (C::NumericLessThanEquals, false),
            "numericgreaterthan" => (C::NumericGreaterThan, false),
            "numericgreaterthanequals" => (C::NumericGreaterThanEquals, false),
            "dateequals" => (C::DateEquals, false),
            "datenotequals" => (C::DateEquals, true),
            "datelessthan" => (C::DateLessThan, false),
            "datelessthanequals" => (C::DateLessThanEquals, false),
            "dategreaterthan" => (C::DateGreaterThan, false),
            "dategreaterthanequals" => (C::DateGreaterThanEquals, false),
            "ipaddress" => (C::IpAddress, false),
            "notipaddress" => (C::IpAddress, true),
            "null" => (C::Null, false),
            _ => return Err(unknown()),
        };
        // `Null` tests presence itself: neither IfExists nor a set qualifier means anything on it.
        if comparison == C::Null && (if_exists || set.is_some()) {
            return Err(unknown());
        }
        Ok(Self {
            name: name.to_owned(),
            set,
            comparison,
            negated,
            if_exists,
        })
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// One `operator: { key: values }` pair of a `Condition` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Condition {
    operator: Operator,
    key: String,
    values: Vec<String>,
}

/// Parses a statement's `Condition` object into one [`Condition`] per operator and key.
pub(crate) fn parse_conditions(
    block: &serde_json::Value,
    statement: usize,
) -> Result<Vec<Condition>, PolicyError> {
    let wrong_type = |element: String, expected| PolicyError::WrongType {
        location: format!("statement {statement}"),
        element,
        expected,
    };
    let operators = block
        .as_object()
        .ok_or_else(|| wrong_type("Condition".into(), "an object of operators"))?;
    let mut conditions = Vec::new();
    for (operator_name, keys) in operators {
        let operator = Operator::parse(operator_name, statement)?;
        let keys = keys.as_object().ok_or_else(|| {
            wrong_type(
                format!("Condition.{operator_name}"),
                "an object of condition keys",
            )
        })?;
        for (key, value) in keys {
            let invalid = |reason| PolicyError::InvalidConditionValue {
                statement,
                operator: operator_name.clone(),
                key: key.clone(),
                reason,
            };
            let values = condition_values(value).ok_or_else(|| {
                invalid("values must be strings, numbers or booleans, or a list of them")
            })?;
            if values.is_empty() {
                return Err(invalid("the list of values must not be empty"));
            }
            if operator.comparison == Comparison::Null
                && values
                    .iter()
                    .any(|v| !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false"))
            {
                return Err(invalid("Null takes \"true\" or \"false\""));
            }
            conditions.push(Condition {
                operator: operator.clone(),
                key: key.clone(),
                values,
            });
        }
    }
    Ok(conditions)
}

fn scalar(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn condition_values(value: &serde_json::Value) -> Option<Vec<String>> {
    match value {
        serde_json::Value::Array(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|v| vec![v]),
    }
}

impl Condition {
    /// Evaluates the condition against the request context.
    ///
    /// The rules, from the IAM User Guide ("Condition operators", "Single-valued
    /// vs. multivalued context keys", "...IfExists condition operators"):
    /// - several policy values for one key are ORed;
    /// - an absent key makes a positive operator false and a negated one
    ///   (`StringNotEquals`, `ArnNotLike`, `NotIpAddress`, ...) true;
    /// - `...IfExists` is true when the key is absent;
    /// - `Null: true` holds when the key is absent, `Null: false` when present;
    /// - `ForAllValues:` holds when every request value matches (vacuously on an
    ///   absent or empty key), `ForAnyValue:` when at least one does (never on
    ///   an absent key).
    pub(crate) fn holds(&self, context: &Context, substitute_variables: bool) -> bool {
        let request_values = context.get(&self.key).filter(|v| !v.is_empty());
        let substitute = substitute_variables && self.operator.comparison.takes_variables();
        // A value whose variable has no value is left out: it matches nothing.
        let policy_values: Vec<Option<Pattern>> = self
            .values
            .iter()
            .map(|v| {
                if substitute {
                    expand(v, context)
                } else {
                    Some(Pattern::wildcard(v))
                }
            })
            .collect();
        if self.operator.comparison == Comparison::Null {
            let absent = request_values.is_none();
            return policy_values
                .iter()
                .flatten()
                .any(|v| v.to_text().eq_ignore_ascii_case("true") == absent);
        }
        let Some(request_values) = request_values else {
            return match self.operator.set {
                _ if self.operator.if_exists => true,
                Some(SetQualifier::ForAllValues) => true,
                Some(SetQualifier::ForAnyValue) => false,
                None => self.operator.negated,
            };
        };
        // A request value satisfies the operator when it matches some policy
        // value, or, for a negated operator, matches none of them.
        let value_satisfies = |request_value: &String| {
            let matched = policy_values
                .iter()
                .flatten()
                .any(|policy_value| compare(self.operator.comparison, policy_value, request_value));
            matched != self.operator.negated
        };
        match self.operator.set {
            Some(SetQualifier::ForAllValues) => request_values.iter().all(value_satisfies),
            Some(SetQualifier::ForAnyValue) => request_values.iter().any(value_satisfies),
            // Without a qualifier a multi-valued key behaves as "any value
            // matches", and the negated form negates that whole test.
            None => {
                let matched = request_values.iter().any(|request_value| {
                    policy_values
                        .iter()
                        .flatten()
                        .any(|p| compare(self.operator.comparison, p, request_value))
                });
                matched != self.operator.negated
            }
        }
    }
}

/// The positive comparison of one policy value with one request value.
///
/// Only the `Like` operators and the ARN operators treat `*`/`?` as
/// wildcards; every other operator compares the value as written.
fn compare(comparison: Comparison, policy: &Pattern, request: &str) -> bool {
    use Comparison as C;
    if comparison == C::StringLike {
        return policy.matches(request);
    }
    if comparison == C::ArnLike {
        return arn_matches(policy, request);
    }
    let policy = policy.to_text();
    let policy = policy.as_str();
    match comparison {
        C::StringEquals | C::BinaryEquals => policy == request,
        C::StringEqualsIgnoreCase => policy.to_lowercase() == request.to_lowercase(),
        C::Bool => policy.eq_ignore_ascii_case(request),
        C::NumericEquals => numeric(policy, request, |p, r| r == p),
        C::NumericLessThan => numeric(policy, request, |p, r| r < p),
        C::NumericLessThanEquals => numeric(policy, request, |p, r| r <= p),
        C::NumericGreaterThan => numeric(policy, request, |p, r| r > p),
        C::NumericGreaterThanEquals => numeric(policy, request, |p, r| r >= p),
        C::DateEquals => date(policy, request, |p, r| r == p),
        C::DateLessThan => date(policy, request, |p, r| r < p),
        C::DateLessThanEquals => date(policy, request, |p, r| r <= p),
        C::DateGreaterThan => date(policy, request, |p, r| r > p),
        C::DateGreaterThanEquals => date(policy, request, |p, r| r >= p),
        C::IpAddress => ip_in_cidr(policy, request),
        // Handled above, and presence is decided before any value comparison.
        C::StringLike | C::ArnLike | C::Null => false,
    }
}

/// Compares two numbers; a value that is not a number never matches.
fn numeric(policy: &str, request: &str, op: impl Fn(f64, f64) -> bool) -> bool {
    match (policy.trim().parse::<f64>(), request.trim().parse::<f64>()) {
        (Ok(p), Ok(r)) => op(p, r),
        _ => false,
    }
}

/// Compares two instants; a value that is not a date never matches.
fn date(policy: &str, request: &str, op: impl Fn(i128, i128) -> bool) -> bool {
    match (parse_date(policy), parse_date(request)) {
        (Some(p), Some(r)) => op(p, r),
        _ => false,
    }
}

/// Parses a date as AWS accepts it: epoch seconds, or ISO 8601 (RFC 3339, other
/// ISO 8601 forms with an offset, or a bare `YYYY-MM-DD` taken as midnight UTC).
/// Returns nanoseconds since the epoch.
pub(crate) fn parse_date(value: &str) -> Option<i128> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<i64>() {
        return Some(i128::from(seconds) * 1_000_000_000);
    }
    if let Ok(seconds) = value.parse::<f64>() {
        if seconds.is_finite() {
            // Sub-nanosecond precision is meaningless for policy dates.
            #[allow(clippy::cast_possible_truncation)]
            return Some((seconds * 1e9) as i128);
        }
        return None;
    }
    if let Ok(instant) = OffsetDateTime::parse(value, &Rfc3339) {
        return Some(instant.unix_timestamp_nanos());
    }
    if let Ok(instant) = OffsetDateTime::parse(value, &Iso8601::DEFAULT) {
        return Some(instant.unix_timestamp_nanos());
    }
    let day = Date::parse(value, format_description!("[year]-[month]-[day]")).ok()?;
    Some(day.midnight().assume_utc().unix_timestamp_nanos())
}

/// Whether `request` (an IP address) lies in `policy` (a CIDR block or single address).
fn ip_in_cidr(policy: &str, request: &str) -> bool {
    let Ok(address) = request.trim().parse::<IpAddr>() else {
        return false;
    };
    let (network, prefix) = match policy.split_once('/') {
        Some((network, prefix)) => (network, prefix.parse::<u32>().ok()),
        None => (policy, None),
    };
    let Ok(network) = network.trim().parse::<IpAddr>() else {
        return false;
    };
    match (network, address) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let prefix = prefix.unwrap_or(32);
            prefix <= 32
                && masked(u128::from(u32::from(n)), prefix, 32)
                    == masked(u128::from(u32::from(a)), prefix, 32)
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let prefix = prefix.unwrap_or(128);
            prefix <= 128
                && masked(u128::from(n), prefix, 128) == masked(u128::from(a), prefix, 128)
        }
        _ => false,
    }
}

fn masked(bits: u128, prefix: u32, width: u32) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits >> (width - prefix)
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::epoch_seconds("1700000000", Some(1_700_000_000_000_000_000))]
    #[case::rfc3339("2023-11-14T22:13:20Z", Some(1_700_000_000_000_000_000))]
    #[case::rfc3339_with_offset("2023-11-14T23:13:20+01:00", Some(1_700_000_000_000_000_000))]
    #[case::date_only("1970-01-02", Some(86_400_000_000_000))]
    #[case::garbage("yesterday", None)]
    fn date_formats(#[case] value: &str, #[case] expected: Option<i128>) {
        assert_eq!(parse_date(value), expected);
    }

    #[rstest]
    #[case::inside_v4("10.0.0.0/8", "10.1.2.3", true)]
    #[case::outside_v4("10.0.0.0/8", "11.1.2.3", false)]
    #[case::single_address("192.0.2.1", "192.0.2.1", true)]
    #[case::zero_prefix("0.0.0.0/0", "203.0.113.9", true)]
    #[case::inside_v6("2001:db8::/32", "2001:db8::1", true)]
    #[case::family_mismatch("10.0.0.0/8", "2001:db8::1", false)]
    fn cidr_rules(#[case] cidr: &str, #[case] address: &str, #[case] expected: bool) {
        assert_eq!(ip_in_cidr(cidr, address), expected);
    }

    #[rstest]
    #[case::null_with_set_qualifier("ForAnyValue:Null")]
    #[case::null_if_exists("NullIfExists")]
    #[case::typo("StringEqual")]
    #[case::unknown_qualifier("ForSomeValues:StringEquals")]
    fn operator_rejected(#[case] name: &str) {
        assert!(matches!(
            Operator::parse(name, 3),
            Err(PolicyError::UnknownConditionOperator { statement: 3, .. })
        ));
    }
}
