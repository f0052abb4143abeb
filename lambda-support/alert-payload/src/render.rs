//! Rendering a validated alert into subject, plain text and HTML with handlebars.

use handlebars::Handlebars;
use serde::Serialize;

use crate::{AlertPayload, NotificationError, TemplateKind, header_line};

/// The three parts of an alert email, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// One-line subject, e.g. `[P1] INC0012345: Database cluster unreachable`.
    pub subject: String,
    /// Plain text body; values are not escaped.
    pub text: String,
    /// HTML body; values are HTML-escaped.
    pub html: String,
}

/// The part of an email a template renders.
#[derive(Debug, Clone, Copy)]
enum Part {
    Subject,
    Text,
    Html,
}

impl Part {
    fn as_str(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Text => "text",
            Part::Html => "html",
        }
    }
}

/// Template sources, embedded at build time so the lambda ships as one binary.
fn template_source(kind: TemplateKind, part: Part) -> &'static str {
    match (kind, part) {
        (TemplateKind::Incident, Part::Subject) => {
            include_str!("../templates/incident/subject.hbs")
        }
        (TemplateKind::Incident, Part::Text) => include_str!("../templates/incident/text.hbs"),
        (TemplateKind::Incident, Part::Html) => include_str!("../templates/incident/html.hbs"),
        (TemplateKind::Resolved, Part::Subject) => {
            include_str!("../templates/resolved/subject.hbs")
        }
        (TemplateKind::Resolved, Part::Text) => include_str!("../templates/resolved/text.hbs"),
        (TemplateKind::Resolved, Part::Html) => include_str!("../templates/resolved/html.hbs"),
    }
}

fn template_name(kind: TemplateKind, part: Part) -> String {
    format!("{}/{}", kind.as_str(), part.as_str())
}

/// Renders alerts with the embedded templates; build once and reuse across invocations.
pub struct Renderer {
    // Subject and text are not HTML, so escaping there would show `&amp;` to readers.
    plain: Handlebars<'static>,
    html: Handlebars<'static>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

impl Renderer {
    /// Registers every embedded template in strict mode, so a missing variable is an error.
    pub fn new() -> Result<Self, NotificationError> {
        let mut plain = Handlebars::new();
        plain.set_strict_mode(true);
        plain.register_escape_fn(handlebars::no_escape);
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        html.register_escape_fn(escape_html);

        for kind in TemplateKind::ALL {
            // The file's trailing newline must not reach the Subject header.
            let subject = template_source(kind, Part::Subject).trim_end_matches(['\r', '\n']);
            register(&mut plain, kind, Part::Subject, subject)?;
            register(
                &mut plain,
                kind,
                Part::Text,
                template_source(kind, Part::Text),
            )?;
            register(
                &mut html,
                kind,
                Part::Html,
                template_source(kind, Part::Html),
            )?;
        }
        Ok(Self { plain, html })
    }

    /// Everything the rendered message is made of, as the parts a Message-ID is derived from.
    ///
    /// Rendering is a pure function of the templates and the validated payload, so two
    /// alerts with equal parts render to the same message, and any difference a reader could
    /// see (a field, a recipient, a template change) changes a part. In order:
    /// 1. the sources of the payload's template set: subject, text, HTML, as embedded;
    /// 2. the template set's name (`incident` or `resolved`);
    /// 3. the alert fields `number`, `sys_id`, `short_description`, `description`,
    ///    `priority` (in decimal), `state`, `category`, `assignment_group`, `assigned_to`,
    ///    `opened_at`, `updated_at`, `instance_url`, an absent one as the empty string (no
    ///    present value is empty);
    /// 4. `to`, then each To address, then `cc`, then each Cc address (no address is `to` or
    ///    `cc`, since addresses contain `@`).
    ///
    /// # Example
    /// ```
    /// use alert_payload::{AlertPayload, Allowlists, RecipientAllowlist, Renderer};
    ///
    /// let allow = Allowlists::new(RecipientAllowlist::from_csv("example.com").unwrap());
    /// let raw = serde_json::json!({
    ///     "alert": {"number": "INC0012345", "sys_id": "9d385017c611228701d22104cc95c371",
    ///               "short_description": "Disk full", "priority": 1, "state": "New"},
    ///     "recipients": {"to": ["oncall@example.com"]}
    /// });
    /// let payload = AlertPayload::from_value(&raw, &allow).unwrap();
    /// let parts = Renderer::message_identity(&payload);
    /// assert_eq!(parts[3..6], ["incident", "INC0012345", "9d385017c611228701d22104cc95c371"]);
    /// assert_eq!(parts[parts.len() - 3..], ["to", "oncall@example.com", "cc"]);
    /// ```
    pub fn message_identity(payload: &AlertPayload) -> Vec<String> {
        let kind = payload.template;
        let alert = &payload.alert;
        let optional = |value: &Option<String>| value.clone().unwrap_or_default();
        let mut parts: Vec<String> = [Part::Subject, Part::Text, Part::Html]
            .into_iter()
            .map(|part| template_source(kind, part).to_owned())
            .collect();
        parts.extend([
            kind.as_str().to_owned(),
            alert.number.clone(),
            alert.sys_id.clone(),
            alert.short_description.clone(),
            optional(&alert.description),
            alert.priority.to_string(),
            alert.state.clone(),
            optional(&alert.category),
            optional(&alert.assignment_group),
            optional(&alert.assigned_to),
            optional(&alert.opened_at),
            optional(&alert.updated_at),
            optional(&alert.instance_url),
        ]);
        parts.push("to".to_owned());
        parts.extend(payload.recipients.to.iter().cloned());
        parts.push("cc".to_owned());
        parts.extend(payload.recipients.cc.iter().cloned());
        parts
    }

