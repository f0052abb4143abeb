//! Error responses in the exact shapes AWS's STS (awsQuery XML) and Lambda
//! (REST-JSON) return, so SDKs parse the gateway's denials like AWS's own.

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
