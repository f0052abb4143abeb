//! Invokes the callee in the other account: either with the credentials of an assumed
//! cross-account role (assume-role mode) or with the function's own credentials (direct mode).

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_sdk_lambda::{primitives::Blob, types::InvocationType};
use lambda_runtime::LambdaEvent;
use serde_json::value::RawValue;
use tokio::sync::Mutex;
use tracing::{info, instrument, warn};

use crate::{
    aws,
    config::{AccessMode, Config, EXTERNAL_ID},
    error::{AwsFault, CalleeFault, CallerError},
};

/// Header carrying the X-Ray trace id; the callee (and the harness) read it to group one run.
const TRACE_ID_HEADER: &str = "x-amzn-trace-id";

/// A Lambda client signing with assumed-role credentials, and when those credentials expire.
struct AssumedSession {
    lambda: aws_sdk_lambda::Client,
    expires_at: SystemTime,
}

impl AssumedSession {
    fn usable_at(&self, now: SystemTime, margin: Duration) -> bool {
        now.checked_add(margin)
            .is_some_and(|deadline| deadline < self.expires_at)
    }
}

/// Where the Lambda client that invokes the callee gets its credentials.
enum Access {
    /// Credentials of `role_arn`, assumed with the function's own identity and cached.
    AssumeRole {
        role_arn: String,
        sts: aws_sdk_sts::Client,
        // A tokio mutex so that concurrent invocations wait for one AssumeRole instead of each
        // calling STS when the cache is empty or stale.
        session: Mutex<Option<AssumedSession>>,
    },
    /// The function's own credentials, which the SDK refreshes by itself: no STS call.
    Direct { lambda: aws_sdk_lambda::Client },
}

/// Invokes the callee across accounts, reusing assumed credentials across warm invocations.
pub struct Invoker {
    config: Config,
    base: SdkConfig,
    access: Access,
}

impl Invoker {
    /// Creates an invoker; `base` supplies endpoints, region, retry policy and the function's own
    /// identity, which calls STS in assume-role mode and invokes the callee in direct mode.
    pub fn new(config: Config, base: SdkConfig) -> Self {
        let access = match &config.target_role_arn {
            Some(role_arn) => Access::AssumeRole {
                role_arn: role_arn.clone(),
                sts: aws::sts_client(&base),
                session: Mutex::new(None),
            },
            None => Access::Direct {
                lambda: aws::own_lambda_client(&base),
            },
        };
        let mode = config.access_mode();
        info!(
            mode = %mode.as_str(),
            function = %config.target_function_arn,
            role = config.target_role_arn.as_deref().unwrap_or_default(),
            "invoker configured"
        );
        // An external id without a role usually means the deployment meant to assume a role but
        // lost TARGET_ROLE_ARN; say so rather than silently ignoring it.
        if mode == AccessMode::Direct && config.external_id.is_some() {
            warn!(
                variable = EXTERNAL_ID,
                "ignored in direct mode: no role is assumed"
            );
        }
        Self {
            config,
            base,
            access,
        }
    }

    /// Lambda handler: forwards the event payload to the callee with the invocation's trace id.
    ///
    /// A body that breaks the strict JSON rules ([`alert_payload::strict_json`]: duplicate
    /// keys, lone surrogate escapes, nesting over 32 levels) is refused here with the
    /// callee's own `ValidationError`, and not forwarded: the callee would refuse it, and
    /// the two hops never disagree on what the body says.
    #[instrument(skip_all, fields(request_id = %event.context.request_id))]
    pub async fn handle(
        &self,
        event: LambdaEvent<Box<RawValue>>,
    ) -> Result<Box<RawValue>, CallerError> {
        let trace_id = event.context.xray_trace_id.as_deref();
        let result = match alert_payload::strict_json::check(event.payload.get().as_bytes()) {
            Ok(()) => self.invoke(&event.payload, trace_id).await,
            Err(error) => Err(CallerError::Validation(error.to_string())),
        };
        if let Err(error) = &result {
            warn!(error_type = error.error_type(), error = %error, "invocation failed");
        }
        result
    }

