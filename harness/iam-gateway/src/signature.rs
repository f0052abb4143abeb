//! Verifying a request's SigV4 signature as AWS does: the canonical request,
//! the string to sign, the derived signing key, the time window and, for
//! presigned URLs, the expiry.
//!
//! The rules follow AWS's "Create a signed AWS API request" guide:
//! - the canonical URI is the path as sent for S3 and the path URI-encoded a
//!   second time for every other service;
//! - query parameters are decoded, re-encoded with AWS's unreserved set and
//!   sorted by name, then value; a presigned URL's `X-Amz-Signature` is left out;
//! - each signed header's values are trimmed, inner runs of spaces collapse to
//!   one, and repeated headers join with `,`;
//! - the payload hash is `x-amz-content-sha256` when sent (which must then
//!   match the body, unless it declares the payload unsigned or streamed) and
//!   the body's SHA-256 otherwise; presigned S3 URLs sign `UNSIGNED-PAYLOAD`;
//! - `X-Amz-Date` must lie within 15 minutes of now and on the scope's date.
//!
//! Chunk signatures of `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` bodies are not
//! checked; the seed signature over the headers is.

use hmac::{Hmac, KeyInit, Mac};
use hyper::{HeaderMap, Method};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime, PrimitiveDateTime, macros::format_description};

use super::sigv4::{self, CredentialScope};

/// The only algorithm the gateway verifies.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far `X-Amz-Date` may be from now, as AWS allows.
pub const MAX_SKEW: Duration = Duration::minutes(15);
/// The longest a presigned URL may live: seven days.
const MAX_PRESIGNED_EXPIRY_SECONDS: i64 = 7 * 24 * 3600;
/// Payload hashes that do not hash the body.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const STREAMING_PREFIX: &str = "STREAMING-";

type HmacSha256 = Hmac<Sha256>;

/// The signature parts of a request, from its `Authorization` header or presigned query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParts {
    /// Who signed, and for which date, region and service.
    pub scope: CredentialScope,
    /// Lowercase names of the signed headers, as listed.
    pub signed_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
    /// `X-Amz-Date`, `YYYYMMDD'T'HHMMSS'Z'`.
    pub amz_date: String,
    /// `X-Amz-Expires` of a presigned URL; `None` for a signed header.
    pub expires_seconds: Option<i64>,
}

impl SignatureParts {
    /// Whether the signature came in the query string.
    pub fn presigned(&self) -> bool {
        self.expires_seconds.is_some()
    }
}

/// Why a signature is refused, in AWS's categories (each maps to an AWS error code per service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// Parts of the signature are missing or malformed (`IncompleteSignature`).
    Incomplete(String),
    /// The signature does not match (`SignatureDoesNotMatch`).
    Mismatch,
    /// `X-Amz-Date` is more than 15 minutes from now.
    Skewed {
        /// The request's date.
        amz_date: String,
        /// The gateway's clock, in the same format.
        now: String,
        /// Whether the request is from the future.
        future: bool,
    },
    /// A presigned URL past its `X-Amz-Expires`.
    PresignExpired,
    /// `x-amz-content-sha256` differs from the body's hash.
    ContentHashMismatch,
}

/// The request as it arrived, for the canonical request.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path as sent, still percent-encoded.
    pub path: &'a str,
    /// The raw query string.
    pub query: Option<&'a str>,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The body as sent (before any `Content-Encoding`).
    pub body: &'a [u8],
}

/// Reads the signature parts; `Ok(None)` for a request that carries no signature at all.
pub fn parts(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<SignatureParts>, SignatureError> {
    if let Some(value) = headers.get(hyper::header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| {
            SignatureError::Incomplete("the Authorization header is not ASCII".into())
        })?;
        return header_parts(value, headers).map(Some);
    }
    let Some(query) = query else { return Ok(None) };
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if get("X-Amz-Signature").is_none() && get("X-Amz-Credential").is_none() {
        return Ok(None);
    }
    query_parts(&get).map(Some)
}

