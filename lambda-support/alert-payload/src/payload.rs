//! The alert payload contract: raw JSON in, a validated [`AlertPayload`] out.

use std::{fmt, io};

use serde::Deserialize;
use serde_json::Value;

use crate::{
    Allowlists, InstanceHostAllowlist, NotificationError, RecipientAllowlist, header_line,
    strict_json,
};

/// Largest accepted payload, in bytes of JSON (256 KiB).
pub const MAX_PAYLOAD_BYTES: usize = 262_144;

/// Most recipients one alert may address, `to` and `cc` together.
pub const MAX_RECIPIENTS: usize = 50;

/// Longest accepted `alert.number`, in characters.
///
/// ServiceNow's number column holds 40; the number reaches the `Subject` and
/// `X-ServiceNow-Number` headers, so it must stay far below RFC 5322's 998-octet line limit.
pub const MAX_NUMBER_CHARS: usize = 40;

/// Longest accepted `alert.short_description`, in characters.
pub const MAX_SHORT_DESCRIPTION_CHARS: usize = 160;

/// Longest accepted `alert.state`, in characters; ServiceNow state labels are a few words.
pub const MAX_STATE_CHARS: usize = 80;

/// Longest accepted `alert.category`, in characters (ServiceNow's column holds 40).
pub const MAX_CATEGORY_CHARS: usize = 80;

/// Longest accepted `alert.assignment_group`, in characters (ServiceNow's group name holds 80).
pub const MAX_ASSIGNMENT_GROUP_CHARS: usize = 100;

/// Longest accepted `alert.assigned_to`, in characters (ServiceNow's user name holds 151).
pub const MAX_ASSIGNED_TO_CHARS: usize = 160;

/// Longest accepted `alert.opened_at` or `alert.updated_at`, in characters; an RFC 3339
/// timestamp with nanoseconds and an offset is 35.
pub const MAX_TIMESTAMP_CHARS: usize = 64;

/// Longest accepted `alert.instance_url`, in characters; a base URL needs no more.
pub const MAX_INSTANCE_URL_CHARS: usize = 256;

/// Longest accepted recipient address, in characters: RFC 5321's 256-octet path limit less
/// the angle brackets.
pub const MAX_ADDRESS_CHARS: usize = 254;

/// Name of the header carrying the ServiceNow record number.
pub const HEADER_NUMBER: &str = "X-ServiceNow-Number";

/// Name of the header carrying the ServiceNow priority (1 to 5).
pub const HEADER_PRIORITY: &str = "X-ServiceNow-Priority";

/// Record number prefixes ServiceNow uses, with the table each one lives in.
const RECORD_TABLES: [(&str, &str, &str); 4] = [
    // RITM before any shorter prefix would matter; none overlap, but keep it explicit.
    ("RITM", "sc_req_item", "requested item"),
    ("INC", "incident", "incident"),
    ("CHG", "change_request", "change request"),
    ("PRB", "problem", "problem"),
];

/// A validated alert: every rule of the contract holds, so it may be rendered and sent.
///
/// Built only by [`AlertPayload::from_slice`] or [`AlertPayload::from_value`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlertPayload {
    /// The ServiceNow record the alert is about.
    pub alert: Alert,
    /// Who receives the email.
    pub recipients: Recipients,
    /// Which template set renders it.
    pub template: TemplateKind,
}

/// The ServiceNow record fields of a validated payload.
///
/// Single-line fields obey the [`header_line`](crate::header_line) rule: no control, line
/// separator or bidirectional formatting characters, not blank, and at most the documented
/// number of characters. An optional field sent as an empty, whitespace-only or
/// zero-width-only string is treated as absent (`None`), so no empty row is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Alert {
    /// Record number, e.g. `INC0012345`: a prefix (INC, CHG, PRB, RITM) and at least 7
    /// digits, at most [`MAX_NUMBER_CHARS`] (40) characters. Reaches the subject, the
    /// `X-ServiceNow-Number` header and the HTML title.
    pub number: String,
    /// 32-hex-digit ServiceNow sys_id.
    pub sys_id: String,
    /// One-line summary, 1 to [`MAX_SHORT_DESCRIPTION_CHARS`] (160) characters, not blank.
    /// Reaches the subject and the HTML title.
    pub short_description: String,
    /// Free text, may span lines; no NUL.
    pub description: Option<String>,
    /// Priority from 1 (critical) to 5 (planning).
    pub priority: u8,
    /// Record state, e.g. `New` or `Resolved`, one line of at most [`MAX_STATE_CHARS`] (80)
    /// characters, not blank.
    pub state: String,
    /// Record category, one line of at most [`MAX_CATEGORY_CHARS`] (80) characters.
    pub category: Option<String>,
    /// Group the record is assigned to, one line of at most [`MAX_ASSIGNMENT_GROUP_CHARS`]
    /// (100) characters.
    pub assignment_group: Option<String>,
    /// Person the record is assigned to, one line of at most [`MAX_ASSIGNED_TO_CHARS`] (160)
    /// characters.
    pub assigned_to: Option<String>,
    /// RFC 3339 time the record was opened, at most [`MAX_TIMESTAMP_CHARS`] (64) characters.
    pub opened_at: Option<String>,
    /// RFC 3339 time the record was last updated, at most [`MAX_TIMESTAMP_CHARS`] (64)
    /// characters.
    pub updated_at: Option<String>,
    /// http(s) base URL of the ServiceNow instance, without a trailing slash, at most
    /// [`MAX_INSTANCE_URL_CHARS`] (256) characters, whose host the
    /// [`InstanceHostAllowlist`] allows (by default `*.service-now.com`).
    pub instance_url: Option<String>,
}

/// Validated recipients: allowlisted, well-formed, at most [`MAX_RECIPIENTS`] in all.
///
/// Each address is a bare `local@domain` of at most [`MAX_ADDRESS_CHARS`] (254) characters
/// whose domain is in the [`RecipientAllowlist`]. The local part is 1 to 64 characters from
/// exactly this set: ASCII letters `A`–`Z` and `a`–`z`, digits `0`–`9`, and `.` `_` `-` `+`
/// `'`; it neither starts nor ends with `.` and has no `..`. Routing characters such as `%`,
/// `!`, `/`, `|`, `:` and `,` are rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recipients {
    /// Primary recipients, at least one; they reach the `To` header.
    pub to: Vec<String>,
    /// Copied recipients, possibly none; they reach the `Cc` header.
    pub cc: Vec<String>,
}

/// The template sets shipped with the crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TemplateKind {
    /// A new or updated record (the default).
    #[default]
    Incident,
    /// A resolved record; the subject gains a `[RESOLVED] ` prefix.
    Resolved,
}

