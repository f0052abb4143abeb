//! Explaining the deployed chain without invoking it: the caller's role
//! assuming the cross-account role, then that role invoking the callee.

use std::{collections::BTreeMap, fmt, time::Duration};

use iam_policy::Principal;
use serde::{Deserialize, Serialize};

use super::{
    classify::{AssumeRoleCall, FunctionRef},
    decide::{self, ASSUME_ROLE, INVOKE_FUNCTION, Outcome},
    log::{DecidingStatement, DecisionRecord, Ruling, format_chain, now_ms},
    policies::{Caller, PolicySource, ProposedPolicies},
};
use alert_caller::config as caller_env;
use sdk_config::REGION;

use crate::error::GatewayError;

/// One hop of the chain as AWS would decide it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopExplanation {
    /// 1 for the `AssumeRole`, 2 for the invoke.
    pub hop: usize,
    /// The caller, as a role session ARN.
    pub principal: String,
    /// `sts:AssumeRole` or `lambda:InvokeFunction`.
    pub action: String,
    /// The role or function ARN.
    pub resource: String,
    /// The external id the caller sends (hop 1 only).
    pub external_id: Option<String>,
    /// Whether AWS would allow it.
    pub allowed: bool,
    /// The decision log's reason code (`evaluation_failed` when policies could not be read or used).
    pub reason: String,
    /// `ALLOW (...)` / `DENY: ...`, or what went wrong.
    pub explanation: String,
    /// AWS's error message when denied.
    pub denial: Option<String>,
    /// The statements that decided it.
    pub deciding: Vec<DecidingStatement>,
}

impl HopExplanation {
    fn new(
        hop: usize,
        principal: &str,
        action: &str,
        resource: &str,
        external_id: Option<String>,
        outcome: Result<Outcome, GatewayError>,
    ) -> Self {
        let base = Self {
            hop,
            principal: principal.to_owned(),
            action: action.to_owned(),
            resource: resource.to_owned(),
            external_id,
            allowed: false,
            reason: "evaluation_failed".to_owned(),
            explanation: String::new(),
            denial: None,
            deciding: Vec::new(),
        };
        match outcome {
            Ok(outcome) => Self {
                allowed: outcome.rejection.is_none(),
                reason: outcome.reason.to_owned(),
                explanation: outcome.explanation,
                denial: outcome.rejection.map(|r| r.message),
                deciding: outcome.decision.deciding.iter().map(Into::into).collect(),
                ..base
            },
            Err(err) => Self {
                explanation: format!("cannot evaluate: {}", err.chain()),
                ..base
            },
        }
    }

    /// The hop as a decision-log record, e.g. for [`format_chain`].
    pub fn to_record(&self) -> DecisionRecord {
        DecisionRecord {
            time_ms: now_ms(),
            trace: None,
            principal: Some(self.principal.clone()),
            action: self.action.clone(),
            resource: Some(self.resource.clone()),
            decision: match (self.allowed, self.reason.as_str()) {
                (true, _) => Ruling::Allow,
                (false, "evaluation_failed") => Ruling::Error,
                (false, _) => Ruling::Deny,
            },
            reason: self.reason.clone(),
            explanation: self.explanation.clone(),
            deciding: self.deciding.clone(),
            status: None,
            overhead_us: None,
            upstream_us: None,
            request_id: None,
        }
    }
}

impl fmt::Display for HopExplanation {
    /// `hop 1: <principal> → sts:AssumeRole → <role> (ExternalId "x"): ALLOW (...)`, plus AWS's message when denied.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "hop {}: {} → {} → {}",
            self.hop, self.principal, self.action, self.resource
        )?;
        if self.action == ASSUME_ROLE {
            match &self.external_id {
                Some(id) => write!(f, " (ExternalId {id:?})")?,
                None => write!(f, " (no ExternalId)")?,
            }
        }
        write!(f, ": {}", self.explanation)?;
        if let Some(denial) = &self.denial {
            write!(f, "\n  AWS would answer: {denial}")?;
        }
        Ok(())
    }
}

/// The hops as a chain with accounts abbreviated (see [`format_chain`]), and AWS's message under each denial.
pub fn format_explanation(hops: &[HopExplanation], accounts: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (index, hop) in hops.iter().enumerate() {
        // Chain each hop to the previous one so continuation lines line up.
        let records: Vec<DecisionRecord> = hops[..=index]
            .iter()
            .map(HopExplanation::to_record)
            .collect();
        let chain = format_chain(&records, accounts);
        if let Some(line) = chain.lines().last() {
            out.push_str(line);
            out.push('\n');
        }
        if let Some(denial) = &hop.denial {
            out.push_str(&format!("    AWS would answer: {denial}\n"));
        }
    }
    out
}

