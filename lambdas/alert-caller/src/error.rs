//! Errors of the invoker and their stable Lambda `errorType`s.
//!
//! The `errorMessage` formats are a contract (scenario files match on them):
//! - AWS errors: `<AWS error code>: <AWS message>` (just the code when AWS sent no message, and
//!   the SDK's error chain when there was no AWS response at all, e.g. a connection failure);
//! - callee function errors: `<callee errorType>: <callee errorMessage>`;
//! - bodies the strict JSON rules refuse (`ValidationError`): the callee's own message, e.g.
//!   `invalid alert.number: appears twice in one object; ...`;
//! - configuration errors: a lowercase sentence naming the environment variable.

use std::fmt;

use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata};
use lambda_runtime::Diagnostic;
use serde::Deserialize;

/// A configuration problem found while reading the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required environment variable is unset or empty.
    #[error("environment variable {name} is not set; the caller cannot run without it")]
    Missing {
        /// The variable's name.
        name: &'static str,
    },
    /// An environment variable holds a value that cannot be used.
    #[error("environment variable {name}={value:?} is invalid: expected {expected}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// The value found.
        value: String,
        /// What the value should look like.
        expected: &'static str,
    },
}

impl ConfigError {
    /// The environment variable at fault.
    pub fn variable(&self) -> &'static str {
        match self {
            Self::Missing { name } | Self::Invalid { name, .. } => name,
        }
    }
}

/// An error reported by AWS (or by the SDK when no AWS answer arrived), keeping AWS's own text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFault {
    /// AWS's error code, e.g. `AccessDenied`; `None` when no service response was received.
    pub code: Option<String>,
    /// AWS's error message, or the SDK's error chain when there is no code.
    pub message: String,
}

impl AwsFault {
    /// Extracts AWS's code and message from an SDK error.
    pub fn from_sdk_error<E>(error: &E) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error,
    {
        match error.code() {
            Some(code) => Self {
                code: Some(code.to_owned()),
                message: error.message().unwrap_or_default().to_owned(),
            },
            None => Self {
                code: None,
                message: DisplayErrorContext(error).to_string(),
            },
        }
    }
}

impl fmt::Display for AwsFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, self.message.is_empty()) {
            (Some(code), false) => write!(f, "{code}: {}", self.message),
            (Some(code), true) => f.write_str(code),
            (None, _) => f.write_str(&self.message),
        }
    }
}

/// The `errorType` of an STS `AccessDenied` on AssumeRole.
pub const ASSUME_ROLE_DENIED: &str = "AssumeRoleDenied";
/// The `errorType` of a Lambda `AccessDeniedException` on Invoke.
pub const INVOKE_DENIED: &str = "InvokeDenied";
/// The `errorType`s that mean AWS denied access somewhere in the chain.
pub const DENIAL_ERROR_TYPES: [&str; 2] = [ASSUME_ROLE_DENIED, INVOKE_DENIED];

/// Everything that can make an invocation of the invoker fail; each variant is one `errorType`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallerError {
    /// The environment is incomplete or invalid (`ConfigError`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// STS refused AssumeRole with `AccessDenied` (`AssumeRoleDenied`).
    #[error("{0}")]
    AssumeRoleDenied(AwsFault),
    /// AssumeRole failed for any other reason (`AssumeRoleFailed`).
    #[error("{0}")]
    AssumeRoleFailed(AwsFault),
    /// Lambda refused Invoke with `AccessDeniedException` (`InvokeDenied`).
    #[error("{0}")]
    InvokeDenied(AwsFault),
    /// The callee function does not exist (`TargetNotFound`).
    #[error("{0}")]
    TargetNotFound(AwsFault),
    /// Lambda kept answering `TooManyRequestsException` after every retry (`Throttled`).
    #[error("{0}")]
    Throttled(AwsFault),
    /// Invoke failed for any other reason, including payloads Lambda rejects (`InvokeFailed`).
    #[error("{0}")]
    InvokeFailed(AwsFault),
    /// The callee ran and returned a function error (`CalleeFailed`).
    #[error("{0}")]
    CalleeFailed(CalleeFault),
    /// The body breaks the strict JSON rules the callee applies, so it is not forwarded
    /// (`ValidationError`, with the callee's own message naming the JSON path).
    #[error("{0}")]
    Validation(String),
}

impl CallerError {
    /// The stable Lambda `errorType` of this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Config(_) => "ConfigError",
            Self::AssumeRoleDenied(_) => ASSUME_ROLE_DENIED,
            Self::AssumeRoleFailed(_) => "AssumeRoleFailed",
            Self::InvokeDenied(_) => INVOKE_DENIED,
            Self::TargetNotFound(_) => "TargetNotFound",
            Self::Throttled(_) => "Throttled",
            Self::InvokeFailed(_) => "InvokeFailed",
            Self::CalleeFailed(_) => "CalleeFailed",
            Self::Validation(_) => "ValidationError",
        }
    }

    /// Classifies a failed STS AssumeRole call.
    pub fn from_assume_role(fault: AwsFault) -> Self {
        match fault.code.as_deref() {
            Some("AccessDenied") => Self::AssumeRoleDenied(fault),
            _ => Self::AssumeRoleFailed(fault),
        }
    }

    /// Classifies a failed Lambda Invoke call.
    pub fn from_invoke(fault: AwsFault) -> Self {
        match fault.code.as_deref() {
            Some("AccessDeniedException") => Self::InvokeDenied(fault),
            Some("ResourceNotFoundException") => Self::TargetNotFound(fault),
            Some("TooManyRequestsException") => Self::Throttled(fault),
            _ => Self::InvokeFailed(fault),
        }
    }
}

