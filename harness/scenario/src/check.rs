//! Comparing what a scenario expects with what happened.
//!
//! Rules:
//! - `status` must be equal; an outcome with status `error` (the harness failed) never passes.
//! - `error_type` is compared exactly; `error_message_contains` is a substring of the message.
//! - `response` is a subset match: an expected object needs every one of its keys present in
//!   the actual object, matching recursively (extra actual keys are fine); an expected array
//!   needs an actual array of the same length whose elements match position by position
//!   (each element by these same rules, so objects inside arrays are subsets too); numbers are
//!   compared by value (`1` matches `1.0`); other scalars and `null` must be equal.
//! - `emails`, when given, must be exactly the received emails, in any order. Expected and
//!   received emails are paired so that the number of mismatching fields is smallest; every
//!   pairing is tried when there are at most [`EXHAUSTIVE_LIMIT`] received emails, beyond that
//!   each expected email takes the best remaining one. Addresses compare as sets, with the
//!   domain case-insensitive and any `Name <addr>` display name ignored; header names are
//!   case-insensitive and header values exact (surrounding whitespace ignored); an expected
//!   header that appears more than once must have that value every time.
//! - an expected email that states `to`, `cc` or `bcc` also checks the SMTP envelope: its
//!   recipients (`RCPT TO`), as a set and ignoring case, must be exactly the received `To` and
//!   `Cc` addresses plus the expected `bcc` ones, so a recipient the headers hide is caught.
//! - a received email paired with an expected one may carry each of the single-instance
//!   headers of RFC 5322 §3.6 ([`SINGLE_INSTANCE_HEADERS`]) at most once: with two `Subject`
//!   or `To` headers, readers disagree on which one counts.
//! - every email in `stray_emails` (it arrived while the call ran, carrying no trace id of a
//!   call the harness made) is a mismatch, whatever `emails` says: mail nobody can attribute
//!   must not pass unseen.
//! - every `iam` entry must match at least one recorded decision: same decision, action equal
//!   ignoring case, and `principal`/`resource` substrings of the recorded ARNs.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    model::{ExpectedEmail, ExpectedIamDecision, Scenario, SubjectRule},
    outcome::{CapturedEmail, IamDecision, Outcome},
};

/// Headers that RFC 5322 §3.6 allows at most once per message (names case-insensitive).
pub const SINGLE_INSTANCE_HEADERS: [&str; 11] = [
    "Date",
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Subject",
];

/// Above this many received emails, pairing is greedy instead of exhaustive.
pub const EXHAUSTIVE_LIMIT: usize = 12;

/// Longest actual text shown in a mismatch; the report directory has the full emails.
const DISPLAY_LIMIT: usize = 2000;

/// Pairing cost of an expected email without a received one (or the reverse): larger than
/// any field-mismatch count, so emails are paired whenever the counts allow it.
const UNPAIRED_COST: usize = 10_000;

/// The result of checking one scenario: passed when there is no mismatch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The scenario's name.
    pub scenario: String,
    /// Every difference between expectation and outcome, in a stable order.
    pub mismatches: Vec<Mismatch>,
    /// How expected emails were paired with received ones (for the diff).
    pub email_pairs: Vec<EmailPair>,
}

impl Verdict {
    /// True when nothing differed.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// One difference: a field path with the expected and actual values, both display-ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The field, e.g. `status`, `response.accepted[0]`, `emails[1].subject`.
    pub path: String,
    /// What the scenario expected.
    pub expected: String,
    /// What happened.
    pub actual: String,
}

/// An expected email (index into `expect.emails`) paired with a received one (index into
/// `Outcome::emails`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailPair {
    /// Index into the scenario's expected emails.
    pub expected: usize,
    /// Index into the outcome's received emails.
    pub received: usize,
}