    /// Invokes the callee synchronously with `payload` unchanged and returns its response unchanged.
    #[instrument(skip(self, payload), fields(function = %self.config.target_function_arn))]
    pub async fn invoke(
        &self,
        payload: &RawValue,
        trace_id: Option<&str>,
    ) -> Result<Box<RawValue>, CallerError> {
        let lambda = self.lambda_client().await?;
        let trace_id = trace_id.map(str::to_owned);
        let output = lambda
            .invoke()
            .function_name(&self.config.target_function_arn)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload.get().as_bytes()))
            .customize()
            .mutate_request(move |request| {
                let Some(trace_id) = &trace_id else { return };
                if request
                    .headers_mut()
                    .try_insert(TRACE_ID_HEADER, trace_id.clone())
                    .is_err()
                {
                    warn!(trace_id = %trace_id, "trace id is not a valid header value; not forwarded");
                }
            })
            .send()
            .await
            .map_err(|error| CallerError::from_invoke(AwsFault::from_sdk_error(&error)))?;

        let body = output.payload().map(Blob::as_ref).unwrap_or_default();
        if let Some(function_error) = output.function_error() {
            return Err(CallerError::CalleeFailed(CalleeFault::from_payload(
                function_error,
                body,
            )));
        }
        info!(status = output.status_code(), "callee answered");
        // Lambda answers `null` for a handler that returns nothing; an empty body means the same.
        let body = if body.is_empty() {
            b"null".as_slice()
        } else {
            body
        };
        serde_json::from_slice::<Box<RawValue>>(body).map_err(|error| {
            CallerError::InvokeFailed(AwsFault {
                code: None,
                message: format!("callee response is not json: {error}"),
            })
        })
    }

    /// Returns the Lambda client to invoke with: the function's own in direct mode, else the
    /// cached assumed-role one, assuming the role again when its credentials are near expiry.
    async fn lambda_client(&self) -> Result<aws_sdk_lambda::Client, CallerError> {
        let (role_arn, sts, session) = match &self.access {
            Access::Direct { lambda } => return Ok(lambda.clone()),
            Access::AssumeRole {
                role_arn,
                sts,
                session,
            } => (role_arn, sts, session),
        };
        let mut session = session.lock().await;
        let now = SystemTime::now();
        if let Some(cached) = session
            .as_ref()
            .filter(|s| s.usable_at(now, self.config.refresh_margin))
        {
            return Ok(cached.lambda.clone());
        }
        let fresh = self.assume_role(sts, role_arn).await?;
        let lambda = fresh.lambda.clone();
        *session = Some(fresh);
        Ok(lambda)
    }

    #[instrument(skip(self, sts), fields(role = %role_arn))]
    async fn assume_role(
        &self,
        sts: &aws_sdk_sts::Client,
        role_arn: &str,
    ) -> Result<AssumedSession, CallerError> {
        let output = sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(&self.config.role_session_name)
            .set_external_id(self.config.external_id.clone())
            .send()
            .await
            .map_err(|error| CallerError::from_assume_role(AwsFault::from_sdk_error(&error)))?;
        let Some(assumed) = output.credentials() else {
            return Err(CallerError::AssumeRoleFailed(AwsFault {
                code: None,
                message: "sts answered AssumeRole without credentials".to_owned(),
            }));
        };
        let expires_at = SystemTime::try_from(*assumed.expiration()).ok();
        // Only the key id's prefix is logged: it tells temporary (ASIA/LSIA) from long-term keys
        // without identifying the credentials.
        let key_prefix: String = assumed.access_key_id().chars().take(4).collect();
        info!(access_key_prefix = %key_prefix, expires_at = %assumed.expiration(), "assumed role");
        let credentials = Credentials::new(
            assumed.access_key_id(),
            assumed.secret_access_key(),
            Some(assumed.session_token().to_owned()),
            expires_at,
            "AssumeRole",
        );
        Ok(AssumedSession {
            lambda: aws::lambda_client(&self.base, credentials),
            // An unreadable expiry counts as already expired: used once, never cached.
            expires_at: expires_at.unwrap_or(SystemTime::UNIX_EPOCH),
        })
    }
}

