//! Error responses in the exact shapes AWS's services return, so SDKs parse
//! the gateway's denials like AWS's own: awsQuery XML (STS, IAM,
//! CloudFormation), EC2's XML, REST-JSON (Lambda), awsJson (KMS, Logs) and
//! S3's XML.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{Response, StatusCode, header::HeaderValue};

/// The body type every gateway response uses.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Wraps bytes as a [`ProxyBody`].
pub fn full_body(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A plain-text answer of the gateway's own routes (not an AWS error).
pub(crate) fn plain(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut response = Response::new(full_body(text.to_owned()));
    *response.status_mut() = status;
    response
}

/// Escapes text for an XML element.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// STS's error document: `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
pub fn sts_error_body(status: StatusCode, code: &str, message: &str, request_id: &str) -> String {
    let kind = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        xml_escape(code),
        xml_escape(message),
        xml_escape(request_id)
    )
}

/// An STS error response: status, `text/xml`, `x-amzn-RequestId`.
pub fn sts_error(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
) -> Response<ProxyBody> {
    let body = sts_error_body(status, code, message, request_id);
    respond(status, "text/xml", None, request_id, body)
}

/// Lambda's error document: `{"Type":"User","Message":...}` (`Service` for 5xx).
pub fn lambda_error_body(status: StatusCode, message: &str) -> String {
    let kind = if status.is_server_error() {
        "Service"
    } else {
        "User"
    };
    serde_json::json!({"Type": kind, "Message": message}).to_string()
}

/// A Lambda error response: status, `application/json`, `x-amzn-errortype`, `x-amzn-RequestId`.
pub fn lambda_error(
    status: StatusCode,
    error_type: &str,
    message: &str,
    request_id: &str,
) -> Response<ProxyBody> {
    let body = lambda_error_body(status, message);
    respond(
        status,
        "application/json",
        Some(error_type),
        request_id,
        body,
    )
}

/// Whose error shape an answer takes: the protocol of the service the request is routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// awsQuery XML, as STS, IAM and CloudFormation answer.
    Query,
    /// EC2's own XML, `<Response><Errors><Error>`.
    Ec2,
    /// REST-JSON, as Lambda answers.
    Lambda,
    /// awsJson 1.1, as KMS and CloudWatch Logs answer.
    Json,
    /// S3's XML, `<Error><Code/><Message/></Error>`.
    S3,
}

impl ErrorShape {
    /// The shape of the service a request is signed for (`None`: unsigned, awsQuery).
    pub fn of_service(service: Option<&str>) -> Self {
        match service {
            Some("lambda") => Self::Lambda,
            Some("kms" | "logs") => Self::Json,
            Some("s3") => Self::S3,
            Some("ec2") => Self::Ec2,
            _ => Self::Query,
        }
    }

    /// An access denial's status in this shape: awsJson services (KMS, Logs)
    /// answer 400, the others 403.
    pub fn access_denied_status(self) -> StatusCode {
        match self {
            Self::Json => StatusCode::BAD_REQUEST,
            _ => StatusCode::FORBIDDEN,
        }
    }

    /// An access denial's code in this shape.
    pub fn access_denied_code(self) -> &'static str {
        match self {
            Self::Lambda | Self::Json => "AccessDeniedException",
            Self::Query | Self::S3 => "AccessDenied",
            Self::Ec2 => "UnauthorizedOperation",
        }
    }
}

/// Why a request's authentication failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No signature at all.
    Missing,
    /// A malformed or partial signature; the text says what.
    Incomplete(String),
    /// An access key the gateway never issued.
    UnknownKey,
    /// A known key whose session token is missing or another's.
    WrongToken,
    /// The signature does not match.
    Mismatch,
    /// `X-Amz-Date` beyond 15 minutes of now.
    Skewed {
        /// The request's date.
        amz_date: String,
        /// Now.
        now: String,
        /// Whether the request claims a future time.
        future: bool,
    },
    /// A presigned URL past its expiry.
    PresignExpired,
    /// Temporary credentials past their expiry.
    ExpiredToken,
    /// `x-amz-content-sha256` that is not the body's hash.
    ContentHashMismatch,
}