impl TemplateKind {
    /// Every template set, in the order they are registered.
    pub const ALL: [TemplateKind; 2] = [TemplateKind::Incident, TemplateKind::Resolved];

    /// The name used in payloads and template paths.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Incident => "incident",
            TemplateKind::Resolved => "resolved",
        }
    }
}

impl fmt::Display for TemplateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// The wire shape. Every field is optional here so that a missing field is reported by
// its full path (`alert.number`), which serde's own "missing field" error does not do.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
struct RawPayload {
    alert: Option<RawAlert>,
    recipients: Option<RawRecipients>,
    template: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
struct RawAlert {
    number: Option<String>,
    sys_id: Option<String>,
    short_description: Option<String>,
    description: Option<String>,
    priority: Option<i64>,
    state: Option<String>,
    category: Option<String>,
    assignment_group: Option<String>,
    assigned_to: Option<String>,
    opened_at: Option<String>,
    updated_at: Option<String>,
    instance_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
struct RawRecipients {
    to: Option<Vec<String>>,
    cc: Option<Vec<String>>,
}

impl AlertPayload {
    /// Validates raw JSON bytes as received: the size limit first, then [strict
    /// JSON](crate::strict_json) (no duplicate key, no lone surrogate, at most 32 levels of
    /// nesting), then every field rule.
    ///
    /// Unknown fields are rejected at every level (top level, `alert`, `recipients`).
    ///
    /// # Example
    /// ```
    /// use alert_payload::{AlertPayload, Allowlists, RecipientAllowlist};
    ///
    /// let allow = Allowlists::new(RecipientAllowlist::from_csv("example.com").unwrap());
    /// let raw = br#"{"alert": {"number": "INC0012345", "sys_id": "9d385017c611228701d22104cc95c371",
    ///   "short_description": "Disk full", "priority": 2, "state": "New"},
    ///   "recipients": {"to": ["oncall@example.com"]}}"#;
    /// let payload = AlertPayload::from_slice(raw, &allow).unwrap();
    /// assert_eq!(payload.alert.number, "INC0012345");
    /// ```
    pub fn from_slice(raw: &[u8], allowlists: &Allowlists) -> Result<Self, NotificationError> {
        check_size(raw.len())?;
        strict_json::check(raw)?;
        let value: Value = serde_json::from_slice(raw).map_err(|e| {
            NotificationError::validation("payload", format!("is not valid JSON: {e}"))
        })?;
        Self::validate_value(&value, allowlists)
    }

    /// Validates an already parsed JSON value.
    ///
    /// The size limit applies to the value's compact JSON encoding, which is never larger
    /// than the bytes the caller sent (whitespace is the only difference). A parsed value
    /// has lost its duplicate keys and escapes, so the strict JSON rules cannot apply:
    /// request bodies go through [`AlertPayload::from_slice`].
    pub fn from_value(raw: &Value, allowlists: &Allowlists) -> Result<Self, NotificationError> {
        check_size(encoded_len(raw))?;
        Self::validate_value(raw, allowlists)
    }

    fn validate_value(raw: &Value, allowlists: &Allowlists) -> Result<Self, NotificationError> {
        // serde also fills structs from JSON arrays (by position); the contract is objects only.
        if !raw.is_object() {
            return Err(NotificationError::validation(
                "payload",
                "must be a JSON object",
            ));
        }
        for (field, value) in [
            ("alert", raw.get("alert")),
            ("recipients", raw.get("recipients")),
        ] {
            if let Some(value) = value
                && !value.is_object()
                && !value.is_null()
            {
                return Err(NotificationError::validation(
                    field,
                    "must be a JSON object",
                ));
            }
        }
        let parsed: RawPayload = serde_path_to_error::deserialize(raw).map_err(path_error)?;
        parsed.validate(allowlists)
    }

    /// Header name/value pairs that identify the record: number and priority.
    pub fn servicenow_headers(&self) -> [(&'static str, String); 2] {
        [
            (HEADER_NUMBER, self.alert.number.clone()),
            (HEADER_PRIORITY, self.alert.priority.to_string()),
        ]
    }

    /// Every recipient, `to` first then `cc`.
    pub fn all_recipients(&self) -> impl Iterator<Item = &str> {
        self.recipients
            .to
            .iter()
            .chain(self.recipients.cc.iter())
            .map(String::as_str)
    }
}

impl Alert {
    /// The ServiceNow table the record number belongs to, e.g. `incident`.
    pub fn table(&self) -> &'static str {
        record_kind(&self.number).map_or("incident", |(_, table, _)| table)
    }

    /// The record kind in words, e.g. `change request`.
    pub fn kind_label(&self) -> &'static str {
        record_kind(&self.number).map_or("incident", |(_, _, label)| label)
    }

    /// The ServiceNow name of the priority, e.g. `Critical` for 1.
    pub fn priority_label(&self) -> &'static str {
        match self.priority {
            1 => "Critical",
            2 => "High",
            3 => "Moderate",
            4 => "Low",
            _ => "Planning",
        }
    }

    /// Link to the record in the ServiceNow UI, when the instance URL is known.
    pub fn record_link(&self) -> Option<String> {
        self.instance_url.as_ref().map(|base| {
            format!(
                "{base}/nav_to.do?uri={}.do?sys_id={}",
                self.table(),
                self.sys_id
            )
        })
    }
}

fn record_kind(number: &str) -> Option<(&'static str, &'static str, &'static str)> {
    RECORD_TABLES
        .iter()
        .copied()
        .find(|(prefix, _, _)| number.starts_with(prefix))
}

fn check_size(len: usize) -> Result<(), NotificationError> {
    if len > MAX_PAYLOAD_BYTES {
        return Err(NotificationError::validation(
            "payload",
            format!(
                "is {len} bytes, over the {MAX_PAYLOAD_BYTES} byte limit; shorten the description"
            ),
        ));
    }
    Ok(())
}

