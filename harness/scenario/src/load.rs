//! Finding scenario files, parsing them strictly and resolving their payloads.

use std::{
    collections::{BTreeMap, HashMap},
    fs,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;
use tracing::debug;

use crate::{
    ScenarioError,
    model::{
        AccountLetter, Action, AwsRequest, Decision, DeployOverrides, Expect, ExpectedEmail,
        ExpectedIamDecision, ExpectedStatus, InvocationType, Invoke, Operation, Payload, Scenario,
        Stack, SubjectRule, Transport, Via,
    },
};

/// Directories with this name hold payloads, never scenarios, and are not searched.
const PAYLOAD_DIR: &str = "payloads";

/// Text repeated into `alert.description` by `pad_to_bytes`; ASCII so one char is one byte.
const PAD_TEXT: &str = "padding to grow the payload past a size limit. ";

// The serde shapes below mirror the file format one to one; `deny_unknown_fields` at every
// level is what turns a typo such as `expekt` into a load error instead of a silent no-op.
// `Spanned` keeps the line of values that rules checked after parsing must point at.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    deploy: Option<RawDeploy>,
    #[serde(default)]
    invoke: Option<Spanned<RawInvoke>>,
    #[serde(default)]
    request: Option<Spanned<RawRequest>>,
    expect: RawExpect,
    #[serde(default)]
    faults: Option<Spanned<crate::faults::RawFaults>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    #[serde(rename = "as")]
    account: AccountLetter,
    #[serde(default)]
    get_function: Option<Via>,
    #[serde(default)]
    put_object: Option<Via>,
    #[serde(default)]
    transport: Transport,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeploy {
    // Parameter values are read as strings: the typed YAML reader keeps a scalar's spelling
    // (`1.10`, `0042`, `true`), which is exactly what CloudFormation receives.
    s3callee: Option<BTreeMap<String, String>>,
    calleecloudformation: Option<BTreeMap<String, String>>,
    s3caller: Option<BTreeMap<String, String>>,
    callercloudformation: Option<BTreeMap<String, String>>,
    deployrole: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInvoke {
    #[serde(default)]
    via: Via,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    payload_file: Option<Spanned<String>>,
    #[serde(default)]
    payload_raw: Option<Spanned<String>>,
    #[serde(default)]
    payload_file_raw: Option<Spanned<String>>,
    #[serde(default)]
    invocation_type: InvocationType,
    #[serde(default)]
    pad_to_bytes: Option<Spanned<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    status: ExpectedStatus,
    #[serde(default)]
    error_type: Option<Spanned<String>>,
    #[serde(default)]
    error_message_contains: Option<Spanned<String>>,
    #[serde(default)]
    response: Option<Value>,
    #[serde(default)]
    emails: Option<Vec<RawEmail>>,
    #[serde(default)]
    within_ms: Option<u64>,
    #[serde(default)]
    iam: Vec<RawIamDecision>,
    #[serde(default)]
    logs_contain: Vec<String>,
    #[serde(default)]
    logs_not_contain: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    #[serde(default)]
    to: Option<Vec<String>>,
    #[serde(default)]
    cc: Option<Vec<String>>,
    #[serde(default)]
    bcc: Option<Vec<String>>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    subject_contains: Option<Spanned<String>>,
    #[serde(default)]
    text_contains: Vec<String>,
    #[serde(default)]
    html_contains: Vec<String>,
    #[serde(default)]
    html_not_contains: Vec<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIamDecision {
    action: String,
    decision: Decision,
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    resource: Option<String>,
}

/// Which loaded scenarios to run: by name substring and by tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Keep scenarios whose name contains this text (case-sensitive).
    pub name_contains: Option<String>,
    /// Keep scenarios carrying at least one of these tags; empty keeps all.
    pub tags: Vec<String>,
}

impl Filter {
    /// True when `scenario` passes both the name and the tag filter.
    pub fn matches(&self, scenario: &Scenario) -> bool {
        let name_ok = self
            .name_contains
            .as_deref()
            .is_none_or(|needle| scenario.name.contains(needle));
        let tag_ok =
            self.tags.is_empty() || self.tags.iter().any(|tag| scenario.tags.contains(tag));
        name_ok && tag_ok
    }

    /// Keeps the scenarios that match, in their original order.
    pub fn apply(&self, scenarios: Vec<Scenario>) -> Vec<Scenario> {
        scenarios
            .into_iter()
            .filter(|scenario| self.matches(scenario))
            .collect()
    }
}

/// Lists the scenario files under `paths`, sorted by path and without duplicates.
///
/// A path naming a file is taken as is, whatever its extension. A directory is searched
/// recursively for `*.yaml` and `*.yml` files, skipping entries whose name starts with `.`
/// and directories named `payloads` (they hold payload files, which may be YAML too).
pub fn discover<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut found = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let metadata = fs::metadata(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        if metadata.is_dir() {
            walk(path, &mut found)?;
        } else {
            found.push(path.to_owned());
        }
    }
    found.sort();
    found.dedup();
    if found.is_empty() {
        return Err(ScenarioError::NoScenarios {
            paths: paths.iter().map(|p| p.as_ref().to_owned()).collect(),
        });
    }
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), ScenarioError> {
    let read_error = |source| ScenarioError::Read {
        path: dir.to_owned(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if name != PAYLOAD_DIR {
                walk(&path, found)?;
            }
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            found.push(path);
        }
    }
    Ok(())
}

/// Loads every scenario under `paths` (see [`discover`]), sorted by file path.
///
/// Every file is checked before anything is returned: all failing files are reported
/// together, and scenario names must be unique across all of them.
pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<Scenario>, ScenarioError> {
    let files = discover(paths)?;
    let mut scenarios = Vec::with_capacity(files.len());
    let mut errors = Vec::new();
    let mut seen: HashMap<String, (PathBuf, u64)> = HashMap::new();
    for file in &files {
        match load_with_name_line(file) {
            Ok((scenario, line)) => {
                if let Some((first_file, first_line)) = seen.get(&scenario.name) {
                    errors.push(ScenarioError::DuplicateName {
                        name: scenario.name.clone(),
                        file: file.clone(),
                        line,
                        first_file: first_file.clone(),
                        first_line: *first_line,
                    });
                    continue;
                }
                seen.insert(scenario.name.clone(), (file.clone(), line));
                scenarios.push(scenario);
            }
            Err(error) => errors.push(error),
        }
    }
    match errors.len() {
        0 => {
            debug!(count = scenarios.len(), "scenarios loaded");
            Ok(scenarios)
        }
        1 => Err(errors.remove(0)),
        _ => Err(ScenarioError::Several { errors }),
    }
}

/// Loads one scenario file; its `payload_file`, if any, is read relative to its directory.
pub fn load_file(file: &Path) -> Result<Scenario, ScenarioError> {
    load_with_name_line(file).map(|(scenario, _)| scenario)
}

fn load_with_name_line(file: &Path) -> Result<(Scenario, u64), ScenarioError> {
    let text = fs::read_to_string(file).map_err(|source| ScenarioError::Read {
        path: file.to_owned(),
        source,
    })?;
    parse(file, &text)
}

/// Parses scenario text as if it had been read from `file` (used for payload paths and errors).
pub fn parse_str(file: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    parse(file, text).map(|(scenario, _)| scenario)
}

fn yaml_options() -> serde_saphyr::Options {
    // Only `true`/`false` are booleans (YAML 1.2), so a payload value such as `state: no`
    // or `on` stays the string the author typed.
    serde_saphyr::options! {
        strict_booleans: true,
    }
}

fn parse(file: &Path, text: &str) -> Result<(Scenario, u64), ScenarioError> {
    let mut track = serde_path_to_error::Track::new();
    let parsed =
        serde_saphyr::with_deserializer_from_str_with_options(text, yaml_options(), |de| {
            RawScenario::deserialize(serde_path_to_error::Deserializer::new(de, &mut track))
        });
    let raw = parsed.map_err(|error| {
        if is_blank(text) {
            return ScenarioError::invalid(
                file,
                1,
                ".",
                "empty scenario file: a scenario needs at least `name`, `invoke` (or `request`) and `expect`",
            );
        }
        yaml_error(file, &key_path(&track.path()), &error)
    })?;
    let name_line = raw.name.referenced.line();
    Ok((validate(file, raw)?, name_line))
}

/// Keys whose values are wrapped in `Spanned`, which adds a `value` segment to the path.
const SPANNED_KEYS: [&str; 10] = [
    "name",
    "invoke",
    "request",
    "payload_file",
    "payload_raw",
    "payload_file_raw",
    "pad_to_bytes",
    "error_type",
    "error_message_contains",
    "subject_contains",
];

/// The dotted key path users see (`expect.emails[0].subject`), without `Spanned`'s inner
/// `value` segments; `.` is the document itself.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;

    let mut out = String::new();
    let mut previous: Option<&str> = None;
    for segment in path {
        match segment {
            Segment::Map { key } => {
                if key == "value" && previous.is_some_and(|p| SPANNED_KEYS.contains(&p)) {
                    previous = None;
                    continue;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
                previous = Some(key);
            }
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                previous = None;
            }
            Segment::Enum { .. } => previous = None,
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
                previous = None;
            }
        }
    }
    if out.is_empty() { ".".to_owned() } else { out }
}

fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---"
    })
}

/// Turns a YAML reader error into `file:line: message` naming the key.
fn yaml_error(file: &Path, path: &str, error: &serde_saphyr::Error) -> ScenarioError {
    let line = error
        .location()
        .map_or(1, |location| location.line().max(1));
    let message = strip_location(&error.without_snippet().to_string());
    let (parent, leaf) = match path.rsplit_once('.') {
        Some((parent, leaf)) => (parent, leaf),
        None => ("", path),
    };
    let place = |parent: &str| match parent {
        "" | "." | "?" => "at the top level".to_owned(),
        parent => format!("in {parent}"),
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // serde says "field"; users write keys.
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let message = format!("unknown key `{key}` {}{expected}", place(parent));
        return ScenarioError::invalid(file, line, path, message);
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let key = rest.trim_end_matches('`');
        // For a missing field serde's path ends at the mapping that lacks it.
        let mapping = path.trim_start_matches('.');
        let message = format!("missing required key `{key}` {}", place(mapping));
        // The reader points at the end of the top-level mapping, which is its whole file.
        let (key_path, line) = if mapping.is_empty() {
            (key.to_owned(), 1)
        } else {
            (format!("{mapping}.{key}"), line)
        };
        return ScenarioError::invalid(file, line, key_path, message);
    }
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim();
        let message = format!("duplicate key `{key}`: each key may appear once per mapping");
        return ScenarioError::invalid(file, line, key, message);
    }
    let key = match leaf {
        "" | "." | "?" => ".".to_owned(),
        _ => path.to_owned(),
    };
    let message = if key == "." {
        format!("invalid scenario: {message}")
    } else {
        format!("in `{key}`: {message}")
    };
    ScenarioError::invalid(file, line, key, message)
}

/// Drops the reader's own " at line L, column C" suffix: the error already starts with it.
fn strip_location(message: &str) -> String {
    if let Some(index) = message.rfind(" at line ") {
        let suffix = &message[index + " at line ".len()..];
        let looks_like_location = suffix
            .split_once(", column ")
            .is_some_and(|(line, column)| {
                line.chars().all(|c| c.is_ascii_digit())
                    && column.chars().all(|c| c.is_ascii_digit())
            });
        if looks_like_location {
            return message[..index].to_owned();
        }
    }
    message.to_owned()
}