/// Checks `outcome` against everything `scenario` expects.
///
/// # Example
/// ```
/// use scenario::{Outcome, OutcomeStatus};
///
/// let scenario = scenario::parse_str(
///     std::path::Path::new("inline.yaml"),
///     "name: smoke\ninvoke: { payload: {} }\nexpect: { status: success }\n",
/// )
/// .unwrap();
/// let outcome = Outcome { status: OutcomeStatus::Success, ..Outcome::default() };
/// assert!(scenario::check(&scenario, &outcome).passed());
/// ```
pub fn check(scenario: &Scenario, outcome: &Outcome) -> Verdict {
    let expect = &scenario.expect;
    let mut mismatches = Vec::new();

    if outcome.status.as_str() != expect.status.as_str() {
        mismatches.push(Mismatch {
            path: "status".to_owned(),
            expected: expect.status.to_string(),
            actual: describe_status(outcome),
        });
    }
    if let Some(expected) = &expect.error_type
        && outcome.error_type.as_deref() != Some(expected.as_str())
    {
        mismatches.push(Mismatch {
            path: "error_type".to_owned(),
            expected: quote(expected),
            actual: quote_option(outcome.error_type.as_deref()),
        });
    }
    if let Some(needle) = &expect.error_message_contains
        && !outcome
            .error_message
            .as_deref()
            .is_some_and(|message| message.contains(needle.as_str()))
    {
        mismatches.push(Mismatch {
            path: "error_message".to_owned(),
            expected: format!("contains {}", quote(needle)),
            actual: quote_option(outcome.error_message.as_deref()),
        });
    }
    if let Some(expected) = &expect.response {
        match &outcome.response {
            Some(actual) => subset_mismatches("response", expected, actual, &mut mismatches),
            None => mismatches.push(Mismatch {
                path: "response".to_owned(),
                expected: show_json(expected),
                actual: "no response".to_owned(),
            }),
        }
    }
    let mut email_pairs = Vec::new();
    if let Some(expected) = &expect.emails {
        email_pairs = check_emails(expected, &outcome.emails, &mut mismatches);
    }
    for (index, email) in outcome.stray_emails.iter().enumerate() {
        mismatches.push(Mismatch {
            path: format!("stray_emails[{index}]"),
            expected: "no email without a known trace id while the call ran".to_owned(),
            actual: format!(
                "email {}, {} {}",
                describe_received_email(email),
                xray_trace::HEADER,
                quote_option(email.header(xray_trace::HEADER))
            ),
        });
    }
    // `within_ms` bounds when emails arrive; the harness does not sleep it out.
    if let (Some(within), Some(started)) = (expect.within_ms, outcome.started_at_ms) {
        for (index, email) in outcome.emails.iter().enumerate() {
            let after = email.received_at_ms.saturating_sub(started);
            if after > within {
                mismatches.push(Mismatch {
                    path: format!("within_ms (received_emails[{index}])"),
                    expected: format!("arrives within {within} ms of the call"),
                    actual: format!("arrived after {after} ms"),
                });
            }
        }
    }
    for (index, wanted) in expect.logs_contain.iter().enumerate() {
        if !outcome
            .logs
            .values()
            .any(|log| log.contains(wanted.as_str()))
        {
            mismatches.push(Mismatch {
                path: format!("logs_contain[{index}]"),
                expected: format!("a lambda log of the call contains {}", quote(wanted)),
                actual: format!(
                    "not in the logs of {}",
                    if outcome.logs.is_empty() {
                        "any lambda (none were read)".to_owned()
                    } else {
                        outcome.logs.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                ),
            });
        }
    }
    for (index, unwanted) in expect.logs_not_contain.iter().enumerate() {
        for (lambda, log) in &outcome.logs {
            if let Some(line) = log.lines().find(|line| line.contains(unwanted.as_str())) {
                mismatches.push(Mismatch {
                    path: format!("logs_not_contain[{index}]"),
                    expected: format!("no lambda log of the call contains {}", quote(unwanted)),
                    actual: format!("{lambda}: {}", quote(line)),
                });
            }
        }
    }
    for (index, expected) in expect.iam.iter().enumerate() {
        if !outcome
            .iam
            .iter()
            .any(|actual| iam_matches(expected, actual))
        {
            mismatches.push(Mismatch {
                path: format!("iam[{index}]"),
                expected: expected.to_string(),
                actual: describe_iam(&outcome.iam),
            });
        }
    }

    Verdict {
        scenario: scenario.name.clone(),
        mismatches,
        email_pairs,
    }
}

/// The actual status with the error that came with it, e.g.
/// `function_error (CalleeFailed): "ValidationError: invalid alert.priority"`.
fn describe_status(outcome: &Outcome) -> String {
    let mut text = outcome.status.to_string();
    if let Some(error_type) = &outcome.error_type {
        text.push_str(&format!(" ({error_type})"));
    }
    if let Some(message) = &outcome.error_message {
        text.push_str(&format!(": {}", quote(message)));
    }
    text
}

/// Adds a mismatch for every place where `actual` does not contain `expected` (module rules).
fn subset_mismatches(path: &str, expected: &Value, actual: &Value, out: &mut Vec<Mismatch>) {
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            for (key, expected) in expected {
                let path = format!("{path}.{key}");
                match actual.get(key) {
                    Some(actual) => subset_mismatches(&path, expected, actual, out),
                    None => out.push(Mismatch {
                        path,
                        expected: show_json(expected),
                        actual: "absent".to_owned(),
                    }),
                }
            }
        }
        (Value::Array(expected_items), Value::Array(actual_items)) => {
            if expected_items.len() != actual_items.len() {
                out.push(Mismatch {
                    path: path.to_owned(),
                    expected: format!("{} ({} items)", show_json(expected), expected_items.len()),
                    actual: format!("{} ({} items)", show_json(actual), actual_items.len()),
                });
                return;
            }
            for (index, (expected, actual)) in expected_items.iter().zip(actual_items).enumerate() {
                subset_mismatches(&format!("{path}[{index}]"), expected, actual, out);
            }
        }
        (Value::Number(expected_number), Value::Number(actual_number)) => {
            if expected_number != actual_number
                && expected_number.as_f64() != actual_number.as_f64()
            {
                out.push(Mismatch {
                    path: path.to_owned(),
                    expected: show_json(expected),
                    actual: show_json(actual),
                });
            }
        }
        (expected, actual) => {
            if expected != actual {
                out.push(Mismatch {
                    path: path.to_owned(),
                    expected: show_json(expected),
                    actual: show_json(actual),
                });
            }
        }
    }
}

/// Pairs expected with received emails at the lowest total mismatch count, records the
/// mismatches of each pair and every unpaired email, and returns the pairs.
fn check_emails(
    expected: &[ExpectedEmail],
    received: &[CapturedEmail],
    out: &mut Vec<Mismatch>,
) -> Vec<EmailPair> {
    let costs: Vec<Vec<Vec<Mismatch>>> = expected
        .iter()
        .enumerate()
        .map(|(index, expected)| {
            received
                .iter()
                .map(|received| email_mismatches(index, expected, received))
                .collect()
        })
        .collect();
    let assignment = if received.len() <= EXHAUSTIVE_LIMIT {
        best_assignment(&costs, received.len())
    } else {
        greedy_assignment(&costs, received.len())
    };

    let mut pairs = Vec::new();
    for (index, choice) in assignment.iter().enumerate() {
        match choice {
            Some(received_index) => {
                pairs.push(EmailPair {
                    expected: index,
                    received: *received_index,
                });
                out.extend(costs[index][*received_index].iter().cloned());
                // Added after pairing, not to the pairing costs: the same for every expected
                // email, they would only steer the pairing away from the faulty email.
                out.extend(duplicate_header_mismatches(
                    index,
                    &received[*received_index],
                ));
            }
            None => out.push(Mismatch {
                path: format!("emails[{index}]"),
                expected: describe_expected_email(&expected[index]),
                actual: "no matching email received".to_owned(),
            }),
        }
    }
    let paired: BTreeSet<usize> = pairs.iter().map(|pair| pair.received).collect();
    for (index, email) in received.iter().enumerate() {
        if !paired.contains(&index) {
            out.push(Mismatch {
                path: format!("received_emails[{index}]"),
                expected: "no such email".to_owned(),
                actual: format!("unexpected email {}", describe_received_email(email)),
            });
        }
    }
    pairs
}

