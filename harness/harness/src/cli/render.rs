//! `harness render`: validate a payload exactly as the callee does and show
//! the email it would send, with no emulator, network or running `up`.

use std::{fmt, path::PathBuf, process::ExitCode};

use alert_payload::{Allowlists, InstanceHostAllowlist, RecipientAllowlist, Renderer};
use anyhow::{Context as _, Result};
use clap::Args;
use serde::Serialize;

use super::{
    Context,
    invoke::read_payload,
    output::{Output, status},
};
use crate::system::{DEFAULT_ALLOWED_DOMAINS, DEFAULT_INSTANCE_HOSTS, DEFAULT_MAIL_FROM};

/// Options of `harness render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The payload file (JSON); `-` reads it from stdin.
    #[arg(long)]
    pub payload: PathBuf,
    /// Also write the MIME message, as the callee would send it, to this file.
    #[arg(long)]
    pub eml: Option<PathBuf>,
    /// The callee's From address.
    #[arg(long, default_value = DEFAULT_MAIL_FROM)]
    pub mail_from: String,
    /// Domains the callee may send to, comma-separated.
    #[arg(long, default_value = DEFAULT_ALLOWED_DOMAINS)]
    pub allowed_domains: String,
    /// Hosts `alert.instance_url` may name, comma-separated, as the callee's
    /// `ALLOWED_INSTANCE_HOSTS`; `*.` and a domain matches every host below it.
    #[arg(long, default_value = DEFAULT_INSTANCE_HOSTS)]
    pub allowed_instance_hosts: String,
}

/// The email the callee would send, or why it would refuse the payload.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Rendered {
    /// The payload is valid.
    Rendered {
        /// The sender.
        from: String,
        /// The To recipients.
        to: Vec<String>,
        /// The Cc recipients.
        cc: Vec<String>,
        /// The subject.
        subject: String,
        /// The text part.
        text: String,
        /// The HTML part.
        html: String,
        /// The Message-ID.
        message_id: String,
        /// The callee's own headers (ServiceNow number and priority).
        headers: Vec<(String, String)>,
    },
    /// The callee would refuse it with this function error.
    Rejected {
        /// The callee's `errorType`, e.g. `ValidationError`.
        error_type: String,
        /// The callee's `errorMessage`, naming the field.
        error_message: String,
    },
}

impl Output for Rendered {
    fn text(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        match self {
            Self::Rendered {
                from,
                to,
                cc,
                subject,
                text,
                ..
            } => {
                writeln!(out, "from:    {from}")?;
                writeln!(out, "to:      {}", to.join(", "))?;
                if !cc.is_empty() {
                    writeln!(out, "cc:      {}", cc.join(", "))?;
                }
                writeln!(out, "subject: {subject}")?;
                writeln!(out)?;
                writeln!(out, "{}", text.trim_end())
            }
            Self::Rejected {
                error_type,
                error_message,
            } => writeln!(out, "{error_type}: {error_message}"),
        }
    }

    fn exit_code(&self) -> ExitCode {
        status(matches!(self, Self::Rendered { .. }))
    }
}

/// Validates and renders with the callee's own code and templates.
pub fn render(args: &RenderArgs, _context: &Context) -> Result<Rendered> {
    let bytes = read_payload(&args.payload)?;
    // Lambda's runtime refuses a body that is not JSON before the callee sees it; the
    // callee then reads the body as sent, so the strict JSON rules apply to these bytes.
    let raw: Box<serde_json::value::RawValue> = match serde_json::from_slice(&bytes) {
        Ok(raw) => raw,
        Err(err) => {
            return Ok(Rendered::Rejected {
                error_type: "ValidationError".to_owned(),
                error_message: format!("the payload is not JSON: {err}"),
            });
        }
    };
    let allowlists = Allowlists {
        recipients: RecipientAllowlist::from_csv(&args.allowed_domains)
            .context("--allowed-domains is not a list of domains")?,
        instance_hosts: InstanceHostAllowlist::from_csv(&args.allowed_instance_hosts)
            .context("--allowed-instance-hosts is not a list of hosts")?,
    };
    let renderer = Renderer::new().context("the callee's templates do not compile")?;
    let email = match alert_callee::compose(raw.get().as_bytes(), &allowlists, &renderer, None) {
        Ok(email) => email,
        Err(err) => {
            return Ok(Rendered::Rejected {
                error_type: err.error_type().to_owned(),
                error_message: err.to_string(),
            });
        }
    };
    if let Some(path) = &args.eml {
        let mime = email
            .to_mime(&args.mail_from)
            .context("the message cannot be built")?;
        std::fs::write(path, mime).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(Rendered::Rendered {
        from: args.mail_from.clone(),
        to: email.to,
        cc: email.cc,
        subject: email.subject,
        text: email.text,
        html: email.html,
        message_id: email.message_id.as_str().to_owned(),
        headers: email.headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_file(payload: &str, eml: Option<PathBuf>) -> Rendered {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payload.json");
        std::fs::write(&path, payload).unwrap();
        let args = RenderArgs {
            payload: path,
            eml,
            mail_from: DEFAULT_MAIL_FROM.to_owned(),
            allowed_domains: DEFAULT_ALLOWED_DOMAINS.to_owned(),
            allowed_instance_hosts: DEFAULT_INSTANCE_HOSTS.to_owned(),
        };
        let context = Context {
            work_dir: dir.path().to_path_buf(),
            json: false,
        };
        render(&args, &context).unwrap()
    }

    #[test]
    fn the_contract_example_renders_its_subject_and_mime_message() {
        let payload =
            std::fs::read_to_string(crate::workspace::scenarios_dir().join("payloads/p1.json"))
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let eml = dir.path().join("p1.eml");

        let rendered = render_file(&payload, Some(eml.clone()));

        let Rendered::Rendered { subject, to, .. } = &rendered else {
            panic!("rejected: {rendered:?}");
        };
        assert_eq!(subject, "[P1] INC0012345: Database cluster unreachable");
        assert_eq!(to, &["oncall@example.com"]);
        let parsed = scenario::CapturedEmail::parse(&std::fs::read(&eml).unwrap(), "", &[], 1);
        assert_eq!(parsed.subject, *subject);
        assert_eq!(parsed.header("X-ServiceNow-Number"), Some("INC0012345"));
        assert!(parsed.html.is_some_and(|h| h.contains("INC0012345")));
    }

    #[test]
    fn a_payload_the_callee_rejects_names_the_field_and_exits_1() {
        let rendered = render_file(
            r#"{"alert": {"number": "INC0012346", "sys_id": "9d385017c611228701d22104cc95c371", "priority": 2, "state": "New"}, "recipients": {"to": ["oncall@example.com"]}}"#,
            None,
        );

        let Rendered::Rejected {
            error_type,
            error_message,
        } = &rendered
        else {
            panic!("rendered: {rendered:?}");
        };
        assert_eq!(error_type, "ValidationError");
        assert!(
            error_message.contains("alert.short_description"),
            "{error_message}"
        );
        assert_eq!(rendered.exit_code(), ExitCode::from(1));
    }
}