fn validate(file: &Path, raw: RawScenario) -> Result<Scenario, ScenarioError> {
    let name = raw.name.value.trim().to_owned();
    if name.is_empty() {
        return Err(ScenarioError::invalid(
            file,
            raw.name.referenced.line(),
            "name",
            "`name` must not be empty",
        ));
    }
    let deploy = raw.deploy.map(deploy_overrides).unwrap_or_default();
    let action = match (raw.invoke, raw.request) {
        (Some(invoke), None) => Action::Invoke(resolve_invoke(file, invoke)?),
        (None, Some(request)) => Action::Request(resolve_request(file, request)?),
        (Some(_), Some(request)) => {
            return Err(ScenarioError::invalid(
                file,
                request.referenced.line(),
                "request",
                "give either `invoke` or `request`, not both: a scenario makes one call",
            ));
        }
        (None, None) => {
            return Err(ScenarioError::invalid(
                file,
                raw.name.referenced.line(),
                "invoke",
                "missing `invoke` or `request`: a scenario makes one call",
            ));
        }
    };
    let faults = match (&action, raw.faults) {
        (Action::Invoke(invoke), faults) => {
            crate::faults::resolve(file, faults, invoke.via, invoke.invocation_type)?
        }
        (Action::Request(_), None) => fault_plan::FaultPlan::default(),
        (Action::Request(_), Some(faults)) => {
            return Err(ScenarioError::invalid(
                file,
                faults.referenced.line(),
                "faults",
                "faults apply to an `invoke`'s call through the chain, not to a `request`",
            ));
        }
    };
    let expect = validate_expect(file, raw.expect)?;
    Ok(Scenario {
        name,
        description: raw.description,
        tags: raw.tags,
        deploy,
        action,
        expect,
        faults,
        file: file.to_owned(),
    })
}

fn deploy_overrides(raw: RawDeploy) -> DeployOverrides {
    DeployOverrides::new(
        [
            (Stack::S3Callee, raw.s3callee),
            (Stack::CalleeCloudformation, raw.calleecloudformation),
            (Stack::S3Caller, raw.s3caller),
            (Stack::CallerCloudformation, raw.callercloudformation),
            (Stack::DeployRole, raw.deployrole),
        ]
        .into_iter()
        .map(|(stack, parameters)| (stack, parameters.unwrap_or_default())),
    )
}

fn resolve_request(file: &Path, raw: Spanned<RawRequest>) -> Result<AwsRequest, ScenarioError> {
    let line = raw.referenced.line();
    let raw = raw.value;
    let operation = match (raw.get_function, raw.put_object) {
        (Some(via), None) => Operation::GetFunction(via),
        (None, Some(via)) => Operation::PutObject(via),
        _ => {
            return Err(ScenarioError::invalid(
                file,
                line,
                "request",
                "give exactly one operation in `request`: `get_function: caller|callee` or \
                 `put_object: caller|callee`",
            ));
        }
    };
    Ok(AwsRequest {
        account: raw.account,
        operation,
        transport: raw.transport,
    })
}

fn resolve_invoke(file: &Path, raw: Spanned<RawInvoke>) -> Result<Invoke, ScenarioError> {
    let invoke_line = raw.referenced.line();
    let raw = raw.value;
    // Exactly one of the four ways to give a body; the line of the second one names the clash.
    let given: Vec<(&str, u64)> = [
        ("invoke.payload", raw.payload.as_ref().map(|_| invoke_line)),
        (
            "invoke.payload_file",
            raw.payload_file.as_ref().map(|s| s.referenced.line()),
        ),
        (
            "invoke.payload_raw",
            raw.payload_raw.as_ref().map(|s| s.referenced.line()),
        ),
        (
            "invoke.payload_file_raw",
            raw.payload_file_raw.as_ref().map(|s| s.referenced.line()),
        ),
    ]
    .into_iter()
    .filter_map(|(key, line)| line.map(|line| (key, line)))
    .collect();
    match given.as_slice() {
        [] | [_] => {}
        [(first, _), (second, line), ..] => {
            return Err(ScenarioError::invalid(
                file,
                *line,
                *second,
                format!("`{second}` conflicts with `{first}`: give exactly one of them"),
            ));
        }
    }
    let (mut payload, payload_file) = if let Some(payload) = raw.payload {
        (Payload::Json(payload), None)
    } else if let Some(payload_file) = raw.payload_file {
        let (payload, path) = read_payload_file(file, &payload_file)?;
        (Payload::Json(payload), Some(path))
    } else if let Some(text) = raw.payload_raw {
        (Payload::Raw(text.value.into_bytes()), None)
    } else if let Some(payload_file) = raw.payload_file_raw {
        let (bytes, path) = read_raw_payload_file(file, &payload_file)?;
        (Payload::Raw(bytes), Some(path))
    } else {
        return Err(ScenarioError::invalid(
            file,
            invoke_line,
            "invoke.payload",
            "missing `invoke.payload`, `invoke.payload_file`, `invoke.payload_raw` or \
             `invoke.payload_file_raw`: give exactly one of them",
        ));
    };
    if let Some(pad) = raw.pad_to_bytes {
        let invalid = |reason: &str| {
            ScenarioError::invalid(
                file,
                pad.referenced.line(),
                "invoke.pad_to_bytes",
                format!("`invoke.pad_to_bytes` cannot be applied: {reason}"),
            )
        };
        let Payload::Json(value) = &mut payload else {
            return Err(invalid(
                "a raw payload is sent as written; pad it in the text itself",
            ));
        };
        pad_description(value, pad.value).map_err(|reason| invalid(&reason))?;
    }
    Ok(Invoke {
        via: raw.via,
        payload,
        payload_file,
        invocation_type: raw.invocation_type,
    })
}

/// Reads a `payload_file_raw` file's bytes, relative to the scenario file's directory.
fn read_raw_payload_file(
    file: &Path,
    payload_file: &Spanned<String>,
) -> Result<(Vec<u8>, PathBuf), ScenarioError> {
    let relative = &payload_file.value;
    let resolved = file
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join(relative);
    let bytes = fs::read(&resolved).map_err(|error| {
        ScenarioError::invalid(
            file,
            payload_file.referenced.line(),
            "invoke.payload_file_raw",
            format!(
                "in `invoke.payload_file_raw`: cannot read payload file `{relative}` ({}): {error}; paths are relative to the scenario file",
                resolved.display()
            ),
        )
    })?;
    Ok((bytes, resolved))
}