fn missing(function: &str, what: &str) -> GatewayError {
    GatewayError::IncompleteAnswer {
        operation: "lambda:GetFunctionConfiguration",
        missing: format!("the {what} of {function}; is it the caller (invoker) function?"),
    }
}

/// A session of `role_arn` with the given session name; it keeps the role's
/// path for `aws:PrincipalArn` while its own ARN drops it.
fn session_of(role_arn: &str, session: &str) -> Result<Principal, GatewayError> {
    Principal::role_session(role_arn, session).map_err(|source| GatewayError::Policy {
        what: format!("a session of `{role_arn}`"),
        source,
    })
}

/// Explains the deployed chain hop by hop, without invoking anything.
///
/// Reads the caller function's configuration in its account (execution role,
/// `TARGET_ROLE_ARN`, `TARGET_FUNCTION_ARN`, `EXTERNAL_ID`, `ROLE_SESSION_NAME`),
/// then decides hop 1, the execution role's session
/// (`arn:aws:sts::<B>:assumed-role/<role>/<function name>`, as Lambda names
/// it) calling `sts:AssumeRole` on
/// the target role with that external id, and hop 2, the target role's
/// session calling `lambda:InvokeFunction` on the target function. A caller
/// in direct mode (no `TARGET_ROLE_ARN`) has one hop: its execution role's
/// session invoking the target function across accounts. Policies
/// are read fresh from `upstream` (LocalStack itself or a gateway).
pub async fn explain(
    upstream: &sdk_config::Endpoint,
    root_keys: &sdk_config::RootKeys,
    caller_function_arn: &str,
) -> Result<Vec<HopExplanation>, GatewayError> {
    let source =
        PolicySource::new(upstream.clone(), Duration::ZERO).with_root_keys(root_keys.clone());
    explain_with(&source, caller_function_arn).await
}

/// [`explain`], as the chain would be decided once `proposed` replaced the
/// role policies it names (`harness deploy --plan`): nothing is changed.
pub async fn explain_proposed(
    upstream: &sdk_config::Endpoint,
    root_keys: &sdk_config::RootKeys,
    caller_function_arn: &str,
    proposed: ProposedPolicies,
) -> Result<Vec<HopExplanation>, GatewayError> {
    let source = PolicySource::new(upstream.clone(), Duration::ZERO)
        .with_root_keys(root_keys.clone())
        .with_proposed(proposed);
    explain_with(&source, caller_function_arn).await
}