impl From<CallerError> for Diagnostic {
    fn from(error: CallerError) -> Self {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// The function error the callee returned, as its own `errorType` and `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalleeFault {
    /// The callee's `errorType`, e.g. `ValidationError`.
    pub error_type: String,
    /// The callee's `errorMessage`.
    pub error_message: String,
}

impl CalleeFault {
    /// Reads the callee's error payload, falling back to the `X-Amz-Function-Error` value and
    /// the raw body when the payload is not the usual `{"errorType","errorMessage"}` object.
    pub fn from_payload(function_error: &str, payload: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct ErrorPayload {
            #[serde(rename = "errorType")]
            error_type: Option<String>,
            #[serde(rename = "errorMessage")]
            error_message: Option<String>,
        }

        match serde_json::from_slice::<ErrorPayload>(payload) {
            Ok(parsed) => Self {
                error_type: parsed
                    .error_type
                    .unwrap_or_else(|| function_error.to_owned()),
                error_message: parsed.error_message.unwrap_or_default(),
            },
            Err(_) => Self {
                error_type: function_error.to_owned(),
                error_message: String::from_utf8_lossy(payload).into_owned(),
            },
        }
    }
}

impl fmt::Display for CalleeFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.error_message)
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn fault(code: &str, message: &str) -> AwsFault {
        AwsFault {
            code: Some(code.to_owned()),
            message: message.to_owned(),
        }
    }

    #[rstest]
    #[case::access_denied_is_a_denial("AccessDenied", "AssumeRoleDenied")]
    #[case::invalid_role_is_a_failure("ValidationError", "AssumeRoleFailed")]
    #[case::lambda_style_denial_is_not_sts_denial("AccessDeniedException", "AssumeRoleFailed")]
    #[case::expired_caller_token_is_a_failure("ExpiredToken", "AssumeRoleFailed")]
    fn assume_role_errors_are_classified_by_aws_code(#[case] code: &str, #[case] expected: &str) {
        let error = CallerError::from_assume_role(fault(code, "aws said no"));

        assert_eq!(error.error_type(), expected);
        assert_eq!(error.to_string(), format!("{code}: aws said no"));
    }

    #[rstest]
    #[case::access_denied_exception_is_a_denial("AccessDeniedException", "InvokeDenied")]
    #[case::missing_function_is_target_not_found("ResourceNotFoundException", "TargetNotFound")]
    #[case::too_many_requests_is_throttled("TooManyRequestsException", "Throttled")]
    #[case::oversized_payload_is_an_invoke_failure("RequestTooLargeException", "InvokeFailed")]
    #[case::invalid_json_is_an_invoke_failure("InvalidRequestContentException", "InvokeFailed")]
    #[case::sts_style_denial_is_not_lambda_denial("AccessDenied", "InvokeFailed")]
    fn invoke_errors_are_classified_by_aws_code(#[case] code: &str, #[case] expected: &str) {
        let error = CallerError::from_invoke(fault(code, "aws said no"));

        assert_eq!(error.error_type(), expected);
        assert_eq!(error.to_string(), format!("{code}: aws said no"));
    }

    #[test]
    fn fault_without_aws_code_is_an_invoke_failure_showing_the_sdk_text() {
        let error = CallerError::from_invoke(AwsFault {
            code: None,
            message: "dispatch failure: connection refused".to_owned(),
        });

        assert_eq!(error.error_type(), "InvokeFailed");
        assert_eq!(error.to_string(), "dispatch failure: connection refused");
    }

    #[test]
    fn fault_without_aws_message_shows_only_the_code() {
        assert_eq!(fault("AccessDenied", "").to_string(), "AccessDenied");
    }

    #[test]
    fn callee_error_payload_keeps_type_and_message() {
        let payload =
            br#"{"errorType":"ValidationError","errorMessage":"alert.number is required"}"#;

        let callee = CalleeFault::from_payload("Unhandled", payload);

        assert_eq!(callee.error_type, "ValidationError");
        assert_eq!(callee.error_message, "alert.number is required");
        assert_eq!(
            CallerError::CalleeFailed(callee).to_string(),
            "ValidationError: alert.number is required"
        );
    }

    #[test]
    fn callee_error_that_is_not_json_falls_back_to_the_function_error_header() {
        let callee = CalleeFault::from_payload("Unhandled", b"segfault");

        assert_eq!(
            callee,
            CalleeFault {
                error_type: "Unhandled".to_owned(),
                error_message: "segfault".to_owned(),
            }
        );
    }

    #[test]
    fn diagnostic_carries_error_type_and_message() {
        let error = CallerError::Config(ConfigError::Missing {
            name: "TARGET_FUNCTION_ARN",
        });

        let diagnostic = Diagnostic::from(error);

        assert_eq!(diagnostic.error_type, "ConfigError");
        assert!(diagnostic.error_message.contains("TARGET_FUNCTION_ARN"));
    }
}
