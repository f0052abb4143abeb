"""Start-up tuning of LocalStack for the harness, applied by ``on_infra_start`` hooks.

LocalStack's CloudFormation engine polls a resource that is still in progress
every 5 seconds. A Lambda function is "in progress" for a few milliseconds
after CreateFunction here, so each stack with a function waited a whole 5 s
poll for nothing. ``HARNESS_CFN_POLL_SECONDS`` (set by the harness) shortens
that interval; unset, LocalStack keeps its own.

LocalStack's execution environment starts a ``threading.Timer`` (a new thread)
for its keep-alive every time an invocation ends, and cancels it when the next
begins. Starting a thread waits until it runs, which under load took a quarter
of LocalStack's invoke path in a profile of ``harness bench``. The same timers
run here on one scheduler thread (:class:`SharedTimer`): each still fires after
its interval unless cancelled, in a thread of its own, so an environment still
stops after ``LAMBDA_KEEPALIVE_MS`` idle, as LocalStack's does.

After every invocation LocalStack's Lambda version manager starts a thread
to record the invocation's CloudWatch metrics, and waits until it runs: in a
profile of direct invokes that wait was a seventh of LocalStack's invoke
path, for a thread that does nothing when CloudWatch is not among the
services, as here. :func:`metrics_on_one_thread` records them on one worker
thread instead, in order and still after the invocation has answered.

LocalStack's ``GetFunction`` presigns the code's download URL with a boto3
client it builds anew on every call, and building a client is most of the
call. CloudFormation's function handler calls ``GetFunction`` on every poll
until a new function is active, so a profile of the suite's deploys put a
tenth of LocalStack's time there. :func:`presigned_code_url` signs with one
client per endpoint, built with the same region, key and secret; the URL is
the same.

LocalStack parses every YAML template (each change set parses its template)
with PyYAML's pure-Python loader, a twentieth of its time in the same profile.
:func:`c_template_loader` is that loader on libyaml's C parser, with the same
constructors (CloudFormation's short-form tags, timestamps kept as text) and
the same resolver, so the same template gives the same value.
"""

import concurrent.futures
import heapq
import itertools
import logging
import os
import threading
import time

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


class _Scheduler:
    """One daemon thread that fires :class:`SharedTimer` deadlines in order."""

    # Cancelled timers stay queued until their deadline; past this many
    # entries they are swept out, so the queue stays as small as the live timers.
    SWEEP_AT = 1024

    def __init__(self):
        self._queue = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread = None

    def add(self, deadline, timer):
        with self._changed:
            if len(self._queue) >= self.SWEEP_AT:
                self._queue = [entry for entry in self._queue if not entry[2].cancelled]
                heapq.heapify(self._queue)
            heapq.heappush(self._queue, (deadline, next(self._order), timer))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="harness-shared-timers", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def pending(self):
        with self._changed:
            return sum(1 for entry in self._queue if not entry[2].cancelled)

    def _run(self):
        while True:
            with self._changed:
                while not self._queue:
                    self._changed.wait()
                deadline, _, timer = self._queue[0]
                now = time.monotonic()
                if deadline > now:
                    self._changed.wait(deadline - now)
                    continue
                heapq.heappop(self._queue)
            timer._fire()


SCHEDULER = _Scheduler()


class SharedTimer:
    """``threading.Timer``'s ``start``/``cancel`` on :data:`SCHEDULER`'s one thread.

    The function runs in a thread of its own once the interval has passed,
    unless ``cancel`` came first, as with ``threading.Timer``; only the waiting
    costs no thread.
    """

    def __init__(self, interval, function, args=None, kwargs=None, scheduler=None):
        self.interval = interval
        self.function = function
        self.args = args if args is not None else []
        self.kwargs = kwargs if kwargs is not None else {}
        self.cancelled = False
        self._started = False
        self._scheduler = scheduler or SCHEDULER

    def start(self):
        if self._started:
            raise RuntimeError("threads can only be started once")
        self._started = True
        self._scheduler.add(time.monotonic() + self.interval, self)

    def cancel(self):
        self.cancelled = True

    def _fire(self):
        if self.cancelled:
            return
        threading.Thread(
            target=self.function, args=self.args, kwargs=self.kwargs, daemon=True
        ).start()


