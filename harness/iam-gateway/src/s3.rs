//! S3 requests as S3 authorizes them: the IAM action a path-style request
//! performs (Service Authorization Reference names), its resource ARN, and
//! the encryption headers its bucket policy's condition keys read.
//!
//! Only path-style addressing reaches the gateway (`127.0.0.1` has no bucket
//! subdomains). An operation not named here is `None`: the gateway refuses it
//! rather than pass a request it cannot evaluate.

use hyper::{HeaderMap, Method};

/// An S3 request, as far as its evaluation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Call {
    /// The IAM action, e.g. `s3:PutObject`.
    pub action: &'static str,
    /// The bucket; `None` for account-level operations (`ListAllMyBuckets`).
    pub bucket: Option<String>,
    /// The object key, for object operations.
    pub key: Option<String>,
    /// `x-amz-server-side-encryption`, as sent.
    pub sse: Option<String>,
    /// `x-amz-server-side-encryption-aws-kms-key-id`, as sent.
    pub sse_kms_key_id: Option<String>,
}

impl S3Call {
    /// The resource ARN: `arn:aws:s3:::bucket`, `arn:aws:s3:::bucket/key`, or `*`.
    pub fn resource(&self) -> String {
        match (&self.bucket, &self.key) {
            (Some(bucket), Some(key)) => format!("arn:aws:s3:::{bucket}/{key}"),
            (Some(bucket), None) => format!("arn:aws:s3:::{bucket}"),
            (None, _) => "*".to_owned(),
        }
    }

    /// Whether S3 writes an object, so SSE-KMS has it ask KMS for a data key.
    pub fn writes_object(&self) -> bool {
        self.action == "s3:PutObject"
    }

    /// Whether the request may change a bucket's policy or encryption, which the gateway caches.
    pub fn changes_bucket(&self) -> bool {
        self.key.is_none()
            && (self.action.starts_with("s3:Put")
                || self.action.starts_with("s3:Delete")
                || self.action == "s3:CreateBucket")
    }
}

/// Sub-resources that name a bucket configuration: `(query name, GET, PUT, DELETE)` actions.
const BUCKET_CONFIGURATIONS: &[(&str, &str, &str, &str)] = &[
    (
        "policy",
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
    ),
    (
        "encryption",
        "s3:GetEncryptionConfiguration",
        "s3:PutEncryptionConfiguration",
        "s3:PutEncryptionConfiguration",
    ),
    (
        "versioning",
        "s3:GetBucketVersioning",
        "s3:PutBucketVersioning",
        "",
    ),
    (
        "publicAccessBlock",
        "s3:GetBucketPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock",
    ),
    (
        "ownershipControls",
        "s3:GetBucketOwnershipControls",
        "s3:PutBucketOwnershipControls",
        "s3:PutBucketOwnershipControls",
    ),
    (
        "tagging",
        "s3:GetBucketTagging",
        "s3:PutBucketTagging",
        "s3:PutBucketTagging",
    ),
    ("acl", "s3:GetBucketAcl", "s3:PutBucketAcl", ""),
    ("location", "s3:GetBucketLocation", "", ""),
    ("versions", "s3:ListBucketVersions", "", ""),
    ("uploads", "s3:ListBucketMultipartUploads", "", ""),
];

/// Object sub-resources: `(query name, GET, PUT, DELETE)` actions.
const OBJECT_CONFIGURATIONS: &[(&str, &str, &str, &str)] = &[
    (
        "tagging",
        "s3:GetObjectTagging",
        "s3:PutObjectTagging",
        "s3:DeleteObjectTagging",
    ),
    ("acl", "s3:GetObjectAcl", "s3:PutObjectAcl", ""),
];

