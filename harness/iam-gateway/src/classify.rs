//! What a request asks for: `sts:AssumeRole`, `lambda:InvokeFunction`,
//! something the gateway passes through, named as well as is cheap, or a
//! request it refuses because it cannot tell what the emulator would do.
//!
//! Classification follows how the emulator routes, not the signing scope: an
//! invoke path is an invoke whatever service the request was signed for, and
//! an `Action=AssumeRole` is an AssumeRole with or without `Version`, once
//! the body is decoded as the emulator would decode it (`Content-Encoding`).
//! What cannot be read is refused, never forwarded.

use std::io::Read as _;

use hyper::{HeaderMap, Method};

use super::{
    aws_error::ErrorShape,
    decide::{ASSUME_ROLE, INVOKE_FUNCTION},
    s3::{self, S3Call},
    sigv4::{self, is_account_id},
};

/// The parameters of an STS `AssumeRole` call (awsQuery protocol).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssumeRoleCall {
    /// `RoleArn`.
    pub role_arn: String,
    /// `RoleSessionName`.
    pub session_name: Option<String>,
    /// `ExternalId`, only when sent.
    pub external_id: Option<String>,
    /// `DurationSeconds` as sent (validated later against the role).
    pub duration_seconds: Option<String>,
    /// `SourceIdentity`, only when sent.
    pub source_identity: Option<String>,
}

/// A Lambda function as named in an invoke path, before the caller's account fills the gaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    /// The region, when the name was a full ARN.
    pub region: Option<String>,
    /// The account, when the name was a full or partial ARN.
    pub account: Option<String>,
    /// The function name.
    pub name: String,
    /// The version or alias, from the name or `?Qualifier=`; `$LATEST` counts as none.
    pub qualifier: Option<String>,
}

impl FunctionRef {
    /// Parses a `FunctionName` (plain name, partial ARN `<acct>:function:<name>`,
    /// `<region>:<acct>:function:<name>` as the emulator also accepts, or full
    /// ARN, each optionally `:<qualifier>`) and an optional `Qualifier` parameter.
    pub fn parse(raw: &str, qualifier_param: Option<&str>) -> Option<Self> {
        let fields: Vec<&str> = raw.split(':').collect();
        let (region, account, name, qualifier) = match fields.as_slice() {
            [name] => (None, None, *name, None),
            [name, q] => (None, None, *name, Some(*q)),
            [account, "function", name] => (None, Some(*account), *name, None),
            [account, "function", name, q] => (None, Some(*account), *name, Some(*q)),
            [region, account, "function", name] => (Some(*region), Some(*account), *name, None),
            [region, account, "function", name, q] => {
                (Some(*region), Some(*account), *name, Some(*q))
            }
            ["arn", _, "lambda", region, account, "function", name] => {
                (Some(*region), Some(*account), *name, None)
            }
            ["arn", _, "lambda", region, account, "function", name, q] => {
                (Some(*region), Some(*account), *name, Some(*q))
            }
            _ => return None,
        };
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok || account.is_some_and(|a| !is_account_id(a)) {
            return None;
        }
        // The function's policy and ARN for `$LATEST` are the unqualified ones.
        let qualifier = qualifier
            .or(qualifier_param)
            .filter(|q| !q.is_empty() && *q != "$LATEST");
        Some(Self {
            region: region.map(str::to_owned),
            account: account.map(str::to_owned),
            name: name.to_owned(),
            qualifier: qualifier.map(str::to_owned),
        })
    }

    /// The function's ARN, taking account and region from the caller where the name had none.
    pub fn arn(&self, caller_account: &str, default_region: &str) -> String {
        let region = self.region.as_deref().unwrap_or(default_region);
        let account = self.account.as_deref().unwrap_or(caller_account);
        let base = format!("arn:aws:lambda:{region}:{account}:function:{}", self.name);
        match &self.qualifier {
            Some(q) => format!("{base}:{q}"),
            None => base,
        }
    }
}

/// A request the gateway does not evaluate, named for the decision log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherCall {
    /// `service:Operation`, `service:unknown`, or `unknown`.
    pub action: String,
    /// Whether it may change a policy the gateway caches (see [`Operation::Other`]).
    pub may_change_policies: bool,
    /// The S3 operation, for a request to S3 (`None` also when it cannot be told).
    pub s3: Option<S3Call>,
    /// The stack a CloudFormation request names (`StackName`: a name or a
    /// stack ARN), which is the resource CloudFormation authorizes it on.
    pub stack: Option<String>,
}

/// A request the gateway refuses without forwarding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The action as far as it could be told, for the decision log.
    pub action: String,
    /// The shape of the error answer.
    pub shape: ErrorShape,
    /// The HTTP status.
    pub status: u16,
    /// AWS's error code for this kind of refusal.
    pub code: &'static str,
    /// What the gateway could not read or will not pass.
    pub message: String,
}