    /// Renders the payload with the template set it selected.
    pub fn render(&self, payload: &AlertPayload) -> Result<RenderedEmail, NotificationError> {
        let context = TemplateContext::new(payload);
        let kind = payload.template;
        let subject = render(&self.plain, kind, Part::Subject, &context)?;
        // Validation applies the header-line rule to every subject field; this guards the
        // template itself, with the same rule.
        if let Some(c) = subject
            .chars()
            .find(|&c| header_line::forbidden_char(c).is_some())
        {
            return Err(NotificationError::Template {
                template: template_name(kind, Part::Subject),
                reason: format!(
                    "rendered subject contains U+{:04X}, which a one-line header must not",
                    u32::from(c)
                ),
            });
        }
        Ok(RenderedEmail {
            subject,
            text: render(&self.plain, kind, Part::Text, &context)?,
            html: render(&self.html, kind, Part::Html, &context)?,
        })
    }
}

fn register(
    registry: &mut Handlebars<'static>,
    kind: TemplateKind,
    part: Part,
    source: &str,
) -> Result<(), NotificationError> {
    let name = template_name(kind, part);
    registry
        .register_template_string(&name, source)
        .map_err(|e| NotificationError::Template {
            template: name.clone(),
            reason: e.to_string(),
        })
}

fn render(
    registry: &Handlebars<'static>,
    kind: TemplateKind,
    part: Part,
    context: &TemplateContext<'_>,
) -> Result<String, NotificationError> {
    let name = template_name(kind, part);
    registry
        .render(&name, context)
        .map_err(|e| NotificationError::Template {
            template: name.clone(),
            reason: e.to_string(),
        })
}

/// Escapes the five characters that matter in HTML text and quoted attributes.
///
/// Handlebars' default also escapes `=` and backticks, which would mangle the record link
/// (`sys_id&#x3D;...`) in the `href` and the visible text without adding safety.
fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// What templates see: every alert field (absent ones as null) plus derived values.
#[derive(Serialize)]
struct TemplateContext<'a> {
    number: &'a str,
    sys_id: &'a str,
    short_description: &'a str,
    description: Option<&'a str>,
    priority: u8,
    priority_label: &'static str,
    state: &'a str,
    category: Option<&'a str>,
    assignment_group: Option<&'a str>,
    assigned_to: Option<&'a str>,
    opened_at: Option<&'a str>,
    updated_at: Option<&'a str>,
    instance_url: Option<&'a str>,
    record_kind: &'static str,
    link: Option<String>,
}

impl<'a> TemplateContext<'a> {
    fn new(payload: &'a AlertPayload) -> Self {
        let alert = &payload.alert;
        Self {
            number: &alert.number,
            sys_id: &alert.sys_id,
            short_description: &alert.short_description,
            description: alert.description.as_deref(),
            priority: alert.priority,
            priority_label: alert.priority_label(),
            state: &alert.state,
            category: alert.category.as_deref(),
            assignment_group: alert.assignment_group.as_deref(),
            assigned_to: alert.assigned_to.as_deref(),
            opened_at: alert.opened_at.as_deref(),
            updated_at: alert.updated_at.as_deref(),
            instance_url: alert.instance_url.as_deref(),
            record_kind: alert.kind_label(),
            link: alert.record_link(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_mode_turns_a_missing_variable_into_an_error() {
        let mut renderer = Renderer::new().expect("templates register");
        renderer
            .plain
            .register_template_string("typo", "{{numbr}}")
            .expect("template parses");
        let context = serde_json::json!({ "number": "INC0012345" });
        assert!(renderer.plain.render("typo", &context).is_err());
    }

    #[test]
    fn escape_html_escapes_the_five_special_characters_only() {
        assert_eq!(
            escape_html(r#"<a href="x?y=1&z='2'">`ok`</a>"#),
            "&lt;a href=&quot;x?y=1&amp;z=&#x27;2&#x27;&quot;&gt;`ok`&lt;/a&gt;"
        );
    }
}
