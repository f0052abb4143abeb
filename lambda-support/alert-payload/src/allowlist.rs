//! Which recipient domains an alert may be sent to, and which ServiceNow hosts it may link to.

use crate::{NotificationError, payload::is_domain_name};

/// Domains recipients must belong to; exact, case-insensitive match (no subdomains).
///
/// An empty allowlist allows nobody, so a missing setting fails closed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientAllowlist {
    domains: Vec<String>,
}

impl RecipientAllowlist {
    /// Parses a comma-separated list such as `example.com, Example.org`; blank entries are skipped.
    ///
    /// # Example
    /// ```
    /// use alert_payload::RecipientAllowlist;
    ///
    /// let allow = RecipientAllowlist::from_csv("example.com, Example.ORG").unwrap();
    /// assert!(allow.allows_domain("EXAMPLE.com"));
    /// assert!(!allow.allows_domain("mail.example.com"));
    /// assert!(RecipientAllowlist::from_csv("").unwrap().is_empty());
    /// ```
    pub fn from_csv(csv: &str) -> Result<Self, NotificationError> {
        Self::new(csv.split(',').map(str::trim).filter(|d| !d.is_empty()))
    }

    /// Builds an allowlist from individual domain names.
    pub fn new<I, S>(domains: I) -> Result<Self, NotificationError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let domains = domains
            .into_iter()
            .map(|d| {
                let d = d.as_ref();
                if is_domain_name(d) {
                    Ok(d.to_ascii_lowercase())
                } else {
                    Err(NotificationError::Allowlist {
                        entry: d.to_owned(),
                    })
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { domains })
    }

    /// Whether mail to `domain` is allowed.
    pub fn allows_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// Whether no domain at all is allowed.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// The allowed domains, lowercased.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }
}

/// The instance hosts allowed when none are configured: every ServiceNow-hosted instance.
pub const DEFAULT_INSTANCE_HOSTS: &str = "*.service-now.com";

/// ServiceNow hosts an alert's `instance_url` may point at; case-insensitive.
///
/// An entry is a host name, matched exactly (`snow.example.com`), or `*.` and a domain,
/// matching any host below that domain but not the domain itself (`*.service-now.com`
/// matches `acme.service-now.com` and `eu.acme.service-now.com`, not `service-now.com` or
/// `service-now.com.evil.test`). An empty allowlist allows no link at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceHostAllowlist {
    entries: Vec<HostPattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    Below(String),
}