/// Length of the compact JSON encoding, without building the string.
fn encoded_len(value: &Value) -> usize {
    struct Counter(usize);
    impl io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Serialising a Value into a writer that never fails cannot fail; if it ever did,
    // the maximum makes the size check reject the payload rather than wave it through.
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

fn path_error<E: fmt::Display>(error: serde_path_to_error::Error<E>) -> NotificationError {
    // The path already ends in the offending key, unknown keys included.
    let field = match error.path().to_string() {
        root if root == "." => "payload".to_owned(),
        path => path,
    };
    let reason = error.inner().to_string();
    if reason.starts_with("unknown field") {
        return NotificationError::validation(
            field,
            "unknown field; remove it (see the payload contract)",
        );
    }
    NotificationError::validation(field, reason)
}

impl RawPayload {
    fn validate(self, allowlists: &Allowlists) -> Result<AlertPayload, NotificationError> {
        let alert = self
            .alert
            .ok_or_else(|| missing("alert"))?
            .validate(&allowlists.instance_hosts)?;
        let recipients = self
            .recipients
            .ok_or_else(|| missing("recipients"))?
            .validate(&allowlists.recipients)?;
        let template = match self.template.as_deref() {
            None => TemplateKind::default(),
            Some("incident") => TemplateKind::Incident,
            Some("resolved") => TemplateKind::Resolved,
            Some(other) => {
                return Err(NotificationError::validation(
                    "template",
                    format!("unknown template {other:?}; use incident or resolved"),
                ));
            }
        };
        Ok(AlertPayload {
            alert,
            recipients,
            template,
        })
    }
}

impl RawAlert {
    fn validate(self, instance_hosts: &InstanceHostAllowlist) -> Result<Alert, NotificationError> {
        let number = required("alert.number", self.number)?;
        header_line::check("alert.number", &number, MAX_NUMBER_CHARS)?;
        if !is_record_number(&number) {
            return Err(NotificationError::validation(
                "alert.number",
                "must be INC, CHG, PRB or RITM followed by at least 7 digits",
            ));
        }

        // 32 hex digits admit nothing the header-line rule rejects, so the format is the check.
        let sys_id = required("alert.sys_id", self.sys_id)?;
        if sys_id.len() != 32 || !sys_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NotificationError::validation(
                "alert.sys_id",
                "must be exactly 32 hexadecimal digits",
            ));
        }

        let short_description = required("alert.short_description", self.short_description)?;
        header_line::check(
            "alert.short_description",
            &short_description,
            MAX_SHORT_DESCRIPTION_CHARS,
        )?;

        let priority = self.priority.ok_or_else(|| missing("alert.priority"))?;
        let priority = u8::try_from(priority)
            .ok()
            .filter(|p| (1..=5).contains(p))
            .ok_or_else(|| {
                NotificationError::validation(
                    "alert.priority",
                    format!("must be between 1 and 5, got {priority}"),
                )
            })?;

        let state = required("alert.state", self.state)?;
        header_line::check("alert.state", &state, MAX_STATE_CHARS)?;

        let description = optional(self.description);
        if let Some(text) = &description
            && text.contains('\0')
        {
            return Err(NotificationError::validation(
                "alert.description",
                "must not contain NUL",
            ));
        }

        Ok(Alert {
            number,
            sys_id,
            short_description,
            description,
            priority,
            state,
            category: optional_line("alert.category", self.category, MAX_CATEGORY_CHARS)?,
            assignment_group: optional_line(
                "alert.assignment_group",
                self.assignment_group,
                MAX_ASSIGNMENT_GROUP_CHARS,
            )?,
            assigned_to: optional_line(
                "alert.assigned_to",
                self.assigned_to,
                MAX_ASSIGNED_TO_CHARS,
            )?,
            opened_at: optional_timestamp("alert.opened_at", self.opened_at)?,
            updated_at: optional_timestamp("alert.updated_at", self.updated_at)?,
            instance_url: optional_instance_url(self.instance_url, instance_hosts)?,
        })
    }
}

impl RawRecipients {
    fn validate(self, allowlist: &RecipientAllowlist) -> Result<Recipients, NotificationError> {
        let to = self.to.ok_or_else(|| missing("recipients.to"))?;
        let cc = self.cc.unwrap_or_default();
        if to.is_empty() {
            return Err(NotificationError::validation(
                "recipients.to",
                "must list at least one address",
            ));
        }
        if to.len() > MAX_RECIPIENTS {
            return Err(NotificationError::validation(
                "recipients.to",
                format!("lists {} addresses, more than {MAX_RECIPIENTS}", to.len()),
            ));
        }
        if to.len() + cc.len() > MAX_RECIPIENTS {
            return Err(NotificationError::validation(
                "recipients",
                format!(
                    "to and cc list {} addresses together, more than {MAX_RECIPIENTS}",
                    to.len() + cc.len()
                ),
            ));
        }
        for (list, addresses) in [("to", &to), ("cc", &cc)] {
            for (index, address) in addresses.iter().enumerate() {
                check_recipient(&format!("recipients.{list}[{index}]"), address, allowlist)?;
            }
        }
        Ok(Recipients { to, cc })
    }
}

fn check_recipient(
    field: &str,
    address: &str,
    allowlist: &RecipientAllowlist,
) -> Result<(), NotificationError> {
    header_line::check(field, address, MAX_ADDRESS_CHARS)?;
    let Some(domain) = mailbox_domain(address) else {
        return Err(NotificationError::validation(
            field,
            "is not a plain email address like name@example.com",
        ));
    };
    if !allowlist.allows_domain(domain) {
        return Err(NotificationError::validation(
            field,
            format!("domain {domain:?} is not in the allowed recipient domains"),
        ));
    }
    Ok(())
}

/// Characters a recipient's local part may use besides ASCII letters and digits.
///
/// Deliberately a small subset of RFC 5322's `atext`: `%` (percent-hack relaying), `!`
/// (UUCP bang paths), `/` (X.400 gateways), `|` (pipe-to-program aliases) and the other
/// symbols can make a relay forward or deliver the mail somewhere the allowlisted domain
/// does not decide.
const LOCAL_PART_SYMBOLS: &[u8] = b"._-+'";

/// The domain of a bare `local@domain` address, or `None` when the address is malformed.
///
/// Deliberately narrower than RFC 5322, since these addresses end up in headers and in
/// the SMTP envelope: no display names, comments or quoted strings.
/// - The local part is 1 to 64 characters from exactly this set: ASCII letters `A`–`Z`
///   and `a`–`z`, digits `0`–`9`, and `.` `_` `-` `+` `'`. It neither starts nor ends
///   with `.` and has no `..`. Routing characters such as `%`, `!`, `/`, `|`, `:`, `,`
///   and a second `@` are rejected.
/// - The domain is an ASCII host name (see [`is_domain_name`]).
fn mailbox_domain(address: &str) -> Option<&str> {
    let (local, domain) = address.split_once('@')?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || LOCAL_PART_SYMBOLS.contains(&b));
    (local_ok && is_domain_name(domain)).then_some(domain)
}