async fn explain_with(
    source: &PolicySource,
    caller_function_arn: &str,
) -> Result<Vec<HopExplanation>, GatewayError> {
    let function = FunctionRef::parse(caller_function_arn, None)
        .filter(|f| f.account.is_some())
        .ok_or_else(|| {
            GatewayError::Explain(format!(
                "`{caller_function_arn}` is not a function ARN; give the caller function's full ARN"
            ))
        })?;
    let account = function.account.as_deref().unwrap_or_default();
    let region = function.region.as_deref().unwrap_or(REGION);
    let configuration = source
        .lambda(account, region)
        .await
        .get_function_configuration()
        .function_name(caller_function_arn)
        .send()
        .await
        .map_err(|e| GatewayError::aws("lambda:GetFunctionConfiguration", e))?;
    let variables = configuration.environment().and_then(|e| e.variables());
    let variable = |name: &str| {
        variables
            .and_then(|v| v.get(name))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let execution_role = configuration
        .role()
        .ok_or_else(|| missing(caller_function_arn, "execution role"))?;
    let target_function = variable(caller_env::TARGET_FUNCTION_ARN).ok_or_else(|| {
        missing(
            caller_function_arn,
            &format!("{} variable", caller_env::TARGET_FUNCTION_ARN),
        )
    })?;
    // Lambda names the execution role's session after the function.
    let function_name = configuration
        .function_name()
        .ok_or_else(|| missing(caller_function_arn, "function name"))?;
    let own_session = Caller {
        principal: session_of(execution_role, function_name)?,
        user_id: None,
    };
    // An empty TARGET_ROLE_ARN is the caller's direct mode: one hop, its own
    // role invoking the function across accounts.
    let Some(target_role) = variable(caller_env::TARGET_ROLE_ARN) else {
        return Ok(vec![
            invoke_hop(source, 1, &own_session, &target_function, region).await,
        ]);
    };
    // An empty EXTERNAL_ID means the caller sends none.
    let external_id = variable(caller_env::EXTERNAL_ID);
    let session_name = variable(caller_env::ROLE_SESSION_NAME)
        .unwrap_or_else(|| caller_env::DEFAULT_ROLE_SESSION_NAME.to_owned());

    let call = AssumeRoleCall {
        role_arn: target_role.clone(),
        session_name: Some(session_name.clone()),
        external_id: external_id.clone(),
        duration_seconds: None,
        source_identity: None,
    };
    let outcome = decide::assume_role(source, &own_session, &call, region).await;
    let hop1 = HopExplanation::new(
        1,
        own_session.principal.arn(),
        ASSUME_ROLE,
        &target_role,
        external_id,
        outcome,
    );

    let assumed = Caller {
        principal: session_of(&target_role, &session_name)?,
        user_id: None,
    };
    let hop2 = invoke_hop(source, 2, &assumed, &target_function, region).await;
    Ok(vec![hop1, hop2])
}

/// Decides `caller` invoking the function named by the caller's `TARGET_FUNCTION_ARN`.
async fn invoke_hop(
    source: &PolicySource,
    hop: usize,
    caller: &Caller,
    target_function: &str,
    region: &str,
) -> HopExplanation {
    match FunctionRef::parse(target_function, None) {
        Some(target) => {
            let resource = target.arn(caller.principal.account().unwrap_or_default(), region);
            let outcome = decide::invoke(source, caller, &target, region).await;
            HopExplanation::new(
                hop,
                caller.principal.arn(),
                INVOKE_FUNCTION,
                &resource,
                None,
                outcome,
            )
        }
        None => HopExplanation::new(
            hop,
            caller.principal.arn(),
            INVOKE_FUNCTION,
            target_function,
            None,
            Err(GatewayError::Explain(format!(
                "TARGET_FUNCTION_ARN `{target_function}` is not a function name or ARN"
            ))),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(
        hop: usize,
        principal: &str,
        action: &str,
        resource: &str,
        allowed: bool,
    ) -> HopExplanation {
        HopExplanation {
            hop,
            principal: principal.into(),
            action: action.into(),
            resource: resource.into(),
            external_id: (action == ASSUME_ROLE).then(|| "ext-1".to_owned()),
            allowed,
            reason: if allowed {
                "allowed"
            } else {
                "no_resource_based_policy_allows"
            }
            .into(),
            explanation: if allowed {
                "ALLOW (x)".into()
            } else {
                "DENY: no resource-based policy allows".into()
            },
            denial: (!allowed).then(|| "User: u is not authorized".to_owned()),
            deciding: Vec::new(),
        }
    }

    #[test]
    fn explanation_chains_hops_and_shows_denials() {
        let accounts = BTreeMap::from([
            ("111111111111".to_owned(), "A".to_owned()),
            ("222222222222".to_owned(), "B".to_owned()),
        ]);
        let hops = [
            hop(
                1,
                "arn:aws:sts::222222222222:assumed-role/servicenow-invoker-exec/explain",
                ASSUME_ROLE,
                "arn:aws:iam::111111111111:role/servicenow-invoke",
                true,
            ),
            hop(
                2,
                "arn:aws:sts::111111111111:assumed-role/servicenow-invoke/explain",
                INVOKE_FUNCTION,
                "arn:aws:lambda:us-east-1:111111111111:function:servicenow-alert",
                false,
            ),
        ];
        assert_eq!(
            format_explanation(&hops, &accounts),
            "B:role/servicenow-invoker-exec → sts:AssumeRole → A:role/servicenow-invoke  ALLOW (x)\n\
             \x20 → lambda:InvokeFunction A:function:servicenow-alert  DENY: no resource-based policy allows\n\
             \x20   AWS would answer: User: u is not authorized\n"
        );
        assert_eq!(
            hops[0].to_string(),
            "hop 1: arn:aws:sts::222222222222:assumed-role/servicenow-invoker-exec/explain → sts:AssumeRole → arn:aws:iam::111111111111:role/servicenow-invoke (ExternalId \"ext-1\"): ALLOW (x)"
        );
        assert_eq!(hops[1].to_record().decision, Ruling::Deny);
    }

    #[test]
    fn sessions_drop_the_role_path() {
        let session = session_of(
            "arn:aws:iam::222222222222:role/service/servicenow-invoker-exec",
            "explain",
        )
        .expect("valid");
        assert_eq!(
            session.arn(),
            "arn:aws:sts::222222222222:assumed-role/servicenow-invoker-exec/explain"
        );
        assert_eq!(
            session.principal_arn(),
            Some("arn:aws:iam::222222222222:role/service/servicenow-invoker-exec")
        );
        assert!(session_of("servicenow-invoker-exec", "explain").is_err());
    }
}
