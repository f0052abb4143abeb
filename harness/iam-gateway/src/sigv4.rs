//! Who signed a request: the SigV4 credential scope, from the `Authorization`
//! header or a presigned URL's `X-Amz-Credential`, plus the trace root.
//!
//! This module only reads the scope; [`super::signature`] verifies the
//! signature. No header value is ever logged.

use hyper::HeaderMap;
use xray_trace::TraceId;

/// The SigV4 algorithm name that opens a signed `Authorization` header.
const SIGV4: &str = "AWS4-HMAC-SHA256";
/// SigV4a (multi-region) signs with a scope that has no region.
const SIGV4A: &str = "AWS4-ECDSA-P256-SHA256";

/// The credential scope a request was signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    /// The access key id: a 12-digit account id for LocalStack's account roots, else a key to resolve.
    pub access_key_id: String,
    /// The signing date, `YYYYMMDD`.
    pub date: String,
    /// The signing region; `None` for SigV4a, which signs for a region set.
    pub region: Option<String>,
    /// The signing service name, e.g. `sts` or `lambda`.
    pub service: String,
}

/// Whether `value` is a 12-digit AWS account id.
pub fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

/// Parses `<AKID>/<date>/<region>/<service>/aws4_request` (or the SigV4a form without region).
fn parse_scope(credential: &str, with_region: bool) -> Option<CredentialScope> {
    let parts: Vec<&str> = credential.split('/').collect();
    let (akid, date, region, service) = match (with_region, parts.as_slice()) {
        (true, [akid, date, region, service, "aws4_request"]) => {
            (*akid, *date, Some(*region), *service)
        }
        (false, [akid, date, service, "aws4_request"]) => (*akid, *date, None, *service),
        _ => return None,
    };
    let key_ok = !akid.is_empty() && akid.bytes().all(|b| b.is_ascii_alphanumeric());
    let date_ok = date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit());
    if !key_ok || !date_ok || service.is_empty() || region.is_some_and(str::is_empty) {
        return None;
    }
    Some(CredentialScope {
        access_key_id: akid.to_owned(),
        date: date.to_owned(),
        region: region.map(str::to_owned),
        service: service.to_owned(),
    })
}

/// Reads the scope from an `Authorization` header value.
///
/// `AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/sts/aws4_request, SignedHeaders=..., Signature=...`
pub fn from_authorization(value: &str) -> Option<CredentialScope> {
    let (algorithm, rest) = value.trim().split_once(char::is_whitespace)?;
    let with_region = match algorithm {
        SIGV4 => true,
        SIGV4A => false,
        _ => return None,
    };
    rest.split(',')
        .filter_map(|field| field.trim().strip_prefix("Credential="))
        .find_map(|credential| parse_scope(credential, with_region))
}

/// Reads the scope from a presigned URL's query (`X-Amz-Algorithm` and `X-Amz-Credential`).
pub fn from_query(query: &str) -> Option<CredentialScope> {
    let mut algorithm = None;
    let mut credential = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "X-Amz-Algorithm" => algorithm = Some(value.into_owned()),
            "X-Amz-Credential" => credential = Some(value.into_owned()),
            _ => {}
        }
    }
    let with_region = match algorithm.as_deref() {
        // Some presigners omit the algorithm; the credential's shape then decides.
        Some(SIGV4) | None => true,
        Some(SIGV4A) => false,
        Some(_) => return None,
    };
    parse_scope(&credential?, with_region)
}

/// How many credentials a request carries: `Credential=` fields of its
/// `Authorization` header plus a presigned query's `X-Amz-Credential`. AWS
/// accepts exactly one; with more, the gateway and the emulator could each
/// act on a different one.
pub fn credential_count(headers: &HeaderMap, query: Option<&str>) -> usize {
    let in_header: usize = headers
        .get_all(hyper::header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.matches("Credential=").count().max(1))
        .sum();
    let in_query = query.map_or(0, |q| {
        form_urlencoded::parse(q.as_bytes())
            .filter(|(k, _)| k.eq_ignore_ascii_case("X-Amz-Credential"))
            .count()
    });
    in_header + in_query
}

/// The scope from the `Authorization` header, else from a presigned query.
pub fn credential(headers: &HeaderMap, query: Option<&str>) -> Option<CredentialScope> {
    headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(from_authorization)
        .or_else(|| query.and_then(from_query))
}

/// The session token a request carries (header, or presigned query), for resolving temporary keys.
pub fn session_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    const TOKEN: &str = "x-amz-security-token";
    if let Some(token) = headers.get(TOKEN).and_then(|v| v.to_str().ok()) {
        return Some(token.to_owned());
    }
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case(TOKEN))
        .map(|(_, v)| v.into_owned())
}