/// Whether `name` is an ASCII host name: dot-separated labels of letters, digits and
/// inner hyphens.
pub(crate) fn is_domain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_record_number(number: &str) -> bool {
    record_kind(number).is_some_and(|(prefix, _, _)| {
        let digits = &number[prefix.len()..];
        digits.len() >= 7 && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

fn missing(field: &str) -> NotificationError {
    NotificationError::validation(field, "is required")
}

fn required(field: &str, value: Option<String>) -> Result<String, NotificationError> {
    value.ok_or_else(|| missing(field))
}

/// An optional field's value, or `None` when it is missing, empty, or only whitespace and
/// zero-width characters ([`header_line::is_blank`]).
///
/// ServiceNow sends empty strings for unset fields; a blank value would render as an empty
/// row, so it means "not given" too. Since nothing of a blank value is kept, its control
/// characters (a lone TAB or CR/LF) cannot reach the email either.
fn optional(value: Option<String>) -> Option<String> {
    value.filter(|v| !header_line::is_blank(v))
}

/// An optional single-line field: absent when blank, otherwise checked by the
/// [`header_line`] rule with its maximum length.
fn optional_line(
    field: &str,
    value: Option<String>,
    max_chars: usize,
) -> Result<Option<String>, NotificationError> {
    let value = optional(value);
    if let Some(v) = &value {
        header_line::check(field, v, max_chars)?;
    }
    Ok(value)
}

fn optional_timestamp(
    field: &str,
    value: Option<String>,
) -> Result<Option<String>, NotificationError> {
    let value = optional_line(field, value, MAX_TIMESTAMP_CHARS)?;
    if let Some(v) = &value
        && time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).is_err()
    {
        return Err(NotificationError::validation(
            field,
            "must be an RFC 3339 timestamp such as 2026-11-22T08:00:00Z",
        ));
    }
    Ok(value)
}

fn optional_instance_url(
    value: Option<String>,
    instance_hosts: &InstanceHostAllowlist,
) -> Result<Option<String>, NotificationError> {
    const FIELD: &str = "alert.instance_url";
    let Some(raw) = optional_line(FIELD, value, MAX_INSTANCE_URL_CHARS)? else {
        return Ok(None);
    };
    let invalid = |reason: &str| NotificationError::validation(FIELD, reason);
    let url =
        url::Url::parse(&raw).map_err(|_| invalid("must be an absolute http or https URL"))?;
    // Only web links: anything else (javascript:, data:, file:) would turn the email's link
    // into an attack.
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("must be an absolute http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not contain credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must be a base URL without query or fragment"));
    }
    // The link in the email must lead to the organisation's own ServiceNow, not to a page
    // that only looks like it.
    let host = url.host_str().unwrap_or_default();
    if !instance_hosts.allows_host(host) {
        return Err(NotificationError::validation(
            FIELD,
            format!(
                "host {host:?} is not an allowed ServiceNow instance host (allowed: {}); link \
                 to your own instance",
                instance_hosts.to_csv()
            ),
        ));
    }
    Ok(Some(url.as_str().trim_end_matches('/').to_owned()))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::{Value, json};

    use super::*;

    fn allowlist() -> Allowlists {
        Allowlists::new(
            RecipientAllowlist::from_csv("example.com, Example.org").expect("valid allowlist"),
        )
    }

    /// The contract's example payload: valid under [`allowlist`].
    fn example() -> Value {
        json!({
            "alert": {
                "number": "INC0012345",
                "sys_id": "9d385017c611228701d22104cc95c371",
                "short_description": "Database cluster unreachable",
                "description": "Primary and replica stopped answering health checks.",
                "priority": 1,
                "state": "New",
                "category": "Database",
                "assignment_group": "DBA On-Call",
                "assigned_to": "Ada Lovelace",
                "opened_at": "2026-11-22T08:00:00Z",
                "updated_at": "2026-11-22T08:05:00Z",
                "instance_url": "https://example.service-now.com"
            },
            "recipients": { "to": ["oncall@example.com"], "cc": [] },
            "template": "incident"
        })
    }

    fn addresses(n: usize) -> Value {
        Value::from(
            (0..n)
                .map(|i| format!("user{i}@example.com"))
                .collect::<Vec<_>>(),
        )
    }

    fn parse(payload: &Value) -> Result<AlertPayload, NotificationError> {
        AlertPayload::from_value(payload, &allowlist())
    }

    #[test]
    fn example_payload_is_valid_and_typed() {
        let payload = parse(&example()).expect("example is valid");
        assert_eq!(payload.alert.number, "INC0012345");
        assert_eq!(payload.alert.priority, 1);
        assert_eq!(
            payload.alert.instance_url.as_deref(),
            Some("https://example.service-now.com")
        );
        assert_eq!(payload.recipients.to, ["oncall@example.com"]);
        assert!(payload.recipients.cc.is_empty());
        assert_eq!(payload.template, TemplateKind::Incident);
    }

    #[test]
    fn minimal_payload_defaults_optional_fields() {
        let payload = parse(&json!({
            "alert": {
                "number": "RITM0000001",
                "sys_id": "ABCDEF0123456789abcdef0123456789",
                "short_description": "x",
                "priority": 5,
                "state": "Open",
                "category": ""
            },
            "recipients": { "to": ["a@EXAMPLE.org"] }
        }))
        .expect("minimal payload is valid");
        assert_eq!(payload.template, TemplateKind::Incident);
        assert!(payload.recipients.cc.is_empty());
        // ServiceNow's empty strings mean "unset".
        assert_eq!(payload.alert.category, None);
        assert_eq!(payload.alert.description, None);
        assert_eq!(payload.alert.record_link(), None);
    }

    #[rstest]
    #[case::incident("INC0012345", "incident")]
    #[case::change("CHG0000001", "change_request")]
    #[case::problem("PRB1234567", "problem")]
    #[case::requested_item("RITM0010001", "sc_req_item")]
    fn record_link_points_at_the_record_table(#[case] number: &str, #[case] table: &str) {
        let mut raw = example();
        raw["alert"]["number"] = json!(number);
        raw["alert"]["instance_url"] = json!("https://example.service-now.com/");
        let payload = parse(&raw).expect("valid");
        assert_eq!(
            payload.alert.record_link().as_deref(),
            Some(
                format!(
                    "https://example.service-now.com/nav_to.do?uri={table}.do?sys_id=9d385017c611228701d22104cc95c371"
                )
                .as_str()
            )
        );
    }

    #[test]
    fn resolved_template_is_selectable() {
        let mut raw = example();
        raw["template"] = json!("resolved");
        assert_eq!(parse(&raw).expect("valid").template, TemplateKind::Resolved);
    }

    #[test]
    fn servicenow_headers_carry_number_and_priority() {
        let payload = parse(&example()).expect("valid");
        assert_eq!(
            payload.servicenow_headers(),
            [
                ("X-ServiceNow-Number", "INC0012345".to_owned()),
                ("X-ServiceNow-Priority", "1".to_owned())
            ]
        );
    }

    #[test]
    fn fifty_recipients_in_to_and_cc_are_accepted() {
        let mut raw = example();
        raw["recipients"] = json!({ "to": addresses(30), "cc": addresses(20) });
        let payload = parse(&raw).expect("50 recipients is the limit, not over it");
        assert_eq!(payload.all_recipients().count(), 50);
    }

    type Mutation = fn(&mut Value);

    /// One row per validation rule: break exactly one rule of the example, expect that field.
    #[rstest]
    #[case::payload_not_an_object(|p: &mut Value| *p = json!([1, 2]), "payload")]
    #[case::payload_null(|p: &mut Value| *p = Value::Null, "payload")]
    #[case::alert_as_array(|p: &mut Value| p["alert"] = json!(["INC0012345", "9d385017c611228701d22104cc95c371", "x", null, 1, "New"]), "alert")]
    #[case::recipients_as_array(|p: &mut Value| p["recipients"] = json!([["oncall@example.com"]]), "recipients")]
    #[case::unknown_top_level_field(|p: &mut Value| p["extra"] = json!(1), "extra")]
    #[case::unknown_alert_field(|p: &mut Value| p["alert"]["severity"] = json!("high"), "alert.severity")]
    #[case::unknown_recipients_field(|p: &mut Value| p["recipients"]["bcc"] = json!([]), "recipients.bcc")]
    #[case::alert_missing(|p: &mut Value| remove(p, "", "alert"), "alert")]
    #[case::alert_wrong_type(|p: &mut Value| p["alert"] = json!("INC0012345"), "alert")]
    #[case::number_missing(|p: &mut Value| remove(p, "alert", "number"), "alert.number")]
    #[case::number_unknown_prefix(|p: &mut Value| p["alert"]["number"] = json!("TASK0012345"), "alert.number")]
    #[case::number_lowercase_prefix(|p: &mut Value| p["alert"]["number"] = json!("inc0012345"), "alert.number")]
    #[case::number_six_digits(|p: &mut Value| p["alert"]["number"] = json!("INC001234"), "alert.number")]
    #[case::number_non_digit(|p: &mut Value| p["alert"]["number"] = json!("INC00123A5"), "alert.number")]
    #[case::number_wrong_type(|p: &mut Value| p["alert"]["number"] = json!(12345), "alert.number")]
    #[case::sys_id_missing(|p: &mut Value| remove(p, "alert", "sys_id"), "alert.sys_id")]
    #[case::sys_id_31_digits(|p: &mut Value| p["alert"]["sys_id"] = json!("9d385017c611228701d22104cc95c37"), "alert.sys_id")]
    #[case::sys_id_33_digits(|p: &mut Value| p["alert"]["sys_id"] = json!("9d385017c611228701d22104cc95c3710"), "alert.sys_id")]
    #[case::sys_id_non_hex(|p: &mut Value| p["alert"]["sys_id"] = json!("9d385017c611228701d22104cc95c37g"), "alert.sys_id")]
    #[case::short_description_missing(|p: &mut Value| remove(p, "alert", "short_description"), "alert.short_description")]
    #[case::short_description_empty(|p: &mut Value| p["alert"]["short_description"] = json!(""), "alert.short_description")]
    #[case::short_description_blank(|p: &mut Value| p["alert"]["short_description"] = json!("   "), "alert.short_description")]
    #[case::short_description_161_chars(|p: &mut Value| p["alert"]["short_description"] = json!("é".repeat(161)), "alert.short_description")]
    #[case::priority_missing(|p: &mut Value| remove(p, "alert", "priority"), "alert.priority")]
    #[case::priority_zero(|p: &mut Value| p["alert"]["priority"] = json!(0), "alert.priority")]
    #[case::priority_six(|p: &mut Value| p["alert"]["priority"] = json!(6), "alert.priority")]
    #[case::priority_negative(|p: &mut Value| p["alert"]["priority"] = json!(-1), "alert.priority")]
    #[case::priority_as_string(|p: &mut Value| p["alert"]["priority"] = json!("1"), "alert.priority")]
    #[case::priority_fractional(|p: &mut Value| p["alert"]["priority"] = json!(1.5), "alert.priority")]
    #[case::state_missing(|p: &mut Value| remove(p, "alert", "state"), "alert.state")]
    #[case::state_blank(|p: &mut Value| p["alert"]["state"] = json!(" "), "alert.state")]
    #[case::description_with_nul(|p: &mut Value| p["alert"]["description"] = json!("a\u{0}b"), "alert.description")]
    #[case::opened_at_not_rfc3339(|p: &mut Value| p["alert"]["opened_at"] = json!("2026-11-22 08:00:00"), "alert.opened_at")]
    #[case::updated_at_not_a_time(|p: &mut Value| p["alert"]["updated_at"] = json!("yesterday"), "alert.updated_at")]
    #[case::instance_url_javascript(|p: &mut Value| p["alert"]["instance_url"] = json!("javascript:alert(1)"), "alert.instance_url")]
    #[case::instance_url_not_http(|p: &mut Value| p["alert"]["instance_url"] = json!("ftp://example.service-now.com"), "alert.instance_url")]
    #[case::instance_url_relative(|p: &mut Value| p["alert"]["instance_url"] = json!("/nav_to.do"), "alert.instance_url")]
    #[case::instance_url_with_credentials(|p: &mut Value| p["alert"]["instance_url"] = json!("https://u:p@example.service-now.com"), "alert.instance_url")]
    #[case::instance_url_with_query(|p: &mut Value| p["alert"]["instance_url"] = json!("https://example.service-now.com/?x=1"), "alert.instance_url")]
    #[case::recipients_missing(|p: &mut Value| remove(p, "", "recipients"), "recipients")]
    #[case::to_missing(|p: &mut Value| remove(p, "recipients", "to"), "recipients.to")]
    #[case::to_empty(|p: &mut Value| p["recipients"]["to"] = json!([]), "recipients.to")]
    #[case::to_not_a_list(|p: &mut Value| p["recipients"]["to"] = json!("oncall@example.com"), "recipients.to")]
    #[case::to_entry_not_a_string(|p: &mut Value| p["recipients"]["to"] = json!(["oncall@example.com", 7]), "recipients.to[1]")]
    #[case::to_over_fifty(|p: &mut Value| p["recipients"]["to"] = addresses(51), "recipients.to")]
    #[case::to_and_cc_over_fifty(|p: &mut Value| p["recipients"] = json!({"to": addresses(25), "cc": addresses(26)}), "recipients")]
    #[case::address_without_at(|p: &mut Value| p["recipients"]["to"] = json!(["oncall.example.com"]), "recipients.to[0]")]
    #[case::address_with_two_ats(|p: &mut Value| p["recipients"]["to"] = json!(["on@call@example.com"]), "recipients.to[0]")]
    #[case::address_with_display_name(|p: &mut Value| p["recipients"]["to"] = json!(["Ada <ada@example.com>"]), "recipients.to[0]")]
    #[case::address_with_space(|p: &mut Value| p["recipients"]["to"] = json!(["on call@example.com"]), "recipients.to[0]")]
    #[case::address_with_empty_local_part(|p: &mut Value| p["recipients"]["to"] = json!(["@example.com"]), "recipients.to[0]")]
    #[case::address_with_comma_list(|p: &mut Value| p["recipients"]["to"] = json!(["a@example.com,b@example.com"]), "recipients.to[0]")]
    #[case::address_with_percent_hack(|p: &mut Value| p["recipients"]["to"] = json!(["victim%evil.test@example.com"]), "recipients.to[0]")]
    #[case::address_with_bang_path(|p: &mut Value| p["recipients"]["to"] = json!(["evil.test!victim@example.com"]), "recipients.to[0]")]
    #[case::address_with_slash(|p: &mut Value| p["recipients"]["to"] = json!(["/G=Ada/S=Lovelace/@example.com"]), "recipients.to[0]")]
    #[case::address_with_pipe(|p: &mut Value| p["recipients"]["to"] = json!(["|mail@example.com"]), "recipients.to[0]")]
    #[case::address_with_equals(|p: &mut Value| p["recipients"]["to"] = json!(["bounce=evil.test@example.com"]), "recipients.to[0]")]
    #[case::address_with_source_route(|p: &mut Value| p["recipients"]["to"] = json!(["@evil.test:victim@example.com"]), "recipients.to[0]")]
    #[case::address_with_quoted_local_part(|p: &mut Value| p["recipients"]["to"] = json!(["\"a b\"@example.com"]), "recipients.to[0]")]
    #[case::cc_with_percent_hack(|p: &mut Value| p["recipients"]["cc"] = json!(["victim%evil.test@example.com"]), "recipients.cc[0]")]
    #[case::number_over_40_chars(|p: &mut Value| p["alert"]["number"] = json!(format!("INC{}", "0".repeat(38))), "alert.number")]
    #[case::number_blank(|p: &mut Value| p["alert"]["number"] = json!("\u{200b}"), "alert.number")]
    #[case::state_over_80_chars(|p: &mut Value| p["alert"]["state"] = json!("é".repeat(81)), "alert.state")]
    #[case::state_zero_width_only(|p: &mut Value| p["alert"]["state"] = json!("\u{feff}\u{2060}"), "alert.state")]
    #[case::short_description_zero_width_only(|p: &mut Value| p["alert"]["short_description"] = json!("\u{200b}\u{200c}\u{200d}"), "alert.short_description")]
    #[case::category_over_80_chars(|p: &mut Value| p["alert"]["category"] = json!("c".repeat(81)), "alert.category")]
    #[case::category_with_tab(|p: &mut Value| p["alert"]["category"] = json!("Data\tbase"), "alert.category")]
    #[case::assignment_group_over_100_chars(|p: &mut Value| p["alert"]["assignment_group"] = json!("g".repeat(101)), "alert.assignment_group")]
    #[case::assignment_group_with_bidi_override(|p: &mut Value| p["alert"]["assignment_group"] = json!("DBA \u{202e}llaC-nO"), "alert.assignment_group")]
    #[case::assigned_to_over_160_chars(|p: &mut Value| p["alert"]["assigned_to"] = json!("a".repeat(161)), "alert.assigned_to")]
    #[case::opened_at_over_64_chars(|p: &mut Value| p["alert"]["opened_at"] = json!(format!("2026-11-22T08:00:00.{}Z", "0".repeat(45))), "alert.opened_at")]
    // The url crate silently drops TAB and LF while parsing, so only the rule catches them.
    #[case::instance_url_with_tab(|p: &mut Value| p["alert"]["instance_url"] = json!("https://example.\tservice-now.com"), "alert.instance_url")]
    #[case::instance_url_over_256_chars(|p: &mut Value| p["alert"]["instance_url"] = json!(format!("https://example.service-now.com/{}", "p".repeat(240))), "alert.instance_url")]
    #[case::instance_url_phishing_host(|p: &mut Value| p["alert"]["instance_url"] = json!("https://service-now.example.test"), "alert.instance_url")]
    #[case::instance_url_allowed_host_as_subdomain_of_another(|p: &mut Value| p["alert"]["instance_url"] = json!("https://acme.service-now.com.evil.test"), "alert.instance_url")]
    #[case::instance_url_lookalike_domain(|p: &mut Value| p["alert"]["instance_url"] = json!("https://acme.service-now.co"), "alert.instance_url")]
    #[case::instance_url_ip_address(|p: &mut Value| p["alert"]["instance_url"] = json!("https://203.0.113.7"), "alert.instance_url")]
    #[case::instance_url_bare_domain(|p: &mut Value| p["alert"]["instance_url"] = json!("https://service-now.com"), "alert.instance_url")]
    #[case::to_domain_not_allowed(|p: &mut Value| p["recipients"]["to"] = json!(["oncall@example.com", "x@evil.test"]), "recipients.to[1]")]
    #[case::cc_domain_not_allowed(|p: &mut Value| p["recipients"]["cc"] = json!(["x@evil.test"]), "recipients.cc[0]")]
    #[case::subdomain_not_allowed(|p: &mut Value| p["recipients"]["to"] = json!(["x@mail.example.com"]), "recipients.to[0]")]
    #[case::template_unknown(|p: &mut Value| p["template"] = json!("outage"), "template")]
    #[case::template_wrong_type(|p: &mut Value| p["template"] = json!(1), "template")]
    fn validation_rule(#[case] break_rule: Mutation, #[case] field: &str) {
        let mut raw = example();
        break_rule(&mut raw);
        let err = parse(&raw).expect_err("payload breaks a rule");
        assert_eq!(err.field(), Some(field), "{err}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("invalid {field}: ")),
            "{message}"
        );
    }

    fn remove(payload: &mut Value, parent: &str, key: &str) {
        let object = if parent.is_empty() {
            payload
        } else {
            &mut payload[parent]
        };
        object
            .as_object_mut()
            .expect("fixture parent is an object")
            .remove(key)
            .expect("fixture has the key");
    }

    /// Every field that reaches a header, with every character that could split one.
    #[rstest]
    fn header_injection_is_rejected(
        #[values(
            "/alert/number",
            "/alert/short_description",
            "/alert/state",
            "/recipients/to/0",
            "/recipients/cc/0"
        )]
        pointer: &str,
        #[values("\r", "\n", "\0", "\r\n")] bad: &str,
    ) {
        let mut raw = example();
        raw["recipients"]["cc"] = json!(["ops@example.com"]);
        let target = raw.pointer_mut(pointer).expect("fixture has the field");
        let original = target.as_str().expect("string field").to_owned();
        // Append a plausible injected header: the attack a CR/LF enables.
        *target = json!(format!("{original}{bad}Bcc: attacker@evil.test"));
        let err = parse(&raw).expect_err("control character in a header field");
        let expected_field = pointer
            .trim_start_matches('/')
            .replace("/to/0", ".to[0]")
            .replace("/cc/0", ".cc[0]")
            .replace('/', ".");
        assert_eq!(err.field(), Some(expected_field.as_str()), "{err}");
        assert!(err.to_string().contains("CR, LF or NUL"), "{err}");
    }

    /// Every field that reaches a header, the subject or the HTML title, with one character of
    /// each rejected class: the error names the field, the code point and its position.
    #[rstest]
    fn header_line_rule_applies_to_every_header_bound_field(
        #[values(
            "/alert/number",
            "/alert/short_description",
            "/alert/state",
            "/recipients/to/0",
            "/recipients/cc/0"
        )]
        pointer: &str,
        #[values(
            '\t', '\u{1b}', '\u{b}', '\u{c}', '\u{1c}', '\u{7f}', '\u{85}', '\u{2028}', '\u{2029}',
            '\u{202e}', '\u{2066}'
        )]
        bad: char,
    ) {
        let mut raw = example();
        raw["recipients"]["cc"] = json!(["ops@example.com"]);
        let target = raw.pointer_mut(pointer).expect("fixture has the field");
        let original = target.as_str().expect("string field").to_owned();
        // Insert after the second character, so the position is not simply 0 or the end.
        let mut chars: Vec<char> = original.chars().collect();
        chars.insert(2, bad);
        *target = json!(chars.into_iter().collect::<String>());
        let err = parse(&raw).expect_err("forbidden character in a header field");
        let field = pointer
            .trim_start_matches('/')
            .replace("/to/0", ".to[0]")
            .replace("/cc/0", ".cc[0]")
            .replace('/', ".");
        assert_eq!(err.field(), Some(field.as_str()), "{err}");
        let expected = format!("invalid {field}: contains U+{:04X} (a ", u32::from(bad));
        let message = err.to_string();
        assert!(message.starts_with(&expected), "{message}");
        assert!(message.contains(") at position 2; "), "{message}");
    }

    /// An optional field that shows nothing is treated as not given, whatever it is made of.
    #[rstest]
    fn blank_optional_field_is_absent(
        #[values(
            "category",
            "assignment_group",
            "assigned_to",
            "opened_at",
            "updated_at",
            "instance_url",
            "description"
        )]
        field: &str,
        #[values(
            "",
            "   ",
            "\u{a0}\u{3000}",
            "\u{200b}",
            "\u{feff}\u{2060}\u{200c}\u{200d}",
            "\t",
            "\r\n"
        )]
        blank: &str,
    ) {
        let mut raw = example();
        raw["alert"][field] = json!(blank);
        let payload = parse(&raw).expect("a blank optional field is not an error");
        let alert = &payload.alert;
        let value = match field {
            "category" => &alert.category,
            "assignment_group" => &alert.assignment_group,
            "assigned_to" => &alert.assigned_to,
            "opened_at" => &alert.opened_at,
            "updated_at" => &alert.updated_at,
            "instance_url" => &alert.instance_url,
            _ => &alert.description,
        };
        assert_eq!(value, &None, "{field} = {blank:?}");
    }

    #[rstest]
    #[case::letters_and_digits("Ada1815@example.com")]
    #[case::dot("ada.lovelace@example.com")]
    #[case::underscore("ada_lovelace@example.com")]
    #[case::hyphen("dba-lead@example.com")]
    #[case::plus_subaddress("oncall+p1@example.com")]
    #[case::apostrophe("o'brien@example.com")]
    #[case::local_part_of_64("a".repeat(64) + "@example.com")]
    fn recipient_local_part_accepts_the_documented_set(#[case] address: String) {
        let mut raw = example();
        raw["recipients"]["to"] = json!([address]);
        let payload = parse(&raw).expect("accepted local part");
        assert_eq!(payload.recipients.to, [address]);
    }

    #[test]
    fn recipient_local_part_rejects_every_other_ascii_character() {
        for byte in 0x20_u8..0x7f {
            let c = char::from(byte);
            if c.is_ascii_alphanumeric() || "._-+'".contains(c) {
                continue;
            }
            let mut raw = example();
            raw["recipients"]["to"] = json!([format!("on{c}call@example.com")]);
            let err = parse(&raw).expect_err("character outside the local-part set");
            assert_eq!(err.field(), Some("recipients.to[0]"), "{c:?}: {err}");
        }
    }

    #[rstest]
    #[case::at_limit(59, 254, true)]
    #[case::over_limit(60, 255, false)]
    fn recipient_address_is_at_most_254_characters(
        #[case] local: usize,
        #[case] length: usize,
        #[case] ok: bool,
    ) {
        // A long but allowed domain, so that only the address length can fail.
        let domain = format!("{}.example.com", vec!["x".repeat(60); 3].join("."));
        let allow = Allowlists::new(RecipientAllowlist::new([&domain]).expect("valid domain"));
        let mut raw = example();
        let address = format!("{}@{domain}", "a".repeat(local));
        raw["recipients"]["to"] = json!([address]);
        let result = AlertPayload::from_value(&raw, &allow);
        assert_eq!(address.len(), length, "fixture arithmetic");
        match result {
            Ok(_) => assert!(ok, "{} characters accepted", address.len()),
            Err(err) => {
                assert!(!ok, "{err}");
                assert_eq!(err.field(), Some("recipients.to[0]"));
                assert!(
                    err.to_string().contains("over the 254 character limit"),
                    "{err}"
                );
            }
        }
    }

    #[rstest]
    #[case::number_of_40_chars("number", format!("INC{}", "0".repeat(37)))]
    #[case::state_of_80_chars("state", "é".repeat(80))]
    #[case::category_of_80_chars("category", "c".repeat(80))]
    #[case::assignment_group_of_100_chars("assignment_group", "g".repeat(100))]
    #[case::assigned_to_of_160_chars("assigned_to", "a".repeat(160))]
    fn single_line_field_at_its_maximum_is_accepted(#[case] field: &str, #[case] value: String) {
        let mut raw = example();
        raw["alert"][field] = json!(value);
        parse(&raw).expect("at the limit, not over it");
    }

    #[rstest]
    #[case::default_instance("https://acme.service-now.com", "https://acme.service-now.com")]
    #[case::deeper_host("https://eu.acme.service-now.com/", "https://eu.acme.service-now.com")]
    #[case::host_case_is_normalised("https://ACME.Service-Now.com", "https://acme.service-now.com")]
    fn instance_url_on_an_allowed_host_is_kept(#[case] url: &str, #[case] kept: &str) {
        let mut raw = example();
        raw["alert"]["instance_url"] = json!(url);
        let payload = parse(&raw).expect("allowed host");
        assert_eq!(payload.alert.instance_url.as_deref(), Some(kept));
    }

    #[test]
    fn instance_url_host_follows_the_configured_allowlist() {
        let mut raw = example();
        raw["alert"]["instance_url"] = json!("https://snow.example.org");
        let mut allow = allowlist();
        let err = AlertPayload::from_value(&raw, &allow).expect_err("not a default host");
        assert_eq!(err.field(), Some("alert.instance_url"));
        assert!(
            err.to_string()
                .contains("\"snow.example.org\" is not an allowed ServiceNow instance host"),
            "{err}"
        );
        allow.instance_hosts =
            InstanceHostAllowlist::from_csv("snow.example.org").expect("valid allowlist");
        AlertPayload::from_value(&raw, &allow).expect("configured host");
    }

    /// The strict JSON rules apply to request bodies, with the JSON path as the field.
    #[rstest]
    #[case::duplicate_key(
        r#"{"alert": {"number": "INC0012345", "number": "INC0099999"}, "recipients": {"to": ["a@example.com"]}}"#,
        "alert.number"
    )]
    #[case::lone_surrogate(
        r#"{"alert": {"short_description": "\udc00"}, "recipients": {"to": ["a@example.com"]}}"#,
        "alert.short_description"
    )]
    fn request_body_must_be_strict_json(#[case] body: &str, #[case] field: &str) {
        let err = AlertPayload::from_slice(body.as_bytes(), &allowlist()).expect_err("strict");
        assert_eq!(err.field(), Some(field), "{err}");
    }

    #[test]
    fn priority_header_cannot_carry_text() {
        // Priority reaches a header too; its type (integer) is what keeps CR/LF out.
        let mut raw = example();
        raw["alert"]["priority"] = json!("1\r\nBcc: attacker@evil.test");
        let err = parse(&raw).expect_err("priority must be an integer");
        assert_eq!(err.field(), Some("alert.priority"));
    }

    #[test]
    fn empty_allowlist_allows_nobody() {
        let empty = Allowlists::new(RecipientAllowlist::from_csv("").expect("empty is valid"));
        let err = AlertPayload::from_value(&example(), &empty).expect_err("nobody is allowed");
        assert_eq!(err.field(), Some("recipients.to[0]"));
    }

    #[test]
    fn recipient_domain_is_compared_case_insensitively() {
        let mut raw = example();
        raw["recipients"]["to"] = json!(["OnCall@EXAMPLE.COM", "dba@example.ORG"]);
        let payload = parse(&raw).expect("case of the domain does not matter");
        assert_eq!(payload.recipients.to.len(), 2);
    }

    #[test]
    fn unicode_text_fields_are_accepted() {
        let mut raw = example();
        raw["alert"]["short_description"] = json!("Datenbank-Cluster nicht erreichbar – 数据库 🔥");
        raw["alert"]["assigned_to"] = json!("Zoë Ångström");
        let payload = parse(&raw).expect("unicode is fine");
        assert_eq!(payload.alert.assigned_to.as_deref(), Some("Zoë Ångström"));
    }

    #[test]
    fn short_description_limit_counts_characters_not_bytes() {
        let mut raw = example();
        // 160 two-byte characters: 320 bytes but exactly at the limit.
        raw["alert"]["short_description"] = json!("é".repeat(160));
        parse(&raw).expect("160 characters is allowed");
    }

    /// The example serialised with its description padded to exactly `size` bytes.
    fn example_bytes_of_size(size: usize) -> Vec<u8> {
        let mut raw = example();
        raw["alert"]["description"] = json!("");
        let base = serde_json::to_vec(&raw).expect("serialisable").len();
        raw["alert"]["description"] = json!("x".repeat(size - base));
        let bytes = serde_json::to_vec(&raw).expect("serialisable");
        assert_eq!(bytes.len(), size);
        bytes
    }

    #[test]
    fn payload_at_size_limit_is_accepted() {
        let bytes = example_bytes_of_size(MAX_PAYLOAD_BYTES);
        AlertPayload::from_slice(&bytes, &allowlist()).expect("exactly 256 KiB is allowed");
        let value: Value = serde_json::from_slice(&bytes).expect("json");
        AlertPayload::from_value(&value, &allowlist()).expect("exactly 256 KiB is allowed");
    }

    #[test]
    fn payload_over_size_limit_is_rejected_from_bytes_and_value() {
        let bytes = example_bytes_of_size(MAX_PAYLOAD_BYTES + 1);
        let err = AlertPayload::from_slice(&bytes, &allowlist()).expect_err("over 256 KiB");
        assert_eq!(err.field(), Some("payload"));
        let value: Value = serde_json::from_slice(&bytes).expect("json");
        let err = AlertPayload::from_value(&value, &allowlist()).expect_err("over 256 KiB");
        assert_eq!(err.field(), Some("payload"));
    }

    #[test]
    fn size_is_checked_before_parsing() {
        // Not JSON at all: only a size check that runs first can name the size.
        let bytes = vec![b'{'; MAX_PAYLOAD_BYTES + 1];
        let err = AlertPayload::from_slice(&bytes, &allowlist()).expect_err("too large");
        assert!(err.to_string().contains("262144 byte limit"), "{err}");
    }

    #[rstest]
    #[case::not_json(b"not json".as_slice())]
    #[case::trailing_garbage(b"{} x".as_slice())]
    fn malformed_json_is_a_payload_error(#[case] bytes: &[u8]) {
        let err = AlertPayload::from_slice(bytes, &allowlist()).expect_err("malformed");
        assert_eq!(err.field(), Some("payload"), "{err}");
    }

    #[test]
    fn from_slice_and_from_value_agree() {
        let raw = example();
        let bytes = serde_json::to_vec(&raw).expect("serialisable");
        assert_eq!(
            AlertPayload::from_slice(&bytes, &allowlist()),
            AlertPayload::from_value(&raw, &allowlist())
        );
    }
}