#[cfg(test)]
mod tests {
    use aws_config::{BehaviorVersion, Region};
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_smithy_types::date_time::Format;
    use lambda_runtime::Context;
    use rstest::rstest;
    use wiremock::{
        Mock, MockBuilder, MockServer, ResponseTemplate,
        matchers::{body_string, body_string_contains, header, header_regex, method, path},
    };

    use super::*;
    use crate::config::RetryPolicy;

    const ROLE_ARN: &str = "arn:aws:iam::111111111111:role/servicenow-invoke";
    const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert";
    // The SDK percent-encodes the function ARN into the Invoke path.
    const INVOKE_PATH: &str = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3Afunction%3Aservicenow-alert/invocations";
    const ASSUMED_KEY_ID: &str = "ASIAASSUMEDKEY";
    const BASE_KEY_ID: &str = "222222222222";
    // Unsorted keys, odd spacing and a trailing-zero decimal: any re-serialisation would show.
    const ALERT_PAYLOAD: &str =
        r#"{"alert": {"number":"INC0012345", "severity": 1.50, "assignee":"Zoë"},"a":[3, 1]}"#;
    const CALLEE_RESPONSE: &str = r#"{"status":"sent", "messageId":"<m-1@callee>", "took": 1.0}"#;
    const STS_DENIAL: &str = "User: arn:aws:sts::222222222222:assumed-role/servicenow-invoker-exec/x is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111111111111:role/servicenow-invoke";
    const LAMBDA_DENIAL: &str = "User: arn:aws:sts::111111111111:assumed-role/servicenow-invoke/servicenow-invoker is not authorized to perform: lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert";

    const DIRECT_DENIAL: &str = "User: arn:aws:sts::222222222222:assumed-role/servicenow-invoker-exec/servicenow-invoker is not authorized to perform: lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert because no resource-based policy allows the lambda:InvokeFunction action";