fn header_parts(value: &str, headers: &HeaderMap) -> Result<SignatureParts, SignatureError> {
    let incomplete = |what: &str| SignatureError::Incomplete(what.to_owned());
    let (algorithm, rest) = value
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(|| {
            incomplete("Authorization header requires a Credential, SignedHeaders and Signature")
        })?;
    if algorithm != ALGORITHM {
        return Err(SignatureError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'; the gateway verifies {ALGORITHM} only"
        )));
    }
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for field in rest.split(',') {
        let field = field.trim();
        if let Some(v) = field.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = field.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = field.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let missing = |name: &str| {
        SignatureError::Incomplete(format!(
            "Authorization header requires '{name}' parameter. Authorization={ALGORITHM} ..."
        ))
    };
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let scope = sigv4::from_authorization(&format!("{ALGORITHM} Credential={credential}"))
        .ok_or_else(|| {
            incomplete("the Credential is not <key>/<date>/<region>/<service>/aws4_request")
        })?;
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header"))?;
    finish(scope, signed, signature, amz_date, None)
}

fn query_parts<'q>(
    get: &impl Fn(&str) -> Option<&'q str>,
) -> Result<SignatureParts, SignatureError> {
    let missing =
        |name: &str| SignatureError::Incomplete(format!("the presigned URL has no {name}"));
    match get("X-Amz-Algorithm") {
        Some(ALGORITHM) => {}
        Some(other) => {
            return Err(SignatureError::Incomplete(format!(
                "Unsupported AWS 'algorithm': '{other}'; the gateway verifies {ALGORITHM} only"
            )));
        }
        None => return Err(missing("X-Amz-Algorithm")),
    }
    let credential = get("X-Amz-Credential").ok_or_else(|| missing("X-Amz-Credential"))?;
    let scope = sigv4::from_authorization(&format!("{ALGORITHM} Credential={credential}"))
        .ok_or_else(|| {
            SignatureError::Incomplete(
                "X-Amz-Credential is not <key>/<date>/<region>/<service>/aws4_request".into(),
            )
        })?;
    let expires = get("X-Amz-Expires")
        .ok_or_else(|| missing("X-Amz-Expires"))?
        .parse::<i64>()
        .ok()
        .filter(|s| (0..=MAX_PRESIGNED_EXPIRY_SECONDS).contains(s))
        .ok_or_else(|| {
            SignatureError::Incomplete(
                "X-Amz-Expires must be a number of seconds up to 604800".into(),
            )
        })?;
    finish(
        scope,
        get("X-Amz-SignedHeaders").ok_or_else(|| missing("X-Amz-SignedHeaders"))?,
        get("X-Amz-Signature").ok_or_else(|| missing("X-Amz-Signature"))?,
        get("X-Amz-Date").ok_or_else(|| missing("X-Amz-Date"))?,
        Some(expires),
    )
}

fn finish(
    scope: CredentialScope,
    signed: &str,
    signature: &str,
    amz_date: &str,
    expires_seconds: Option<i64>,
) -> Result<SignatureParts, SignatureError> {
    let signed_headers: Vec<String> = signed.split(';').map(str::to_owned).collect();
    if signed_headers
        .iter()
        .any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(SignatureError::Incomplete(
            "SignedHeaders must be lowercase names separated by ';'".into(),
        ));
    }
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(SignatureError::Incomplete(
            "SignedHeaders must include 'host'".into(),
        ));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SignatureError::Incomplete(
            "the Signature is not 64 hex digits".into(),
        ));
    }
    if parse_amz_date(amz_date).is_none() {
        return Err(SignatureError::Incomplete(format!(
            "X-Amz-Date `{amz_date}` is not YYYYMMDD'T'HHMMSS'Z'"
        )));
    }
    Ok(SignatureParts {
        scope,
        signed_headers,
        signature: signature.to_ascii_lowercase(),
        amz_date: amz_date.to_owned(),
        expires_seconds,
    })
}

fn parse_amz_date(text: &str) -> Option<OffsetDateTime> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(text, format)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Formats a time as `X-Amz-Date` does.
pub fn amz_date(time: OffsetDateTime) -> String {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    time.format(format).unwrap_or_default()
}

