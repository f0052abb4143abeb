//! The project's own cross-account flow, as the IAM gateway will ask it:
//! B's invoker session assumes A's cross-account role, then that role's
//! session invokes A's alerting function.

use iam_policy::{
    DecisionReason, NamedPolicy, PolicyError, PolicyKind, Principal, Request,
    authorize_assume_role, authorize_invoke,
};

const ROLE: &str = "arn:aws:iam::111111111111:role/servicenow-cross-account";
const FUNCTION: &str = "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alerts";

fn trust() -> Result<NamedPolicy, PolicyError> {
    NamedPolicy::parse(
        PolicyKind::Trust,
        "servicenow-cross-account",
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": "sts:AssumeRole"}]}"#,
    )
}

fn invoker_role_policy() -> Result<NamedPolicy, PolicyError> {
    NamedPolicy::parse(
        PolicyKind::Identity,
        "invoker-assume",
        &format!(
            r#"{{"Version": "2012-10-17", "Statement": [{{"Sid": "AssumeCallee", "Effect": "Allow",
                "Action": "sts:AssumeRole", "Resource": "{ROLE}"}}]}}"#
        ),
    )
}

fn cross_account_role_policy() -> Result<NamedPolicy, PolicyError> {
    NamedPolicy::parse(
        PolicyKind::Identity,
        "servicenow-invoke",
        &format!(
            r#"{{"Version": "2012-10-17", "Statement": [{{"Sid": "invoke", "Effect": "Allow",
                "Action": "lambda:InvokeFunction", "Resource": ["{FUNCTION}", "{FUNCTION}:*"]}}]}}"#
        ),
    )
}

/// What `AWS::Lambda::Permission` with `Principal: 222222222222` stores.
fn function_policy() -> Result<NamedPolicy, PolicyError> {
    NamedPolicy::parse(
        PolicyKind::Resource,
        "servicenow-alerts",
        &format!(
            r#"{{"Version": "2012-10-17", "Id": "default", "Statement": [{{"Sid": "CallerInvoke",
                "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::222222222222:root"}},
                "Action": "lambda:InvokeFunction", "Resource": "{FUNCTION}"}}]}}"#
        ),
    )
}

#[test]
fn invoker_assumes_the_cross_account_role_then_invokes() -> Result<(), PolicyError> {
    let invoker =
        Principal::from_arn("arn:aws:sts::222222222222:assumed-role/invoker-role/invoker")?;
    let assume = authorize_assume_role(
        &Request::new(invoker, "sts:AssumeRole", ROLE),
        &trust()?,
        &[invoker_role_policy()?],
    );
    assert!(assume.allowed, "{assume}");

    let session = Principal::from_arn(
        "arn:aws:sts::111111111111:assumed-role/servicenow-cross-account/invoker",
    )?;
    let invoke = authorize_invoke(
        &Request::new(session, "lambda:InvokeFunction", FUNCTION),
        Some(&function_policy()?),
        &[cross_account_role_policy()?],
    );
    assert!(invoke.allowed, "{invoke}");
    assert_eq!(
        invoke.to_string(),
        "ALLOW (identity policy servicenow-invoke/invoke)"
    );
    Ok(())
}

#[test]
fn a_third_account_gets_aws_access_denied_messages() -> Result<(), PolicyError> {
    let stranger = Principal::from_arn("arn:aws:sts::333333333333:assumed-role/x/s")?;
    let assume = authorize_assume_role(
        &Request::new(stranger.clone(), "sts:AssumeRole", ROLE),
        &trust()?,
        &[],
    );
    assert_eq!(assume.reason, DecisionReason::NoResourceBasedPolicyAllows);
    assert_eq!(
        assume.access_denied_message().as_deref(),
        Some(
            "User: arn:aws:sts::333333333333:assumed-role/x/s is not authorized to perform: \
             sts:AssumeRole on resource: arn:aws:iam::111111111111:role/servicenow-cross-account"
        )
    );

    let invoke = authorize_invoke(
        &Request::new(stranger, "lambda:InvokeFunction", FUNCTION),
        Some(&function_policy()?),
        &[],
    );
    assert_eq!(
        invoke.access_denied_message().as_deref(),
        Some(
            "User: arn:aws:sts::333333333333:assumed-role/x/s is not authorized to perform: \
             lambda:InvokeFunction on resource: \
             arn:aws:lambda:us-east-1:111111111111:function:servicenow-alerts \
             because no resource-based policy allows the lambda:InvokeFunction action"
        )
    );
    Ok(())
}