/// Exhaustive search over which received email each expected one takes (or none),
/// memoised on the set of received emails already taken.
fn best_assignment(costs: &[Vec<Vec<Mismatch>>], received: usize) -> Vec<Option<usize>> {
    fn search(
        costs: &[Vec<Vec<Mismatch>>],
        received: usize,
        index: usize,
        taken: u32,
        memo: &mut HashMap<(usize, u32), (usize, Option<usize>)>,
    ) -> usize {
        if index == costs.len() {
            return UNPAIRED_COST * (received - taken.count_ones() as usize);
        }
        if let Some((cost, _)) = memo.get(&(index, taken)) {
            return *cost;
        }
        let mut best = (
            UNPAIRED_COST + search(costs, received, index + 1, taken, memo),
            None,
        );
        for choice in 0..received {
            if taken & (1 << choice) == 0 {
                let cost = costs[index][choice].len()
                    + search(costs, received, index + 1, taken | (1 << choice), memo);
                if cost < best.0 {
                    best = (cost, Some(choice));
                }
            }
        }
        memo.insert((index, taken), best);
        best.0
    }

    let mut memo = HashMap::new();
    search(costs, received, 0, 0, &mut memo);
    let mut taken = 0u32;
    let mut assignment = Vec::with_capacity(costs.len());
    for index in 0..costs.len() {
        let choice = memo.get(&(index, taken)).and_then(|(_, choice)| *choice);
        if let Some(choice) = choice {
            taken |= 1 << choice;
        }
        assignment.push(choice);
    }
    assignment
}

fn greedy_assignment(costs: &[Vec<Vec<Mismatch>>], received: usize) -> Vec<Option<usize>> {
    let mut taken = vec![false; received];
    costs
        .iter()
        .map(|row| {
            let choice = (0..received)
                .filter(|choice| !taken[*choice])
                .min_by_key(|choice| row[*choice].len());
            if let Some(choice) = choice {
                taken[choice] = true;
            }
            choice
        })
        .collect()
}

fn email_mismatches(
    index: usize,
    expected: &ExpectedEmail,
    actual: &CapturedEmail,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let path = |field: &str| format!("emails[{index}].{field}");
    for (field, expected, actual) in [
        ("to", &expected.to, &actual.to),
        ("cc", &expected.cc, &actual.cc),
    ] {
        if let Some(expected) = expected
            && address_set(expected) != address_set(actual)
        {
            out.push(Mismatch {
                path: path(field),
                expected: show_list(expected),
                actual: show_list(actual),
            });
        }
    }
    if let Some(mismatch) = envelope_mismatch(index, expected, actual) {
        out.push(mismatch);
    }
    if let Some(from) = &expected.from
        && normalize_address(from) != normalize_address(&actual.from)
    {
        out.push(Mismatch {
            path: path("from"),
            expected: quote(from),
            actual: quote(&actual.from),
        });
    }
    match &expected.subject {
        Some(SubjectRule::Exact(subject)) if subject != &actual.subject => out.push(Mismatch {
            path: path("subject"),
            expected: quote(subject),
            actual: quote(&actual.subject),
        }),
        Some(SubjectRule::Contains(needle)) if !actual.subject.contains(needle.as_str()) => {
            out.push(Mismatch {
                path: path("subject"),
                expected: format!("contains {}", quote(needle)),
                actual: quote(&actual.subject),
            });
        }
        _ => {}
    }
    for needle in &expected.text_contains {
        if !actual
            .text
            .as_deref()
            .is_some_and(|text| text.contains(needle.as_str()))
        {
            out.push(Mismatch {
                path: path("text"),
                expected: format!("contains {}", quote(needle)),
                actual: quote_option(actual.text.as_deref()),
            });
        }
    }
    for needle in &expected.html_contains {
        if !actual
            .html
            .as_deref()
            .is_some_and(|html| html.contains(needle.as_str()))
        {
            out.push(Mismatch {
                path: path("html"),
                expected: format!("contains {}", quote(needle)),
                actual: quote_option(actual.html.as_deref()),
            });
        }
    }
    for needle in &expected.html_not_contains {
        if let Some(html) = &actual.html
            && html.contains(needle.as_str())
        {
            out.push(Mismatch {
                path: path("html"),
                expected: format!("does not contain {}", quote(needle)),
                actual: quote(html),
            });
        }
    }
    for (name, value) in &expected.headers {
        let values: Vec<&str> = actual.header_values(name).collect();
        // Every copy must match: a reader may take any one of them, not the one we checked.
        if values.is_empty() || values.iter().any(|actual| actual.trim() != value.trim()) {
            out.push(Mismatch {
                path: path(&format!("headers.{name}")),
                expected: quote(value),
                actual: if values.is_empty() {
                    "absent".to_owned()
                } else {
                    show_values(&values)
                },
            });
        }
    }
    out
}

/// The envelope mismatch of an expected email that states recipients, if the received
/// envelope is not exactly its `To` and `Cc` header addresses plus the expected `bcc`.
fn envelope_mismatch(
    index: usize,
    expected: &ExpectedEmail,
    actual: &CapturedEmail,
) -> Option<Mismatch> {
    if expected.to.is_none() && expected.cc.is_none() && expected.bcc.is_none() {
        return None;
    }
    // Built from the received headers, not the expected `to`/`cc`: a header difference is
    // already reported on its own field, and should not be reported twice.
    let bcc = expected.bcc.as_deref().unwrap_or_default();
    let wanted: Vec<String> = actual
        .to
        .iter()
        .chain(&actual.cc)
        .chain(bcc)
        .cloned()
        .collect();
    let wanted = envelope_set(&wanted);
    if wanted == envelope_set(&actual.envelope_to) {
        return None;
    }
    let wanted: Vec<String> = wanted.into_iter().collect();
    Some(Mismatch {
        path: format!("emails[{index}].envelope"),
        expected: format!("To + Cc + bcc {}", show_list(&wanted)),
        actual: show_list(&actual.envelope_to),
    })
}

/// A mismatch for every single-instance header that `actual` carries more than once.
fn duplicate_header_mismatches(index: usize, actual: &CapturedEmail) -> Vec<Mismatch> {
    SINGLE_INSTANCE_HEADERS
        .iter()
        .filter_map(|name| {
            let values: Vec<&str> = actual.header_values(name).collect();
            (values.len() > 1).then(|| Mismatch {
                path: format!("emails[{index}].headers.{name}"),
                expected: "at most one".to_owned(),
                actual: format!("{} headers: {}", values.len(), show_values(&values)),
            })
        })
        .collect()
}