/// Checks the signature of `request` against `secret`, at time `now`.
pub fn verify(
    parts: &SignatureParts,
    request: Signed<'_>,
    secret: &str,
    now: OffsetDateTime,
) -> Result<(), SignatureError> {
    let signed_at = parse_amz_date(&parts.amz_date)
        .ok_or_else(|| SignatureError::Incomplete("X-Amz-Date is malformed".into()))?;
    if !parts.amz_date.starts_with(&parts.scope.date) {
        return Err(SignatureError::Incomplete(format!(
            "the Credential's date {} is not the date of X-Amz-Date {}",
            parts.scope.date, parts.amz_date
        )));
    }
    if let Some(expires) = parts.expires_seconds {
        if now > signed_at + Duration::seconds(expires) {
            return Err(SignatureError::PresignExpired);
        }
        if signed_at > now + MAX_SKEW {
            return Err(skewed(parts, now, true));
        }
    } else if signed_at < now - MAX_SKEW || signed_at > now + MAX_SKEW {
        return Err(skewed(parts, now, signed_at > now));
    }
    let payload = payload_hash(parts, request)?;
    let canonical = canonical_request(parts, request, &payload);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{}/{}/{}/aws4_request\n{}",
        parts.amz_date,
        parts.scope.date,
        parts.scope.region.as_deref().unwrap_or_default(),
        parts.scope.service,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = signing_key(secret, &parts.scope);
    let mut mac = HmacSha256::new_from_slice(&key).map_err(|_| SignatureError::Mismatch)?;
    mac.update(string_to_sign.as_bytes());
    let expected = hex::decode(&parts.signature).map_err(|_| SignatureError::Mismatch)?;
    // Constant time: the comparison must not tell an attacker how much matched.
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

fn skewed(parts: &SignatureParts, now: OffsetDateTime, future: bool) -> SignatureError {
    SignatureError::Skewed {
        amz_date: parts.amz_date.clone(),
        now: amz_date(now),
        future,
    }
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn signing_key(secret: &str, scope: &CredentialScope) -> Vec<u8> {
    let date = hmac(format!("AWS4{secret}").as_bytes(), &scope.date);
    let region = hmac(&date, scope.region.as_deref().unwrap_or_default());
    let service = hmac(&region, &scope.service);
    hmac(&service, "aws4_request")
}

fn is_s3(parts: &SignatureParts) -> bool {
    parts.scope.service == "s3"
}

fn payload_hash(parts: &SignatureParts, request: Signed<'_>) -> Result<String, SignatureError> {
    if let Some(declared) = request
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        if declared == UNSIGNED_PAYLOAD || declared.starts_with(STREAMING_PREFIX) {
            return Ok(declared.to_owned());
        }
        if !declared.eq_ignore_ascii_case(&hex::encode(Sha256::digest(request.body))) {
            return Err(SignatureError::ContentHashMismatch);
        }
        return Ok(declared.to_ascii_lowercase());
    }
    if parts.presigned() && is_s3(parts) {
        return Ok(UNSIGNED_PAYLOAD.to_owned());
    }
    Ok(hex::encode(Sha256::digest(request.body)))
}

/// AWS's URI encoding: everything but the unreserved set, `%XX` in upper case.
fn uri_encode(text: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes to bytes, leaving malformed ones as they are.
fn percent_decode(text: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(text).collect()
}

fn canonical_uri(parts: &SignatureParts, path: &str) -> String {
    let path = if path.is_empty() { "/" } else { path };
    if is_s3(parts) {
        // S3 signs the path as sent (encoded once).
        path.to_owned()
    } else {
        // Other services sign the path normalised as RFC 3986 does (dot
        // segments resolved; empty segments dropped, as AWS's signers do) and
        // encoded again.
        uri_encode(normalize_path(path).as_bytes(), true)
    }
}

/// Resolves `.` and `..`, drops empty segments, keeps a trailing `/`.
fn normalize_path(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            other => kept.push(other),
        }
    }
    let mut out = format!("/{}", kept.join("/"));
    let trailing = ["/", "/.", "/..", "/./", "/../"]
        .iter()
        .any(|end| path.ends_with(end));
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    out
}

