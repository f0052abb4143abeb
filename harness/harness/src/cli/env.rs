//! `harness env`: shell exports that point a user's own AWS CLI or SDK at the
//! running system, as one account's root, through the IAM gateway.

use std::{fmt, path::Path};

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use super::{Context, output::Output};
use crate::system::{OUTSIDE_ACCOUNT, RunningSystem};
pub use scenario::AccountLetter;

/// `harness env` options.
#[derive(Debug, Clone, Args)]
pub struct EnvArgs {
    /// Whose root the exports act as.
    #[arg(long, value_enum, default_value = "a")]
    pub account: AccountLetter,
}

/// The exports for one account's root.
#[derive(Debug, Serialize)]
pub struct Exports {
    /// The account id.
    pub account: String,
    /// `(name, value)` pairs, in the order printed.
    pub variables: Vec<(String, String)>,
    /// Variables to unset, so that no profile or old session token interferes.
    pub unset: Vec<String>,
}

impl Output for Exports {
    fn text(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(
            out,
            "# the root of account {}; use: eval \"$(harness env --account ...)\"",
            self.account
        )?;
        for (name, value) in &self.variables {
            writeln!(out, "export {name}={}", shell_quote(value))?;
        }
        writeln!(out, "unset {}", self.unset.join(" "))
    }
}

/// Single-quotes a value for POSIX shells.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Reads the running system's state and builds the exports.
pub fn env(args: &EnvArgs, context: &Context) -> Result<Exports> {
    let state = RunningSystem::read(&context.work_dir)?;
    let ca_file = crate::system::ca_file(&context.work_dir);
    // Absolute, so the exports work from any directory.
    let ca_file = std::path::absolute(&ca_file).unwrap_or(ca_file);
    exports(&state, args.account, &ca_file)
}

fn exports(state: &RunningSystem, letter: AccountLetter, ca_file: &Path) -> Result<Exports> {
    let accounts = state.config.accounts();
    let account = match letter {
        AccountLetter::A => accounts.callee,
        AccountLetter::B => accounts.caller,
        AccountLetter::C => OUTSIDE_ACCOUNT.to_owned(),
    };
    let Some(secret) = state.root_keys.secret(&account) else {
        bail!(
            "the running system has no root key for account {account}; restart it with this harness version"
        );
    };
    let region = sdk_config::REGION.to_owned();
    let mut variables = vec![
        ("AWS_ENDPOINT_URL".into(), state.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID".into(), account.clone()),
        ("AWS_SECRET_ACCESS_KEY".into(), secret.to_owned()),
        ("AWS_REGION".into(), region.clone()),
        ("AWS_DEFAULT_REGION".into(), region),
    ];
    let mut unset = vec!["AWS_SESSION_TOKEN".into(), "AWS_PROFILE".into()];
    // The AWS CLI and botocore trust this bundle for the gateway's HTTPS.
    match state.ca_pem {
        Some(_) => variables.push(("AWS_CA_BUNDLE".into(), ca_file.display().to_string())),
        None => unset.push("AWS_CA_BUNDLE".into()),
    }
    Ok(Exports {
        variables,
        unset,
        account,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_letter_gets_its_accounts_root_key_and_the_gateway() {
        let state = RunningSystem::example(1);
        for (letter, account) in [
            (AccountLetter::A, "111111111111"),
            (AccountLetter::C, OUTSIDE_ACCOUNT),
        ] {
            let exports = exports(&state, letter, Path::new("/run/ca.pem")).expect("exports");
            let get = |name: &str| {
                exports
                    .variables
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            };
            assert_eq!(get("AWS_ACCESS_KEY_ID").as_deref(), Some(account));
            assert_eq!(
                get("AWS_SECRET_ACCESS_KEY").as_deref(),
                state.root_keys.secret(account)
            );
            assert_eq!(get("AWS_ENDPOINT_URL"), Some(state.endpoint.clone()));
            assert_eq!(get("AWS_CA_BUNDLE").as_deref(), Some("/run/ca.pem"));
        }
        let mut plain = RunningSystem::example(1);
        plain.ca_pem = None;
        let without_tls =
            exports(&plain, AccountLetter::A, Path::new("/run/ca.pem")).expect("exports");
        assert!(
            without_tls
                .variables
                .iter()
                .all(|(n, _)| n != "AWS_CA_BUNDLE")
        );
        assert!(without_tls.unset.iter().any(|n| n == "AWS_CA_BUNDLE"));
        let mut keyless = RunningSystem::example(1);
        keyless.root_keys = sdk_config::RootKeys::default();
        assert!(exports(&keyless, AccountLetter::B, Path::new("/run/ca.pem")).is_err());
    }

    #[test]
    fn values_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("plain"), "'plain'");
        assert_eq!(shell_quote("it's $HOME"), r"'it'\''s $HOME'");
    }
}