/// The address itself, without display name, with the domain lowercased (domains are
/// case-insensitive; local parts are not, by RFC 5321).
fn normalize_address(address: &str) -> String {
    let address = address.trim();
    let bare = match (address.rfind('<'), address.rfind('>')) {
        (Some(open), Some(close)) if open < close => &address[open + 1..close],
        _ => address,
    };
    match bare.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
        None => bare.to_owned(),
    }
}

fn address_set(addresses: &[String]) -> BTreeSet<String> {
    addresses.iter().map(|a| normalize_address(a)).collect()
}

/// Envelope addresses ignore case entirely: mail servers treat `RCPT TO` case-insensitively
/// in practice, and a case variant is no smuggled recipient.
fn envelope_set(addresses: &[String]) -> BTreeSet<String> {
    addresses
        .iter()
        .map(|a| normalize_address(a).to_lowercase())
        .collect()
}

fn iam_matches(expected: &ExpectedIamDecision, actual: &IamDecision) -> bool {
    expected.decision == actual.decision
        && expected.action.eq_ignore_ascii_case(&actual.action)
        && expected
            .principal
            .as_deref()
            .is_none_or(|p| actual.principal.contains(p))
        && expected
            .resource
            .as_deref()
            .is_none_or(|r| actual.resource.contains(r))
}

fn describe_iam(decisions: &[IamDecision]) -> String {
    if decisions.is_empty() {
        return "no IAM decision recorded".to_owned();
    }
    let listed: Vec<String> = decisions.iter().map(ToString::to_string).collect();
    format!("recorded: {}", listed.join("; "))
}

fn describe_expected_email(email: &ExpectedEmail) -> String {
    let mut parts = Vec::new();
    if let Some(to) = &email.to {
        parts.push(format!("to {}", show_list(to)));
    }
    match &email.subject {
        Some(SubjectRule::Exact(subject)) => parts.push(format!("subject {}", quote(subject))),
        Some(SubjectRule::Contains(needle)) => {
            parts.push(format!("subject containing {}", quote(needle)));
        }
        None => {}
    }
    if parts.is_empty() {
        "an email".to_owned()
    } else {
        format!("an email {}", parts.join(", "))
    }
}

fn describe_received_email(email: &CapturedEmail) -> String {
    format!(
        "from {} to {} cc {} subject {}",
        quote(&email.from),
        show_list(&email.to),
        show_list(&email.cc),
        quote(&email.subject)
    )
}

/// A string as a JSON literal: quoted, with CR, LF and control characters made visible.
fn quote(text: &str) -> String {
    serde_json::to_string(&truncate(text)).unwrap_or_else(|_| format!("{text:?}"))
}

fn quote_option(text: Option<&str>) -> String {
    text.map_or_else(|| "absent".to_owned(), quote)
}

/// Header values, each quoted, separated by commas.
fn show_values(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| quote(v))
        .collect::<Vec<_>>()
        .join(", ")
}

fn show_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| format!("{items:?}"))
}

fn show_json(value: &Value) -> String {
    truncate(&value.to_string()).into_owned()
}

