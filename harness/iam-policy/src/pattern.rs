//! Wildcard matching for actions, resource ARNs and `StringLike`/`ArnLike` values.

/// One element of a wildcard pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// A character that matches itself only.
    Char(char),
    /// `*`: any run of characters, including none.
    AnyRun,
    /// `?`: exactly one character.
    AnyOne,
}

/// A `Resource` pattern or a condition value after policy variables are
/// expanded: `*` and `?` written in the policy are wildcards, while the text a
/// variable, a default value or an escape such as `${*}` produced is literal
/// (IAM User Guide, "Special characters": `${*}` is for "where you need an *
/// (asterisk) character").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// `text` with `*` and `?` as wildcards and no variables.
    pub(crate) fn wildcard(text: &str) -> Self {
        let mut pattern = Self::default();
        pattern.push_wildcard_text(text);
        pattern
    }

    /// Appends policy text in which `*` and `?` are wildcards.
    pub(crate) fn push_wildcard_text(&mut self, text: &str) {
        self.tokens.extend(text.chars().map(|c| match c {
            '*' => Token::AnyRun,
            '?' => Token::AnyOne,
            other => Token::Char(other),
        }));
    }

    /// Appends text that matches only itself, wildcard characters included.
    pub(crate) fn push_literal(&mut self, text: &str) {
        self.tokens.extend(text.chars().map(Token::Char));
    }

    /// Appends another pattern.
    pub(crate) fn append(&mut self, other: Pattern) {
        self.tokens.extend(other.tokens);
    }

    /// The pattern as text, for the operators that compare without wildcards.
    pub(crate) fn to_text(&self) -> String {
        self.tokens
            .iter()
            .map(|t| match t {
                Token::Char(c) => *c,
                Token::AnyRun => '*',
                Token::AnyOne => '?',
            })
            .collect()
    }

    /// Whether the whole of `text` matches.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        glob_tokens(&self.tokens, &text)
    }

    /// Whether the pattern is exactly the wildcard `*`.
    fn is_any(&self) -> bool {
        self.tokens == [Token::AnyRun]
    }
}

/// Matches `text` against `pattern`, where `*` matches any run of characters
/// (including none) and `?` exactly one character.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    Pattern::wildcard(pattern).matches(text)
}

/// Iterative with single-star backtracking, so it stays linear-ish on the
/// long ARNs the gateway sees and never recurses.
fn glob_tokens(p: &[Token], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<usize> = None;
    let mut resume = 0usize;
    while ti < t.len() {
        let single = match p.get(pi) {
            Some(Token::AnyOne) => true,
            Some(Token::Char(c)) => *c == t[ti],
            _ => false,
        };
        if single {
            pi += 1;
            ti += 1;
        } else if p.get(pi) == Some(&Token::AnyRun) {
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
    p[pi..].iter().all(|t| *t == Token::AnyRun)
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
pub(crate) fn arn_matches(pattern: &Pattern, arn: &str) -> bool {
    if pattern.is_any() {
        return true;
    }
    let mut pattern_fields: Vec<&[Token]> = Vec::with_capacity(ARN_FIELDS);
    let mut rest = pattern.tokens.as_slice();
    while pattern_fields.len() < ARN_FIELDS - 1 {
        match rest.iter().position(|t| *t == Token::Char(':')) {
            Some(colon) => {
                pattern_fields.push(&rest[..colon]);
                rest = &rest[colon + 1..];
            }
            None => break,
        }
    }
    pattern_fields.push(rest);
    let arn_fields: Vec<&str> = arn.splitn(ARN_FIELDS, ':').collect();
    if arn_fields.len() < ARN_FIELDS {
        // Not an ARN (e.g. a bare name in a condition value): no field
        // structure to respect, so compare the whole string.
        return pattern.matches(arn);
    }
    let last = pattern_fields.len() - 1;
    if pattern_fields.len() < ARN_FIELDS && pattern_fields[last].last() != Some(&Token::AnyRun) {
        return false;
    }
    let field_matches = |p: &[Token], a: &str| glob_tokens(p, &a.chars().collect::<Vec<_>>());
    let leading_fields_match = pattern_fields[..last]
        .iter()
        .zip(&arn_fields)
        .all(|(p, a)| field_matches(p, a));
    leading_fields_match && field_matches(pattern_fields[last], &arn_fields[last..].join(":"))
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
        assert_eq!(arn_matches(&Pattern::wildcard(pattern), arn), expected);
    }

    #[test]
    fn literal_text_never_acts_as_a_wildcard() {
        let mut pattern = Pattern::wildcard("arn:aws:s3:::b/");
        pattern.push_literal("a*?");
        pattern.push_wildcard_text("/*");
        assert!(arn_matches(&pattern, "arn:aws:s3:::b/a*?/k"));
        assert!(!arn_matches(&pattern, "arn:aws:s3:::b/abc/k"));
        assert_eq!(pattern.to_text(), "arn:aws:s3:::b/a*?/*");
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
