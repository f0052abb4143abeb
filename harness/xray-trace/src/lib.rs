//! The X-Ray trace id that tags one call through the chain.
//!
//! The harness sends each call with a fresh `X-Amzn-Trace-Id`. LocalStack
//! passes its `Root` to the caller, the caller forwards it to the callee, the
//! callee writes it into the email's `X-Amzn-Trace-Id` header and its log
//! lines, and the IAM gateway records it with each decision. The `Root` is the
//! part every hop keeps unchanged (hops add `Parent`, change `Sampled`), so a
//! [`TraceId`] is the root alone, and two headers belong to the same call when
//! their roots are equal.
//!
//! # Example
//! ```
//! use xray_trace::TraceId;
//!
//! let trace = TraceId::new();
//! let seen_by_the_callee = format!("{};Parent=53995c3f42cd8ad8;Sampled=1", trace.header());
//! assert_eq!(TraceId::from_header(&seen_by_the_callee), Some(trace));
//! ```
#![warn(missing_docs)]

use std::{
    fmt,
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

/// The HTTP and email header that carries the trace id.
pub const HEADER: &str = "X-Amzn-Trace-Id";

/// The root of an X-Ray trace header, e.g. `1-5759e988-bd862e3fe1be46a994272793`:
/// what identifies one call at every hop.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TraceId(String);

impl TraceId {
    /// A fresh root in X-Ray's format: version 1, the epoch seconds in 8 hex
    /// digits, and 96 random bits in 24 hex digits.
    pub fn new() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let random = uuid::Uuid::new_v4().simple().to_string();
        Self(format!("1-{:08x}-{}", secs as u32, &random[..24]))
    }

    /// The root of a header value such as `Root=1-abc-def;Parent=…;Sampled=1`;
    /// `None` when it has no non-empty `Root` field.
    pub fn from_header(header: &str) -> Option<Self> {
        header
            .split(';')
            .filter_map(|field| field.trim().split_once('='))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case("root"))
            .map(|(_, root)| root.trim())
            .filter(|root| !root.is_empty())
            .map(|root| Self(root.to_owned()))
    }

    /// The root alone, e.g. `1-5759e988-bd862e3fe1be46a994272793`.
    pub fn root(&self) -> &str {
        &self.0
    }

    /// The header value to send: this root, not sampled.
    pub fn header(&self) -> String {
        format!("Root={};Sampled=0", self.0)
    }

    /// Whether a header value (or a log line containing one) belongs to this call.
    pub fn tags(&self, header: &str) -> bool {
        Self::from_header(header).as_ref() == Some(self)
    }
}

impl Default for TraceId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[test]
    fn fresh_ids_are_unique_and_in_xray_format() {
        let a = TraceId::new();
        let b = TraceId::new();

        assert_ne!(a, b);
        let parts: Vec<&str> = a.root().split('-').collect();
        assert_eq!(parts.len(), 3, "{a}");
        assert_eq!(parts[0], "1");
        assert_eq!(parts[1].len(), 8);
        assert_eq!(parts[2].len(), 24);
        assert!(
            parts[1..]
                .iter()
                .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
        );
    }

    #[rstest]
    #[case::root_first(
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        Some("1-5759e988-bd862e3fe1be46a994272793")
    )]
    #[case::root_later("Self=1-abc; Root=1-aaaa-bbbb", Some("1-aaaa-bbbb"))]
    #[case::key_case_ignored("root=1-aaaa-bbbb", Some("1-aaaa-bbbb"))]
    #[case::no_root("Parent=53995c3f42cd8ad8;Sampled=1", None)]
    #[case::empty_root("Root=;Sampled=1", None)]
    #[case::not_a_header("", None)]
    fn roots_are_read_from_headers(#[case] header: &str, #[case] expected: Option<&str>) {
        assert_eq!(
            TraceId::from_header(header).as_ref().map(TraceId::root),
            expected
        );
    }

    #[rstest]
    #[case::same_root_other_parent("Root=1-abc-def;Parent=123;Sampled=1", true)]
    #[case::other_root("Root=1-abc-xyz;Sampled=0", false)]
    #[case::no_root("Sampled=0", false)]
    fn a_header_tags_a_call_by_its_root(#[case] header: &str, #[case] expected: bool) {
        let trace = TraceId::from_header("Root=1-abc-def;Sampled=0").expect("a root");
        assert_eq!(trace.tags(header), expected);
    }

    #[test]
    fn the_header_round_trips_and_json_is_the_bare_root() {
        let trace = TraceId::new();

        assert_eq!(TraceId::from_header(&trace.header()), Some(trace.clone()));
        assert_eq!(
            serde_json::to_value(&trace).expect("serialises"),
            serde_json::json!(trace.root())
        );
    }
}
