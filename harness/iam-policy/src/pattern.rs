//! Wildcard matching for actions, resource ARNs and `StringLike`/`ArnLike` values.

/// Matches `text` against `pattern`, where `*` matches any run of characters
/// (including none) and `?` exactly one character.
///
/// Iterative with single-star backtracking, so it stays linear-ish on the
/// long ARNs the gateway sees and never recurses.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<usize> = None;
    let mut resume = 0usize;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            resume = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            resume += 1;
            ti = resume;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches an action against a policy's action pattern.
///
/// AWS: "action names are case insensitive" and `*`/`?` wildcards may appear
/// anywhere (IAM User Guide, "IAM JSON policy elements: Action").
pub(crate) fn action_matches(pattern: &str, action: &str) -> bool {
    glob(&pattern.to_lowercase(), &action.to_lowercase())
}

/// The number of colon-separated fields in an ARN:
/// `arn:partition:service:region:account-id:resource`.
const ARN_FIELDS: usize = 6;

/// Matches a request ARN against a `Resource` pattern or an `Arn*` condition value.
///
/// AWS documents ("IAM JSON policy elements: Resource", section "Using
/// wildcards in resource ARNs"): wildcards work "within the individual
/// segments of an ARN (the parts separated by colons)", and "if the `*`
/// wildcard is the last character of a resource ARN segment, it can expand to
/// match beyond the colon boundaries". For `ArnLike`: "each of the six
/// colon-delimited components of the ARN is checked separately". So:
/// - the first five fields (`arn`, partition, service, region, account) are
///   matched field by field and a wildcard never crosses a colon there;
/// - the sixth field is everything after the fifth colon (Lambda's
///   `function:name:alias` included), where `*` spans `/` and `:`;
/// - a pattern cut short (fewer than six fields) matches only when its last
///   field ends in `*`, which then absorbs the rest of the ARN.
///
/// Matching is case-sensitive: AWS resource names are ("In the Resource
/// element, the IAM user name is case sensitive").
pub(crate) fn arn_matches(pattern: &str, arn: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let pattern_fields: Vec<&str> = pattern.splitn(ARN_FIELDS, ':').collect();
    let arn_fields: Vec<&str> = arn.splitn(ARN_FIELDS, ':').collect();
    if arn_fields.len() < ARN_FIELDS {
        // Not an ARN (e.g. a bare name in a condition value): no field
        // structure to respect, so compare the whole string.
        return glob(pattern, arn);
    }
    let last = pattern_fields.len() - 1;
    if pattern_fields.len() < ARN_FIELDS && !pattern_fields[last].ends_with('*') {
        return false;
    }
    let leading_fields_match = pattern_fields[..last]
        .iter()
        .zip(&arn_fields)
        .all(|(p, a)| glob(p, a));
    leading_fields_match && glob(pattern_fields[last], &arn_fields[last..].join(":"))
}

/// The account id field of an ARN, when it has one.
pub(crate) fn arn_account(arn: &str) -> Option<&str> {
    let fields: Vec<&str> = arn.splitn(ARN_FIELDS, ':').collect();
    match fields.as_slice() {
        ["arn", _, _, _, account, _] if !account.is_empty() => Some(account),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::literal_equal("abc", "abc", true)]
    #[case::literal_differs("abc", "abd", false)]
    #[case::star_matches_empty("ab*", "ab", true)]
    #[case::star_in_middle("a*c", "abbbc", true)]
    #[case::question_is_one_char("a?c", "abc", true)]
    #[case::question_is_not_zero_chars("a?c", "ac", false)]
    #[case::star_backtracks("*bc*bc", "xbcybc", true)]
    #[case::trailing_text_unmatched("a*b", "abc", false)]
    #[case::case_sensitive("ABC", "abc", false)]
    fn glob_rules(#[case] pattern: &str, #[case] text: &str, #[case] expected: bool) {
        assert_eq!(glob(pattern, text), expected);
    }

    #[rstest]
    #[case::full_wildcard("*", "sts:AssumeRole", true)]
    #[case::case_insensitive("STS:assumerole", "sts:AssumeRole", true)]
    #[case::service_wildcard("lambda:*", "lambda:InvokeFunction", true)]
    #[case::prefix_wildcard("lambda:Invoke*", "lambda:InvokeFunction", true)]
    #[case::other_service("lambda:*", "sts:AssumeRole", false)]
    fn action_rules(#[case] pattern: &str, #[case] action: &str, #[case] expected: bool) {
        assert_eq!(action_matches(pattern, action), expected);
    }

    const FUNCTION: &str = "arn:aws:lambda:us-east-1:111111111111:function:alerts";
    const ALIAS: &str = "arn:aws:lambda:us-east-1:111111111111:function:alerts:live";

    #[rstest]
    #[case::exact(FUNCTION, FUNCTION, true)]
    #[case::unqualified_does_not_cover_alias(FUNCTION, ALIAS, false)]
    #[case::qualifier_wildcard_covers_alias(
        "arn:aws:lambda:us-east-1:111111111111:function:alerts:*",
        ALIAS,
        true
    )]
    #[case::qualifier_wildcard_needs_a_qualifier(
        "arn:aws:lambda:us-east-1:111111111111:function:alerts:*",
        FUNCTION,
        false
    )]
    #[case::resource_star_spans_colons("arn:aws:lambda:us-east-1:111111111111:*", ALIAS, true)]
    #[case::region_star_stays_in_segment(
        "arn:aws:lambda:*:111111111111:function:alerts",
        FUNCTION,
        true
    )]
    #[case::segment_star_does_not_swallow_colon(
        "arn:aws:lambda:us-*:function:alerts",
        FUNCTION,
        false
    )]
    #[case::truncated_pattern_with_trailing_star("arn:aws:lambda:*", FUNCTION, true)]
    #[case::truncated_pattern_without_star("arn:aws:lambda:us-east-1", FUNCTION, false)]
    #[case::account_differs(
        "arn:aws:lambda:us-east-1:222222222222:function:alerts",
        FUNCTION,
        false
    )]
    #[case::case_sensitive(
        "arn:aws:lambda:us-east-1:111111111111:function:Alerts",
        FUNCTION,
        false
    )]
    #[case::star_spans_slash(
        "arn:aws:iam::111111111111:role/*",
        "arn:aws:iam::111111111111:role/path/r",
        true
    )]
    fn arn_rules(#[case] pattern: &str, #[case] arn: &str, #[case] expected: bool) {
        assert_eq!(arn_matches(pattern, arn), expected);
    }

    #[rstest]
    #[case::lambda(FUNCTION, Some("111111111111"))]
    #[case::iam_has_no_region("arn:aws:iam::222222222222:role/r", Some("222222222222"))]
    #[case::s3_has_no_account("arn:aws:s3:::bucket", None)]
    #[case::not_an_arn("bucket", None)]
    fn arn_account_rules(#[case] arn: &str, #[case] expected: Option<&str>) {
        assert_eq!(arn_account(arn), expected);
    }
}