const BAD_TOKEN: &str = "The security token included in the request is invalid.";
const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const EXPIRED_TOKEN: &str = "The security token included in the request is expired";

/// AWS's status, code and message for an authentication failure, in `shape`.
///
/// From the services' "Common Errors" references: awsQuery services answer
/// `IncompleteSignature` with 400 and the rest with 403; Lambda answers all of
/// them with 403 and awsJson services with 400, in their `...Exception`
/// spellings; S3 and EC2 have their own codes (`InvalidAccessKeyId`,
/// `RequestTimeTooSkewed`, `AuthFailure`, `RequestExpired`).
pub fn auth_failure(
    shape: ErrorShape,
    failure: &AuthFailure,
) -> (StatusCode, &'static str, String) {
    use AuthFailure as F;
    use ErrorShape as S;
    let skew_message = |amz_date: &str, now: &str, future: bool| {
        if future {
            format!("Signature not yet current: {amz_date} is still later than {now} + 15 min.")
        } else {
            format!("Signature expired: {amz_date} is now earlier than {now} - 15 min.")
        }
    };
    let (status, code, message): (u16, &'static str, String) = match (shape, failure) {
        (S::S3, F::Missing) => (403, "AccessDenied", "Access Denied".into()),
        (S::S3, F::Incomplete(what)) => (400, "AuthorizationHeaderMalformed", what.clone()),
        (S::S3, F::UnknownKey) => (403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.".into()),
        (S::S3, F::WrongToken) => (400, "InvalidToken", "The provided token is malformed or otherwise invalid.".into()),
        (S::S3, F::Mismatch) => (403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.".into()),
        (S::S3, F::Skewed { .. }) => (403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.".into()),
        (S::S3, F::PresignExpired) => (403, "AccessDenied", "Request has expired".into()),
        (S::S3, F::ExpiredToken) => (400, "ExpiredToken", "The provided token has expired.".into()),
        (S::S3, F::ContentHashMismatch) => (400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.".into()),
        (S::Ec2, F::Missing) => (401, "MissingAuthenticationToken", "Request is missing Authentication Token".into()),
        (S::Ec2, F::Incomplete(what)) => (400, "IncompleteSignature", what.clone()),
        (S::Ec2, F::UnknownKey | F::WrongToken | F::Mismatch | F::ContentHashMismatch) => (401, "AuthFailure", "AWS was not able to validate the provided access credentials".into()),
        (S::Ec2, F::Skewed { .. } | F::PresignExpired) => (400, "RequestExpired", "Request has expired.".into()),
        (S::Ec2, F::ExpiredToken) => (400, "RequestExpired", "Request has expired.".into()),
        (shape, failure) => {
            let json = matches!(shape, S::Lambda | S::Json);
            let status = match shape {
                S::Json => 400,
                S::Lambda => 403,
                _ if matches!(failure, F::Incomplete(_)) => 400,
                _ => 403,
            };
            let (code, json_code, message) = match failure {
                F::Missing => ("MissingAuthenticationToken", "MissingAuthenticationTokenException", "Request is missing Authentication Token".to_owned()),
                F::Incomplete(what) => ("IncompleteSignature", "IncompleteSignatureException", what.clone()),
                F::UnknownKey | F::WrongToken => ("InvalidClientTokenId", "UnrecognizedClientException", BAD_TOKEN.to_owned()),
                F::Mismatch | F::ContentHashMismatch => ("SignatureDoesNotMatch", "InvalidSignatureException", MISMATCH.to_owned()),
                F::Skewed { amz_date, now, future } => ("SignatureDoesNotMatch", "InvalidSignatureException", skew_message(amz_date, now, *future)),
                F::PresignExpired => ("SignatureDoesNotMatch", "InvalidSignatureException", "Signature expired: the presigned URL is past its X-Amz-Expires.".to_owned()),
                F::ExpiredToken => ("ExpiredToken", "ExpiredTokenException", EXPIRED_TOKEN.to_owned()),
            };
            (status, if json { json_code } else { code }, message)
        }
    };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
        code,
        message,
    )
}

/// An error answer in `shape`.
pub fn error_response(
    shape: ErrorShape,
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
) -> Response<ProxyBody> {
    match shape {
        ErrorShape::Query => sts_error(status, code, message, request_id),
        ErrorShape::Lambda => lambda_error(status, code, message, request_id),
        ErrorShape::Json => {
            let body = serde_json::json!({"__type": code, "message": message}).to_string();
            respond(
                status,
                "application/x-amz-json-1.1",
                Some(code),
                request_id,
                body,
            )
        }
        ErrorShape::S3 => {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId></Error>",
                xml_escape(code),
                xml_escape(message),
                xml_escape(request_id)
            );
            respond(status, "application/xml", None, request_id, body)
        }
        ErrorShape::Ec2 => {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
                xml_escape(code),
                xml_escape(message),
                xml_escape(request_id)
            );
            respond(status, "text/xml", None, request_id, body)
        }
    }
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    error_type: Option<&str>,
    request_id: &str,
    body: String,
) -> Response<ProxyBody> {
    let mut response = Response::new(full_body(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    if let Some(error_type) = error_type.and_then(|t| HeaderValue::from_str(t).ok()) {
        headers.insert("x-amzn-errortype", error_type);
    }
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{element_texts, find};

    #[test]
    fn sts_access_denied_parses_back_with_escaped_message() {
        let message = "User: arn:aws:sts::222222222222:assumed-role/a&b/<s> is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111111111111:role/r";
        let xml = sts_error_body(StatusCode::FORBIDDEN, "AccessDenied", message, "req-1");
        assert!(
            !xml.contains("a&b/<s>"),
            "raw markup must be escaped: {xml}"
        );
        let parsed = element_texts(&xml).expect("well-formed xml");
        assert_eq!(find(&parsed, "ErrorResponse/Error/Type"), Some("Sender"));
        assert_eq!(
            find(&parsed, "ErrorResponse/Error/Code"),
            Some("AccessDenied")
        );
        assert_eq!(find(&parsed, "ErrorResponse/Error/Message"), Some(message));
        assert_eq!(find(&parsed, "ErrorResponse/RequestId"), Some("req-1"));
        assert!(xml.starts_with(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>"
        ));
    }

    #[test]
    fn sts_server_errors_are_receiver_faults() {
        let parsed = element_texts(&sts_error_body(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "x",
            "r",
        ))
        .expect("well-formed xml");
        assert_eq!(find(&parsed, "ErrorResponse/Error/Type"), Some("Receiver"));
    }

    #[test]
    fn sts_response_headers() {
        let response = sts_error(StatusCode::FORBIDDEN, "AccessDenied", "m", "req-2");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()["content-type"], "text/xml");
        assert_eq!(response.headers()["x-amzn-requestid"], "req-2");
        assert!(response.headers().get("x-amzn-errortype").is_none());
    }

    #[test]
    fn lambda_access_denied_shape() {
        let message = "User: arn:aws:iam::333333333333:root is not authorized to perform: lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:111111111111:function:f because no resource-based policy allows the lambda:InvokeFunction action";
        let response = lambda_error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            message,
            "req-3",
        );
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "AccessDeniedException"
        );
        assert_eq!(response.headers()["x-amzn-requestid"], "req-3");
        let body: serde_json::Value =
            serde_json::from_str(&lambda_error_body(StatusCode::FORBIDDEN, message)).expect("json");
        assert_eq!(
            body,
            serde_json::json!({"Type": "User", "Message": message})
        );
    }

    #[test]
    fn lambda_server_errors_are_service_faults() {
        let body: serde_json::Value = serde_json::from_str(&lambda_error_body(
            StatusCode::INTERNAL_SERVER_ERROR,
            "\"quoted\"",
        ))
        .expect("json");
        assert_eq!(body["Type"], "Service");
        assert_eq!(body["Message"], "\"quoted\"");
    }
}
