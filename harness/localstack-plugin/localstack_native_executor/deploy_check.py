"""Deploy permissions, checked before each CloudFormation resource handler runs.

In AWS, CloudFormation runs a resource's handler with the permissions of
whoever started the deploy, and a handler that lacks one fails its resource
with the service's AccessDenied. LocalStack checks nothing. This hook asks
the harness's IAM gateway, once per resource change, whether the deploying
principal may do what the handler needs (``POST /_harness/deploy-check`` on
the gateway that issues execution-role credentials, with the same token). A
denial fails the resource with the gateway's message, which CloudFormation
shows as the resource's status reason; the handler never runs.

After each run of a handler, the hook tells the gateway
(``POST /_harness/handler-ran``) which resource it ran for, with its
properties and the model the handler left (names it generated), and the
gateway drops what it caches of that resource: a handler is what changes
roles and resource policies during a deploy.

Without a gateway (no ``HARNESS_CREDENTIALS_URL``, nothing attached) the hook
does nothing. With one, an unreachable gateway or an unreadable answer fails
the resource: a deploy is never let through unchecked, nor a change the
gateway was not told of.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

from localstack.runtime import hooks

from localstack_native_executor.attach import (
    ATTACHMENT,
    CREDENTIALS_TOKEN_ENV,
    CREDENTIALS_URL_ENV,
    executor_request,
)

LOG = logging.getLogger(__name__)

CHECK_PATH = "/_harness/deploy-check"
RAN_PATH = "/_harness/handler-ran"
CHECK_TIMEOUT_SECONDS = 30.0
# Set on a resource change's payload once checked. ``deploy_loop`` copies the
# payload once per resource change and hands that copy to every poll of the
# handler, so the polls do not ask again. (Not on the executor: the v2 engine
# runs every resource of a change set through one executor.)
CHECKED_KEY = "_harness_deploy_checked"


def gateway_route(environ: Mapping[str, str], path: str) -> tuple[str, str] | None:
    """The URL of ``path`` on the gateway, next to its credentials issuer, and the token; ``None`` without one."""
    issuer = environ.get(CREDENTIALS_URL_ENV)
    token = environ.get(CREDENTIALS_TOKEN_ENV)
    if not issuer or not token:
        return None
    parts = urllib.parse.urlsplit(issuer)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", "")), token


def check_url(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The gateway's check URL and token; ``None`` without a gateway."""
    return gateway_route(environ, CHECK_PATH)


def check_request(payload: Mapping) -> dict:
    """The gateway's question for one resource provider payload."""
    data = payload.get("requestData") or {}
    return {
        # LocalStack's payload names the stack by name under "stackId".
        "StackName": payload.get("stackId", ""),
        "Account": payload.get("awsAccountId", ""),
        "Region": payload.get("region", ""),
        "LogicalResourceId": data.get("logicalResourceId", ""),
        "ResourceType": payload.get("resourceType", ""),
        "Action": payload.get("action", ""),
        "Properties": data.get("resourceProperties") or {},
        "PreviousProperties": data.get("previousResourceProperties"),
    }


def ask(payload: Mapping, environ: Mapping[str, str], opener=urllib.request.urlopen) -> str | None:
    """``None`` when the handler may run, else the resource's failure reason."""
    target = check_url(environ)
    if target is None:
        return None
    url, token = target
    question = check_request(payload)
    request = executor_request(url, token, question)
    what = f"{question['LogicalResourceId']} ({question['ResourceType']})"
    try:
        with opener(request, timeout=CHECK_TIMEOUT_SECONDS) as answer:
            verdict = json.loads(answer.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", errors="replace")
        return f"the harness's IAM gateway refused to check the permissions of {what}: {e.code} {detail}"
    except (OSError, ValueError) as e:
        return f"the harness's IAM gateway at {url} could not check the permissions of {what}: {e}"
    if verdict.get("Allowed") is True:
        return None
    return verdict.get("Message") or f"the harness's IAM gateway denied {what} without a reason"


def ran_note(payload: Mapping, event=None) -> dict:
    """What the gateway hears after the handler of ``payload`` ran: the
    resource, as asked about before, and the model ``event`` left, if any."""
    note = check_request(payload)
    model = getattr(event, "resource_model", None)
    note["Model"] = model if isinstance(model, Mapping) else None
    return note


def report_ran(
    payload: Mapping, environ: Mapping[str, str], opener=urllib.request.urlopen, event=None
) -> str | None:
    """Tells the gateway that the handler of ``payload`` ran and returned
    ``event`` (``None`` when it raised); ``None`` once told (or without a
    gateway), else the resource's failure reason."""
    target = gateway_route(environ, RAN_PATH)
    if target is None:
        return None
    url, token = target
    note = ran_note(payload, event)
    request = executor_request(url, token, note)
    what = f"{note['LogicalResourceId']} ({note['ResourceType']})"
    try:
        with opener(request, timeout=CHECK_TIMEOUT_SECONDS):
            return None
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", errors="replace")
        return f"the harness's IAM gateway refused to hear that the handler of {what} ran: {e.code} {detail}"
    except OSError as e:
        return f"the harness's IAM gateway at {url} could not be told that the handler of {what} ran: {e}"


def guard(executor_class, failed_event, environ_source=ATTACHMENT.settings) -> None:
    """Wraps ``executor_class.execute_action`` so that each resource change is
    checked once before its handler first runs, and the gateway hears of
    every run of the handler."""
    original = executor_class.execute_action
    if getattr(original, "_harness_guard", False):
        return

    def execute_action(self, resource_provider, raw_payload):
        if not raw_payload.get(CHECKED_KEY):
            raw_payload[CHECKED_KEY] = True
            failure = ask(raw_payload, environ_source())
            if failure is not None:
                LOG.info("deploy check failed: %s", failure)
                return failed_event(failure)
        try:
            event = original(self, resource_provider, raw_payload)
        except BaseException:
            # The handler's own error stands; what it changed is still reported.
            report_ran(raw_payload, environ_source())
            raise
        failure = report_ran(raw_payload, environ_source(), event=event)
        if failure is not None:
            LOG.warning("deploy report failed: %s", failure)
            return failed_event(failure)
        return event

    execute_action._harness_guard = True
    executor_class.execute_action = execute_action


@hooks.on_infra_start()
def check_deploy_permissions():
    from localstack.services.cloudformation.resource_provider import (
        OperationStatus,
        ProgressEvent,
        ResourceProviderExecutor,
    )

    def failed(message: str):
        return ProgressEvent(status=OperationStatus.FAILED, resource_model={}, message=message)

    guard(ResourceProviderExecutor, failed)