fn truncate(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= DISPLAY_LIMIT {
        return text.into();
    }
    let mut end = DISPLAY_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end).into()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rstest::rstest;
    use serde_json::json;

    use super::*;
    use crate::{OutcomeStatus, model::Decision, parse_str};

    fn scenario(expect: &str) -> Scenario {
        parse_str(
            Path::new("scenarios/t.yaml"),
            &format!("name: t\ninvoke: {{ payload: {{}} }}\nexpect:\n{expect}"),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn success() -> Outcome {
        Outcome {
            status: OutcomeStatus::Success,
            ..Outcome::default()
        }
    }

    /// A received email as the callee sends it: the envelope is exactly its `To` header,
    /// and each header appears once.
    fn email(to: &[&str], subject: &str) -> CapturedEmail {
        let to: Vec<String> = to.iter().map(|s| (*s).to_owned()).collect();
        CapturedEmail {
            envelope_from: "alerts@example.com".to_owned(),
            envelope_to: to.clone(),
            from: "alerts@example.com".to_owned(),
            to,
            cc: vec![],
            subject: subject.to_owned(),
            text: Some(format!("{subject}\nbody text")),
            html: Some(format!("<p>{subject}</p>")),
            headers: vec![
                ("Subject".to_owned(), subject.to_owned()),
                ("X-ServiceNow-Number".to_owned(), "INC0000001".to_owned()),
            ],
            ..CapturedEmail::default()
        }
    }

    fn paths(verdict: &Verdict) -> Vec<&str> {
        verdict.mismatches.iter().map(|m| m.path.as_str()).collect()
    }

    #[rstest]
    #[case::in_the_callees_log(&["smtp server accepted the message attempts=2"], true)]
    #[case::in_either_log(&["attempts=2", "callee answered"], true)]
    #[case::absent(&["attempts=3"], false)]
    fn logs_contain_looks_in_every_lambdas_log(#[case] wanted: &[&str], #[case] passes: bool) {
        let list = wanted
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let scenario = scenario(&format!("  status: success\n  logs_contain: [{list}]\n"));
        let mut outcome = success();
        outcome.logs.insert(
            "servicenow-alert".into(),
            "INFO smtp server accepted the message attempts=2\n".into(),
        );
        outcome
            .logs
            .insert("servicenow-invoker".into(), "INFO callee answered\n".into());

        let verdict = check(&scenario, &outcome);

        assert_eq!(verdict.passed(), passes, "{:?}", verdict.mismatches);
        if !passes {
            assert_eq!(paths(&verdict), ["logs_contain[0]"]);
        }
    }

    #[test]
    fn logs_not_contain_names_the_lambda_and_line() {
        let scenario = scenario("  status: success\n  logs_not_contain: [retrying]\n");
        let mut outcome = success();
        outcome.logs.insert(
            "servicenow-alert".into(),
            "START\nWARN transient smtp failure, retrying attempt=1\nEND\n".into(),
        );

        let verdict = check(&scenario, &outcome);

        assert_eq!(paths(&verdict), ["logs_not_contain[0]"]);
        assert_eq!(
            verdict.mismatches[0].actual,
            "servicenow-alert: \"WARN transient smtp failure, retrying attempt=1\""
        );
        outcome
            .logs
            .insert("servicenow-alert".into(), "START\nEND\n".into());
        assert!(check(&scenario, &outcome).passed());
    }

    #[test]
    fn matching_status_passes() {
        let verdict = check(&scenario("  status: success\n"), &success());

        assert!(verdict.passed(), "{:?}", verdict.mismatches);
        assert_eq!(verdict.scenario, "t");
    }

    #[test]
    fn status_mismatch_shows_the_actual_error() {
        let outcome = Outcome {
            status: OutcomeStatus::FunctionError,
            error_type: Some("CalleeFailed".to_owned()),
            error_message: Some("ValidationError: invalid alert.priority".to_owned()),
            ..Outcome::default()
        };

        let verdict = check(&scenario("  status: success\n"), &outcome);

        assert_eq!(
            verdict.mismatches,
            [Mismatch {
                path: "status".to_owned(),
                expected: "success".to_owned(),
                actual:
                    "function_error (CalleeFailed): \"ValidationError: invalid alert.priority\""
                        .to_owned(),
            }]
        );
    }

    #[rstest]
    #[case::success("success")]
    #[case::function_error("function_error")]
    #[case::denied("denied")]
    #[case::invalid_request("invalid_request")]
    #[case::deploy_failed("deploy_failed")]
    fn a_harness_error_never_passes(#[case] status: &str) {
        let outcome = Outcome {
            error_message: Some("deploy failed".to_owned()),
            ..Outcome::default()
        };

        let verdict = check(&scenario(&format!("  status: {status}\n")), &outcome);

        assert_eq!(paths(&verdict), ["status"]);
        assert_eq!(verdict.mismatches[0].actual, "error: \"deploy failed\"");
    }

    #[rstest]
    #[case::type_and_message_match("CalleeFailed", "ValidationError: bad", &[])]
    #[case::type_differs("InvokeDenied", "ValidationError: bad", &["error_type"])]
    #[case::type_is_exact_not_a_prefix("CalleeFailedX", "ValidationError: bad", &["error_type"])]
    #[case::message_lacks_substring("CalleeFailed", "something else", &["error_message"])]
    #[case::both_differ("Other", "other", &["error_type", "error_message"])]
    fn error_type_is_exact_and_message_a_substring(
        #[case] error_type: &str,
        #[case] message: &str,
        #[case] expected: &[&str],
    ) {
        let scenario = scenario(
            "  status: function_error\n  error_type: CalleeFailed\n  error_message_contains: \"ValidationError:\"\n",
        );
        let outcome = Outcome {
            status: OutcomeStatus::FunctionError,
            error_type: Some(error_type.to_owned()),
            error_message: Some(message.to_owned()),
            ..Outcome::default()
        };

        assert_eq!(paths(&check(&scenario, &outcome)), expected);
    }

    #[test]
    fn absent_error_fields_are_reported_as_absent() {
        let scenario = scenario(
            "  status: denied\n  error_type: AssumeRoleDenied\n  error_message_contains: AccessDenied\n",
        );
        let outcome = Outcome {
            status: OutcomeStatus::Denied,
            ..Outcome::default()
        };

        let verdict = check(&scenario, &outcome);

        assert_eq!(paths(&verdict), ["error_type", "error_message"]);
        assert!(verdict.mismatches.iter().all(|m| m.actual == "absent"));
    }

    #[rstest]
    #[case::extra_actual_keys_are_fine(json!({"a": 1}), json!({"a": 1, "b": 2}), &[])]
    #[case::missing_key(json!({"a": 1, "c": 3}), json!({"a": 1}), &["response.c"])]
    #[case::nested_objects_are_subsets(json!({"a": {"b": 1}}), json!({"a": {"b": 1, "z": 0}}), &[])]
    #[case::nested_value_differs(json!({"a": {"b": 1}}), json!({"a": {"b": 2}}), &["response.a.b"])]
    #[case::arrays_need_equal_length(json!({"l": [1]}), json!({"l": [1, 2]}), &["response.l"])]
    #[case::arrays_compare_in_order(json!({"l": [1, 2]}), json!({"l": [2, 1]}), &["response.l[0]", "response.l[1]"])]
    #[case::array_elements_are_subsets(json!({"l": [{"a": 1}]}), json!({"l": [{"a": 1, "b": 2}]}), &[])]
    #[case::numbers_compare_by_value(json!({"n": 1}), json!({"n": 1.0}), &[])]
    #[case::number_is_not_a_string(json!({"n": 1}), json!({"n": "1"}), &["response.n"])]
    #[case::null_matches_only_null(json!({"n": null}), json!({"n": 0}), &["response.n"])]
    #[case::type_change_object_to_array(json!({"a": {}}), json!({"a": []}), &["response.a"])]
    #[case::scalar_response(json!("ok"), json!("ok"), &[])]
    fn response_subset_rules(
        #[case] expected: Value,
        #[case] actual: Value,
        #[case] mismatching: &[&str],
    ) {
        let scenario = scenario(&format!("  status: success\n  response: {expected}\n"));
        let outcome = Outcome {
            response: Some(actual),
            ..success()
        };

        assert_eq!(paths(&check(&scenario, &outcome)), mismatching);
    }

    #[test]
    fn expected_response_without_any_response_is_a_mismatch() {
        let scenario = scenario("  status: success\n  response: { accepted: [a@example.com] }\n");

        let verdict = check(&scenario, &success());

        assert_eq!(verdict.mismatches[0].path, "response");
        assert_eq!(verdict.mismatches[0].actual, "no response");
    }

    #[test]
    fn response_mismatch_shows_json_values() {
        let scenario = scenario("  status: success\n  response: { accepted: [a@example.com] }\n");
        let outcome = Outcome {
            response: Some(json!({"accepted": ["b@example.com"]})),
            ..success()
        };

        let verdict = check(&scenario, &outcome);

        assert_eq!(
            verdict.mismatches,
            [Mismatch {
                path: "response.accepted[0]".to_owned(),
                expected: "\"a@example.com\"".to_owned(),
                actual: "\"b@example.com\"".to_owned(),
            }]
        );
    }

    #[test]
    fn emails_match_in_any_order() {
        let scenario = scenario(
            "  status: success\n  emails:\n    - { to: [a@example.com], subject: one }\n    - { to: [b@example.com], subject: two }\n",
        );
        let outcome = Outcome {
            emails: vec![
                email(&["b@example.com"], "two"),
                email(&["a@example.com"], "one"),
            ],
            ..success()
        };

        let verdict = check(&scenario, &outcome);

        assert!(verdict.passed(), "{:?}", verdict.mismatches);
        assert_eq!(
            verdict.email_pairs,
            [
                EmailPair {
                    expected: 0,
                    received: 1
                },
                EmailPair {
                    expected: 1,
                    received: 0
                }
            ]
        );
    }

    #[test]
    fn pairing_minimises_mismatches_where_greedy_would_not() {
        // Expected #0 fits both received emails; only the exhaustive search leaves received
        // #0 (the one expected #1 needs) for expected #1.
        let scenario = scenario(
            "  status: success\n  emails:\n    - { subject_contains: INC }\n    - { subject: \"INC1 first\" }\n",
        );
        let outcome = Outcome {
            emails: vec![
                email(&["a@example.com"], "INC1 first"),
                email(&["a@example.com"], "INC2 second"),
            ],
            ..success()
        };

        let verdict = check(&scenario, &outcome);

        assert!(verdict.passed(), "{:?}", verdict.mismatches);
        let greedy = greedy_assignment(
            &[
                vec![vec![], vec![]],
                vec![
                    vec![],
                    vec![Mismatch {
                        path: String::new(),
                        expected: String::new(),
                        actual: String::new(),
                    }],
                ],
            ],
            2,
        );
        assert_eq!(greedy, [Some(0), Some(1)], "greedy would pair badly here");
    }

    #[test]
    fn a_missing_email_and_an_unexpected_one_are_both_reported() {
        let scenario = scenario(
            "  status: success\n  emails:\n    - { to: [a@example.com], subject: one }\n    - { to: [b@example.com], subject: two }\n",
        );
        let outcome = Outcome {
            emails: vec![email(&["a@example.com"], "one")],
            ..success()
        };

        let verdict = check(&scenario, &outcome);

        assert_eq!(paths(&verdict), ["emails[1]"]);
        assert_eq!(verdict.mismatches[0].actual, "no matching email received");
        assert!(verdict.mismatches[0].expected.contains("\"two\""));
    }

    #[test]
    fn no_emails_expected_but_one_received() {
        let scenario = scenario("  status: success\n  emails: []\n");
        let outcome = Outcome {
            emails: vec![email(&["a@example.com"], "leak")],
            ..success()
        };

        let verdict = check(&scenario, &outcome);

        assert_eq!(paths(&verdict), ["received_emails[0]"]);
        assert!(verdict.mismatches[0].actual.contains("\"leak\""));
    }

    #[test]
    fn absent_emails_are_not_checked() {
        let outcome = Outcome {
            emails: vec![email(&["a@example.com"], "anything")],
            ..success()
        };

        assert!(check(&scenario("  status: success\n"), &outcome).passed());
    }

    #[rstest]
    #[case::sets_ignore_order("to: [a@example.com, b@example.com]", &["b@example.com", "a@example.com"], &[])]
    #[case::sets_ignore_duplicates("to: [a@example.com]", &["a@example.com", "a@example.com"], &[])]
    #[case::domain_is_case_insensitive("to: [a@Example.COM]", &["a@example.com"], &[])]
    #[case::local_part_is_case_sensitive("to: [A@example.com]", &["a@example.com"], &["emails[0].to"])]
    #[case::display_names_are_ignored("to: [a@example.com]", &["Ada <a@example.com>"], &[])]
    #[case::missing_recipient("to: [a@example.com, b@example.com]", &["a@example.com"], &["emails[0].to"])]
    #[case::extra_recipient("to: [a@example.com]", &["a@example.com", "c@example.com"], &["emails[0].to"])]
    #[case::empty_cc_requires_no_cc("cc: []", &["a@example.com"], &[])]
    fn address_rules(#[case] rule: &str, #[case] to: &[&str], #[case] mismatching: &[&str]) {
        let scenario = scenario(&format!(
            "  status: success\n  emails:\n    - {{ {rule} }}\n"
        ));
        let outcome = Outcome {
            emails: vec![email(to, "s")],
            ..success()
        };

        assert_eq!(paths(&check(&scenario, &outcome)), mismatching);
    }

    #[test]
    fn cc_is_compared_too() {
        let scenario = scenario("  status: success\n  emails:\n    - { cc: [] }\n");
        let mut received = email(&["a@example.com"], "s");
        received.cc = vec!["boss@example.com".to_owned()];
        received.envelope_to.push("boss@example.com".to_owned());
        let outcome = Outcome {
            emails: vec![received],
            ..success()
        };

        let verdict = check(&scenario, &outcome);

        assert_eq!(
            verdict.mismatches,
            [Mismatch {
                path: "emails[0].cc".to_owned(),
                expected: "[]".to_owned(),
                actual: "[\"boss@example.com\"]".to_owned(),
            }]
        );
    }

    #[rstest]
    #[case::envelope_is_to_and_cc("to: [a@example.com], cc: [boss@example.com]", &["a@example.com", "boss@example.com"], &[])]
    #[case::extra_envelope_recipient_is_a_smuggled_bcc("to: [a@example.com], cc: [boss@example.com]", &["a@example.com", "boss@example.com", "spy@example.com"], &["emails[0].envelope"])]
    #[case::bcc_lists_the_extra_envelope_recipient("to: [a@example.com], bcc: [spy@example.com]", &["a@example.com", "boss@example.com", "spy@example.com"], &[])]
    #[case::bcc_alone_checks_the_envelope("bcc: []", &["a@example.com", "boss@example.com", "spy@example.com"], &["emails[0].envelope"])]
    #[case::expected_bcc_missing_from_the_envelope("to: [a@example.com], bcc: [spy@example.com]", &["a@example.com", "boss@example.com"], &["emails[0].envelope"])]
    #[case::header_recipient_missing_from_the_envelope("to: [a@example.com]", &["a@example.com"], &["emails[0].envelope"])]
    #[case::empty_envelope_does_not_pass("to: [a@example.com]", &[], &["emails[0].envelope"])]
    #[case::envelope_ignores_case_and_order("to: [a@example.com]", &["BOSS@Example.com", "A@EXAMPLE.COM"], &[])]
    #[case::envelope_ignores_duplicates("to: [a@example.com]", &["a@example.com", "boss@example.com", "a@example.com"], &[])]
    #[case::envelope_not_checked_without_recipients("subject: s", &["spy@example.com"], &[])]
    fn envelope_rules(#[case] rule: &str, #[case] envelope: &[&str], #[case] mismatching: &[&str]) {
        let scenario = scenario(&format!(
            "  status: success\n  emails:\n    - {{ {rule} }}\n"
        ));
        let mut received = email(&["a@example.com"], "s");
        received.cc = vec!["boss@example.com".to_owned()];
        received.envelope_to = envelope.iter().map(|s| (*s).to_owned()).collect();
        let outcome = Outcome {
            emails: vec![received],
            ..success()
        };

        assert_eq!(paths(&check(&scenario, &outcome)), mismatching);
    }

    #[rstest]
    #[case::in_time(1_000, 1_400, true)]
    #[case::exactly_at_the_bound(1_000, 1_500, true)]
    #[case::late(1_000, 1_501, false)]
    fn within_ms_bounds_when_emails_arrive(
        #[case] started: u64,
        #[case] received: u64,
        #[case] passes: bool,
    ) {
        let scenario = scenario(
            "  status: success\n  within_ms: 500\n  emails:\n    - { to: [a@example.com] }\n",
        );
        let mut email = email(&["a@example.com"], "s");
        email.received_at_ms = received;
        let outcome = Outcome {
            emails: vec![email],
            started_at_ms: Some(started),
            ..success()
        };

        let verdict = check(&scenario, &outcome);

        assert_eq!(verdict.passed(), passes, "{:?}", verdict.mismatches);
        if !passes {
            assert_eq!(verdict.mismatches[0].actual, "arrived after 501 ms");
        }
    }

    #[test]
    fn envelope_mismatch_lists_the_envelope() {
        let scenario = scenario("  status: success\n  emails:\n    - { to: [a@example.com] }\n");
        let mut received = email(&["a@example.com"], "s");
        received.envelope_to.push("spy@example.com".to_owned());
        let outcome = Outcome {
            emails: vec![received],
            ..success()
        };

        let verdict = check(&scenario, &outcome);

        assert_eq!(
            verdict.mismatches,
            [Mismatch {
                path: "emails[0].envelope".to_owned(),
                expected: "To + Cc + bcc [\"a@example.com\"]".to_owned(),
                actual: "[\"a@example.com\",\"spy@example.com\"]".to_owned(),
            }]
        );
    }

    #[rstest]
    #[case::one_subject_passes(&[], &[])]
    #[case::duplicated_subject(&[("Subject", "s")], &["emails[0].headers.Subject"])]
    #[case::duplicate_names_ignore_case(&[("SUBJECT", "other")], &["emails[0].headers.Subject"])]
    #[case::duplicated_to(&[("To", "a@example.com"), ("to", "spy@example.com")], &["emails[0].headers.To"])]
    #[case::each_duplicated_header_is_reported(&[("Message-ID", "<1@x>"), ("Message-Id", "<2@x>"), ("Subject", "s")], &["emails[0].headers.Message-ID", "emails[0].headers.Subject"])]
    #[case::repeatable_headers_may_repeat(&[("Received", "a"), ("Received", "b")], &[])]
    fn single_instance_headers_appear_at_most_once(
        #[case] extra_headers: &[(&str, &str)],
        #[case] mismatching: &[&str],
    ) {
        let scenario = scenario("  status: success\n  emails:\n    - { subject: s }\n");
        let mut received = email(&["a@example.com"], "s");
        received.headers.extend(
            extra_headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        );
        let outcome = Outcome {
            emails: vec![received],
            ..success()
        };

        assert_eq!(paths(&check(&scenario, &outcome)), mismatching);
    }

    /// An email nobody can attribute fails the scenario, whatever `emails` expects.
    #[rstest]
    #[case::no_email_expected("  status: success\n  emails: []\n")]
    #[case::emails_not_checked("  status: success\n")]
    #[case::its_own_email_expected("  status: success\n  emails:\n    - { subject: s }\n")]
    fn an_email_without_a_known_trace_id_fails_the_scenario(#[case] expect: &str) {
        let scenario = scenario(expect);
        let mut stray = email(&["victim@example.com"], "[P1] INC0000666: pay now");
        stray.headers.push((
            "X-Amzn-Trace-Id".to_owned(),
            "Root=1-00000000-000000000000000000000000".to_owned(),
        ));
        let own = email(&["a@example.com"], "s");
        let outcome = Outcome {
            emails: if expect.contains("subject: s") {
                vec![own]
            } else {
                vec![]
            },
            stray_emails: vec![stray],
            ..success()
        };

        let verdict = check(&scenario, &outcome);

        assert_eq!(paths(&verdict), ["stray_emails[0]"]);
        let actual = &verdict.mismatches[0].actual;
        assert!(actual.contains("[P1] INC0000666: pay now"), "{actual}");
        assert!(
            actual.contains("Root=1-00000000-000000000000000000000000"),
            "{actual}"
        );
    }

    #[test]
    fn duplicate_header_mismatch_shows_every_value() {
        let scenario = scenario("  status: success\n  emails:\n    - { subject: s }\n");
        let mut received = email(&["a@example.com"], "s");
        received
            .headers
            .push(("Subject".to_owned(), "urgent: wire money".to_owned()));
        let outcome = Outcome {
            emails: vec![received],
            ..success()
        };

        let verdict = check(&scenario, &outcome);

        assert_eq!(
            verdict.mismatches,
            [Mismatch {
                path: "emails[0].headers.Subject".to_owned(),
                expected: "at most one".to_owned(),
                actual: "2 headers: \"s\", \"urgent: wire money\"".to_owned(),
            }]
        );
    }

    #[rstest]
    #[case::repeated_with_the_expected_value(&["INC0000001"], &[])]
    #[case::repeated_with_another_value(&["INC0000002"], &["emails[0].headers.X-ServiceNow-Number"])]
    fn an_expected_header_must_match_every_copy(
        #[case] extra_values: &[&str],
        #[case] mismatching: &[&str],
    ) {
        let scenario = scenario(
            "  status: success\n  emails:\n    - { headers: { X-ServiceNow-Number: INC0000001 } }\n",
        );
        let mut received = email(&["a@example.com"], "s");
        received.headers.extend(
            extra_values
                .iter()
                .map(|value| ("X-ServiceNow-Number".to_owned(), (*value).to_owned())),
        );
        let outcome = Outcome {
            emails: vec![received],
            ..success()
        };

        assert_eq!(paths(&check(&scenario, &outcome)), mismatching);
    }

    #[rstest]
    #[case::from_matches("from: alerts@example.com", &[])]
    #[case::from_differs("from: other@example.com", &["emails[0].from"])]
    #[case::exact_subject("subject: \"[P1] INC0000001: down\"", &[])]
    #[case::exact_subject_is_not_a_substring("subject: \"[P1] INC0000001\"", &["emails[0].subject"])]
    #[case::subject_contains("subject_contains: INC0000001", &[])]
    #[case::subject_contains_fails("subject_contains: INC9", &["emails[0].subject"])]
    #[case::text_contains("text_contains: [body text, down]", &[])]
    #[case::text_contains_each_needle("text_contains: [body text, nope, nada]", &["emails[0].text", "emails[0].text"])]
    #[case::html_contains("html_contains: [\"<p>\"]", &[])]
    #[case::html_contains_fails("html_contains: [\"<a href=\"]", &["emails[0].html"])]
    #[case::html_not_contains("html_not_contains: [\"<script>\"]", &[])]
    #[case::html_not_contains_fails("html_not_contains: [\"<p>\"]", &["emails[0].html"])]
    #[case::header_name_case_insensitive("headers: { x-servicenow-number: INC0000001 }", &[])]
    #[case::header_value_exact("headers: { X-ServiceNow-Number: INC0000002 }", &["emails[0].headers.X-ServiceNow-Number"])]
    #[case::header_absent("headers: { X-ServiceNow-Priority: 1 }", &["emails[0].headers.X-ServiceNow-Priority"])]
    fn email_field_rules(#[case] rule: &str, #[case] mismatching: &[&str]) {
        let scenario = scenario(&format!(
            "  status: success\n  emails:\n    - {{ {rule} }}\n"
        ));
        let outcome = Outcome {
            emails: vec![email(&["a@example.com"], "[P1] INC0000001: down")],
            ..success()
        };

        assert_eq!(paths(&check(&scenario, &outcome)), mismatching);
    }

    #[test]
    fn html_expectations_on_an_email_without_html_fail_except_not_contains() {
        let scenario = scenario(
            "  status: success\n  emails:\n    - { html_contains: [x], html_not_contains: [\"<script>\"] }\n",
        );
        let mut received = email(&["a@example.com"], "s");
        received.html = None;
        let outcome = Outcome {
            emails: vec![received],
            ..success()
        };

        let verdict = check(&scenario, &outcome);

        assert_eq!(paths(&verdict), ["emails[0].html"]);
        assert_eq!(verdict.mismatches[0].actual, "absent");
    }

    #[test]
    fn header_injection_shows_up_escaped_in_the_diff() {
        let scenario = scenario("  status: success\n  emails:\n    - { subject: clean }\n");
        let outcome = Outcome {
            emails: vec![email(&["a@example.com"], "dirty\r\nBcc: x@evil.test")],
            ..success()
        };

        let verdict = check(&scenario, &outcome);

        assert_eq!(
            verdict.mismatches[0].actual,
            "\"dirty\\r\\nBcc: x@evil.test\""
        );
    }

    fn decision(action: &str, decision: Decision) -> IamDecision {
        IamDecision {
            principal: "arn:aws:iam::222222222222:role/alert-caller".to_owned(),
            action: action.to_owned(),
            resource: "arn:aws:iam::111111111111:role/cross-account".to_owned(),
            decision,
            explanation: "no statement allows it".to_owned(),
        }
    }

    #[rstest]
    #[case::matching_decision("{ action: \"sts:AssumeRole\", decision: deny }", &[])]
    #[case::action_is_case_insensitive("{ action: \"STS:assumerole\", decision: deny }", &[])]
    #[case::decision_differs("{ action: \"sts:AssumeRole\", decision: allow }", &["iam[0]"])]
    #[case::principal_substring("{ action: \"sts:AssumeRole\", decision: deny, principal: \"222222222222\" }", &[])]
    #[case::principal_differs("{ action: \"sts:AssumeRole\", decision: deny, principal: \"333333333333\" }", &["iam[0]"])]
    #[case::resource_substring("{ action: \"sts:AssumeRole\", decision: deny, resource: \"role/cross-account\" }", &[])]
    #[case::resource_differs("{ action: \"sts:AssumeRole\", decision: deny, resource: \"function:\" }", &["iam[0]"])]
    #[case::any_recorded_decision_counts("{ action: \"lambda:InvokeFunction\", decision: allow }", &[])]
    fn iam_rules(#[case] rule: &str, #[case] mismatching: &[&str]) {
        let scenario = scenario(&format!("  status: denied\n  iam:\n    - {rule}\n"));
        let outcome = Outcome {
            status: OutcomeStatus::Denied,
            iam: vec![
                decision("lambda:InvokeFunction", Decision::Allow),
                decision("sts:AssumeRole", Decision::Deny),
            ],
            ..Outcome::default()
        };

        assert_eq!(paths(&check(&scenario, &outcome)), mismatching);
    }

    #[test]
    fn iam_expectation_without_records_says_so() {
        let scenario = scenario(
            "  status: denied\n  iam:\n    - { action: \"sts:AssumeRole\", decision: deny }\n",
        );
        let outcome = Outcome {
            status: OutcomeStatus::Denied,
            ..Outcome::default()
        };

        let verdict = check(&scenario, &outcome);

        assert_eq!(verdict.mismatches[0].actual, "no IAM decision recorded");
        assert_eq!(verdict.mismatches[0].expected, "deny sts:AssumeRole");
    }

    #[test]
    fn long_actual_values_are_truncated_for_display() {
        let scenario =
            scenario("  status: success\n  emails:\n    - { text_contains: [needle] }\n");
        let mut received = email(&["a@example.com"], "s");
        received.text = Some("x".repeat(10_000));
        let outcome = Outcome {
            emails: vec![received],
            ..success()
        };

        let actual = &check(&scenario, &outcome).mismatches[0].actual;

        assert!(actual.len() < 2100, "{}", actual.len());
        assert!(actual.contains("8000 more bytes"), "{actual}");
    }
}