impl InstanceHostAllowlist {
    /// Parses a comma-separated list such as `*.service-now.com, snow.example.com`; blank
    /// entries are skipped.
    ///
    /// # Example
    /// ```
    /// use alert_payload::InstanceHostAllowlist;
    ///
    /// let allow = InstanceHostAllowlist::from_csv("*.service-now.com, snow.example.com").unwrap();
    /// assert!(allow.allows_host("acme.Service-Now.com"));
    /// assert!(allow.allows_host("snow.example.com"));
    /// assert!(!allow.allows_host("service-now.com.evil.test"));
    /// assert!(!allow.allows_host("mail.snow.example.com"));
    /// ```
    pub fn from_csv(csv: &str) -> Result<Self, NotificationError> {
        let entries = csv
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|entry| {
                let (pattern, domain) = match entry.strip_prefix("*.") {
                    Some(domain) => (HostPattern::Below(domain.to_ascii_lowercase()), domain),
                    None => (HostPattern::Exact(entry.to_ascii_lowercase()), entry),
                };
                if is_domain_name(domain) {
                    Ok(pattern)
                } else {
                    Err(NotificationError::InstanceAllowlist {
                        entry: entry.to_owned(),
                    })
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { entries })
    }

    /// The default allowlist, [`DEFAULT_INSTANCE_HOSTS`].
    pub fn service_now() -> Self {
        Self {
            entries: vec![HostPattern::Below("service-now.com".to_owned())],
        }
    }

    /// Whether a link to `host` is allowed.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.entries.iter().any(|pattern| match pattern {
            HostPattern::Exact(name) => *name == host,
            HostPattern::Below(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
        })
    }

    /// The entries as configured, lowercased, comma-separated.
    pub fn to_csv(&self) -> String {
        self.entries
            .iter()
            .map(|pattern| match pattern {
                HostPattern::Exact(name) => name.clone(),
                HostPattern::Below(domain) => format!("*.{domain}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Everything a payload is checked against besides its own rules: where mail may go and
/// which instance it may link to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlists {
    /// Domains recipients must belong to.
    pub recipients: RecipientAllowlist,
    /// Hosts `alert.instance_url` may name.
    pub instance_hosts: InstanceHostAllowlist,
}

impl Allowlists {
    /// Recipients limited to `recipients`, links to the default ServiceNow hosts.
    pub fn new(recipients: RecipientAllowlist) -> Self {
        Self {
            recipients,
            instance_hosts: InstanceHostAllowlist::service_now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::exact_match("example.com", "example.com", true)]
    #[case::domain_compared_case_insensitively("Example.COM", "example.com", true)]
    #[case::configured_case_ignored("example.com", "EXAMPLE.com", true)]
    #[case::subdomain_not_allowed("example.com", "mail.example.com", false)]
    #[case::parent_not_allowed("mail.example.com", "example.com", false)]
    #[case::suffix_lookalike_not_allowed("example.com", "badexample.com", false)]
    #[case::second_entry_matches("example.org, example.com", "example.com", true)]
    #[case::empty_list_allows_nobody("", "example.com", false)]
    #[case::blank_entries_skipped(" , ,example.com,", "example.com", true)]
    fn allowlist_rule(#[case] csv: &str, #[case] domain: &str, #[case] allowed: bool) {
        let allow = RecipientAllowlist::from_csv(csv).expect("valid allowlist");
        assert_eq!(allow.allows_domain(domain), allowed);
    }

    #[rstest]
    #[case::default_matches_an_instance("*.service-now.com", "acme.service-now.com", true)]
    #[case::default_matches_a_deeper_host("*.service-now.com", "eu.acme.service-now.com", true)]
    #[case::host_compared_case_insensitively("*.service-now.com", "ACME.Service-Now.COM", true)]
    #[case::wildcard_does_not_match_the_domain_itself(
        "*.service-now.com",
        "service-now.com",
        false
    )]
    #[case::wildcard_needs_a_dot("*.service-now.com", "evilservice-now.com", false)]
    #[case::suffix_inside_another_domain(
        "*.service-now.com",
        "acme.service-now.com.evil.test",
        false
    )]
    #[case::lookalike_domain("*.service-now.com", "acme.service-now.co", false)]
    #[case::ip_address("*.service-now.com", "127.0.0.1", false)]
    #[case::exact_entry("snow.example.com", "snow.example.com", true)]
    #[case::exact_entry_no_subdomain("snow.example.com", "a.snow.example.com", false)]
    #[case::second_entry_matches(
        "snow.example.com, *.service-now.com",
        "acme.service-now.com",
        true
    )]
    #[case::empty_list_allows_no_host("", "acme.service-now.com", false)]
    fn instance_host_rule(#[case] csv: &str, #[case] host: &str, #[case] allowed: bool) {
        let allow = InstanceHostAllowlist::from_csv(csv).expect("valid allowlist");
        assert_eq!(allow.allows_host(host), allowed);
    }

    #[test]
    fn default_instance_hosts_parse_to_the_built_in_default() {
        assert_eq!(
            InstanceHostAllowlist::from_csv(DEFAULT_INSTANCE_HOSTS).expect("valid"),
            InstanceHostAllowlist::service_now()
        );
    }

    #[rstest]
    #[case::url_instead_of_host("https://acme.service-now.com")]
    #[case::wildcard_in_the_middle("acme.*.com")]
    #[case::bare_wildcard("*")]
    #[case::wildcard_without_dot("*service-now.com")]
    fn instance_allowlist_rejects_non_hosts(#[case] entry: &str) {
        let err = InstanceHostAllowlist::from_csv(entry).expect_err("entry is not a host");
        assert_eq!(
            err,
            NotificationError::InstanceAllowlist {
                entry: entry.to_owned()
            }
        );
    }

    #[rstest]
    #[case::address_instead_of_domain("oncall@example.com")]
    #[case::space_inside("exa mple.com")]
    #[case::leading_hyphen("-example.com")]
    #[case::empty_label("example..com")]
    fn allowlist_rejects_non_domains(#[case] entry: &str) {
        let err = RecipientAllowlist::from_csv(entry).expect_err("entry is not a domain");
        assert_eq!(
            err,
            NotificationError::Allowlist {
                entry: entry.to_owned()
            }
        );
    }
}
