//! Per-scenario report directories: `result.json`, the emails and the lambda logs.

use std::{
    fs,
    path::{Path, PathBuf},
};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::debug;

use crate::{
    ScenarioError,
    check::{Mismatch, Verdict},
    model::Scenario,
    outcome::Outcome,
};

/// Where the harness writes reports, relative to the workspace root.
pub const DEFAULT_REPORT_DIR: &str = "target/harness/reports";

/// Longest readable part of a slug; the hash suffix keeps it unique.
const SLUG_TEXT_LIMIT: usize = 48;

/// A filesystem-safe, unique directory name for a scenario name.
///
/// The readable part is the name lowercased with every run of characters outside `[a-z0-9]`
/// turned into one `-`; 6 hex digits of the name's SHA-256 follow, because two names can
/// differ only in punctuation or case.
///
/// # Example
/// ```
/// let slug = scenario::slug("P1 incident: e-mails the on-call group!");
/// assert!(slug.starts_with("p1-incident-e-mails-the-on-call-group-"));
/// assert_eq!(slug.len(), "p1-incident-e-mails-the-on-call-group-".len() + 6);
/// ```
pub fn slug(name: &str) -> String {
    let mut text = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            text.push(c);
        } else if !text.is_empty() && !text.ends_with('-') {
            text.push('-');
        }
    }
    text.truncate(SLUG_TEXT_LIMIT);
    let text = text.trim_end_matches('-');
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest[..3].iter().map(|b| format!("{b:02x}")).collect();
    if text.is_empty() {
        format!("scenario-{hash}")
    } else {
        format!("{text}-{hash}")
    }
}

#[derive(Serialize)]
struct ResultFile<'a> {
    scenario: &'a str,
    file: &'a Path,
    passed: bool,
    mismatches: &'a [Mismatch],
    outcome: &'a Outcome,
}

/// Writes the report of one scenario under `dir/<slug>/` and returns that directory.
///
/// `dir` is the reports root (usually [`DEFAULT_REPORT_DIR`]). The scenario's directory is
/// replaced, so files of an earlier run cannot be mistaken for this one's. It holds:
/// `result.json` (name, file, passed, mismatches, outcome), `NN.eml` for each received email
/// (raw, numbered from 01 in arrival order), `NN.html` for each HTML part, and
/// `logs/<lambda>.log` for each lambda's log output.
pub fn write_report(
    dir: &Path,
    scenario: &Scenario,
    outcome: &Outcome,
    verdict: &Verdict,
) -> Result<PathBuf, ScenarioError> {
    let target = dir.join(slug(&scenario.name));
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| ScenarioError::Write { path, source }
    };
    if target.exists() {
        fs::remove_dir_all(&target).map_err(write_error(&target))?;
    }
    fs::create_dir_all(&target).map_err(write_error(&target))?;

    let result = ResultFile {
        scenario: &scenario.name,
        file: &scenario.file,
        passed: verdict.passed(),
        mismatches: &verdict.mismatches,
        outcome,
    };
    let json = serde_json::to_vec_pretty(&result).map_err(|source| ScenarioError::Json {
        scenario: scenario.name.clone(),
        source,
    })?;
    let result_path = target.join("result.json");
    fs::write(&result_path, json).map_err(write_error(&result_path))?;

    for (index, email) in outcome.emails.iter().enumerate() {
        let number = index + 1;
        let eml = target.join(format!("{number:02}.eml"));
        fs::write(&eml, &email.raw).map_err(write_error(&eml))?;
        if let Some(html) = &email.html {
            let path = target.join(format!("{number:02}.html"));
            fs::write(&path, html).map_err(write_error(&path))?;
        }
    }

    if !outcome.logs.is_empty() {
        let logs = target.join("logs");
        fs::create_dir_all(&logs).map_err(write_error(&logs))?;
        for (lambda, text) in &outcome.logs {
            let path = logs.join(format!("{}.log", file_name(lambda)));
            fs::write(&path, text).map_err(write_error(&path))?;
        }
    }
    debug!(scenario = %scenario.name, dir = %target.display(), "report written");
    Ok(target)
}