    fn config(external_id: Option<&str>) -> Config {
        Config {
            target_role_arn: Some(ROLE_ARN.to_owned()),
            target_function_arn: FUNCTION_ARN.to_owned(),
            external_id: external_id.map(str::to_owned),
            role_session_name: "servicenow-invoker".to_owned(),
            retry: RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(1),
            },
            refresh_margin: Duration::from_secs(300),
        }
    }

    /// The SDK configuration the harness would give: every service at the mock's address.
    fn sdk_config(server: &MockServer, retry: &RetryPolicy) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(server.uri())
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                BASE_KEY_ID,
                "base-secret",
                None,
                None,
                "test",
            )))
            .retry_config(aws::retry_config(retry))
            .build()
    }

    fn invoker(server: &MockServer, config: Config) -> Invoker {
        let sdk_config = sdk_config(server, &config.retry);
        Invoker::new(config, sdk_config)
    }

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).expect("test payload is json")
    }

    fn assume_role_xml(valid_for: Duration) -> String {
        let expiration = aws_smithy_types::DateTime::from_secs(
            (SystemTime::now() + valid_for)
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_secs() as i64,
        )
        .fmt(Format::DateTime)
        .expect("formattable date");
        format!(
            r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>{ASSUMED_KEY_ID}</AccessKeyId>
      <SecretAccessKey>assumed-secret</SecretAccessKey>
      <SessionToken>assumed-session-token</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROAEXAMPLE:servicenow-invoker</AssumedRoleId>
      <Arn>arn:aws:sts::111111111111:assumed-role/servicenow-invoke/servicenow-invoker</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>sts-request-1</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#
        )
    }

    /// STS AssumeRole signed by the function's own (base) identity.
    fn assume_role_request() -> MockBuilder {
        Mock::given(method("POST"))
            .and(path("/"))
            .and(body_string_contains("Action=AssumeRole"))
            .and(header_regex(
                "authorization",
                &format!("Credential={BASE_KEY_ID}/"),
            ))
    }

    /// AssumeRole's answer: credentials valid for `valid_for`.
    fn role_granted(valid_for: Duration) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_raw(assume_role_xml(valid_for), "text/xml")
    }

    /// Lambda Invoke of the target function, signed with the assumed credentials.
    fn invoke_request() -> MockBuilder {
        Mock::given(method("POST"))
            .and(path(INVOKE_PATH))
            .and(header_regex(
                "authorization",
                &format!("Credential={ASSUMED_KEY_ID}/"),
            ))
    }

    /// Direct mode: no role to assume, the callee is invoked with the function's own identity.
    fn direct_config(external_id: Option<&str>) -> Config {
        Config {
            target_role_arn: None,
            ..config(external_id)
        }
    }

    /// Any STS call at all (STS's query protocol posts to `/`); direct mode must make none.
    fn any_sts_request() -> MockBuilder {
        Mock::given(method("POST")).and(path("/"))
    }

    /// Lambda Invoke of the target function, signed with the function's own (base) identity.
    fn own_identity_invoke_request() -> MockBuilder {
        Mock::given(method("POST"))
            .and(path(INVOKE_PATH))
            .and(header_regex(
                "authorization",
                &format!("Credential={BASE_KEY_ID}/"),
            ))
    }

    fn event(payload: &str, trace_id: Option<&str>) -> LambdaEvent<Box<RawValue>> {
        let mut context = Context::default();
        context.request_id = "caller-request-1".to_owned();
        context.xray_trace_id = trace_id.map(str::to_owned);
        LambdaEvent::new(raw(payload), context)
    }

    /// Bodies the callee refuses as strict JSON are refused here too, and never forwarded.
    #[rstest]
    #[case::duplicate_key(
        r#"{"alert": {"number": "INC0012345", "number": "INC0099999"}}"#,
        "invalid alert.number: appears twice"
    )]
    #[case::lone_surrogate(
        r#"{"alert": {"state": "\ud800"}}"#,
        "invalid alert.state: contains the escape \\ud800"
    )]
    #[case::deep_nesting(
        &format!("{{\"a\": {}{}}}", "[".repeat(40), "]".repeat(40)),
        "invalid a[0]"
    )]
    #[tokio::test]
    async fn strict_json_violation_is_a_validation_error_and_not_forwarded(
        #[case] body: &str,
        #[case] message: &str,
    ) {
        // Arrange: any request at all would fail the test when the mocks verify.
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(&server)
            .await;
        let invoker = invoker(&server, config(None));
        let mut context = Context::default();
        context.request_id = "caller-request-1".to_owned();
        let payload: Box<RawValue> = serde_json::from_str(body).expect("the runtime accepts it");

        // Act
        let err = invoker
            .handle(LambdaEvent::new(payload, context))
            .await
            .expect_err("refused");

        // Assert
        assert_eq!(err.error_type(), "ValidationError");
        assert!(err.to_string().starts_with(message), "{err}");
    }

    #[tokio::test]
    async fn payload_is_forwarded_and_response_returned_unchanged() {
        // Arrange
        let server = MockServer::start().await;
        assume_role_request()
            .and(body_string_contains("ExternalId=ext-42"))
            .and(body_string_contains("RoleSessionName=servicenow-invoker"))
            .and(body_string_contains(
                "RoleArn=arn%3Aaws%3Aiam%3A%3A111111111111%3Arole%2Fservicenow-invoke",
            ))
            .respond_with(role_granted(Duration::from_secs(3600)))
            .expect(1)
            .mount(&server)
            .await;
        invoke_request()
            .and(body_string(ALERT_PAYLOAD))
            .and(header("x-amz-invocation-type", "RequestResponse"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(CALLEE_RESPONSE, "application/json"),
            )
            .expect(1)
            .mount(&server)
            .await;
        let invoker = invoker(&server, config(Some("ext-42")));

        // Act
        let response = invoker.handle(event(ALERT_PAYLOAD, None)).await;

        // Assert
        let response = response.expect("callee response");
        assert_eq!(response.get(), CALLEE_RESPONSE);
    }

    #[tokio::test]
    async fn external_id_is_omitted_when_not_configured() {
        // Arrange
        let server = MockServer::start().await;
        assume_role_request()
            .respond_with(role_granted(Duration::from_secs(3600)))
            .expect(1)
            .mount(&server)
            .await;
        invoke_request()
            .respond_with(ResponseTemplate::new(200).set_body_raw("{}", "application/json"))
            .expect(1)
            .mount(&server)
            .await;
        let invoker = invoker(&server, config(None));

        // Act
        invoker
            .handle(event(ALERT_PAYLOAD, None))
            .await
            .expect("callee response");

        // Assert
        let requests = server.received_requests().await.expect("recording on");
        let sts_body = String::from_utf8_lossy(&requests[0].body).into_owned();
        assert!(
            sts_body.contains("Action=AssumeRole"),
            "first call is STS: {sts_body}"
        );
        assert!(
            !sts_body.contains("ExternalId"),
            "unexpected ExternalId in {sts_body}"
        );
    }

    #[tokio::test]
    async fn sts_access_denied_is_assume_role_denied_with_aws_message() {
        // Arrange
        let server = MockServer::start().await;
        let denial = format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{STS_DENIAL}</Message></Error><RequestId>sts-request-2</RequestId></ErrorResponse>"
        );
        Mock::given(method("POST"))
            .and(body_string_contains("Action=AssumeRole"))
            .respond_with(ResponseTemplate::new(403).set_body_raw(denial, "text/xml"))
            .expect(1)
            .mount(&server)
            .await;
        invoke_request()
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let invoker = invoker(&server, config(None));

        // Act
        let error = invoker
            .handle(event(ALERT_PAYLOAD, None))
            .await
            .expect_err("assume role must fail");

        // Assert
        assert_eq!(error.error_type(), "AssumeRoleDenied");
        assert_eq!(error.to_string(), format!("AccessDenied: {STS_DENIAL}"));
    }

    #[rstest]
    #[case::access_denied_is_invoke_denied(
        403,
        "AccessDeniedException",
        LAMBDA_DENIAL,
        "InvokeDenied"
    )]
    #[case::missing_function_is_target_not_found(
        404,
        "ResourceNotFoundException",
        "Function not found: arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert",
        "TargetNotFound"
    )]
    #[case::oversized_payload_is_invoke_failed(
        413,
        "RequestTooLargeException",
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
        "InvokeFailed"
    )]
    #[tokio::test]
    async fn lambda_errors_keep_aws_code_and_message(
        #[case] status: u16,
        #[case] code: &str,
        #[case] message: &str,
        #[case] expected_type: &str,
    ) {
        // Arrange
        let server = MockServer::start().await;
        assume_role_request()
            .respond_with(role_granted(Duration::from_secs(3600)))
            .expect(1)
            .mount(&server)
            .await;
        invoke_request()
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("x-amzn-errortype", code)
                    .set_body_raw(
                        serde_json::json!({"Type": "User", "Message": message}).to_string(),
                        "application/json",
                    ),
            )
            .expect(1)
            .mount(&server)
            .await;
        let invoker = invoker(&server, config(None));

        // Act
        let error = invoker
            .handle(event(ALERT_PAYLOAD, None))
            .await
            .expect_err("invoke must fail");

        // Assert
        assert_eq!(error.error_type(), expected_type);
        assert_eq!(error.to_string(), format!("{code}: {message}"));
    }

    #[tokio::test]
    async fn callee_function_error_is_callee_failed_with_its_type_and_message() {
        // Arrange
        let server = MockServer::start().await;
        assume_role_request()
            .respond_with(role_granted(Duration::from_secs(3600)))
            .expect(1)
            .mount(&server)
            .await;
        invoke_request()
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("x-amz-function-error", "Unhandled")
                    .set_body_raw(
                        r#"{"errorType":"ValidationError","errorMessage":"alert.number is required"}"#,
                        "application/json",
                    ),
            )
            .expect(1)
            .mount(&server)
            .await;
        let invoker = invoker(&server, config(None));

        // Act
        let error = invoker
            .handle(event(r#"{"alert":{}}"#, None))
            .await
            .expect_err("callee error must surface");

        // Assert
        assert_eq!(
            error,
            CallerError::CalleeFailed(CalleeFault {
                error_type: "ValidationError".to_owned(),
                error_message: "alert.number is required".to_owned(),
            })
        );
        assert_eq!(
            error.to_string(),
            "ValidationError: alert.number is required"
        );
    }

    #[rstest]
    #[case::no_retry_when_one_attempt_is_configured(1)]
    #[case::default_three_attempts(3)]
    #[tokio::test]
    async fn throttling_is_retried_then_reported_as_throttled(#[case] attempts: u32) {
        // Arrange
        let server = MockServer::start().await;
        assume_role_request()
            .respond_with(role_granted(Duration::from_secs(3600)))
            .expect(1)
            .mount(&server)
            .await;
        invoke_request()
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("x-amzn-errortype", "TooManyRequestsException")
                    .set_body_raw(
                        r#"{"Type":"User","message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}"#,
                        "application/json",
                    ),
            )
            .expect(u64::from(attempts))
            .mount(&server)
            .await;
        let mut config = config(None);
        config.retry.max_attempts = attempts;
        let invoker = invoker(&server, config);

        // Act
        let error = invoker
            .handle(event(ALERT_PAYLOAD, None))
            .await
            .expect_err("throttling must surface");

        // Assert
        assert_eq!(error.error_type(), "Throttled");
        assert_eq!(
            error.to_string(),
            "TooManyRequestsException: Rate Exceeded."
        );
    }

    #[tokio::test]
    async fn assumed_credentials_are_reused_while_fresh() {
        // Arrange
        let server = MockServer::start().await;
        assume_role_request()
            .respond_with(role_granted(Duration::from_secs(3600)))
            .expect(1)
            .mount(&server)
            .await;
        invoke_request()
            .respond_with(ResponseTemplate::new(200).set_body_raw("{}", "application/json"))
            .expect(2)
            .mount(&server)
            .await;
        let invoker = invoker(&server, config(None));

        // Act
        let first = invoker.handle(event(ALERT_PAYLOAD, None)).await;
        let second = invoker.handle(event(ALERT_PAYLOAD, None)).await;

        // Assert
        assert!(first.is_ok(), "first invocation: {first:?}");
        assert!(second.is_ok(), "second invocation: {second:?}");
    }

    #[tokio::test]
    async fn credentials_inside_the_refresh_margin_are_assumed_again() {
        // Arrange: ten minutes left is inside a fifteen-minute margin.
        let server = MockServer::start().await;
        assume_role_request()
            .respond_with(role_granted(Duration::from_secs(600)))
            .expect(2)
            .mount(&server)
            .await;
        invoke_request()
            .respond_with(ResponseTemplate::new(200).set_body_raw("{}", "application/json"))
            .expect(2)
            .mount(&server)
            .await;
        let mut config = config(None);
        config.refresh_margin = Duration::from_secs(900);
        let invoker = invoker(&server, config);

        // Act
        let first = invoker.handle(event(ALERT_PAYLOAD, None)).await;
        let second = invoker.handle(event(ALERT_PAYLOAD, None)).await;

        // Assert
        assert!(first.is_ok(), "first invocation: {first:?}");
        assert!(second.is_ok(), "second invocation: {second:?}");
    }

    #[tokio::test]
    async fn trace_id_of_the_invocation_is_forwarded_to_the_callee() {
        // Arrange
        let trace_id = "Root=1-65f2a1b3-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1";
        let server = MockServer::start().await;
        assume_role_request()
            .respond_with(role_granted(Duration::from_secs(3600)))
            .expect(1)
            .mount(&server)
            .await;
        invoke_request()
            .and(header("x-amzn-trace-id", trace_id))
            .respond_with(ResponseTemplate::new(200).set_body_raw("{}", "application/json"))
            .expect(1)
            .mount(&server)
            .await;
        let invoker = invoker(&server, config(None));

        // Act
        let response = invoker.handle(event(ALERT_PAYLOAD, Some(trace_id))).await;

        // Assert
        assert!(response.is_ok(), "invocation: {response:?}");
    }

    #[tokio::test]
    async fn no_trace_header_is_invented_without_a_trace_id() {
        // Arrange
        let server = MockServer::start().await;
        assume_role_request()
            .respond_with(role_granted(Duration::from_secs(3600)))
            .expect(1)
            .mount(&server)
            .await;
        invoke_request()
            .respond_with(ResponseTemplate::new(200).set_body_raw("{}", "application/json"))
            .expect(1)
            .mount(&server)
            .await;
        let invoker = invoker(&server, config(None));

        // Act
        invoker
            .handle(event(ALERT_PAYLOAD, None))
            .await
            .expect("callee response");

        // Assert
        let requests = server.received_requests().await.expect("recording on");
        let invoke = requests
            .iter()
            .find(|r| r.url.path() == INVOKE_PATH)
            .expect("invoke request recorded");
        assert!(!invoke.headers.contains_key("x-amzn-trace-id"));
    }

    #[rstest]
    #[case::without_external_id(None)]
    #[case::leftover_external_id_is_ignored(Some("ext-42"))]
    #[tokio::test]
    async fn direct_mode_invokes_with_own_credentials_and_never_calls_sts(
        #[case] external_id: Option<&str>,
    ) {
        // Arrange
        let server = MockServer::start().await;
        any_sts_request()
            .respond_with(role_granted(Duration::from_secs(3600)))
            .expect(0)
            .mount(&server)
            .await;
        own_identity_invoke_request()
            .and(body_string(ALERT_PAYLOAD))
            .and(header("x-amz-invocation-type", "RequestResponse"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(CALLEE_RESPONSE, "application/json"),
            )
            .expect(2)
            .mount(&server)
            .await;
        let invoker = invoker(&server, direct_config(external_id));

        // Act: twice, so a warm invocation must not start calling STS either.
        let first = invoker.handle(event(ALERT_PAYLOAD, None)).await;
        let second = invoker.handle(event(ALERT_PAYLOAD, None)).await;

        // Assert
        assert_eq!(first.expect("first callee response").get(), CALLEE_RESPONSE);
        assert_eq!(
            second.expect("second callee response").get(),
            CALLEE_RESPONSE
        );
    }

    #[tokio::test]
    async fn direct_mode_access_denied_is_invoke_denied_with_aws_message() {
        // Arrange
        let server = MockServer::start().await;
        any_sts_request()
            .respond_with(role_granted(Duration::from_secs(3600)))
            .expect(0)
            .mount(&server)
            .await;
        own_identity_invoke_request()
            .respond_with(
                ResponseTemplate::new(403)
                    .insert_header("x-amzn-errortype", "AccessDeniedException")
                    .set_body_raw(
                        serde_json::json!({"Type": "User", "Message": DIRECT_DENIAL}).to_string(),
                        "application/json",
                    ),
            )
            .expect(1)
            .mount(&server)
            .await;
        let invoker = invoker(&server, direct_config(None));

        // Act
        let error = invoker
            .handle(event(ALERT_PAYLOAD, None))
            .await
            .expect_err("invoke must be denied");

        // Assert
        assert_eq!(
            error,
            CallerError::InvokeDenied(AwsFault {
                code: Some("AccessDeniedException".to_owned()),
                message: DIRECT_DENIAL.to_owned(),
            })
        );
        assert_eq!(error.error_type(), "InvokeDenied");
        assert_eq!(
            error.to_string(),
            format!("AccessDeniedException: {DIRECT_DENIAL}")
        );
    }

    #[tokio::test]
    async fn direct_mode_forwards_the_trace_id_to_the_callee() {
        // Arrange
        let trace_id = "Root=1-65f2a1b3-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1";
        let server = MockServer::start().await;
        any_sts_request()
            .respond_with(role_granted(Duration::from_secs(3600)))
            .expect(0)
            .mount(&server)
            .await;
        own_identity_invoke_request()
            .and(header("x-amzn-trace-id", trace_id))
            .respond_with(ResponseTemplate::new(200).set_body_raw("{}", "application/json"))
            .expect(1)
            .mount(&server)
            .await;
        let invoker = invoker(&server, direct_config(None));

        // Act
        let response = invoker.handle(event(ALERT_PAYLOAD, Some(trace_id))).await;

        // Assert
        assert!(response.is_ok(), "invocation: {response:?}");
    }
}
