//! Cross-checks the rule table against `@cloud-copilot/iam-simulate`.
//!
//! `cargo run -p iam-policy --example crosscheck` writes every rule case to
//! `target/iam-crosscheck/cases.json`, replays it with
//! `harness/iam-policy/crosscheck/crosscheck.mjs` and prints
//! `cases compared: N, agreeing: M` with each disagreement. Disagreements that
//! were studied against the AWS documentation are listed in
//! [`KNOWN_DISAGREEMENTS`] with the reason this crate is right; any other
//! disagreement, or a listed one that disappeared, exits with status 1.
//!
//! When `node` or the npm packages are missing it prints why and exits 0:
//! install them with `npm ci --prefix harness/iam-policy/crosscheck`.

#[path = "../tests/conformance/mod.rs"]
mod conformance;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context as _, bail};
use serde_json::Value;

/// Rule cases where iam-simulate 0.1.173 decides differently, and why AWS sides with this crate.
///
/// (`root_cannot_assume_role` agrees only by coincidence: iam-simulate denies
/// because a root caller has no identity policy, not because STS refuses root.)
const KNOWN_DISAGREEMENTS: &[(&str, &str)] = &[
    (
        "root_needs_no_identity_policy_in_own_account",
        "AWS: \"all requests are implicitly denied with the exception of the AWS account root \
         user, which has full access\" (IAM User Guide, policy evaluation logic); iam-simulate \
         has no root-user rule yet (DefaultServiceAuthorizer: \"Add checks for: root user\").",
    ),
    (
        "root_of_other_account_allowed_by_account_principal",
        "Same root-user rule: the function policy grants account B and B's root needs no \
         identity policy; iam-simulate requires one.",
    ),
    (
        "kms_root_user_allowed_by_account_statement",
        "Same root-user rule: the key policy's account statement enables IAM policies and the \
         root user needs none (KMS: the root user has no permission \"unless they are explicitly \
         allowed ... in a key policy, IAM policy, or grant\", and here the key policy allows the \
         account); iam-simulate requires an identity policy for root.",
    ),
    (
        "not_principal_deny_listing_only_the_role_denies_its_session",
        "AWS NotPrincipal docs: without the session and account ARNs \"the effect of the policy \
         might be to explicitly deny access to the role\"; AWS checks account, role, then session. \
         iam-simulate exempts on any single match and flags this as unresearched.",
    ),
    (
        "date_equals_same_instant_other_format",
        "Date operators accept ISO 8601 or epoch seconds; iam-simulate's parseDate returns epoch \
         values in seconds but ISO dates in milliseconds (Date.parse), so equal instants differ.",
    ),
    (
        "policy_variable_needs_version_2012",
        "AWS: without Version 2012-10-17 \"variables like ${aws:username} are treated as literal \
         strings in the policy\"; iam-simulate substitutes them regardless of Version.",
    ),
    (
        "policy_variable_holding_a_whole_arn",
        "AWS: \"You can use a policy variable for Condition values in any condition that involves \
         the string operators or the ARN operators\" (IAM User Guide, policy variables, Condition \
         element), with no limit on where in the value, unlike Resource (\"only in the resource \
         portion of the ARN\"); iam-simulate splits the policy value into ARN fields before \
         substituting, so `${aws:PrincipalArn}` is an invalid ARN to it and never matches.",
    ),
    (
        "policy_variable_is_literal_in_bool_condition",
        "AWS: \"You can't use a policy variable with other operators, such as Numeric, Date, \
         Boolean, Binary, IP Address, or Null operators\" (IAM User Guide, policy variables, \
         Condition element); iam-simulate's Bool operator substitutes variables anyway.",
    ),
    (
        "policy_variable_escaped_dollar_is_not_a_variable",
        "AWS: \"${$} - use where you need a $ (dollar sign) character ... These predefined policy \
         variables can be used in any string where you can use regular policy variables\" \
         (IAM User Guide, policy variables, Special characters); iam-simulate leaves ${$} as \
         the literal text `${$}` in StringEquals (replacementValue without wildcards).",
    ),
];

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("crosscheck failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script_dir = manifest_dir.join("crosscheck");
    if let Some(reason) = missing_tooling(&script_dir) {
        println!("crosscheck skipped: {reason}");
        return Ok(ExitCode::SUCCESS);
    }

    let cases = conformance::rule_cases();
    let exported = cases
        .iter()
        .map(|c| {
            c.to_crosscheck_json()
                .with_context(|| format!("rule {} does not export", c.name))
        })
        .collect::<anyhow::Result<Vec<Value>>>()?;
    let out_dir = target_dir(manifest_dir).join("iam-crosscheck");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let cases_path = out_dir.join("cases.json");
    std::fs::write(&cases_path, serde_json::to_vec_pretty(&exported)?)
        .with_context(|| format!("writing {}", cases_path.display()))?;

    let output = Command::new("node")
        .arg("crosscheck.mjs")
        .arg(&cases_path)
        .current_dir(&script_dir)
        .output()
        .context("running node crosscheck.mjs")?;
    if !output.status.success() {
        bail!(
            "node crosscheck.mjs exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let theirs: Vec<Value> =
        serde_json::from_slice(&output.stdout).context("parsing crosscheck.mjs output")?;
    let theirs: BTreeMap<&str, &Value> = theirs
        .iter()
        .filter_map(|r| Some((r.get("name")?.as_str()?, r)))
        .collect();

    let known: BTreeMap<&str, &str> = KNOWN_DISAGREEMENTS.iter().copied().collect();
    let mut agreeing = 0usize;
    let mut unexpected = 0usize;
    for case in &exported {
        let name = case["name"].as_str().unwrap_or_default();
        let ours = case["ours"].as_str().unwrap_or_default();
        let Some(result) = theirs.get(name) else {
            bail!("crosscheck.mjs gave no result for rule {name}");
        };
        let their_verdict = result["theirs"].as_str().unwrap_or("missing");
        if their_verdict == ours {
            agreeing += 1;
            if known.contains_key(name) {
                unexpected += 1;
                println!("NOW AGREES (remove from KNOWN_DISAGREEMENTS): {name}");
            }
            continue;
        }
        let error = result.get("error").and_then(Value::as_str).unwrap_or("");
        match known.get(name) {
            Some(why) => {
                println!("known   {name}: ours {ours}, iam-simulate {their_verdict}\n        {why}")
            }
            None => {
                unexpected += 1;
                println!(
                    "DIFFERS {name}: ours {ours} ({}), iam-simulate {their_verdict} {error}",
                    case["ourExplanation"].as_str().unwrap_or_default()
                );
            }
        }
    }
    println!("cases compared: {}, agreeing: {agreeing}", exported.len());
    if unexpected > 0 {
        println!("{unexpected} unexplained difference(s); see above");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Why the cross-check cannot run here, if it cannot.
fn missing_tooling(script_dir: &Path) -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("`node` is not on PATH (needs Node.js 20 or later)".into());
    }
    let package = script_dir.join("node_modules/@cloud-copilot/iam-simulate/package.json");
    if !package.is_file() {
        return Some(format!(
            "{} is missing; run `npm ci --prefix {}`",
            package.display(),
            script_dir.display()
        ));
    }
    None
}

/// The workspace target directory, honouring `CARGO_TARGET_DIR`: else
/// `target` beside the workspace's `Cargo.lock`, wherever this crate is nested.
fn target_dir(manifest_dir: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            manifest_dir
                .ancestors()
                .find(|dir| dir.join("Cargo.lock").is_file())
                .unwrap_or(manifest_dir)
                .join("target")
        })
}
