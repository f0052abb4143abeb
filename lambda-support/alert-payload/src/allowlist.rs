//! Which recipient domains an alert may be sent to.

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