/// The trace id of the request's `X-Amzn-Trace-Id`, which groups one run of the chain.
pub fn trace(headers: &HeaderMap) -> Option<TraceId> {
    let value = headers.get(xray_trace::HEADER)?.to_str().ok()?;
    TraceId::from_header(value)
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;
    use rstest::rstest;

    use super::*;

    fn scope(akid: &str, region: Option<&str>, service: &str) -> CredentialScope {
        CredentialScope {
            access_key_id: akid.into(),
            date: "20250101".into(),
            region: region.map(Into::into),
            service: service.into(),
        }
    }

    #[rstest]
    #[case::account_root_key(
        "AWS4-HMAC-SHA256 Credential=222222222222/20250101/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
        Some(scope("222222222222", Some("us-east-1"), "sts"))
    )]
    #[case::temporary_key_without_spaces(
        "AWS4-HMAC-SHA256 Credential=LSIAQAAAAAAAAAAAAAAA/20250101/eu-west-1/lambda/aws4_request,SignedHeaders=host,Signature=abc",
        Some(scope("LSIAQAAAAAAAAAAAAAAA", Some("eu-west-1"), "lambda"))
    )]
    #[case::sigv4a_has_no_region(
        "AWS4-ECDSA-P256-SHA256 Credential=AKIDEXAMPLE/20250101/s3/aws4_request, SignedHeaders=host, Signature=abc",
        Some(scope("AKIDEXAMPLE", None, "s3"))
    )]
    #[case::other_algorithm("AWS AKIDEXAMPLE:signature", None)]
    #[case::missing_credential("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abc", None)]
    #[case::missing_terminator(
        "AWS4-HMAC-SHA256 Credential=222222222222/20250101/us-east-1/sts, Signature=abc",
        None
    )]
    #[case::bad_date(
        "AWS4-HMAC-SHA256 Credential=222222222222/2025-01-01/us-east-1/sts/aws4_request",
        None
    )]
    #[case::empty_key(
        "AWS4-HMAC-SHA256 Credential=/20250101/us-east-1/sts/aws4_request",
        None
    )]
    #[case::key_with_slash_injection(
        "AWS4-HMAC-SHA256 Credential=a/b/20250101/us-east-1/sts/aws4_request",
        None
    )]
    #[case::empty(" ", None)]
    fn authorization_header(#[case] header: &str, #[case] expected: Option<CredentialScope>) {
        assert_eq!(from_authorization(header), expected);
    }

    #[rstest]
    #[case::presigned_url(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=111111111111%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=x",
        Some(scope("111111111111", Some("us-east-1"), "s3"))
    )]
    #[case::presigned_without_algorithm(
        "X-Amz-Credential=AKIDEXAMPLE/20250101/us-east-1/lambda/aws4_request",
        Some(scope("AKIDEXAMPLE", Some("us-east-1"), "lambda"))
    )]
    #[case::unknown_algorithm(
        "X-Amz-Algorithm=HMAC&X-Amz-Credential=AKIDEXAMPLE%2F20250101%2Fus-east-1%2Fs3%2Faws4_request",
        None
    )]
    #[case::no_credential("Action=AssumeRole&Version=2011-06-15", None)]
    #[case::malformed_credential("X-Amz-Credential=AKIDEXAMPLE", None)]
    fn presigned_query(#[case] query: &str, #[case] expected: Option<CredentialScope>) {
        assert_eq!(from_query(query), expected);
    }

    #[test]
    fn header_wins_over_query() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=222222222222/20250101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=abc",
            ),
        );
        let query = "X-Amz-Credential=111111111111%2F20250101%2Fus-east-1%2Fs3%2Faws4_request";
        let found = credential(&headers, Some(query)).expect("header scope");
        assert_eq!(found.access_key_id, "222222222222");
        assert!(is_account_id(&found.access_key_id));
        assert_eq!(
            credential(&HeaderMap::new(), Some(query)).map(|s| s.service),
            Some("s3".to_owned())
        );
    }

    #[test]
    fn session_token_from_header_or_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(session_token(&headers, Some("a=b")), None);
        assert_eq!(
            session_token(&headers, Some("X-Amz-Security-Token=t%2B1")).as_deref(),
            Some("t+1")
        );
        headers.insert("x-amz-security-token", HeaderValue::from_static("h"));
        assert_eq!(
            session_token(&headers, Some("X-Amz-Security-Token=q")).as_deref(),
            Some("h")
        );
    }
}