/// Names the S3 operation of a path-style request; `None` when it cannot be told.
pub fn route(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<S3Call> {
    // The SDKs name the operation in `x-id`; S3 routes without it.
    let params: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .filter(|(k, _)| k != "x-id")
        .collect();
    let has = |name: &str| params.iter().any(|(k, _)| k == name);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let trimmed = path.strip_prefix('/')?;
    let (bucket, key) = match trimmed.split_once('/') {
        Some((bucket, key)) if !key.is_empty() => (bucket, Some(key)),
        Some((bucket, _)) => (bucket, None),
        None => (trimmed, None),
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|d| d.into_owned())
    };
    let bucket = (!bucket.is_empty()).then(|| decode(bucket)).flatten();
    let key = match key {
        Some(key) => Some(decode(key)?),
        None => None,
    };
    let pick = |table: &[(&str, &'static str, &'static str, &'static str)]| {
        table
            .iter()
            .find(|(name, ..)| has(name))
            .map(|(_, get, put, delete)| match *method {
                Method::GET | Method::HEAD => *get,
                Method::PUT => *put,
                Method::DELETE => *delete,
                _ => "",
            })
    };
    let action: &'static str = match (&bucket, &key) {
        (None, _) if *method == Method::GET => "s3:ListAllMyBuckets",
        (None, _) => return None,
        (Some(_), None) => match pick(BUCKET_CONFIGURATIONS) {
            Some(action) => action,
            // Multi-object delete: S3 authorizes s3:DeleteObject per key.
            None if *method == Method::POST && has("delete") => "s3:DeleteObject",
            None if params.is_empty() || has("list-type") || has("prefix") => match *method {
                Method::GET | Method::HEAD => "s3:ListBucket",
                Method::PUT => "s3:CreateBucket",
                Method::DELETE => "s3:DeleteBucket",
                _ => "",
            },
            None => "",
        },
        (Some(_), Some(_)) => match pick(OBJECT_CONFIGURATIONS) {
            Some(action) => action,
            // Multipart uploads are authorized as s3:PutObject, but for the abort.
            None if *method == Method::DELETE && has("uploadId") => "s3:AbortMultipartUpload",
            None if *method == Method::GET && has("uploadId") => "s3:ListMultipartUploadParts",
            None if matches!(*method, Method::POST | Method::PUT)
                && (has("uploads") || has("uploadId")) =>
            {
                "s3:PutObject"
            }
            None if params.iter().all(|(k, _)| k == "versionId") => {
                let versioned = has("versionId");
                match *method {
                    Method::GET | Method::HEAD if versioned => "s3:GetObjectVersion",
                    Method::GET | Method::HEAD => "s3:GetObject",
                    Method::PUT => "s3:PutObject",
                    Method::DELETE if versioned => "s3:DeleteObjectVersion",
                    Method::DELETE => "s3:DeleteObject",
                    _ => "",
                }
            }
            None => "",
        },
    };
    if action.is_empty() {
        return None;
    }
    Some(S3Call {
        action,
        bucket,
        key,
        sse: header("x-amz-server-side-encryption"),
        sse_kms_key_id: header("x-amz-server-side-encryption-aws-kms-key-id"),
    })
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::put_object(
        Method::PUT,
        "/b/code/a.zip",
        None,
        Some("s3:PutObject"),
        Some("arn:aws:s3:::b/code/a.zip")
    )]
    #[case::sdk_put_object(
        Method::PUT,
        "/b/k",
        Some("x-id=PutObject"),
        Some("s3:PutObject"),
        Some("arn:aws:s3:::b/k")
    )]
    #[case::get_object(
        Method::GET,
        "/b/k",
        None,
        Some("s3:GetObject"),
        Some("arn:aws:s3:::b/k")
    )]
    #[case::head_object(
        Method::HEAD,
        "/b/k",
        None,
        Some("s3:GetObject"),
        Some("arn:aws:s3:::b/k")
    )]
    #[case::get_version(
        Method::GET,
        "/b/k",
        Some("versionId=3"),
        Some("s3:GetObjectVersion"),
        Some("arn:aws:s3:::b/k")
    )]
    #[case::delete_version(
        Method::DELETE,
        "/b/k",
        Some("versionId=3"),
        Some("s3:DeleteObjectVersion"),
        Some("arn:aws:s3:::b/k")
    )]
    #[case::encoded_key(
        Method::PUT,
        "/b/a%20b.zip",
        None,
        Some("s3:PutObject"),
        Some("arn:aws:s3:::b/a b.zip")
    )]
    #[case::multipart_create(
        Method::POST,
        "/b/k",
        Some("uploads"),
        Some("s3:PutObject"),
        Some("arn:aws:s3:::b/k")
    )]
    #[case::multipart_part(
        Method::PUT,
        "/b/k",
        Some("partNumber=1&uploadId=u"),
        Some("s3:PutObject"),
        Some("arn:aws:s3:::b/k")
    )]
    #[case::multipart_abort(
        Method::DELETE,
        "/b/k",
        Some("uploadId=u"),
        Some("s3:AbortMultipartUpload"),
        Some("arn:aws:s3:::b/k")
    )]
    #[case::put_policy(
        Method::PUT,
        "/b",
        Some("policy"),
        Some("s3:PutBucketPolicy"),
        Some("arn:aws:s3:::b")
    )]
    #[case::get_policy(
        Method::GET,
        "/b/",
        Some("policy="),
        Some("s3:GetBucketPolicy"),
        Some("arn:aws:s3:::b")
    )]
    #[case::delete_policy(
        Method::DELETE,
        "/b",
        Some("policy"),
        Some("s3:DeleteBucketPolicy"),
        Some("arn:aws:s3:::b")
    )]
    #[case::list_v2(
        Method::GET,
        "/b",
        Some("list-type=2&prefix=x"),
        Some("s3:ListBucket"),
        Some("arn:aws:s3:::b")
    )]
    #[case::head_bucket(
        Method::HEAD,
        "/b",
        None,
        Some("s3:ListBucket"),
        Some("arn:aws:s3:::b")
    )]
    #[case::create_bucket(
        Method::PUT,
        "/b",
        None,
        Some("s3:CreateBucket"),
        Some("arn:aws:s3:::b")
    )]
    #[case::multi_delete(
        Method::POST,
        "/b",
        Some("delete"),
        Some("s3:DeleteObject"),
        Some("arn:aws:s3:::b")
    )]
    #[case::list_buckets(Method::GET, "/", None, Some("s3:ListAllMyBuckets"), Some("*"))]
    #[case::unknown_subresource(Method::PUT, "/b", Some("website"), None, None)]
    #[case::unknown_object_subresource(Method::GET, "/b/k", Some("torrent"), None, None)]
    #[case::post_object(Method::POST, "/b/k", None, None, None)]
    fn operations_get_their_iam_action(
        #[case] method: Method,
        #[case] path: &str,
        #[case] query: Option<&str>,
        #[case] action: Option<&str>,
        #[case] resource: Option<&str>,
    ) {
        let call = route(&method, path, query, &HeaderMap::new());
        assert_eq!(call.as_ref().map(|c| c.action), action, "{call:?}");
        assert_eq!(call.map(|c| c.resource()).as_deref(), resource);
    }

    #[test]
    fn encryption_headers_are_kept_for_the_bucket_policy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amz-server-side-encryption",
            HeaderValue::from_static("aws:kms"),
        );
        headers.insert(
            "x-amz-server-side-encryption-aws-kms-key-id",
            HeaderValue::from_static("arn:aws:kms:us-east-1:111111111111:key/k"),
        );
        let call = route(&Method::PUT, "/b/k", None, &headers).expect("a PutObject");
        assert_eq!(call.sse.as_deref(), Some("aws:kms"));
        assert_eq!(
            call.sse_kms_key_id.as_deref(),
            Some("arn:aws:kms:us-east-1:111111111111:key/k")
        );
        assert!(call.writes_object() && !call.changes_bucket());
        let policy = route(&Method::PUT, "/b", Some("policy"), &HeaderMap::new()).expect("put");
        assert!(policy.changes_bucket() && !policy.writes_object());
    }
}