fn canonical_query(parts: &SignatureParts, query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .filter(|(k, _)| !(parts.presigned() && k == "X-Amz-Signature"))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(name)
        .iter()
        .map(|v| {
            let text = String::from_utf8_lossy(v.as_bytes());
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn canonical_request(parts: &SignatureParts, request: Signed<'_>, payload: &str) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(request.method.as_str());
    out.push('\n');
    out.push_str(&canonical_uri(parts, request.path));
    out.push('\n');
    out.push_str(&canonical_query(parts, request.query));
    out.push('\n');
    for name in &parts.signed_headers {
        out.push_str(name);
        out.push(':');
        out.push_str(&canonical_header_value(request.headers, name));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&parts.signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload);
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration as StdDuration, SystemTime};

    use aws_credential_types::Credentials;
    use aws_sigv4::{
        http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign},
        sign::v4,
    };
    use hyper::header::{HeaderName, HeaderValue};
    use rstest::rstest;

    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SIGNED_AT: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn at(seconds: u64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds as i64).expect("time")
    }

    /// Signs a request with the AWS SDK's own signer, the independent side of these tests.
    fn sdk_signed(
        service: &str,
        method: &str,
        uri: &str,
        body: &[u8],
        token: Option<&str>,
        presign: bool,
    ) -> (HeaderMap, String, String) {
        let identity = Credentials::new(
            "AKIDEXAMPLE",
            SECRET,
            token.map(str::to_owned),
            None,
            "test",
        )
        .into();
        let mut settings = SigningSettings::default();
        if presign {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(StdDuration::from_secs(300));
        }
        if service == "s3" {
            settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
            settings.payload_checksum_kind =
                aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(service)
            .time(SystemTime::UNIX_EPOCH + StdDuration::from_secs(SIGNED_AT))
            .settings(settings)
            .build()
            .expect("params")
            .into();
        let headers = [
            ("host", "127.0.0.1:4566"),
            ("content-type", "application/x-amz-json-1.1"),
        ];
        let body_for_signing = if presign && service == "s3" {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(body)
        };
        let signable = SignableRequest::new(method, uri, headers.into_iter(), body_for_signing)
            .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        let mut request = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let mut request = request.body(()).expect("request");
        instructions.apply_to_request_http1x(&mut request);
        let mut map = HeaderMap::new();
        for (k, v) in request.headers() {
            map.append(
                HeaderName::from_bytes(k.as_str().as_bytes()).expect("name"),
                HeaderValue::from_bytes(v.as_bytes()).expect("value"),
            );
        }
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or_default().to_owned();
        (map, path, query)
    }

    fn check(
        service: &str,
        method: &str,
        uri: &str,
        body: &[u8],
        presign: bool,
        secret: &str,
        now: u64,
    ) -> Result<(), SignatureError> {
        let (headers, path, query) =
            sdk_signed(service, method, uri, body, Some("session-token"), presign);
        let query = (!query.is_empty()).then_some(query.as_str());
        let parts = parts(&headers, query)?.expect("signed");
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let request = Signed {
            method: &method,
            path: &path,
            query,
            headers: &headers,
            body,
        };
        verify(&parts, request, secret, at(now))
    }

    #[rstest]
    #[case::sts_form("sts", "POST", "http://127.0.0.1:4566/", b"Action=AssumeRole&Version=2011-06-15".as_slice())]
    #[case::lambda_encoded_name("lambda", "POST", "http://127.0.0.1:4566/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3Afunction%3Aservicenow-alert/invocations", b"{}".as_slice())]
    #[case::lambda_dot_segments("lambda", "POST", "http://127.0.0.1:4566/2015-03-31/functions/./f/../f/invocations//", b"{}".as_slice())]
    #[case::lambda_query("lambda", "GET", "http://127.0.0.1:4566/2015-03-31/functions/?MaxItems=10&Marker=a%20b", b"".as_slice())]
    #[case::kms_json("kms", "POST", "http://127.0.0.1:4566/", b"{\"KeyId\":\"alias/x\"}".as_slice())]
    #[case::s3_put("s3", "PUT", "http://127.0.0.1:4566/bucket/code/my%20file.zip", b"zip bytes".as_slice())]
    fn what_the_sdk_signs_verifies(
        #[case] service: &str,
        #[case] method: &str,
        #[case] uri: &str,
        #[case] body: &[u8],
    ) {
        assert_eq!(
            check(service, method, uri, body, false, SECRET, SIGNED_AT + 60),
            Ok(())
        );
        assert_eq!(
            check(
                service,
                method,
                uri,
                body,
                false,
                "another secret",
                SIGNED_AT + 60
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[rstest]
    #[case::s3("s3", "GET", "http://127.0.0.1:4566/bucket/key.zip")]
    #[case::sts(
        "sts",
        "GET",
        "http://127.0.0.1:4566/?Action=GetCallerIdentity&Version=2011-06-15"
    )]
    fn presigned_urls_verify_until_they_expire(
        #[case] service: &str,
        #[case] method: &str,
        #[case] uri: &str,
    ) {
        assert_eq!(
            check(service, method, uri, b"", true, SECRET, SIGNED_AT + 299),
            Ok(())
        );
        assert_eq!(
            check(service, method, uri, b"", true, "wrong", SIGNED_AT + 10),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(service, method, uri, b"", true, SECRET, SIGNED_AT + 301),
            Err(SignatureError::PresignExpired)
        );
    }

    #[test]
    fn a_date_beyond_fifteen_minutes_is_refused_either_way() {
        let uri = "http://127.0.0.1:4566/";
        assert_eq!(
            check("sts", "POST", uri, b"", false, SECRET, SIGNED_AT + 15 * 60),
            Ok(())
        );
        let late = check(
            "sts",
            "POST",
            uri,
            b"",
            false,
            SECRET,
            SIGNED_AT + 15 * 60 + 1,
        );
        assert!(
            matches!(late, Err(SignatureError::Skewed { future: false, .. })),
            "{late:?}"
        );
        let early = check(
            "sts",
            "POST",
            uri,
            b"",
            false,
            SECRET,
            SIGNED_AT - 15 * 60 - 1,
        );
        assert!(
            matches!(early, Err(SignatureError::Skewed { future: true, .. })),
            "{early:?}"
        );
    }

    #[test]
    fn a_changed_body_path_or_signed_header_breaks_the_signature() {
        let uri = "http://127.0.0.1:4566/2015-03-31/functions/servicenow-alert/invocations";
        let (headers, path, _) = sdk_signed("lambda", "POST", uri, b"{\"a\":1}", None, false);
        let parts = parts(&headers, None).expect("parts").expect("signed");
        let now = at(SIGNED_AT);
        let post = Method::POST;
        let request = |path: &'static str, body: &'static [u8], headers: &HeaderMap| {
            verify(
                &parts,
                Signed {
                    method: &post,
                    path,
                    query: None,
                    headers,
                    body,
                },
                SECRET,
                now,
            )
        };
        let path: &'static str = Box::leak(path.into_boxed_str());
        assert_eq!(request(path, b"{\"a\":1}", &headers), Ok(()));
        assert_eq!(
            request(path, b"{\"a\":2}", &headers),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            request(
                "/2015-03-31/functions/other/invocations",
                b"{\"a\":1}",
                &headers
            ),
            Err(SignatureError::Mismatch)
        );
        let mut moved = headers.clone();
        moved.insert("host", HeaderValue::from_static("evil.example"));
        assert_eq!(
            request(path, b"{\"a\":1}", &moved),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_content_hash_that_lies_about_the_body_is_refused() {
        let uri = "http://127.0.0.1:4566/bucket/key";
        let (headers, path, _) = sdk_signed("s3", "PUT", uri, b"original", None, false);
        let parts = parts(&headers, None).expect("parts").expect("signed");
        let put = Method::PUT;
        let request = Signed {
            method: &put,
            path: &path,
            query: None,
            headers: &headers,
            body: b"tampered",
        };
        assert_eq!(
            verify(&parts, request, SECRET, at(SIGNED_AT)),
            Err(SignatureError::ContentHashMismatch)
        );
    }

    #[rstest]
    #[case::no_signature(
        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date"
    )]
    #[case::sigv2_style("AWS AKID:c2lnbmF0dXJl")]
    #[case::sigv4a(
        "AWS4-ECDSA-P256-SHA256 Credential=AKID/20260101/sts/aws4_request, SignedHeaders=host, Signature=00"
    )]
    #[case::host_unsigned(
        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sts/aws4_request, SignedHeaders=x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000"
    )]
    #[case::bad_scope(
        "AWS4-HMAC-SHA256 Credential=AKID/2026/us-east-1/sts, SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000"
    )]
    fn malformed_authorization_is_incomplete(#[case] value: &str) {
        let mut headers = HeaderMap::new();
        headers.insert(
            hyper::header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("value"),
        );
        headers.insert("x-amz-date", HeaderValue::from_static("20260101T000000Z"));
        assert!(
            matches!(parts(&headers, None), Err(SignatureError::Incomplete(_))),
            "{value}"
        );
    }

    #[rstest]
    #[case("/", "/")]
    #[case("/a//b/", "/a/b/")]
    #[case("/a/./b/../c", "/a/c")]
    #[case("/a/b/..", "/a/")]
    #[case("/../a", "/a")]
    #[case(
        "/2015-03-31/functions/f/invocations//",
        "/2015-03-31/functions/f/invocations/"
    )]
    fn paths_normalize_as_rfc_3986_and_the_signers_do(#[case] path: &str, #[case] expected: &str) {
        assert_eq!(normalize_path(path), expected);
    }

    #[test]
    fn an_unsigned_request_has_no_parts() {
        assert_eq!(
            parts(&HeaderMap::new(), Some("Action=GetCallerIdentity")),
            Ok(None)
        );
    }
}
