"""Start-up tuning of LocalStack for the harness, applied by an ``on_infra_start`` hook.

LocalStack's CloudFormation engine polls a resource that is still in progress
every 5 seconds. A Lambda function is "in progress" for a few milliseconds
after CreateFunction here, so each stack with a function waited a whole 5 s
poll for nothing. ``HARNESS_CFN_POLL_SECONDS`` (set by the harness) shortens
that interval; unset, LocalStack keeps its own.
"""

import logging
import os

from localstack.runtime import hooks

LOG = logging.getLogger(__name__)

POLL_ENV = "HARNESS_CFN_POLL_SECONDS"


def poll_interval(environ=os.environ):
    """The requested poll interval in seconds, or ``None`` to keep LocalStack's."""
    raw = environ.get(POLL_ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        LOG.warning("%s=%r is not a number of seconds; keeping LocalStack's interval", POLL_ENV, raw)
        return None
    if value <= 0:
        LOG.warning("%s must be positive, not %r; keeping LocalStack's interval", POLL_ENV, raw)
        return None
    return value


def set_poll_interval(executor_class, seconds):
    """Replace the default ``sleep_time`` of ``executor_class.deploy_loop``."""
    loop = executor_class.deploy_loop
    names = loop.__code__.co_varnames[: loop.__code__.co_argcount]
    defaults = list(loop.__defaults__ or ())
    # Defaults belong to the last len(defaults) parameters.
    first_default = len(names) - len(defaults)
    index = names.index("sleep_time") - first_default
    defaults[index] = seconds
    loop.__defaults__ = tuple(defaults)


@hooks.on_infra_start()
def shorten_cloudformation_poll():
    seconds = poll_interval()
    if seconds is None:
        return
    from localstack.services.cloudformation.resource_provider import ResourceProviderExecutor

    set_poll_interval(ResourceProviderExecutor, seconds)
    LOG.info("CloudFormation resources are polled every %.2f s", seconds)