/// STS actions that hand out credentials, which only `AssumeRole` of them is evaluated.
const CREDENTIAL_ACTIONS: [&str; 5] = [
    "AssumeRoleWithWebIdentity",
    "AssumeRoleWithSAML",
    "AssumeRoot",
    "GetSessionToken",
    "GetFederationToken",
];

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `sts:AssumeRole`, evaluated against the role's trust policy and the caller's policies.
    AssumeRole(AssumeRoleCall),
    /// `lambda:InvokeFunction` (Invoke, InvokeAsync, InvokeWithResponseStream).
    Invoke(FunctionRef),
    /// Another operation on one function (`lambda:GetFunction`, `lambda:AddPermission`, ...),
    /// evaluated like an invoke against the function policy and the caller's policies.
    Function(&'static str, FunctionRef),
    /// Anything else: forwarded unchanged.
    ///
    /// The policy cache is cleared when such a request may change policies:
    /// IAM requests other than `Get*`/`List*`, Lambda requests other than
    /// `GET`/`HEAD`, S3 writes of a bucket's policy or encryption. Other
    /// services hold no policy the gateway evaluates; a deploy's changes are
    /// reported by the executor plugin, handler by handler.
    Other(OtherCall),
    /// Refused: the gateway cannot tell what the emulator would do with it,
    /// or will not pass an action it does not evaluate that mints credentials.
    Refused(Refusal),
}

/// The request facts classification needs.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The HTTP method.
    pub method: &'a Method,
    /// The path, still percent-encoded.
    pub path: &'a str,
    /// The query string, if any.
    pub query: Option<&'a str>,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The signing service from the credential scope, if signed.
    pub service: Option<&'a str>,
    /// The body, when it was buffered (see [`needs_body`]).
    pub body: Option<&'a [u8]>,
}

/// Whether classification needs the body: awsQuery requests carry their
/// action in a form body, which may be compressed or multipart.
pub fn needs_body(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    is_form_encoded(headers) || (*method == Method::POST && normalize_path(path) == "/")
}

/// The path with runs of `/` collapsed, as the emulator's router matches it.
pub fn normalize_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

/// The body as the emulator reads it, after `Content-Encoding`.
fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, String> {
    let encoding = headers
        .get(hyper::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let mut out = Vec::new();
    let read = match encoding.as_str() {
        "" | "identity" => return Ok(body.to_vec()),
        "gzip" | "x-gzip" => flate2::read::GzDecoder::new(body).read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(body).read_to_end(&mut out),
        other => return Err(format!("a body with Content-Encoding `{other}`")),
    };
    read.map(|_| out)
        .map_err(|e| format!("a {encoding} body that does not decode ({e})"))
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether a body is form-encoded, i.e. an awsQuery request whose `Action` lives in the body.
pub fn is_form_encoded(headers: &HeaderMap) -> bool {
    headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

const INVOKE_PATHS: [(&str, &str); 3] = [
    ("/2015-03-31/functions/", "/invocations"),
    ("/2014-11-13/functions/", "/invoke-async"),
    ("/2021-11-15/functions/", "/response-streaming-invocations"),
];

/// Decodes `%XX` escapes (not `+`, which paths keep literally); `None` on bad escapes or non-UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The (still encoded) function name of an invoke path, if the normalized path is one.
fn invoke_name<'a>(method: &Method, path: &'a str) -> Option<&'a str> {
    if method != Method::POST {
        return None;
    }
    INVOKE_PATHS.iter().find_map(|(prefix, suffix)| {
        let rest = path.strip_prefix(prefix)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let encoded = rest.strip_suffix(suffix)?;
        (!encoded.is_empty() && !encoded.contains('/')).then_some(encoded)
    })
}

/// Lambda's operations on one function, by method and path shape after
/// `/<version>/functions/<name>`: the IAM action each needs, with the
/// function as its resource (Service Authorization Reference, Lambda).
const FUNCTION_ACTIONS: [(&str, &str, &str); 13] = [
    ("GET", "", "lambda:GetFunction"),
    ("DELETE", "", "lambda:DeleteFunction"),
    ("GET", "configuration", "lambda:GetFunctionConfiguration"),
    ("PUT", "configuration", "lambda:UpdateFunctionConfiguration"),
    ("PUT", "code", "lambda:UpdateFunctionCode"),
    ("GET", "policy", "lambda:GetPolicy"),
    ("POST", "policy", "lambda:AddPermission"),
    ("DELETE", "policy/*", "lambda:RemovePermission"),
    ("POST", "versions", "lambda:PublishVersion"),
    ("GET", "versions", "lambda:ListVersionsByFunction"),
    ("POST", "aliases", "lambda:CreateAlias"),
    ("PUT", "aliases/*", "lambda:UpdateAlias"),
    ("DELETE", "aliases/*", "lambda:DeleteAlias"),
];

/// A function-scoped Lambda operation: its IAM action and the (encoded) function name.
fn function_operation<'a>(method: &Method, path: &'a str) -> Option<(&'static str, &'a str)> {
    let rest = path.strip_prefix("/2015-03-31/functions/")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (name, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if name.is_empty() {
        return None;
    }
    FUNCTION_ACTIONS.iter().find_map(|(m, shape, action)| {
        let fits = match shape.strip_suffix("/*") {
            Some(prefix) => tail
                .strip_prefix(prefix)
                .and_then(|t| t.strip_prefix('/'))
                .is_some_and(|id| !id.is_empty() && !id.contains('/')),
            None => tail == *shape,
        };
        (method.as_str() == *m && fits).then_some((*action, name))
    })
}

/// Lambda's REST operations by method and path shape, for the log only.
fn lambda_operation(method: &Method, path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", [_, "functions"]) => "ListFunctions",
        ("POST", [_, "functions"]) => "CreateFunction",
        ("GET", [_, "functions", _]) => "GetFunction",
        ("DELETE", [_, "functions", _]) => "DeleteFunction",
        ("GET", [_, "functions", _, "configuration"]) => "GetFunctionConfiguration",
        ("PUT", [_, "functions", _, "configuration"]) => "UpdateFunctionConfiguration",
        ("PUT", [_, "functions", _, "code"]) => "UpdateFunctionCode",
        ("GET", [_, "functions", _, "policy"]) => "GetPolicy",
        ("POST", [_, "functions", _, "policy"]) => "AddPermission",
        ("DELETE", [_, "functions", _, "policy", _]) => "RemovePermission",
        ("POST", [_, "functions", _, "versions"]) => "PublishVersion",
        ("POST", [_, "functions", _, "aliases"]) => "CreateAlias",
        ("PUT", [_, "functions", _, "aliases", _]) => "UpdateAlias",
        ("DELETE", [_, "functions", _, "aliases", _]) => "DeleteAlias",
        _ => "unknown",
    }
}

