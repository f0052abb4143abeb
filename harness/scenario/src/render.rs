//! Human-readable failure diffs and the pass/fail summary.

use std::{fmt::Write as _, io, time::Duration};

use crate::{check::Verdict, model::Scenario, outcome::Outcome};

/// One finished scenario: what was expected, what happened and the verdict.
#[derive(Debug, Clone, Copy)]
pub struct ScenarioResult<'a> {
    /// The scenario that ran.
    pub scenario: &'a Scenario,
    /// What happened.
    pub outcome: &'a Outcome,
    /// The checker's verdict on it.
    pub verdict: &'a Verdict,
}

impl ScenarioResult<'_> {
    /// True when the verdict has no mismatch.
    pub fn passed(&self) -> bool {
        self.verdict.passed()
    }
}

/// ANSI styling, applied only when asked to (a TTY), so plain output stays clean for files and CI.
#[derive(Clone, Copy)]
struct Style {
    color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
    fn green(self, text: &str) -> String {
        self.paint("32", text)
    }
    fn red(self, text: &str) -> String {
        self.paint("31", text)
    }
}

/// The field-by-field diff of a verdict: one block per mismatch with expected and actual.
///
/// Returns an empty string for a passed verdict. `color` adds ANSI colours (for a TTY).
pub fn render_diff(verdict: &Verdict, color: bool) -> String {
    let style = Style { color };
    let mut out = String::new();
    for mismatch in &verdict.mismatches {
        let _ = writeln!(
            out,
            "  {}{}",
            style.bold(&mismatch.path),
            pairing_note(verdict, &mismatch.path)
        );
        let _ = writeln!(out, "    expected: {}", style.green(&mismatch.expected));
        let _ = writeln!(out, "    actual:   {}", style.red(&mismatch.actual));
    }
    out
}

/// Says which received email an `emails[N].field` mismatch was compared with.
fn pairing_note(verdict: &Verdict, path: &str) -> String {
    let Some(rest) = path.strip_prefix("emails[") else {
        return String::new();
    };
    let Some((index, field)) = rest.split_once(']') else {
        return String::new();
    };
    if field.is_empty() {
        return String::new();
    }
    let Ok(index) = index.parse::<usize>() else {
        return String::new();
    };
    verdict
        .email_pairs
        .iter()
        .find(|pair| pair.expected == index)
        .map(|pair| format!("  (compared with received_emails[{}])", pair.received))
        .unwrap_or_default()
}

/// A failure block for one scenario: its header line and its diff.
pub fn render_failure(result: &ScenarioResult<'_>, color: bool) -> String {
    let style = Style { color };
    format!(
        "{} {} ({})\n{}",
        style.red("FAIL"),
        style.bold(&result.scenario.name),
        result.scenario.file.display(),
        render_diff(result.verdict, color)
    )
}

/// Writes one line per scenario (PASS/FAIL, name, duration) and a totals line.
pub fn write_summary(
    out: &mut dyn io::Write,
    results: &[ScenarioResult<'_>],
    color: bool,
) -> io::Result<()> {
    let style = Style { color };
    let width = results
        .iter()
        .map(|r| r.scenario.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut total = Duration::ZERO;
    let mut failed = 0;
    for result in results {
        total += result.outcome.duration;
        let mark = if result.passed() {
            style.green("PASS")
        } else {
            failed += 1;
            style.red("FAIL")
        };
        let name = &result.scenario.name;
        let pad = width - name.chars().count();
        writeln!(
            out,
            "{mark}  {name}{}  {}",
            " ".repeat(pad),
            seconds(result.outcome.duration)
        )?;
    }
    let passed = results.len() - failed;
    let verdict = if failed == 0 {
        style.green("ok")
    } else {
        style.red("FAILED")
    };
    writeln!(
        out,
        "{verdict}: {} scenarios, {passed} passed, {failed} failed, {} in total",
        results.len(),
        seconds(total)
    )
}

fn seconds(duration: Duration) -> String {
    format!("{:.3}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{
        check::{EmailPair, Mismatch},
        parse_str,
    };

    fn scenario(name: &str) -> Scenario {
        parse_str(
            &PathBuf::from("scenarios/x.yaml"),
            &format!("name: {name}\ninvoke: {{ payload: {{}} }}\nexpect: {{ status: success }}\n"),
        )
        .expect("test scenario parses")
    }

    fn failing_verdict() -> Verdict {
        Verdict {
            scenario: "p1".to_owned(),
            mismatches: vec![
                Mismatch {
                    path: "status".to_owned(),
                    expected: "success".to_owned(),
                    actual: "function_error (CalleeFailed: boom)".to_owned(),
                },
                Mismatch {
                    path: "emails[0].subject".to_owned(),
                    expected: "\"[P1] INC0000001: a\"".to_owned(),
                    actual: "\"[P2] INC0000001: a\"".to_owned(),
                },
            ],
            email_pairs: vec![EmailPair {
                expected: 0,
                received: 2,
            }],
        }
    }

    #[test]
    fn diff_shows_every_field_with_expected_and_actual_and_the_paired_email() {
        let diff = render_diff(&failing_verdict(), false);

        assert_eq!(
            diff,
            "  status\n    expected: success\n    actual:   function_error (CalleeFailed: boom)\n\
             \x20 emails[0].subject  (compared with received_emails[2])\n    expected: \"[P1] INC0000001: a\"\n    actual:   \"[P2] INC0000001: a\"\n"
        );
    }

    #[test]
    fn plain_diff_has_no_escape_codes_and_colored_diff_has_them() {
        assert!(!render_diff(&failing_verdict(), false).contains('\x1b'));
        assert!(render_diff(&failing_verdict(), true).contains("\x1b[31m"));
    }

    #[test]
    fn failure_block_names_scenario_and_file_before_the_diff() {
        let scenario = scenario("p1");
        let outcome = Outcome::default();
        let verdict = failing_verdict();

        let block = render_failure(
            &ScenarioResult {
                scenario: &scenario,
                outcome: &outcome,
                verdict: &verdict,
            },
            false,
        );

        let (header, diff) = block.split_once('\n').expect("header line");
        assert_eq!(header, "FAIL p1 (scenarios/x.yaml)");
        assert_eq!(diff, render_diff(&verdict, false));
    }

    #[test]
    fn passed_verdict_renders_no_diff() {
        assert_eq!(render_diff(&Verdict::default(), false), "");
    }

    #[test]
    fn summary_lists_each_scenario_with_duration_and_totals() {
        let (first, second) = (scenario("first"), scenario("second one"));
        let fast = Outcome {
            duration: Duration::from_millis(250),
            ..Outcome::default()
        };
        let slow = Outcome {
            duration: Duration::from_millis(1500),
            ..Outcome::default()
        };
        let pass = Verdict::default();
        let fail = failing_verdict();
        let results = [
            ScenarioResult {
                scenario: &first,
                outcome: &fast,
                verdict: &pass,
            },
            ScenarioResult {
                scenario: &second,
                outcome: &slow,
                verdict: &fail,
            },
        ];
        let mut out = Vec::new();

        write_summary(&mut out, &results, false).expect("writing to a vec succeeds");

        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "PASS  first       0.250s\nFAIL  second one  1.500s\n\
             FAILED: 2 scenarios, 1 passed, 1 failed, 1.750s in total\n"
        );
    }
}
