//! Policy variables: `${key}`, `${key, 'default'}` and the `${*}`, `${?}`,
//! `${$}` escapes, expanded where AWS expands them and nowhere else.
//!
//! IAM User Guide, "IAM policy elements: Variables and tags":
//! - "You can use policy variables in the `Resource` element and in string
//!   comparisons in the `Condition` element";
//! - in `Resource`, "only in the resource portion of the ARN. This portion of
//!   the ARN appears after the fifth colon (:). You can't use a variable to
//!   replace parts of the ARN before the fifth colon";
//! - in `Condition`, "in any condition that involves the string operators or
//!   the ARN operators ... You can't use a policy variable with other
//!   operators, such as Numeric, Date, Boolean, Binary, IP Address, or Null";
//! - a key that is absent (or multi-valued) has no value: "any attempt to
//!   match it fails", unless a default is given: "surround the default value
//!   with single quotes (' '), and separate the variable text and the default
//!   value with a comma and space (, )".
//!
//! Where a variable is not expanded, `${...}` is ordinary text.

use crate::{pattern::Pattern, request::Context};

/// What one `${...}` stands for.
enum Variable<'a> {
    /// `${*}`, `${?}`, `${$}`: that character, literally.
    Escape(char),
    /// `${key}` or `${key, 'default'}`.
    Key {
        name: &'a str,
        default: Option<&'a str>,
    },
}

/// Parses the variable starting at `text` (which begins with `${`); returns it
/// and the number of bytes it spans, or `None` when it is not well formed.
fn parse_variable(text: &str) -> Option<(Variable<'_>, usize)> {
    let inner = text.strip_prefix("${")?;
    let end_of_key = inner.find(['}', ','])?;
    let name = inner[..end_of_key].trim();
    if inner[end_of_key..].starts_with('}') {
        let variable = match name {
            "*" => Variable::Escape('*'),
            "?" => Variable::Escape('?'),
            "$" => Variable::Escape('$'),
            "" => return None,
            _ => Variable::Key {
                name,
                default: None,
            },
        };
        return Some((variable, 2 + end_of_key + 1));
    }
    // `, 'default'}`: the default runs to the next quote and may hold `}` or `,`.
    let after_comma = &inner[end_of_key + 1..];
    let quoted = after_comma.trim_start();
    let default_start = quoted.strip_prefix('\'')?;
    let default_len = default_start.find('\'')?;
    let after_default = &default_start[default_len + 1..];
    let closing = after_default.trim_start();
    if !closing.starts_with('}') || name.is_empty() {
        return None;
    }
    let consumed = text.len() - closing.len() + 1;
    Some((
        Variable::Key {
            name,
            default: Some(&default_start[..default_len]),
        },
        consumed,
    ))
}

/// Expands the variables in `text` into a pattern whose `*`/`?` written in
/// the policy stay wildcards.
///
/// Returns `None` when a variable's key has no single value and no default:
/// the element then matches nothing.
pub(crate) fn expand(text: &str, context: &Context) -> Option<Pattern> {
    let mut pattern = Pattern::default();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        pattern.push_wildcard_text(&rest[..start]);
        let candidate = &rest[start..];
        match parse_variable(candidate) {
            Some((variable, consumed)) => {
                match variable {
                    Variable::Escape(c) => pattern.push_literal(c.encode_utf8(&mut [0; 4])),
                    Variable::Key { name, default } => match (context.get(name), default) {
                        (Some([single]), _) => pattern.push_literal(single),
                        (_, Some(default)) => pattern.push_literal(default),
                        _ => return None,
                    },
                }
                rest = &candidate[consumed..];
            }
            None => {
                // Not a variable: the `$` is text, and scanning resumes after it.
                pattern.push_wildcard_text("$");
                rest = &candidate[1..];
            }
        }
    }
    pattern.push_wildcard_text(rest);
    Some(pattern)
}

/// The number of colons before an ARN's resource portion.
const COLONS_BEFORE_RESOURCE: usize = 5;

/// A `Resource`/`NotResource` entry as a pattern, with variables expanded
/// only after the fifth colon when `variables` is set.
pub(crate) fn resource_pattern(text: &str, context: &Context, variables: bool) -> Option<Pattern> {
    if !variables {
        return Some(Pattern::wildcard(text));
    }
    let Some((colon, _)) = text.match_indices(':').nth(COLONS_BEFORE_RESOURCE - 1) else {
        // `*` or an ARN without a resource portion: nothing may be substituted.
        return Some(Pattern::wildcard(text));
    };
    let (head, resource) = text.split_at(colon + 1);
    let mut pattern = Pattern::wildcard(head);
    let expanded = expand(resource, context)?;
    pattern.append(expanded);
    Some(pattern)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn context() -> Context {
        let mut context = Context::default();
        context.insert("aws:username", "alice");
        context.insert_values("aws:TagKeys", ["a", "b"]);
        context
    }

    #[rstest]
    #[case::known_key("home/${aws:username}/*", Some("home/alice/*"))]
    #[case::key_is_case_insensitive("home/${AWS:UserName}", Some("home/alice"))]
    #[case::unknown_key("home/${aws:userid}", None)]
    #[case::multi_valued_key("home/${aws:TagKeys}", None)]
    #[case::no_variable("home/*", Some("home/*"))]
    #[case::default_unused("${aws:username, 'nobody'}", Some("alice"))]
    #[case::default_used("${aws:userid, 'anonymous'}", Some("anonymous"))]
    #[case::default_with_brace_and_comma("${aws:userid, 'a},b'}x", Some("a},bx"))]
    #[case::default_without_quotes_is_text(
        "${aws:userid, anonymous}",
        Some("${aws:userid, anonymous}")
    )]
    #[case::escapes("${*}${?}${$}", Some("*?$"))]
    #[case::unclosed_is_text("a${aws:username", Some("a${aws:username"))]
    #[case::empty_is_text("${}", Some("${}"))]
    fn expansion(#[case] text: &str, #[case] expected: Option<&str>) {
        assert_eq!(
            expand(text, &context()).map(|p| p.to_text()).as_deref(),
            expected
        );
    }

    #[test]
    fn escaped_and_substituted_wildcards_are_literal() {
        let mut context = context();
        context.insert("aws:PrincipalTag/team", "*");
        let escaped = expand("report${*}", &context).expect("expands");
        assert!(escaped.matches("report*"));
        assert!(!escaped.matches("report-2026"));
        let substituted = expand("team-${aws:PrincipalTag/team}", &context).expect("expands");
        assert!(!substituted.matches("team-ops"));
        let written = expand("team-*", &context).expect("expands");
        assert!(written.matches("team-ops"));
    }

    #[rstest]
    #[case::resource_part(
        "arn:aws:s3:::bucket/${aws:username}/*",
        Some("arn:aws:s3:::bucket/alice/*")
    )]
    #[case::account_field_is_literal(
        "arn:aws:lambda:us-east-1:${aws:username}:function:f",
        Some("arn:aws:lambda:us-east-1:${aws:username}:function:f")
    )]
    #[case::star_resource("*", Some("*"))]
    #[case::absent_key_in_resource_part("arn:aws:s3:::bucket/${aws:userid}", None)]
    fn resource_expansion(#[case] text: &str, #[case] expected: Option<&str>) {
        assert_eq!(
            resource_pattern(text, &context(), true)
                .map(|p| p.to_text())
                .as_deref(),
            expected
        );
    }
}