/// The error shape a request's refusal takes: Lambda's for an invoke path
/// (whatever it was signed for); awsJson for a request in that protocol
/// (`X-Amz-Target` with an `application/x-amz-json-*` body, as SQS, KMS or
/// Logs take), since a service answers in the protocol it was asked in; else
/// the signing service's.
pub fn shape(facts: RequestFacts<'_>) -> ErrorShape {
    let header = |name: &str| facts.headers.get(name).and_then(|v| v.to_str().ok());
    let aws_json = header("x-amz-target").is_some()
        && header("content-type").is_some_and(|t| t.starts_with("application/x-amz-json"));
    if invoke_name(facts.method, &normalize_path(facts.path)).is_some() {
        ErrorShape::Lambda
    } else if aws_json {
        ErrorShape::Json
    } else {
        ErrorShape::of_service(facts.service.map(str::to_ascii_lowercase).as_deref())
    }
}

/// Classifies a request. Cheap: no I/O, no parsing beyond the query and a buffered body.
pub fn classify(facts: RequestFacts<'_>) -> Operation {
    let service = facts.service.map(str::to_ascii_lowercase);
    let path = normalize_path(facts.path);
    let shape = shape(facts);
    let refuse = |action: &str, status: u16, code: &'static str, message: String| {
        Operation::Refused(Refusal {
            action: action.to_owned(),
            shape,
            status,
            code,
            message,
        })
    };
    if sigv4::credential_count(facts.headers, facts.query) > 1 {
        return refuse(
            "unknown",
            if shape == ErrorShape::Lambda {
                403
            } else {
                400
            },
            "IncompleteSignature",
            "the request carries more than one credential; AWS accepts exactly one".to_owned(),
        );
    }
    // An invoke path is an invoke whatever service it was signed for.
    if let Some(encoded) = invoke_name(facts.method, &path) {
        return match percent_decode(encoded).and_then(|name| {
            FunctionRef::parse(&name, query_param(facts.query, "Qualifier").as_deref())
        }) {
            Some(function) => Operation::Invoke(function),
            None => refuse(
                INVOKE_FUNCTION,
                403,
                "AccessDeniedException",
                format!(
                    "iam gateway: the function name `{encoded}` in this invoke cannot be read, so the invoke cannot be evaluated"
                ),
            ),
        };
    }

    // Any other operation on one function is evaluated like an invoke.
    if let Some((action, encoded)) = function_operation(facts.method, &path) {
        return match percent_decode(encoded).and_then(|name| {
            FunctionRef::parse(&name, query_param(facts.query, "Qualifier").as_deref())
        }) {
            Some(function) => Operation::Function(action, function),
            None => refuse(
                action,
                403,
                "AccessDeniedException",
                format!(
                    "iam gateway: the function name `{encoded}` cannot be read, so {action} cannot be evaluated"
                ),
            ),
        };
    }

    // awsQuery parameters: the query string, then a form body.
    let mut params: Vec<(String, String)> = Vec::new();
    if let Some(query) = facts.query {
        params.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
    }
    if let Some(body) = facts.body {
        let kind = content_type(facts.headers);
        // The emulator would read a multipart form's fields too; the gateway does not.
        if kind.starts_with("multipart/form-data") {
            return refuse(
                "unknown",
                403,
                shape.access_denied_code(),
                format!("iam gateway: a {kind} body cannot be evaluated, so it is refused"),
            );
        }
        match decode_body(facts.headers, body) {
            // The emulator reads a body's parameters only from a form (werkzeug's `request.values`).
            Ok(decoded) if is_form_encoded(facts.headers) => {
                params.extend(form_urlencoded::parse(&decoded).into_owned());
            }
            Ok(_) => {}
            Err(what) => {
                return refuse(
                    "unknown",
                    403,
                    shape.access_denied_code(),
                    format!("iam gateway: {what} cannot be evaluated, so it is refused"),
                );
            }
        }
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let query_action = param("Action");

    // No other awsQuery service has an `AssumeRole`: it is STS's, with or without `Version`.
    if query_action.as_deref() == Some("AssumeRole") {
        return match param("RoleArn") {
            Some(role_arn) => Operation::AssumeRole(AssumeRoleCall {
                role_arn,
                session_name: param("RoleSessionName"),
                external_id: param("ExternalId"),
                duration_seconds: param("DurationSeconds"),
                source_identity: param("SourceIdentity"),
            }),
            // AWS's own answer to an AssumeRole without a role.
            None => refuse(
                ASSUME_ROLE,
                400,
                "ValidationError",
                "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null".to_owned(),
            ),
        };
    }
    if let Some(action) = query_action
        .as_deref()
        .filter(|a| CREDENTIAL_ACTIONS.contains(a))
    {
        return refuse(
            &format!("sts:{action}"),
            403,
            "AccessDenied",
            format!(
                "iam gateway: sts:{action} hands out credentials and is not evaluated by the gateway, so it is refused"
            ),
        );
    }

    let target_operation = facts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .map(str::to_owned);
    let operation = query_action.or(target_operation).or_else(|| {
        (service.as_deref() == Some("lambda") || facts.path.starts_with("/20"))
            .then(|| lambda_operation(facts.method, facts.path).to_owned())
            .filter(|op| op != "unknown")
    });
    let action = match (&service, &operation) {
        (Some(s), Some(op)) => format!("{s}:{op}"),
        (Some(s), None) => format!("{s}:unknown"),
        (None, _) => "unknown".to_owned(),
    };
    if service.as_deref() == Some("s3") {
        // Raw: an S3 key may hold `//`, which S3 keeps.
        let call = s3::route(facts.method, facts.path, facts.query, facts.headers);
        return Operation::Other(OtherCall {
            action: call
                .as_ref()
                .map_or_else(|| "s3:unknown".to_owned(), |c| c.action.to_owned()),
            may_change_policies: call.as_ref().is_some_and(S3Call::changes_bucket),
            s3: call,
            stack: None,
        });
    }
    let op = operation.as_deref().unwrap_or("");
    // A deploy's changes are its resource handlers', which the executor
    // plugin reports (`deploy_check.rs`); CloudFormation's own requests
    // change nothing the gateway caches.
    let may_change_policies = match service.as_deref() {
        Some("iam") => !(op.starts_with("Get") || op.starts_with("List")),
        Some("lambda") => !matches!(*facts.method, Method::GET | Method::HEAD),
        _ => false,
    };
    let stack = (service.as_deref() == Some("cloudformation"))
        .then(|| param("StackName"))
        .flatten();
    Operation::Other(OtherCall {
        action,
        may_change_policies,
        s3: None,
        stack,
    })
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;
    use rstest::rstest;

    use super::*;

    fn facts<'a>(
        method: &'a Method,
        path: &'a str,
        query: Option<&'a str>,
        headers: &'a HeaderMap,
        service: Option<&'a str>,
        body: Option<&'a [u8]>,
    ) -> RequestFacts<'a> {
        RequestFacts {
            method,
            path,
            query,
            headers,
            service,
            body,
        }
    }

    fn form_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        h
    }

    #[test]
    fn assume_role_from_form_body() {
        let headers = form_headers();
        let body = b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A111111111111%3Arole%2Fservicenow-invoke&RoleSessionName=s1&ExternalId=ext%2B1&DurationSeconds=900&SourceIdentity=alice";
        let op = classify(facts(
            &Method::POST,
            "/",
            None,
            &headers,
            Some("sts"),
            Some(body),
        ));
        assert_eq!(
            op,
            Operation::AssumeRole(AssumeRoleCall {
                role_arn: "arn:aws:iam::111111111111:role/servicenow-invoke".into(),
                session_name: Some("s1".into()),
                external_id: Some("ext+1".into()),
                duration_seconds: Some("900".into()),
                source_identity: Some("alice".into()),
            })
        );
    }

    #[test]
    fn assume_role_from_query_without_optional_params() {
        let headers = HeaderMap::new();
        let op = classify(facts(
            &Method::GET,
            "/",
            Some(
                "Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::1:role/r&RoleSessionName=s",
            ),
            &headers,
            None,
            None,
        ));
        let Operation::AssumeRole(call) = op else {
            panic!("not classified as AssumeRole: {op:?}")
        };
        assert_eq!(call.external_id, None);
        assert_eq!(call.duration_seconds, None);
    }

    #[test]
    fn form_body_is_ignored_without_form_content_type() {
        let op = classify(facts(
            &Method::POST,
            "/",
            None,
            &HeaderMap::new(),
            Some("sts"),
            Some(b"Action=AssumeRole&RoleArn=arn:aws:iam::1:role/r"),
        ));
        assert!(matches!(op, Operation::Other(_)), "{op:?}");
    }

    #[rstest]
    #[case::sqs_json(
        "sqs",
        Some("AmazonSQS.ListQueues"),
        "application/x-amz-json-1.0",
        ErrorShape::Json
    )]
    #[case::sqs_query("sqs", None, "application/x-www-form-urlencoded", ErrorShape::Query)]
    #[case::kms(
        "kms",
        Some("TrentService.Encrypt"),
        "application/x-amz-json-1.1",
        ErrorShape::Json
    )]
    #[case::target_without_json(
        "sts",
        Some("x"),
        "application/x-www-form-urlencoded",
        ErrorShape::Query
    )]
    #[case::ec2("ec2", None, "application/x-www-form-urlencoded", ErrorShape::Ec2)]
    fn a_refusal_takes_the_protocol_the_request_was_sent_in(
        #[case] service: &str,
        #[case] target: Option<&'static str>,
        #[case] content_type: &'static str,
        #[case] expected: ErrorShape,
    ) {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static(content_type));
        if let Some(target) = target {
            headers.insert("x-amz-target", HeaderValue::from_static(target));
        }
        let found = shape(facts(
            &Method::POST,
            "/",
            None,
            &headers,
            Some(service),
            None,
        ));
        assert_eq!(found, expected);
    }

    fn refused(op: &Operation) -> &Refusal {
        match op {
            Operation::Refused(refusal) => refusal,
            other => panic!("not refused: {other:?}"),
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    const ASSUME: &[u8] = b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A111111111111%3Arole%2Fservicenow-invoke&RoleSessionName=s";

    #[test]
    fn assume_role_without_role_arn_gets_stss_validation_error() {
        let headers = form_headers();
        let op = classify(facts(
            &Method::POST,
            "/",
            None,
            &headers,
            Some("sts"),
            Some(b"Action=AssumeRole&RoleSessionName=s"),
        ));
        let refusal = refused(&op);
        assert_eq!(
            (refusal.shape, refusal.status, refusal.code),
            (ErrorShape::Query, 400, "ValidationError")
        );
        assert!(refusal.message.contains("'roleArn'"), "{}", refusal.message);
    }

    #[rstest]
    #[case::without_version_signed_for_sts(Some("sts"), None)]
    #[case::signed_for_another_service(Some("iam"), None)]
    #[case::unsigned(None, None)]
    #[case::gzip_body(Some("sts"), Some("gzip"))]
    #[case::deflate_is_read_too(Some("sts"), Some("deflate"))]
    fn assume_role_is_found_however_it_is_sent(
        #[case] service: Option<&str>,
        #[case] encoding: Option<&str>,
    ) {
        let mut headers = form_headers();
        let body = match encoding {
            Some("gzip") => gzip(ASSUME),
            Some("deflate") => {
                use std::io::Write as _;
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(ASSUME).expect("deflate");
                e.finish().expect("deflate")
            }
            _ => ASSUME.to_vec(),
        };
        if let Some(encoding) = encoding {
            headers.insert("content-encoding", HeaderValue::from_str(encoding).unwrap());
        }
        let op = classify(facts(
            &Method::POST,
            "/",
            None,
            &headers,
            service,
            Some(&body),
        ));
        match op {
            Operation::AssumeRole(call) => assert_eq!(
                call.role_arn,
                "arn:aws:iam::111111111111:role/servicenow-invoke"
            ),
            other => panic!("not an AssumeRole: {other:?}"),
        }
    }

    #[rstest]
    #[case::multipart("multipart/form-data; boundary=x", None, b"--x\r\n".as_slice(), 403, "AccessDenied")]
    #[case::unknown_encoding(
        "application/x-www-form-urlencoded",
        Some("br"),
        ASSUME,
        403,
        "AccessDenied"
    )]
    #[case::broken_gzip("application/x-www-form-urlencoded", Some("gzip"), b"not gzip".as_slice(), 403, "AccessDenied")]
    fn bodies_the_gateway_cannot_read_are_refused(
        #[case] content_type: &str,
        #[case] encoding: Option<&str>,
        #[case] body: &[u8],
        #[case] status: u16,
        #[case] code: &str,
    ) {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_str(content_type).unwrap());
        if let Some(encoding) = encoding {
            headers.insert("content-encoding", HeaderValue::from_str(encoding).unwrap());
        }
        let op = classify(facts(
            &Method::POST,
            "/",
            None,
            &headers,
            Some("sts"),
            Some(body),
        ));
        let refusal = refused(&op);
        assert_eq!(
            (refusal.shape, refusal.status, refusal.code),
            (ErrorShape::Query, status, code)
        );
    }

    #[rstest]
    #[case::web_identity("AssumeRoleWithWebIdentity")]
    #[case::saml("AssumeRoleWithSAML")]
    #[case::session_token("GetSessionToken")]
    #[case::federation_token("GetFederationToken")]
    fn other_credential_actions_are_refused(#[case] action: &str) {
        let query = format!("Action={action}&Version=2011-06-15");
        let op = classify(facts(
            &Method::GET,
            "/",
            Some(&query),
            &HeaderMap::new(),
            Some("sts"),
            None,
        ));
        let refusal = refused(&op);
        assert_eq!(refusal.action, format!("sts:{action}"));
        assert_eq!((refusal.status, refusal.code), (403, "AccessDenied"));
    }

    #[rstest]
    #[case::signed_for_s3(
        "/2015-03-31/functions/servicenow-alert/invocations",
        Some("s3"),
        function(None, None, "servicenow-alert", None)
    )]
    #[case::doubled_trailing_slash(
        "/2015-03-31/functions/servicenow-alert/invocations//",
        Some("lambda"),
        function(None, None, "servicenow-alert", None)
    )]
    #[case::doubled_inner_slash(
        "/2015-03-31//functions/servicenow-alert/invocations",
        Some("lambda"),
        function(None, None, "servicenow-alert", None)
    )]
    #[case::region_account_function_name(
        "/2015-03-31/functions/us-east-1%3A111111111111%3Afunction%3Aservicenow-alert/invocations",
        Some("lambda"),
        function(Some("us-east-1"), Some("111111111111"), "servicenow-alert", None)
    )]
    fn invokes_are_found_as_the_emulator_routes_them(
        #[case] path: &str,
        #[case] service: Option<&str>,
        #[case] expected: Operation,
    ) {
        let headers = HeaderMap::new();
        assert_eq!(
            classify(facts(&Method::POST, path, None, &headers, service, None)),
            expected
        );
    }

    #[test]
    fn an_invoke_whose_function_cannot_be_read_is_refused() {
        let headers = HeaderMap::new();
        let op = classify(facts(
            &Method::POST,
            "/2015-03-31/functions/a%3Ab%3Ac%3Ad%3Ae%3Af/invocations",
            None,
            &headers,
            Some("lambda"),
            None,
        ));
        let refusal = refused(&op);
        assert_eq!(
            (refusal.shape, refusal.status, refusal.code),
            (ErrorShape::Lambda, 403, "AccessDeniedException")
        );
    }

    #[test]
    fn two_credentials_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=222222222222/20250101/us-east-1/lambda/aws4_request, Credential=111111111111/20250101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0",
            ),
        );
        let op = classify(facts(
            &Method::POST,
            "/2015-03-31/functions/f/invocations",
            None,
            &headers,
            Some("lambda"),
            None,
        ));
        let refusal = refused(&op);
        assert_eq!(refusal.code, "IncompleteSignature");
        assert_eq!(refusal.shape, ErrorShape::Lambda);
    }

    fn function(
        region: Option<&str>,
        account: Option<&str>,
        name: &str,
        q: Option<&str>,
    ) -> Operation {
        Operation::Invoke(FunctionRef {
            region: region.map(Into::into),
            account: account.map(Into::into),
            name: name.into(),
            qualifier: q.map(Into::into),
        })
    }

    #[rstest]
    #[case::plain_name(
        "/2015-03-31/functions/servicenow-alert/invocations",
        None,
        function(None, None, "servicenow-alert", None)
    )]
    #[case::full_arn(
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3Afunction%3Aservicenow-alert/invocations",
        None,
        function(Some("us-east-1"), Some("111111111111"), "servicenow-alert", None)
    )]
    #[case::full_arn_with_qualifier(
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A111111111111%3Afunction%3Af%3Aprod/invocations",
        None,
        function(Some("eu-west-1"), Some("111111111111"), "f", Some("prod"))
    )]
    #[case::partial_arn(
        "/2015-03-31/functions/111111111111%3Afunction%3Af/invocations",
        None,
        function(None, Some("111111111111"), "f", None)
    )]
    #[case::qualifier_param(
        "/2015-03-31/functions/f/invocations",
        Some("Qualifier=7"),
        function(None, None, "f", Some("7"))
    )]
    #[case::name_with_qualifier(
        "/2015-03-31/functions/f%3Alive/invocations",
        None,
        function(None, None, "f", Some("live"))
    )]
    #[case::latest_is_unqualified(
        "/2015-03-31/functions/f/invocations",
        Some("Qualifier=%24LATEST"),
        function(None, None, "f", None)
    )]
    #[case::invoke_async(
        "/2014-11-13/functions/f/invoke-async/",
        None,
        function(None, None, "f", None)
    )]
    #[case::response_stream(
        "/2021-11-15/functions/f/response-streaming-invocations",
        None,
        function(None, None, "f", None)
    )]
    fn invoke_paths(#[case] path: &str, #[case] query: Option<&str>, #[case] expected: Operation) {
        let headers = HeaderMap::new();
        assert_eq!(
            classify(facts(
                &Method::POST,
                path,
                query,
                &headers,
                Some("lambda"),
                None
            )),
            expected
        );
    }

    #[rstest]
    #[case::create_function(
        Method::POST,
        "/2015-03-31/functions",
        Some("lambda"),
        "lambda:CreateFunction",
        true
    )]
    #[case::get_invocations_is_not_invoke(
        Method::GET,
        "/2015-03-31/functions/f/invocations",
        Some("lambda"),
        "lambda:unknown",
        false
    )]
    #[case::unsigned(Method::GET, "/_localstack/health", None, "unknown", false)]
    fn rest_operations(
        #[case] method: Method,
        #[case] path: &str,
        #[case] service: Option<&str>,
        #[case] action: &str,
        #[case] may_change_policies: bool,
    ) {
        let headers = HeaderMap::new();
        assert_eq!(
            classify(facts(&method, path, None, &headers, service, None)),
            Operation::Other(OtherCall {
                action: action.into(),
                may_change_policies,
                s3: None,
                stack: None,
            })
        );
    }

    #[test]
    fn s3_requests_carry_their_operation_and_bucket_writes_invalidate() {
        let headers = HeaderMap::new();
        let classified = |method: &Method, path: &str, query: Option<&str>| {
            classify(facts(method, path, query, &headers, Some("s3"), None))
        };
        let Operation::Other(put) = classified(&Method::PUT, "/bucket/key", None) else {
            panic!("an S3 request is another service's");
        };
        assert_eq!(put.action, "s3:PutObject");
        assert_eq!(
            put.s3.map(|c| c.resource()).as_deref(),
            Some("arn:aws:s3:::bucket/key")
        );
        assert!(!put.may_change_policies);
        let Operation::Other(policy) = classified(&Method::PUT, "/bucket", Some("policy")) else {
            panic!("an S3 request is another service's");
        };
        assert_eq!(policy.action, "s3:PutBucketPolicy");
        assert!(policy.may_change_policies);
        let Operation::Other(unknown) = classified(&Method::PUT, "/bucket", Some("website")) else {
            panic!("an S3 request is another service's");
        };
        assert_eq!((unknown.action.as_str(), unknown.s3), ("s3:unknown", None));
    }

    #[rstest]
    #[case::iam_read("iam", "Action=GetRole&RoleName=r", "iam:GetRole", false)]
    #[case::iam_list(
        "iam",
        "Action=ListRolePolicies&RoleName=r",
        "iam:ListRolePolicies",
        false
    )]
    #[case::iam_write("iam", "Action=PutRolePolicy&RoleName=r", "iam:PutRolePolicy", true)]
    #[case::iam_trust_update(
        "iam",
        "Action=UpdateAssumeRolePolicy",
        "iam:UpdateAssumeRolePolicy",
        true
    )]
    #[case::cloudformation_poll(
        "cloudformation",
        "Action=DescribeStacks",
        "cloudformation:DescribeStacks",
        false
    )]
    #[case::cloudformation_events(
        "cloudformation",
        "Action=DescribeStackEvents",
        "cloudformation:DescribeStackEvents",
        false
    )]
    #[case::cloudformation_template(
        "cloudformation",
        "Action=GetTemplate",
        "cloudformation:GetTemplate",
        false
    )]
    #[case::cloudformation_execute_changes_nothing_itself(
        "cloudformation",
        "Action=ExecuteChangeSet",
        "cloudformation:ExecuteChangeSet",
        false
    )]
    #[case::cloudformation_delete_changes_nothing_itself(
        "cloudformation",
        "Action=DeleteStack",
        "cloudformation:DeleteStack",
        false
    )]
    #[case::sts_identity(
        "sts",
        "Action=GetCallerIdentity&Version=2011-06-15",
        "sts:GetCallerIdentity",
        false
    )]
    #[case::ec2("ec2", "Action=CreateSecurityGroup", "ec2:CreateSecurityGroup", false)]
    fn query_operations(
        #[case] service: &str,
        #[case] body: &str,
        #[case] action: &str,
        #[case] may_change_policies: bool,
    ) {
        let headers = form_headers();
        assert_eq!(
            classify(facts(
                &Method::POST,
                "/",
                None,
                &headers,
                Some(service),
                Some(body.as_bytes())
            )),
            Operation::Other(OtherCall {
                action: action.into(),
                may_change_policies,
                s3: None,
                stack: None,
            })
        );
    }

    #[rstest]
    #[case::by_name(
        "Action=ExecuteChangeSet&StackName=s3callee&ChangeSetName=c1",
        Some("s3callee")
    )]
    #[case::by_arn(
        "Action=DescribeStacks&StackName=arn%3Aaws%3Acloudformation%3Aus-east-1%3A1%3Astack%2Fs%2Fid",
        Some("arn:aws:cloudformation:us-east-1:1:stack/s/id")
    )]
    #[case::none("Action=ValidateTemplate&TemplateBody=x", None)]
    fn cloudformation_requests_name_their_stack(#[case] body: &str, #[case] stack: Option<&str>) {
        let headers = form_headers();
        let Operation::Other(call) = classify(facts(
            &Method::POST,
            "/",
            None,
            &headers,
            Some("cloudformation"),
            Some(body.as_bytes()),
        )) else {
            panic!("a CloudFormation request is another service's");
        };
        assert_eq!(call.stack.as_deref(), stack);
    }

    #[test]
    fn json_protocol_names_the_target() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amz-target",
            HeaderValue::from_static("Logs_20140328.PutLogEvents"),
        );
        assert_eq!(
            classify(facts(
                &Method::POST,
                "/",
                None,
                &headers,
                Some("logs"),
                None
            )),
            Operation::Other(OtherCall {
                action: "logs:PutLogEvents".into(),
                may_change_policies: false,
                s3: None,
                stack: None,
            })
        );
    }

    #[rstest]
    #[case::get(
        Method::GET,
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3Afunction%3Aservicenow-alert",
        Some("lambda:GetFunction")
    )]
    #[case::get_slash(
        Method::GET,
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3Afunction%3Aservicenow-alert/",
        Some("lambda:GetFunction")
    )]
    #[case::configuration(
        Method::GET,
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3Afunction%3Aservicenow-alert/configuration",
        Some("lambda:GetFunctionConfiguration")
    )]
    #[case::code(
        Method::PUT,
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3Afunction%3Aservicenow-alert/code",
        Some("lambda:UpdateFunctionCode")
    )]
    #[case::add_permission(
        Method::POST,
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3Afunction%3Aservicenow-alert/policy",
        Some("lambda:AddPermission")
    )]
    #[case::remove_permission(
        Method::DELETE,
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3Afunction%3Aservicenow-alert/policy/sid-1",
        Some("lambda:RemovePermission")
    )]
    #[case::delete(
        Method::DELETE,
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3Afunction%3Aservicenow-alert",
        Some("lambda:DeleteFunction")
    )]
    #[case::list(Method::GET, "/2015-03-31/functions/", None)]
    #[case::create(Method::POST, "/2015-03-31/functions", None)]
    fn function_scoped_operations_are_evaluated_on_their_function(
        #[case] method: Method,
        #[case] path: &str,
        #[case] expected: Option<&str>,
    ) {
        let headers = HeaderMap::new();
        let op = classify(facts(&method, path, None, &headers, Some("lambda"), None));
        match (op, expected) {
            (Operation::Function(action, function), Some(expected)) => {
                assert_eq!(action, expected);
                assert_eq!(function.name, "servicenow-alert");
                assert_eq!(function.account.as_deref(), Some("111111111111"));
            }
            (Operation::Other(_), None) => {}
            (other, _) => panic!("{path}: {other:?}"),
        }
    }

    #[rstest]
    #[case::plain("f", "arn:aws:lambda:us-west-2:222222222222:function:f")]
    #[case::partial(
        "111111111111:function:f",
        "arn:aws:lambda:us-west-2:111111111111:function:f"
    )]
    #[case::full(
        "arn:aws:lambda:eu-west-1:111111111111:function:f:3",
        "arn:aws:lambda:eu-west-1:111111111111:function:f:3"
    )]
    fn function_arns(#[case] name: &str, #[case] arn: &str) {
        let function = FunctionRef::parse(name, None).expect("valid name");
        assert_eq!(function.arn("222222222222", "us-west-2"), arn);
    }

    #[rstest]
    #[case::empty("")]
    #[case::bad_account("12345:function:f")]
    #[case::not_lambda("arn:aws:s3:us-east-1:111111111111:function:f")]
    #[case::slash_in_name("a/b")]
    fn invalid_function_names(#[case] name: &str) {
        assert_eq!(FunctionRef::parse(name, None), None);
    }

    #[rstest]
    #[case::arn("arn%3Aaws%3Alambda", Some("arn:aws:lambda"))]
    #[case::plus_stays("a+b", Some("a+b"))]
    #[case::truncated_escape("a%3", None)]
    #[case::bad_hex("%zz", None)]
    fn percent_decoding(#[case] text: &str, #[case] expected: Option<&str>) {
        assert_eq!(percent_decode(text).as_deref(), expected);
    }
}
