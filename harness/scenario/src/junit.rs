//! JUnit XML for CI: one testsuite, one testcase per scenario.

use std::{fs, io, path::Path, time::Duration};

use quick_xml::{
    Writer,
    events::{BytesDecl, BytesText, Event},
};

use crate::{Outcome, OutcomeStatus, ScenarioError, render::ScenarioResult, render_diff};

/// Renders the results as a JUnit XML document.
///
/// A failed check becomes `<failure>`, an outcome whose status is `error` (the harness itself
/// failed) becomes `<error>`; both carry a one-line `message` attribute and the plain-text
/// diff as their content. Characters XML 1.0 cannot carry (most control characters) are
/// replaced by `\u{..}` escapes so the document stays well-formed whatever the lambdas sent.
pub fn junit_xml(suite: &str, results: &[ScenarioResult<'_>]) -> String {
    // Writing into a Vec cannot fail; the io::Result only exists for other writers.
    let bytes = write_document(suite, results).unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// Writes [`junit_xml`] to `path`, creating its parent directory.
pub fn write_junit(
    path: &Path,
    suite: &str,
    results: &[ScenarioResult<'_>],
) -> Result<(), ScenarioError> {
    let write_error = |source| ScenarioError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(write_error)?;
    }
    fs::write(path, junit_xml(suite, results)).map_err(write_error)
}

/// Merges documents [`junit_xml`] wrote (one per `--shard`) into one: every
/// testcase, shard by shard, under one testsuite named `suite`, with the
/// counts and times summed. An input that is not such a document is an
/// error naming it by position.
pub fn merge_junit(suite: &str, documents: &[String]) -> Result<String, String> {
    let mut cases: Vec<Event<'static>> = Vec::new();
    let mut totals = [0u64; 3];
    let mut time = 0f64;
    for (n, document) in documents.iter().enumerate() {
        let bad = |what: String| format!("JUnit document {}: {what}", n + 1);
        let mut reader = quick_xml::Reader::from_str(document);
        reader.config_mut().check_end_names = true;
        let mut depth_in_case = 0usize;
        let mut suites = 0;
        loop {
            let event = reader.read_event().map_err(|e| bad(e.to_string()))?;
            match &event {
                Event::Eof => break,
                Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testsuite" => {
                    suites += 1;
                    for attribute in e.attributes() {
                        let attribute = attribute.map_err(|e| bad(e.to_string()))?;
                        let value = attribute.unescape_value().map_err(|e| bad(e.to_string()))?;
                        let slot = match attribute.key.as_ref() {
                            b"tests" => Some(0),
                            b"failures" => Some(1),
                            b"errors" => Some(2),
                            b"time" => {
                                time += value.parse::<f64>().map_err(|e| bad(e.to_string()))?;
                                None
                            }
                            _ => None,
                        };
                        if let Some(slot) = slot {
                            totals[slot] += value.parse::<u64>().map_err(|e| bad(e.to_string()))?;
                        }
                    }
                }
                Event::Start(e) if e.name().as_ref() == b"testcase" || depth_in_case > 0 => {
                    depth_in_case += 1;
                    cases.push(event.clone().into_owned());
                }
                Event::End(_) if depth_in_case > 0 => {
                    depth_in_case -= 1;
                    cases.push(event.clone().into_owned());
                }
                Event::Empty(e) if e.name().as_ref() == b"testcase" || depth_in_case > 0 => {
                    cases.push(event.clone().into_owned());
                }
                Event::Text(_) | Event::GeneralRef(_) | Event::CData(_) if depth_in_case > 0 => {
                    cases.push(event.clone().into_owned());
                }
                _ => {}
            }
        }
        if suites != 1 {
            return Err(bad(format!("expected one <testsuite>, found {suites}")));
        }
    }
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    let counts = [
        totals[0].to_string(),
        totals[1].to_string(),
        totals[2].to_string(),
        format!("{time:.3}"),
    ];
    let suite = xml_safe(suite);
    let attributes = [
        ("name", suite.as_str()),
        ("tests", counts[0].as_str()),
        ("failures", counts[1].as_str()),
        ("errors", counts[2].as_str()),
        ("time", counts[3].as_str()),
    ];
    let written: io::Result<()> = (|| {
        writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        writer
            .create_element("testsuites")
            .with_attributes(attributes)
            .write_inner_content(|writer| {
                writer
                    .create_element("testsuite")
                    .with_attributes(attributes)
                    .write_inner_content(|writer| {
                        for event in &cases {
                            writer.write_event(event.borrow())?;
                        }
                        Ok(())
                    })?;
                Ok(())
            })?;
        Ok(())
    })();
    written.map_err(|e| e.to_string())?;
    String::from_utf8(writer.into_inner()).map_err(|e| e.to_string())
}

fn write_document(suite: &str, results: &[ScenarioResult<'_>]) -> io::Result<Vec<u8>> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;

    let failures = results
        .iter()
        .filter(|r| !r.passed() && !is_harness_error(r.outcome))
        .count();
    let errors = results
        .iter()
        .filter(|r| is_harness_error(r.outcome))
        .count();
    let total: Duration = results.iter().map(|r| r.outcome.duration).sum();
    let (tests, failures, errors, time) = (
        results.len().to_string(),
        failures.to_string(),
        errors.to_string(),
        seconds(total),
    );
    let suite = xml_safe(suite);
    let counts = [
        ("name", suite.as_str()),
        ("tests", tests.as_str()),
        ("failures", failures.as_str()),
        ("errors", errors.as_str()),
        ("time", time.as_str()),
    ];

    writer
        .create_element("testsuites")
        .with_attributes(counts)
        .write_inner_content(|writer| {
            writer
                .create_element("testsuite")
                .with_attributes(counts)
                .write_inner_content(|writer| {
                    for result in results {
                        write_testcase(writer, &suite, result)?;
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
    Ok(writer.into_inner())
}

fn write_testcase(
    writer: &mut Writer<Vec<u8>>,
    suite: &str,
    result: &ScenarioResult<'_>,
) -> io::Result<()> {
    let name = xml_safe(&result.scenario.name);
    let file = xml_safe(&result.scenario.file.display().to_string());
    let time = seconds(result.outcome.duration);
    let element = writer.create_element("testcase").with_attributes([
        ("name", name.as_str()),
        ("classname", suite),
        ("file", file.as_str()),
        ("time", time.as_str()),
    ]);
    if result.passed() {
        element.write_empty()?;
        return Ok(());
    }
    let (tag, kind) = if is_harness_error(result.outcome) {
        ("error", "harness_error")
    } else {
        ("failure", "mismatch")
    };
    let message = xml_safe(&failure_message(result));
    let diff = xml_safe(&render_diff(result.verdict, false));
    element.write_inner_content(|writer| {
        writer
            .create_element(tag)
            .with_attributes([("message", message.as_str()), ("type", kind)])
            .write_text_content(BytesText::new(&diff))?;
        Ok(())
    })?;
    Ok(())
}

/// One line: the harness's error, or the mismatching fields; attribute values lose newlines.
fn failure_message(result: &ScenarioResult<'_>) -> String {
    if is_harness_error(result.outcome) {
        let error = result
            .outcome
            .error_message
            .as_deref()
            .unwrap_or("no message");
        return format!("harness error: {}", error.replace(['\r', '\n'], " "));
    }
    let paths: Vec<&str> = result
        .verdict
        .mismatches
        .iter()
        .map(|m| m.path.as_str())
        .collect();
    format!("{} mismatch(es): {}", paths.len(), paths.join(", "))
}

/// Replaces characters outside XML 1.0's `Char` production by a visible escape.
fn xml_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c.to_string(),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                format!("\\u{{{:x}}}", c as u32)
            }
            c => c.to_string(),
        })
        .collect()
}

/// True when the harness itself failed rather than the system answering wrongly.
fn is_harness_error(outcome: &Outcome) -> bool {
    outcome.status == OutcomeStatus::Error
}

fn seconds(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use quick_xml::{Reader, events::Event};

    use super::*;
    use crate::{
        Outcome, OutcomeStatus, Scenario, Verdict,
        check::{Mismatch, check},
        parse_str,
    };

    /// What a JUnit consumer sees: per testcase its name and failure/error kind and text.
    #[derive(Debug, Default, PartialEq)]
    struct ParsedCase {
        name: String,
        time: String,
        outcome: Option<(String, String, String)>,
    }

    /// Parses the document with quick-xml, failing on any well-formedness error.
    fn parse(xml: &str) -> (Vec<(String, String)>, Vec<ParsedCase>) {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().check_end_names = true;
        let mut suite_attrs = Vec::new();
        let mut cases: Vec<ParsedCase> = Vec::new();
        // (tag, message, text so far) of the open <failure>/<error>; quick-xml reports entity
        // references as their own events, so the text arrives in pieces.
        let mut open: Option<(String, String, String)> = None;
        loop {
            match reader.read_event().expect("well-formed xml") {
                Event::Eof => break,
                Event::Start(e) | Event::Empty(e) => {
                    let attrs: Vec<(String, String)> = e
                        .attributes()
                        .map(|a| {
                            let a = a.expect("well-formed attribute");
                            (
                                String::from_utf8(a.key.as_ref().to_vec()).expect("utf-8"),
                                a.unescape_value().expect("valid escapes").into_owned(),
                            )
                        })
                        .collect();
                    let get = |key: &str| {
                        attrs
                            .iter()
                            .find(|(k, _)| k == key)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    };
                    match e.name().as_ref() {
                        b"testsuite" => suite_attrs = attrs.clone(),
                        b"testcase" => cases.push(ParsedCase {
                            name: get("name"),
                            time: get("time"),
                            outcome: None,
                        }),
                        b"failure" | b"error" => {
                            let tag = String::from_utf8(e.name().as_ref().to_vec()).expect("utf-8");
                            open = Some((tag, get("message"), String::new()));
                        }
                        _ => {}
                    }
                }
                Event::Text(text) => {
                    if let Some((_, _, body)) = open.as_mut() {
                        body.push_str(&text.decode().expect("utf-8 text"));
                    }
                }
                Event::GeneralRef(reference) => {
                    if let Some((_, _, body)) = open.as_mut() {
                        let name = reference.decode().expect("utf-8 reference");
                        let resolved = match reference.resolve_char_ref().expect("valid char ref") {
                            Some(c) => c.to_string(),
                            None => quick_xml::escape::resolve_predefined_entity(&name)
                                .expect("only predefined entities")
                                .to_owned(),
                        };
                        body.push_str(&resolved);
                    }
                }
                Event::End(e) if matches!(e.name().as_ref(), b"failure" | b"error") => {
                    let finished = open.take().expect("an open failure or error");
                    cases.last_mut().expect("inside a testcase").outcome = Some(finished);
                }
                _ => {}
            }
        }
        (suite_attrs, cases)
    }

    fn scenario(name: &str) -> Scenario {
        parse_str(
            Path::new("scenarios/x.yaml"),
            &format!(
                // A JSON string is a valid YAML double-quoted scalar, escapes included.
                "name: {}\ninvoke: {{ payload: {{}} }}\nexpect: {{ status: success }}\n",
                serde_json::to_string(name).expect("a string serialises")
            ),
        )
        .expect("test scenario parses")
    }

    #[test]
    fn shards_merged_equal_the_whole_run_up_to_timings() {
        let scenarios: Vec<Scenario> = ["a <one>", "b & two", "c", "d", "e"]
            .into_iter()
            .map(scenario)
            .collect();
        let ok = Outcome {
            status: OutcomeStatus::Success,
            duration: Duration::from_millis(100),
            ..Outcome::default()
        };
        let wrong = Outcome {
            status: OutcomeStatus::FunctionError,
            error_message: Some("ValidationError: <bad> & worse".to_owned()),
            ..Outcome::default()
        };
        let outcomes: Vec<&Outcome> = (0..5)
            .map(|i| if i % 2 == 0 { &ok } else { &wrong })
            .collect();
        let verdicts: Vec<Verdict> = scenarios
            .iter()
            .zip(&outcomes)
            .map(|(s, o)| check(s, o))
            .collect();
        let results: Vec<ScenarioResult<'_>> = (0..5)
            .map(|i| ScenarioResult {
                scenario: &scenarios[i],
                outcome: outcomes[i],
                verdict: &verdicts[i],
            })
            .collect();
        let whole = junit_xml("scenarios", &results);
        let shards = [
            junit_xml("scenarios", &results[0..2]),
            junit_xml("scenarios", &results[2..3]),
            junit_xml("scenarios", &results[3..5]),
        ];
        let merged = merge_junit("scenarios", &shards).expect("merges");
        let strip = |(attrs, cases): (Vec<(String, String)>, Vec<ParsedCase>)| {
            let attrs: Vec<(String, String)> =
                attrs.into_iter().filter(|(k, _)| k != "time").collect();
            let cases: Vec<_> = cases.into_iter().map(|c| (c.name, c.outcome)).collect();
            (attrs, cases)
        };
        assert_eq!(strip(parse(&merged)), strip(parse(&whole)));
        assert!(merge_junit("scenarios", &["<notjunit/>".to_owned()]).is_err());
    }

    #[test]
    fn junit_has_one_testcase_per_scenario_with_failures_and_errors_counted() {
        let passing = scenario("passes");
        let failing = scenario("fails <with> \"markup\" & ampersands");
        // YAML escapes let a name carry control characters too.
        let broken = scenario("harness broke\u{1}");
        let ok = Outcome {
            status: OutcomeStatus::Success,
            duration: Duration::from_millis(1250),
            ..Outcome::default()
        };
        let wrong = Outcome {
            status: OutcomeStatus::FunctionError,
            error_type: Some("CalleeFailed".to_owned()),
            // Control characters a lambda could send: NUL, ESC (colour codes), CR/LF.
            error_message: Some("ValidationError: bad\u{0}\u{1b}[31m <b>\r\n&".to_owned()),
            ..Outcome::default()
        };
        let error = Outcome {
            error_message: Some("deploy failed:\nstack rolled back".to_owned()),
            ..Outcome::default()
        };
        let verdicts = [
            check(&passing, &ok),
            check(&failing, &wrong),
            check(&broken, &error),
        ];
        let results = [
            ScenarioResult {
                scenario: &passing,
                outcome: &ok,
                verdict: &verdicts[0],
            },
            ScenarioResult {
                scenario: &failing,
                outcome: &wrong,
                verdict: &verdicts[1],
            },
            ScenarioResult {
                scenario: &broken,
                outcome: &error,
                verdict: &verdicts[2],
            },
        ];

        let xml = junit_xml("alerting", &results);
        let (suite, cases) = parse(&xml);

        let attr = |key: &str| {
            suite
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        };
        assert_eq!(attr("name"), "alerting");
        assert_eq!(attr("tests"), "3");
        assert_eq!(attr("failures"), "1");
        assert_eq!(attr("errors"), "1");
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[0].name, "passes");
        assert_eq!(cases[0].time, "1.250");
        assert_eq!(cases[0].outcome, None);
        assert_eq!(cases[1].name, "fails <with> \"markup\" & ampersands");
        let (tag, message, body) = cases[1].outcome.clone().expect("a failure");
        assert_eq!(tag, "failure");
        assert_eq!(message, "1 mismatch(es): status");
        assert!(body.contains("expected: success"), "{body}");
        assert!(body.contains("<b>"), "markup survives escaping: {body}");
        assert!(
            body.contains("\\u0000\\u001b"),
            "controls are shown escaped: {body}"
        );
        assert_eq!(
            cases[2].name, "harness broke\\u{1}",
            "controls in names are escaped"
        );
        let (tag, message, body) = cases[2].outcome.clone().expect("an error");
        assert_eq!(tag, "error");
        assert_eq!(message, "harness error: deploy failed: stack rolled back");
        assert!(body.contains("deploy failed"), "{body}");
    }

    #[test]
    fn junit_file_is_written_with_its_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nested/junit.xml");
        let scenario = scenario("one");
        let outcome = Outcome::default();
        let verdict = Verdict {
            scenario: "one".to_owned(),
            mismatches: vec![Mismatch {
                path: "status".to_owned(),
                expected: "success".to_owned(),
                actual: "error".to_owned(),
            }],
            email_pairs: vec![],
        };

        write_junit(
            &path,
            "suite",
            &[ScenarioResult {
                scenario: &scenario,
                outcome: &outcome,
                verdict: &verdict,
            }],
        )
        .expect("junit written");

        let (_, cases) = parse(&fs::read_to_string(&path).expect("junit file"));
        assert_eq!(cases.len(), 1);
    }
}