fn read_payload_file(
    file: &Path,
    payload_file: &Spanned<String>,
) -> Result<(Value, PathBuf), ScenarioError> {
    let line = payload_file.referenced.line();
    let relative = &payload_file.value;
    let resolved = file
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join(relative);
    let invalid =
        |message: String| ScenarioError::invalid(file, line, "invoke.payload_file", message);
    let text = fs::read_to_string(&resolved).map_err(|error| {
        invalid(format!(
            "in `invoke.payload_file`: cannot read payload file `{relative}` ({}): {error}; paths are relative to the scenario file",
            resolved.display()
        ))
    })?;
    let is_yaml = matches!(
        resolved.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    let payload = if is_yaml {
        serde_saphyr::from_str_with_options::<Value>(&text, yaml_options()).map_err(|error| {
            invalid(format!(
                "in `invoke.payload_file`: payload file `{relative}` is not valid YAML: {}",
                error.without_snippet()
            ))
        })?
    } else {
        serde_json::from_str::<Value>(&text).map_err(|error| {
            invalid(format!(
                "in `invoke.payload_file`: payload file `{relative}` is not valid JSON: {error}"
            ))
        })?
    };
    Ok((payload, resolved))
}

/// Grows `alert.description` until the serialised payload is at least `target` bytes.
fn pad_description(payload: &mut Value, target: usize) -> Result<(), String> {
    let alert = payload
        .get_mut("alert")
        .and_then(Value::as_object_mut)
        .ok_or("the payload has no `alert` object")?;
    let description = alert
        .entry("description")
        .or_insert_with(|| Value::String(String::new()));
    if !description.is_string() {
        return Err("`alert.description` is not a string".to_owned());
    }
    let current = serde_json::to_vec(payload)
        .map_err(|e| e.to_string())?
        .len();
    let missing = target.saturating_sub(current);
    if let Some(Value::String(text)) = payload
        .get_mut("alert")
        .and_then(|alert| alert.get_mut("description"))
    {
        text.extend(PAD_TEXT.chars().cycle().take(missing));
    }
    Ok(())
}

fn validate_expect(file: &Path, raw: RawExpect) -> Result<Expect, ScenarioError> {
    if raw.status == ExpectedStatus::Success {
        for (key, value) in [
            ("error_type", &raw.error_type),
            ("error_message_contains", &raw.error_message_contains),
        ] {
            if let Some(value) = value {
                return Err(ScenarioError::invalid(
                    file,
                    value.referenced.line(),
                    format!("expect.{key}"),
                    format!(
                        "`expect.{key}` is only allowed when `expect.status` is function_error, denied, invalid_request or deploy_failed, not success"
                    ),
                ));
            }
        }
    }
    let emails = match raw.emails {
        None => None,
        Some(emails) => Some(
            emails
                .into_iter()
                .enumerate()
                .map(|(index, email)| validate_email(file, index, email))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(Expect {
        status: raw.status,
        error_type: raw.error_type.map(|s| s.value),
        error_message_contains: raw.error_message_contains.map(|s| s.value),
        response: raw.response,
        emails,
        within_ms: raw.within_ms,
        logs_contain: raw.logs_contain,
        logs_not_contain: raw.logs_not_contain,
        iam: raw
            .iam
            .into_iter()
            .map(|iam| ExpectedIamDecision {
                action: iam.action,
                decision: iam.decision,
                principal: iam.principal,
                resource: iam.resource,
            })
            .collect(),
    })
}

fn validate_email(
    file: &Path,
    index: usize,
    raw: RawEmail,
) -> Result<ExpectedEmail, ScenarioError> {
    let subject = match (raw.subject, raw.subject_contains) {
        (Some(_), Some(contains)) => {
            let key = format!("expect.emails[{index}].subject_contains");
            return Err(ScenarioError::invalid(
                file,
                contains.referenced.line(),
                key.clone(),
                format!(
                    "`{key}` conflicts with `expect.emails[{index}].subject`: give exactly one of them"
                ),
            ));
        }
        (Some(exact), None) => Some(SubjectRule::Exact(exact)),
        (None, Some(contains)) => Some(SubjectRule::Contains(contains.value)),
        (None, None) => None,
    };
    Ok(ExpectedEmail {
        to: raw.to,
        cc: raw.cc,
        bcc: raw.bcc,
        from: raw.from,
        subject,
        text_contains: raw.text_contains,
        html_contains: raw.html_contains,
        html_not_contains: raw.html_not_contains,
        headers: raw.headers,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rstest::rstest;
    use serde_json::json;

    use super::*;

    const VALID: &str = "\
name: p1 incident emails the on-call group
tags: [smoke]
invoke:
  payload: { alert: { number: INC0012345 } }
expect:
  status: success
";

    /// Writes `files` (relative path, content) into a fresh directory.
    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, content) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, content).expect("write file");
        }
        dir
    }

    fn load_one(content: &str) -> (tempfile::TempDir, Result<Scenario, ScenarioError>) {
        let dir = tree(&[
            ("p1.yaml", content),
            ("payloads/p1.json", r#"{"alert": {}}"#),
        ]);
        let result = load_file(&dir.path().join("p1.yaml"));
        (dir, result)
    }

    #[test]
    fn a_request_names_its_account_operation_and_transport() {
        let scenario = parse_str(
            Path::new("r.yaml"),
            "name: r\nrequest:\n  as: A\n  put_object: callee\n  transport: http\nexpect: { status: denied }\n",
        )
        .expect("a request scenario");
        assert_eq!(
            scenario.action,
            Action::Request(AwsRequest {
                account: AccountLetter::A,
                operation: Operation::PutObject(Via::Callee),
                transport: Transport::Http,
            })
        );
        assert!(scenario.invoke().is_none());
        let https = parse_str(
            Path::new("r.yaml"),
            "name: r\nrequest: { as: B, get_function: callee }\nexpect: { status: denied }\n",
        )
        .expect("a request scenario");
        let Action::Request(request) = https.action else {
            panic!("a request");
        };
        assert_eq!(request.transport, Transport::Https);
        assert_eq!(request.operation, Operation::GetFunction(Via::Callee));
    }

    #[rstest]
    #[case::yaml_syntax_error(
        "name: p1\ninvoke:\n  payload: {}\n payload_file: x\nexpect: { status: success }\n",
        4,
        ".",
        "did not find expected key"
    )]
    #[case::empty_file("# nothing yet\n", 1, ".", "empty scenario file")]
    #[case::unknown_key_at_top_level(
        "name: p1\ninvoke: { payload: {} }\nexpect: { status: success }\nexpekt: {}\n",
        4,
        "expekt",
        "unknown key `expekt` at the top level, expected one of name, description"
    )]
    #[case::unknown_key_in_invoke(
        "name: p1\ninvoke:\n  payload: {}\n  expekt: 1\nexpect: { status: success }\n",
        4,
        "invoke.expekt",
        "unknown key `expekt` in invoke, expected one of via, payload"
    )]
    #[case::invoke_and_request(
        "name: p1\ninvoke: { payload: {} }\nrequest: { as: B, get_function: callee }\nexpect: { status: denied }\n",
        3,
        "request",
        "give either `invoke` or `request`, not both"
    )]
    #[case::neither_invoke_nor_request(
        "name: p1\nexpect: { status: success }\n",
        1,
        "invoke",
        "missing `invoke` or `request`"
    )]
    #[case::request_without_operation(
        "name: p1\nrequest: { as: B }\nexpect: { status: denied }\n",
        2,
        "request",
        "give exactly one operation in `request`"
    )]
    #[case::request_with_two_operations(
        "name: p1\nrequest: { as: A, get_function: callee, put_object: callee }\nexpect: { status: success }\n",
        2,
        "request",
        "give exactly one operation in `request`"
    )]
    #[case::request_unknown_account(
        "name: p1\nrequest: { as: D, get_function: callee }\nexpect: { status: success }\n",
        2,
        "request.as",
        "unknown variant `D`"
    )]
    #[case::unknown_key_in_expect(
        "name: p1\ninvoke: { payload: {} }\nexpect:\n  status: success\n  emails_within: 5\n",
        5,
        "expect.emails_within",
        "unknown key `emails_within` in expect"
    )]
    #[case::unknown_key_in_an_email(
        "name: p1\ninvoke: { payload: {} }\nexpect:\n  status: success\n  emails:\n    - to: [a@example.com]\n      subjekt: x\n",
        7,
        "expect.emails[0].subjekt",
        "unknown key `subjekt` in expect.emails[0]"
    )]
    #[case::bcc_misspelt_in_an_email(
        "name: p1\ninvoke: { payload: {} }\nexpect:\n  status: success\n  emails:\n    - to: [a@example.com]\n      bbc: [spy@example.com]\n",
        7,
        "expect.emails[0].bbc",
        "unknown key `bbc` in expect.emails[0], expected one of to, cc, bcc, from"
    )]
    #[case::bcc_not_a_list(
        "name: p1\ninvoke: { payload: {} }\nexpect:\n  status: success\n  emails:\n    - to: [a@example.com]\n      bcc: spy@example.com\n",
        7,
        "expect.emails[0].bcc",
        "expected sequence"
    )]
    #[case::unknown_key_in_an_iam_entry(
        "name: p1\ninvoke: { payload: {} }\nexpect:\n  status: denied\n  iam:\n    - { action: \"sts:AssumeRole\", decison: deny }\n",
        6,
        "expect.iam[0].decison",
        "unknown key `decison` in expect.iam[0]"
    )]
    #[case::bad_deploy_stack_name(
        "name: p1\ndeploy:\n  calleecloudformations: { ExternalId: x }\ninvoke: { payload: {} }\nexpect: { status: success }\n",
        3,
        "deploy.calleecloudformations",
        "expected one of s3callee, calleecloudformation, s3caller, callercloudformation, deployrole"
    )]
    #[case::deploy_value_not_a_scalar(
        "name: p1\ndeploy:\n  s3callee: { BucketName: [a, b] }\ninvoke: { payload: {} }\nexpect: { status: success }\n",
        3,
        "deploy.s3callee.BucketName",
        "expected string scalar"
    )]
    #[case::wrong_type_for_within_ms(
        "name: p1\ninvoke: { payload: {} }\nexpect:\n  status: success\n  within_ms: soon\n",
        5,
        "expect.within_ms",
        "invalid u64"
    )]
    #[case::wrong_type_for_tags(
        "name: p1\ntags: smoke\ninvoke: { payload: {} }\nexpect: { status: success }\n",
        2,
        "tags",
        "expected sequence"
    )]
    #[case::unknown_status(
        "name: p1\ninvoke: { payload: {} }\nexpect:\n  status: sucess\n",
        4,
        "expect.status",
        "unknown variant `sucess`, expected one of success, function_error, denied, invalid_request, deploy_failed"
    )]
    #[case::unknown_via(
        "name: p1\ninvoke:\n  via: invoker\n  payload: {}\nexpect: { status: success }\n",
        3,
        "invoke.via",
        "unknown variant `invoker`"
    )]
    #[case::missing_name(
        "invoke: { payload: {} }\nexpect: { status: success }\n",
        1,
        "name",
        "missing required key `name` at the top level"
    )]
    #[case::missing_status(
        "name: p1\ninvoke: { payload: {} }\nexpect:\n  within_ms: 5\n",
        4,
        "expect.status",
        "missing required key `status` in expect"
    )]
    #[case::duplicate_key(
        "name: p1\ninvoke: { payload: {} }\nexpect:\n  status: success\n  status: denied\n",
        5,
        "status",
        "duplicate key `status`"
    )]
    #[case::payload_and_payload_file(
        "name: p1\ninvoke:\n  payload: {}\n  payload_file: payloads/p1.json\nexpect: { status: success }\n",
        4,
        "invoke.payload_file",
        "conflicts with `invoke.payload`"
    )]
    #[case::neither_payload_nor_payload_file(
        "name: p1\ninvoke:\n  via: callee\nexpect: { status: success }\n",
        3,
        "invoke.payload",
        "give exactly one of them"
    )]
    #[case::missing_payload_file(
        "name: p1\ninvoke:\n  payload_file: payloads/nope.json\nexpect: { status: success }\n",
        3,
        "invoke.payload_file",
        "cannot read payload file `payloads/nope.json`"
    )]
    #[case::subject_and_subject_contains(
        "name: p1\ninvoke: { payload: {} }\nexpect:\n  status: success\n  emails:\n    - subject: a\n      subject_contains: b\n",
        7,
        "expect.emails[0].subject_contains",
        "conflicts with `expect.emails[0].subject`"
    )]
    #[case::error_type_with_status_success(
        "name: p1\ninvoke: { payload: {} }\nexpect:\n  status: success\n  error_type: CalleeFailed\n",
        5,
        "expect.error_type",
        "only allowed when `expect.status` is function_error, denied, invalid_request or deploy_failed"
    )]
    #[case::error_message_contains_with_status_success(
        "name: p1\ninvoke: { payload: {} }\nexpect:\n  status: success\n  error_message_contains: boom\n",
        5,
        "expect.error_message_contains",
        "not success"
    )]
    #[case::empty_name(
        "name: \"  \"\ninvoke: { payload: {} }\nexpect: { status: success }\n",
        1,
        "name",
        "must not be empty"
    )]
    #[case::pad_without_an_alert(
        "name: p1\ninvoke:\n  payload: { recipients: {} }\n  pad_to_bytes: 1000\nexpect: { status: success }\n",
        4,
        "invoke.pad_to_bytes",
        "no `alert` object"
    )]
    fn malformed_scenarios_are_rejected_naming_file_line_and_key(
        #[case] content: &str,
        #[case] line: u64,
        #[case] key: &str,
        #[case] fragment: &str,
    ) {
        let (dir, result) = load_one(content);

        let error = result.expect_err("the scenario must be rejected");
        let message = error.to_string();
        let file = dir.path().join("p1.yaml");
        let prefix = format!("{}:{line}: ", file.display());
        assert!(
            message.starts_with(&prefix),
            "{message:?} should start with {prefix:?}"
        );
        assert!(
            message.contains(fragment),
            "{message:?} should contain {fragment:?}"
        );
        match error {
            ScenarioError::Invalid { key: actual, .. } => assert_eq!(actual, key),
            other => panic!("expected an Invalid error, got {other:?}"),
        }
        if key != "." {
            let leaf = key.rsplit(['.', ']']).next().unwrap_or(key);
            assert!(message.contains(leaf), "{message:?} should name {leaf:?}");
        }
    }

    #[test]
    fn invalid_json_payload_file_names_scenario_key_and_payload_position() {
        let dir = tree(&[
            (
                "p1.yaml",
                "name: p1\ninvoke:\n  payload_file: payloads/p1.json\nexpect: { status: success }\n",
            ),
            ("payloads/p1.json", "{\"alert\": \n  {\"number\": }\n}"),
        ]);

        let message = load_file(&dir.path().join("p1.yaml"))
            .expect_err("bad json is rejected")
            .to_string();

        assert!(message.contains("p1.yaml:3: "), "{message}");
        assert!(
            message.contains(
                "in `invoke.payload_file`: payload file `payloads/p1.json` is not valid JSON"
            ),
            "{message}"
        );
        assert!(
            message.contains("line 2"),
            "the payload's own line is named: {message}"
        );
    }

    #[test]
    fn a_valid_scenario_loads_with_defaults() {
        let (_dir, result) = load_one(VALID);

        let scenario = result.expect("valid scenario loads");
        assert_eq!(scenario.name, "p1 incident emails the on-call group");
        assert_eq!(scenario.tags, ["smoke"]);
        assert_eq!(scenario.invoke().expect("an invoke").via, Via::Caller);
        assert_eq!(
            scenario.invoke().expect("an invoke").invocation_type,
            InvocationType::RequestResponse
        );
        assert_eq!(
            scenario.expect.emails, None,
            "absent emails are not checked"
        );
        assert!(scenario.deploy.is_empty());
        assert!(scenario.file.ends_with("p1.yaml"));
    }

    #[rstest]
    #[case::to("to", |email: &ExpectedEmail| email.to.clone())]
    #[case::cc("cc", |email: &ExpectedEmail| email.cc.clone())]
    #[case::bcc("bcc", |email: &ExpectedEmail| email.bcc.clone())]
    fn email_address_lists_load(
        #[case] key: &str,
        #[case] field: fn(&ExpectedEmail) -> Option<Vec<String>>,
    ) {
        let (_dir, result) = load_one(&format!(
            "name: p1\ninvoke: {{ payload: {{}} }}\nexpect:\n  status: success\n  emails:\n    - {key}: [a@example.com, b@example.com]\n"
        ));

        let emails = result
            .unwrap_or_else(|e| panic!("{e}"))
            .expect
            .emails
            .expect("emails are checked");
        assert_eq!(
            field(&emails[0]),
            Some(vec!["a@example.com".to_owned(), "b@example.com".to_owned()])
        );
    }

    #[test]
    fn inline_payload_becomes_json_keeping_yaml_scalar_types() {
        let (_dir, result) = load_one(
            "name: p1\ninvoke:\n  invocation_type: Event\n  payload:\n    alert:\n      number: INC0012345\n      priority: 1\n      ratio: 1.5\n      active: true\n      state: no\n      sys_id: \"0042\"\n      nothing: null\n      list: [a, 2]\n    recipients: { to: [oncall@example.com], cc: [] }\nexpect: { status: success }\n",
        );

        let scenario = result.expect("scenario loads");
        assert_eq!(
            scenario.invoke().expect("an invoke").invocation_type,
            InvocationType::Event
        );
        assert_eq!(
            scenario.invoke().expect("an invoke").payload.as_json(),
            Some(&json!({
                "alert": {
                    "number": "INC0012345", "priority": 1, "ratio": 1.5, "active": true,
                    "state": "no", "sys_id": "0042", "nothing": null, "list": ["a", 2]
                },
                "recipients": {"to": ["oncall@example.com"], "cc": []}
            }))
        );
    }

    #[test]
    fn payload_files_are_read_relative_to_the_scenario_file_as_json_or_yaml() {
        let dir = tree(&[
            (
                "suite/nested/json.yaml",
                "name: from json\ninvoke:\n  payload_file: ../payloads/p.json\nexpect: { status: success }\n",
            ),
            (
                "suite/nested/yaml.yaml",
                "name: from yaml\ninvoke:\n  payload_file: payloads/p.yaml\nexpect: { status: success }\n",
            ),
            ("suite/payloads/p.json", r#"{"alert": {"priority": 2}}"#),
            ("suite/nested/payloads/p.yaml", "alert:\n  priority: 3\n"),
        ]);

        let scenarios = load(&[dir.path().join("suite")]).expect("both load");

        assert_eq!(scenarios.len(), 2);
        let by_name = |name: &str| {
            scenarios
                .iter()
                .find(|s| s.name == name)
                .expect("scenario present")
        };
        assert_eq!(
            by_name("from json")
                .invoke()
                .expect("an invoke")
                .payload
                .as_json(),
            Some(&json!({"alert": {"priority": 2}}))
        );
        assert_eq!(
            by_name("from yaml")
                .invoke()
                .expect("an invoke")
                .payload
                .as_json(),
            Some(&json!({"alert": {"priority": 3}}))
        );
        assert_eq!(
            by_name("from json")
                .invoke()
                .expect("an invoke")
                .payload_file
                .as_deref(),
            Some(dir.path().join("suite/nested/../payloads/p.json").as_path())
        );
    }

    #[test]
    fn raw_payloads_are_sent_byte_for_byte_with_escapes_as_written() {
        let dir = tree(&[
            (
                "s/inline.yaml",
                "name: inline\ninvoke:\n  payload_raw: '{\"a\": 1, \"a\": \"\\ud800\"}'\nexpect: { status: success }\n",
            ),
            (
                "s/block.yaml",
                "name: block\ninvoke:\n  payload_raw: |-\n    {\"s\": \"\\u00e9\"}\nexpect: { status: success }\n",
            ),
            (
                "s/file.yaml",
                "name: file\ninvoke:\n  payload_file_raw: payloads/bad.json\nexpect: { status: success }\n",
            ),
            ("s/payloads/bad.json", "{\"x\": [1,,]}\n"),
        ]);

        let scenarios = load(&[dir.path().join("s")]).expect("all load");

        let body = |name: &str| {
            scenarios
                .iter()
                .find(|s| s.name == name)
                .expect("scenario present")
                .invoke()
                .expect("an invoke")
                .payload
                .to_bytes()
        };
        assert_eq!(body("inline"), br#"{"a": 1, "a": "\ud800"}"#);
        assert_eq!(body("block"), br#"{"s": "\u00e9"}"#);
        assert_eq!(body("file"), b"{\"x\": [1,,]}\n");
    }

    #[rstest]
    #[case::raw_and_payload(
        "name: p1\ninvoke:\n  payload: {}\n  payload_raw: '{}'\nexpect: { status: success }\n",
        "invoke.payload_raw",
        "`invoke.payload_raw` conflicts with `invoke.payload`"
    )]
    #[case::raw_and_raw_file(
        "name: p1\ninvoke:\n  payload_raw: '{}'\n  payload_file_raw: payloads/p1.json\nexpect: { status: success }\n",
        "invoke.payload_file_raw",
        "`invoke.payload_file_raw` conflicts with `invoke.payload_raw`"
    )]
    #[case::missing_raw_file(
        "name: p1\ninvoke:\n  payload_file_raw: payloads/nope.json\nexpect: { status: success }\n",
        "invoke.payload_file_raw",
        "cannot read payload file `payloads/nope.json`"
    )]
    #[case::pad_a_raw_payload(
        "name: p1\ninvoke:\n  payload_raw: '{}'\n  pad_to_bytes: 100\nexpect: { status: success }\n",
        "invoke.pad_to_bytes",
        "a raw payload is sent as written"
    )]
    fn raw_payload_keys_are_checked(#[case] yaml: &str, #[case] key: &str, #[case] message: &str) {
        let (_dir, result) = load_one(yaml);
        let err = result.expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains(key), "{text}");
        assert!(text.contains(message), "{text}");
    }

    #[test]
    fn pad_to_bytes_grows_the_description_to_exactly_the_size() {
        let (_dir, result) = load_one(
            "name: big\ninvoke:\n  payload: { alert: { number: INC0000001, description: start }, template: incident }\n  pad_to_bytes: 270000\nexpect: { status: success }\n",
        );

        let scenario = result.expect("scenario loads");
        let payload = &scenario.invoke().expect("an invoke").payload;
        let payload = payload.as_json().expect("a JSON payload");
        assert_eq!(serde_json::to_vec(payload).expect("json").len(), 270_000);
        let description = payload["alert"]["description"].as_str().expect("a string");
        assert!(description.starts_with("start"));
        assert_eq!(payload["template"], "incident");
        assert_eq!(payload["alert"]["number"], "INC0000001");
    }

    #[test]
    fn deploy_values_keep_their_spelling_as_strings() {
        let (_dir, result) = load_one(
            "name: p1\ndeploy:\n  calleecloudformation: { ExternalId: s3cr3t, Port: 2525, Version: 1.10, Enabled: true }\n  s3caller: {}\ninvoke: { payload: {} }\nexpect: { status: success }\n",
        );

        let deploy = result.expect("scenario loads").deploy;
        let parameters = deploy
            .parameters(Stack::CalleeCloudformation)
            .expect("callee parameters");
        assert_eq!(parameters["ExternalId"], "s3cr3t");
        assert_eq!(parameters["Port"], "2525");
        assert_eq!(parameters["Version"], "1.10");
        assert_eq!(parameters["Enabled"], "true");
        assert_eq!(
            deploy.parameters(Stack::S3Caller),
            None,
            "empty maps are dropped"
        );
    }

    #[test]
    fn duplicate_names_across_files_name_both_files() {
        let dir = tree(&[
            ("a.yaml", VALID),
            ("b.yaml", &format!("# a comment first\n{VALID}")),
        ]);

        let error = load(&[dir.path()]).expect_err("duplicate names are rejected");

        let message = error.to_string();
        let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
        assert!(
            message.starts_with(&format!("{}:2: duplicate scenario name `p1 incident emails the on-call group` in key `name`", b.display())),
            "{message}"
        );
        assert!(
            message.contains(&format!("already used by {}:1", a.display())),
            "{message}"
        );
    }

    #[test]
    fn every_failing_file_is_reported_at_once() {
        let dir = tree(&[
            ("a.yaml", "name: a\nfoo: 1\n"),
            ("b.yaml", VALID),
            (
                "c.yaml",
                "name: c\ninvoke: { payload: {} }\nexpect: { status: nope }\n",
            ),
        ]);

        let error = load(&[dir.path()]).expect_err("two files are broken");

        let ScenarioError::Several { errors } = &error else {
            panic!("expected several errors, got {error:?}");
        };
        assert_eq!(errors.len(), 2);
        let message = error.to_string();
        assert!(message.contains("a.yaml:2: unknown key `foo`"), "{message}");
        assert!(
            message.contains("c.yaml:3: in `expect.status`"),
            "{message}"
        );
    }

    #[test]
    fn discovery_recurses_sorted_and_skips_payloads_hidden_and_other_files() {
        let dir = tree(&[
            ("b.yaml", ""),
            ("a.yml", ""),
            ("sub/c.yaml", ""),
            ("payloads/p.yaml", ""),
            ("sub/payloads/q.yml", ""),
            (".hidden.yaml", ""),
            (".git/d.yaml", ""),
            ("README.md", ""),
            ("notes.txt", ""),
        ]);

        let found = discover(&[dir.path()]).expect("files found");

        let relative: Vec<PathBuf> = found
            .iter()
            .map(|p| p.strip_prefix(dir.path()).expect("inside").to_owned())
            .collect();
        assert_eq!(
            relative,
            [PathBuf::from("a.yml"), "b.yaml".into(), "sub/c.yaml".into()]
        );
    }

    #[test]
    fn an_explicit_file_is_taken_whatever_its_extension_and_not_twice() {
        let dir = tree(&[("scenario.txt", ""), ("x.yaml", "")]);

        let found = discover(&[
            dir.path().join("scenario.txt"),
            dir.path().join("x.yaml"),
            dir.path().to_owned(),
        ])
        .expect("files found");

        assert_eq!(
            found,
            [dir.path().join("scenario.txt"), dir.path().join("x.yaml")]
        );
    }

    #[test]
    fn a_directory_without_scenarios_is_an_error() {
        let dir = tree(&[("payloads/p.yaml", ""), ("README.md", "")]);

        let error = discover(&[dir.path()]).expect_err("nothing to run");

        assert!(
            error.to_string().starts_with("no scenario files"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_path_is_a_read_error_naming_it() {
        let error = discover(&[Path::new("/nonexistent/scenarios")]).expect_err("missing");

        assert!(
            error.to_string().contains("/nonexistent/scenarios"),
            "{error}"
        );
    }

    #[rstest]
    #[case::no_filter_keeps_all(None, &[], &["a smoke", "b email", "c both"])]
    #[case::name_substring(Some("b "), &[], &["b email"])]
    #[case::name_is_case_sensitive(Some("B "), &[], &[])]
    #[case::any_listed_tag(None, &["smoke"], &["a smoke", "c both"])]
    #[case::several_tags_are_alternatives(None, &["smoke", "email"], &["a smoke", "b email", "c both"])]
    #[case::name_and_tag_both_apply(Some("c"), &["email"], &["c both"])]
    fn filter_rules(
        #[case] name_contains: Option<&str>,
        #[case] tags: &[&str],
        #[case] expected: &[&str],
    ) {
        let scenario = |name: &str, tags: &str| {
            parse_str(
                Path::new("x.yaml"),
                &format!("name: {name}\ntags: {tags}\ninvoke: {{ payload: {{}} }}\nexpect: {{ status: success }}\n"),
            )
            .expect("parses")
        };
        let scenarios = vec![
            scenario("a smoke", "[smoke]"),
            scenario("b email", "[email]"),
            scenario("c both", "[smoke, email]"),
        ];
        let filter = Filter {
            name_contains: name_contains.map(str::to_owned),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        };

        let kept: Vec<String> = filter
            .apply(scenarios)
            .into_iter()
            .map(|s| s.name)
            .collect();

        assert_eq!(kept, expected);
    }

    /// The committed suite in `scenarios/` must always load: CI runs it.
    #[test]
    fn the_real_scenario_suite_loads() {
        // The suite sits at the workspace root, wherever this crate is nested.
        let suite = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|dir| dir.join("scenarios"))
            .find(|dir| dir.join("README.md").is_file())
            .expect("a scenarios/ folder above this crate");

        let scenarios = load(&[&suite]).unwrap_or_else(|e| panic!("{e}"));

        assert!(scenarios.len() >= 15, "only {} scenarios", scenarios.len());
        let names: BTreeSet<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), scenarios.len(), "names are unique");
        // Distinct incident numbers make emails and logs of different scenarios easy to tell
        // apart; scenarios tagged `same-record` share a record on purpose (Message-ID tests).
        let numbers: Vec<&str> = scenarios
            .iter()
            .filter(|s| !s.tags.iter().any(|t| t == "same-record"))
            .filter_map(|s| {
                s.invoke()?
                    .payload
                    .as_json()?
                    .pointer("/alert/number")?
                    .as_str()
            })
            .collect();
        let distinct: BTreeSet<&&str> = numbers.iter().collect();
        assert_eq!(
            distinct.len(),
            numbers.len(),
            "incident numbers repeat: {numbers:?}"
        );
        let oversized = scenarios
            .iter()
            .filter_map(Scenario::invoke)
            .filter(|invoke| invoke.payload.to_bytes().len() > 256 * 1024)
            .count();
        assert!(oversized >= 1, "the suite needs a payload over 256 KB");
    }
}