/// A lambda name made safe as a file name: anything but `[A-Za-z0-9._-]` becomes `_`.
fn file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // A leading dot would hide the file, and `..` would escape the directory.
    let safe = safe.trim_start_matches('.');
    if safe.is_empty() {
        "lambda".to_owned()
    } else {
        safe.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, time::Duration};

    use rstest::rstest;

    use super::*;
    use crate::{
        check::Mismatch,
        outcome::{CapturedEmail, OutcomeStatus},
        parse_str,
    };

    #[rstest]
    #[case::lowercases_and_dashes_punctuation("P1 Incident: emails!", "p1-incident-emails")]
    #[case::collapses_runs_of_separators("a  --  b", "a-b")]
    #[case::drops_non_ascii_letters("café ünïcode", "caf-n-code")]
    #[case::only_symbols_gets_a_generic_stem("!!!", "scenario")]
    fn slug_readable_part(#[case] name: &str, #[case] stem: &str) {
        let slug = slug(name);

        let (text, hash) = slug.rsplit_once('-').expect("slug has a hash suffix");
        assert_eq!(text, stem);
        assert_eq!(hash.len(), 6);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn names_differing_only_in_punctuation_get_different_slugs() {
        assert_ne!(slug("p1 incident!"), slug("p1 incident?"));
    }

    #[test]
    fn long_names_are_cut_to_a_short_slug() {
        let slug = slug(&"very long scenario name ".repeat(20));

        assert!(slug.len() <= SLUG_TEXT_LIMIT + 7, "{slug}");
    }

    #[rstest]
    #[case::keeps_ordinary_names("alert-callee", "alert-callee")]
    #[case::replaces_path_separators("../etc/passwd", "_etc_passwd")]
    #[case::replaces_spaces_and_colons("a b:c", "a_b_c")]
    #[case::never_empty("..", "lambda")]
    fn log_file_names_are_safe(#[case] lambda: &str, #[case] expected: &str) {
        assert_eq!(file_name(lambda), expected);
    }

    #[test]
    fn report_holds_result_emails_html_and_logs_and_replaces_an_old_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let scenario = parse_str(
            Path::new("scenarios/p1.yaml"),
            "name: p1 incident\ninvoke: { payload: {} }\nexpect: { status: success }\n",
        )
        .expect("scenario parses");
        let outcome = Outcome {
            status: OutcomeStatus::Success,
            emails: vec![
                CapturedEmail {
                    subject: "first".to_owned(),
                    html: Some("<p>first</p>".to_owned()),
                    raw: b"Subject: first\r\n\r\nbody".to_vec(),
                    ..CapturedEmail::default()
                },
                CapturedEmail {
                    subject: "second".to_owned(),
                    html: None,
                    raw: b"Subject: second\r\n\r\nbody".to_vec(),
                    ..CapturedEmail::default()
                },
            ],
            logs: BTreeMap::from([("alert-callee".to_owned(), "START\nEND\n".to_owned())]),
            duration: Duration::from_millis(42),
            ..Outcome::default()
        };
        let verdict = Verdict {
            scenario: scenario.name.clone(),
            mismatches: vec![Mismatch {
                path: "status".to_owned(),
                expected: "denied".to_owned(),
                actual: "success".to_owned(),
            }],
            email_pairs: vec![],
        };
        let stale = dir.path().join(slug(&scenario.name)).join("03.eml");
        fs::create_dir_all(stale.parent().expect("parent")).expect("mkdir");
        fs::write(&stale, "old run").expect("write stale");

        let target = write_report(dir.path(), &scenario, &outcome, &verdict).expect("report");

        assert_eq!(target, dir.path().join(slug("p1 incident")));
        let result: serde_json::Value =
            serde_json::from_slice(&fs::read(target.join("result.json")).expect("result.json"))
                .expect("result.json is json");
        assert_eq!(result["scenario"], "p1 incident");
        assert_eq!(result["passed"], false);
        assert_eq!(result["mismatches"][0]["path"], "status");
        assert_eq!(result["outcome"]["emails"][1]["subject"], "second");
        assert_eq!(
            fs::read(target.join("01.eml")).expect("01.eml"),
            b"Subject: first\r\n\r\nbody"
        );
        assert_eq!(
            fs::read_to_string(target.join("01.html")).expect("01.html"),
            "<p>first</p>"
        );
        assert!(target.join("02.eml").exists());
        assert!(
            !target.join("02.html").exists(),
            "no html part, no html file"
        );
        assert_eq!(
            fs::read_to_string(target.join("logs/alert-callee.log")).expect("log"),
            "START\nEND\n"
        );
        assert!(!stale.exists(), "files of an earlier run are removed");
    }
}