@hooks.on_infra_start()
def share_environment_timers():
    from localstack.services.lambda_.invocation import execution_environment

    execution_environment.Timer = SharedTimer
    LOG.info("Lambda execution environments' keep-alive and start-up timers share one thread")


_CODE_URL_SIGNERS = {}
_CODE_URL_SIGNERS_LOCK = threading.Lock()


def code_url_signer(endpoint_url):
    """The S3 client that presigns code URLs for ``endpoint_url``, built once, as LocalStack builds it."""
    import boto3
    from localstack.services.lambda_.invocation import lambda_models

    key = (
        endpoint_url,
        lambda_models.config.INTERNAL_RESOURCE_ACCOUNT,
        lambda_models.INTERNAL_AWS_SECRET_ACCESS_KEY,
    )
    with _CODE_URL_SIGNERS_LOCK:
        client = _CODE_URL_SIGNERS.get(key)
        if client is None:
            client = boto3.client(
                "s3",
                region_name=lambda_models.AWS_REGION_US_EAST_1,
                aws_access_key_id=key[1],
                aws_secret_access_key=key[2],
                endpoint_url=endpoint_url,
            )
            _CODE_URL_SIGNERS[key] = client
        return client


def presigned_code_url(self, endpoint_url):
    """``S3Code.generate_presigned_url``, signing with :func:`code_url_signer`'s client."""
    params = {"Bucket": self.s3_bucket, "Key": self.s3_key}
    if self.s3_object_version:
        params["VersionId"] = self.s3_object_version
    return code_url_signer(endpoint_url).generate_presigned_url("get_object", Params=params)


@hooks.on_infra_start()
def reuse_code_url_signer():
    from localstack.services.lambda_.invocation import lambda_models

    lambda_models.S3Code.generate_presigned_url = presigned_code_url
    LOG.info("GetFunction presigns code URLs with one S3 client per endpoint")


def c_template_loader(loader):
    """``loader`` (LocalStack's template loader) on libyaml's C parser, or ``None`` without libyaml."""
    import yaml

    if not getattr(yaml, "__with_libyaml__", False):
        return None
    return type(
        "CTemplateLoader",
        (yaml.CSafeLoader,),
        {
            "yaml_constructors": dict(loader.yaml_constructors),
            "yaml_multi_constructors": dict(loader.yaml_multi_constructors),
        },
    )


@hooks.on_infra_start()
def parse_templates_in_c():
    from localstack.services.cloudformation.engine import yaml_parser

    loader = c_template_loader(yaml_parser.customloader)
    if loader is None:
        LOG.info("PyYAML has no libyaml here; templates are parsed in Python")
        return
    yaml_parser.customloader = loader
    LOG.info("CloudFormation templates are parsed with libyaml")


# How LocalStack 4.8.1's version manager names its metric threads
# (``version_manager.py``, ``LambdaVersionManager.invoke``).
METRIC_THREAD_NAME = "record-cloudwatch-metric"


def metrics_on_one_thread(start_thread, worker):
    """``start_thread`` that hands LocalStack's metric recordings to ``worker``
    (an executor) instead of a thread each, and starts any other thread as
    ``start_thread`` does."""
    if getattr(start_thread, "_harness_metrics", False):
        return start_thread

    def start(method, *args, **kwargs):
        if not str(kwargs.get("name") or "").startswith(METRIC_THREAD_NAME):
            return start_thread(method, *args, **kwargs)
        params = args[0] if args else kwargs.get("params")
        worker.submit(_record_metric, method, params)
        return None

    start._harness_metrics = True
    return start


def _record_metric(method, params):
    # As LocalStack's FuncThread: a failure is logged, never raised.
    try:
        method(params)
    except Exception as e:
        LOG.info("Recording a Lambda metric failed: %s", e)


METRICS_WORKER = concurrent.futures.ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="harness-lambda-metrics"
)


@hooks.on_infra_start()
def record_lambda_metrics_on_one_thread():
    from localstack.services.lambda_.invocation import version_manager

    version_manager.start_thread = metrics_on_one_thread(
        version_manager.start_thread, METRICS_WORKER
    )
    LOG.info("Lambda invocation metrics are recorded on one worker thread")
