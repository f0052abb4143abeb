"""A LocalStack ``RuntimeExecutor`` that runs each execution environment as a ``runtime-shim`` process.

Modelled on LocalStack's ``DockerRuntimeExecutor``: where that one starts a
container whose init binary speaks the executor protocol, this one starts
``runtime-shim`` (a native binary from this repository) with the function's
environment. The shim runs the function's ``bootstrap`` behind the Lambda
Runtime API and answers through the same ``ExecutorEndpoint`` callbacks.

Environment read in the LocalStack process:

- ``HARNESS_RUNTIME_SHIM`` (required): absolute path of the ``runtime-shim`` binary.
- ``HARNESS_LAMBDA_ENDPOINT_URL`` (optional): replaces ``AWS_ENDPOINT_URL`` in every
  function's environment (the harness points functions at its IAM gateway).
- ``HARNESS_LAMBDA_CA_FILE`` (optional): set as ``SSL_CERT_FILE`` in every
  function's environment, so the function's TLS clients trust the harness's
  local CA, which signed the IAM gateway's certificate (and only that CA).
- ``HARNESS_CREDENTIALS_URL`` and ``HARNESS_CREDENTIALS_TOKEN`` (optional): where
  the harness's IAM gateway issues each function's execution-role credentials.
  They replace the ones LocalStack minted, which the gateway would not know:
  the gateway verifies every signature, and Lambda in AWS runs a function with
  credentials of a session of its execution role, which must trust Lambda.
- A harness that did not start LocalStack sets the four ``HARNESS_LAMBDA_*`` and
  ``HARNESS_CREDENTIALS_*`` values above through ``POST /_harness/attach`` instead
  (``attach.py``).
- ``SHIM_DEBUG`` / ``SHIM_LOG`` (optional): passed to the shim; ``SHIM_DEBUG=1``
  echoes function output and shim diagnostics into LocalStack's debug log.
"""

from __future__ import annotations

import base64
import binascii
import collections
import http.client
import ipaddress
import json
import logging
import os
import subprocess
import threading
from collections.abc import Mapping
from concurrent.futures import Future, InvalidStateError
from pathlib import Path

from localstack import config
from localstack.services.lambda_ import ldm
from localstack.services.lambda_.invocation.executor_endpoint import (
    ExecutorEndpoint,
    InvokeSendError,
    StatusErrorException,
)
from localstack.services.lambda_.invocation.lambda_models import (
    FunctionVersion,
    InvocationResult,
)
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

from localstack_native_executor.attach import (
    ATTACHMENT,
    CA_FILE_ENV,
    CREDENTIALS_TOKEN_ENV,
    CREDENTIALS_URL_ENV,
)
from localstack_native_executor.attach import ENDPOINT_ENV as ENDPOINT_OVERRIDE_ENV
from localstack_native_executor.attach import executor_request

LOG = logging.getLogger(__name__)

SHIM_ENV = "HARNESS_RUNTIME_SHIM"
ISSUE_TIMEOUT_SECONDS = 10.0
# Shim settings forwarded from LocalStack's environment; the shim keeps them from the function.
SHIM_PASSTHROUGH = ("SHIM_DEBUG", "SHIM_LOG")
ANNOUNCE_PREFIX = "listening "
STOP_GRACE_SECONDS = 2.0
STDERR_TAIL_LINES = 200
# As ExecutorEndpoint: never wait longer than the maximum Lambda timeout plus a buffer.
MAX_INVOKE_WAIT_SECONDS = 900 + 5
SEND_TIMEOUT_SECONDS = 10.0
# Asks the shim for the invocation's result in its answer to /invoke, instead
# of LocalStack's two callbacks (logs, then result): each callback is a pass
# through LocalStack's whole request handler chain, several milliseconds a hop
# as `harness bench` measured them. The shim's answer: the logs, then the
# payload, in one body; OUTCOME_HEADER says response or error.
INLINE_RESULT_HEADER = "X-Harness-Result"
OUTCOME_HEADER = "X-Harness-Outcome"
LOGS_LENGTH_HEADER = "X-Harness-Logs-Length"
# How long a shim that broke the connection mid-invocation is given to exit.
SHIM_EXIT_GRACE_SECONDS = 0.2


def shim_path(environ: Mapping[str, str] = os.environ) -> str:
    """Path of the runtime-shim binary, or a LambdaRuntimeException saying how to set it."""
    value = environ.get(SHIM_ENV)
    if not value:
        raise LambdaRuntimeException(
            f"{SHIM_ENV} is not set: set it to the absolute path of the runtime-shim binary "
            "(cargo build -p runtime-shim) in LocalStack's environment"
        )
    path = Path(value)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise LambdaRuntimeException(f"{SHIM_ENV}={value} is not an executable file")
    return str(path)


def function_env(
    env_vars: Mapping[str, object], code_dir: Path, environ: Mapping[str, str]
) -> dict[str, str]:
    """The shim's environment: LocalStack's function environment adapted to a native process."""
    # LocalStack hands some values over as ints; a process environment holds strings.
    env = {str(k): str(v) for k, v in env_vars.items() if v is not None}
    # LocalStack assumes the container path /var/task; the code lives elsewhere here.
    env["LAMBDA_TASK_ROOT"] = str(code_dir)
    # A container image would provide these; a bare process has nothing.
    env.setdefault("PATH", environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"))
    env.setdefault("LANG", "C.UTF-8")
    override = environ.get(ENDPOINT_OVERRIDE_ENV)
    if override:
        env["AWS_ENDPOINT_URL"] = override
    ca_file = environ.get(CA_FILE_ENV)
    if ca_file:
        env["SSL_CERT_FILE"] = ca_file
    for name in SHIM_PASSTHROUGH:
        if environ.get(name):
            env[name] = environ[name]
    return env


def issued_credentials(
    role_arn: str, function_arn: str, function_name: str, environ: Mapping[str, str]
) -> dict[str, str] | None:
    """Execution-role credentials from the harness's gateway, as environment
    variables; ``None`` when no issuer is configured. A refusal (the role does
    not trust Lambda) is a LambdaRuntimeException with the gateway's words."""
    url = environ.get(CREDENTIALS_URL_ENV)
    token = environ.get(CREDENTIALS_TOKEN_ENV)
    if not url or not token:
        return None
    import urllib.error
    import urllib.request

    request = executor_request(
        url,
        token,
        {"RoleArn": role_arn, "FunctionArn": function_arn, "FunctionName": function_name},
    )
    try:
        with urllib.request.urlopen(request, timeout=ISSUE_TIMEOUT_SECONDS) as answer:
            issued = json.loads(answer.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", errors="replace")
        try:
            detail = json.loads(detail).get("message", detail)
        except ValueError:
            pass
        raise LambdaRuntimeException(
            f"no execution-role credentials for {function_name} ({role_arn}): {detail}"
        ) from e
    except (OSError, ValueError) as e:
        raise LambdaRuntimeException(
            f"the IAM gateway at {url} did not issue credentials for {function_name}: {e}"
        ) from e
    return {
        "AWS_ACCESS_KEY_ID": issued["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": issued["SecretAccessKey"],
        "AWS_SESSION_TOKEN": issued["SessionToken"],
    }


def parse_announcement(line: bytes) -> tuple[str, int]:
    """Parses the shim's first stdout line, ``listening <ip>:<port>``."""
    text = line.decode("utf-8", errors="replace").strip()
    if not text.startswith(ANNOUNCE_PREFIX):
        raise ValueError(f"expected '{ANNOUNCE_PREFIX}<ip>:<port>', got {text!r}")
    host, sep, port = text[len(ANNOUNCE_PREFIX) :].rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected '{ANNOUNCE_PREFIX}<ip>:<port>', got {text!r}")
    return host, int(port)


def decode_client_context(raw: str | None) -> str | None:
    """The client context JSON for the Runtime API header, from the Invoke API's base64 value."""
    if not raw:
        return None
    try:
        decoded = base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        # Some LocalStack paths (function URLs) pass plain JSON.
        decoded = raw
    try:
        if not isinstance(json.loads(decoded), dict):
            return None
    except ValueError:
        LOG.debug("Dropping a client context that is not JSON: %r", decoded[:200])
        return None
    return decoded


def inline_result(
    request_id: str, status: int, headers: Mapping[str, str], body: bytes
) -> InvocationResult | None:
    """The invocation's result from the shim's answer to an inline /invoke;
    ``None`` when the answer holds none (a shim answering 202, as LocalStack's
    protocol does, posts its callbacks instead)."""
    outcome = headers.get(OUTCOME_HEADER)
    if status != 200 or outcome not in ("response", "error"):
        return None
    try:
        logs_length = int(headers.get(LOGS_LENGTH_HEADER, ""))
    except ValueError:
        return None
    if not 0 <= logs_length <= len(body):
        return None
    logs = body[:logs_length].decode("utf-8", errors="replace")
    return InvocationResult(
        request_id, body[logs_length:], is_error=outcome == "error", logs=logs
    )


def loopback_host() -> str:
    """The address functions reach LocalStack's gateway at from this machine."""
    host = config.GATEWAY_LISTEN[0].host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "127.0.0.1"
    if address.version == 4 and not address.is_unspecified:
        return host
    return "127.0.0.1"


class NativeRuntimeExecutor(RuntimeExecutor):
    """Runs one execution environment as a ``runtime-shim`` child process of LocalStack."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.executor_endpoint = ExecutorEndpoint(self.id)
        self.process: subprocess.Popen | None = None
        self.ip: str | None = None
        # Set by the ExecutionEnvironment.invoke hook just before invoke().
        self.pending_client_context: str | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        # Invocations to one environment are sequential, so one kept-alive
        # connection serves them all and saves a TCP setup per invoke.
        self._connection: http.client.HTTPConnection | None = None

    def _code_dir(self) -> Path:
        code = self.function_version.config.code
        if code is None:
            raise LambdaRuntimeException(
                "the native executor runs zip-packaged functions only"
            )
        return Path(code.get_unzipped_code_location())

    def start(self, env_vars: dict[str, str]) -> None:
        shim = shim_path()
        code_dir = self._code_dir()
        # LocalStack's environment, or what a harness attached (attach.py).
        environ = ATTACHMENT.settings()
        env = function_env(env_vars, code_dir, environ)
        config = self.function_version.config
        issued = issued_credentials(
            config.role,
            self.function_version.id.unqualified_arn(),
            self.function_version.id.function_name,
            environ,
        )
        if issued is not None:
            env.update(issued)
        ATTACHMENT.started(self.id)
        self.executor_endpoint.start()
        # No new session or process group: LocalStack's group is killed as a
        # whole by whoever started it, and the shim must go with it. The stdin
        # pipe stays open in this process only (close_fds), so its end of file
        # tells the shim LocalStack is gone, even after a SIGKILL.
        self.process = subprocess.Popen(
            [shim],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(code_dir),
            close_fds=True,
        )
        self._watcher = threading.Thread(
            target=self._watch, name=f"lambda-shim-{self.id}", daemon=True
        )
        self._watcher.start()
        if self._stopping.is_set():
            # stop() ran (startup timeout) while the process was being created.
            self._terminate()
            raise LambdaRuntimeException(f"execution environment {self.id} stopped during startup")

        line = self.process.stdout.readline()
        self.process.stdout.close()
        try:
            host, port = parse_announcement(line)
        except ValueError as e:
            self._await_exit(1.0)
            raise LambdaRuntimeException(
                f"runtime-shim for {self.function_version.qualified_arn} did not start ({e}); "
                f"its stderr:\n{self.get_logs()}"
            ) from e
        self.ip = host
        self.executor_endpoint.container_address = host
        self.executor_endpoint.container_port = port
        try:
            self.executor_endpoint.wait_for_startup()
        except StatusErrorException:
            # The shim logs the init output before it exits; show it, as the
            # default log level would otherwise hide why the function failed.
            self._await_exit(1.0)
            LOG.warning(
                "Init of %s failed; runtime-shim said:\n%s",
                self.function_version.qualified_arn,
                self.get_logs(),
            )
            raise

    def _watch(self) -> None:
        """Keeps the shim's stderr for get_logs() and fails pending work if the shim dies."""
        process = self.process
        debug = os.environ.get("SHIM_DEBUG") == "1"
        for raw in process.stderr:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self._stderr_tail.append(line)
            if debug:
                LOG.debug("[runtime-shim %s] %s", self.id, line)
        process.stderr.close()
        code = process.wait()
        if not self._stopping.is_set():
            self._fail_pending(code)

    def _fail_pending(self, code: int) -> None:
        payload = json.dumps(
            {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"Error: runtime-shim exited unexpectedly with status {code}",
            }
        ).encode()
        endpoint = self.executor_endpoint
        failed = False
        startup = endpoint.startup_future
        if startup is not None and not startup.done():
            try:
                startup.set_exception(StatusErrorException("runtime-shim exited", payload=payload))
                failed = True
            except InvalidStateError:
                pass
        invocation = endpoint.invocation_future
        if invocation is not None and not invocation.done():
            try:
                invocation.set_result(
                    InvocationResult(request_id="", payload=payload, is_error=True, logs=endpoint.logs)
                )
                failed = True
            except InvalidStateError:
                pass
        if failed:
            LOG.warning(
                "runtime-shim of %s exited with status %s; its stderr:\n%s",
                self.function_version.qualified_arn,
                code,
                self.get_logs(),
            )

    def _await_exit(self, seconds: float) -> None:
        if self.process is not None:
            try:
                self.process.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                return
        if self._watcher is not None:
            self._watcher.join(timeout=seconds)

    def _terminate(self) -> None:
        process = self.process
        if process is None:
            return
        if process.stdin and not process.stdin.closed:
            try:
                process.stdin.close()
            except OSError:
                pass
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop(self) -> None:
        ATTACHMENT.stopped(self.id)
        self._stopping.set()
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._terminate()
        try:
            self.executor_endpoint.shutdown()
        except Exception as e:
            LOG.debug(
                "Error while stopping executor endpoint for lambda %s, error: %s",
                self.function_version.qualified_arn,
                e,
            )

    def get_address(self) -> str:
        if not self.ip:
            raise LambdaRuntimeException(f"address of executor '{self.id}' unknown")
        return self.ip

    def get_endpoint_from_executor(self) -> str:
        return loopback_host()

    def get_runtime_endpoint(self) -> str:
        return (
            f"http://{self.get_endpoint_from_executor()}:{config.GATEWAY_LISTEN[0].port}"
            f"{self.executor_endpoint.get_endpoint_prefix()}"
        )

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        client_context = decode_client_context(self.pending_client_context)
        self.pending_client_context = None
        if client_context:
            payload["client-context"] = client_context
        # Same contract as ExecutorEndpoint.invoke (future first, then the
        # request, then the result), over a kept-alive connection; the result
        # comes in the answer, or, if the shim died mid-invocation, from the
        # watcher (_fail_pending).
        endpoint = self.executor_endpoint
        endpoint.invocation_future = Future()
        endpoint.logs = None
        wait = ldm.DEFAULT_LDM_TIMEOUT_SECONDS if ldm.IS_LDM_ENABLED else MAX_INVOKE_WAIT_SECONDS
        answer = self._send_invoke(json.dumps(payload).encode(), wait)
        # A shim of LocalStack's protocol (one built before inline results)
        # answers 202 and posts its callbacks, which resolve the future.
        if answer is not None and answer[0] != 202:
            result = inline_result(payload.get("invoke-id", ""), *answer)
            if result is None:
                raise InvokeSendError(
                    f"runtime-shim answered the invocation without its result: HTTP {answer[0]}"
                )
            endpoint.logs = result.logs
            try:
                endpoint.invocation_future.set_result(result)
            except InvalidStateError:
                # The watcher failed it first: the shim exited as it answered.
                pass
        return endpoint.invocation_future.result(timeout=wait)

    def _send_invoke(
        self, body: bytes, wait: float
    ) -> tuple[int, Mapping[str, str], bytes] | None:
        """Sends the invocation and returns the shim's answer (status, headers,
        body); ``None`` when the shim exited before answering."""
        for attempt in (1, 2):
            connection = self._connection or http.client.HTTPConnection(
                self.get_address(),
                self.executor_endpoint.container_port,
                timeout=SEND_TIMEOUT_SECONDS,
            )
            try:
                connection.request(
                    "POST",
                    "/invoke",
                    body=body,
                    headers={"Content-Type": "application/json", INLINE_RESULT_HEADER: "inline"},
                )
                # The answer comes when the function is done; the shim bounds
                # that by the function's timeout, this by LocalStack's wait.
                if connection.sock is not None:
                    connection.sock.settimeout(wait)
                response = connection.getresponse()
                answer = response.read()
            except (http.client.HTTPException, OSError) as e:
                connection.close()
                self._connection = None
                if self._shim_exited():
                    return None
                # A kept-alive connection may have gone stale; a fresh one must work.
                if attempt == 2:
                    raise InvokeSendError(f"cannot send invocation to runtime-shim: {e}") from e
                continue
            if connection.sock is not None:
                connection.sock.settimeout(SEND_TIMEOUT_SECONDS)
            self._connection = connection
            if response.status >= 300:
                raise InvokeSendError(
                    f"runtime-shim refused the invocation: HTTP {response.status}"
                )
            return response.status, response.headers, answer
        return None

    def _shim_exited(self) -> bool:
        """Whether the shim has exited (or does within a short grace)."""
        process = self.process
        if process is None:
            return True
        try:
            process.wait(timeout=SHIM_EXIT_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            return False
        return True

    def get_logs(self) -> str:
        return "\n".join(self._stderr_tail)

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        code = function_version.config.code
        if code is None:
            raise LambdaRuntimeException(
                "the native executor runs zip-packaged functions only; container images are not supported"
            )
        code.prepare_for_execution()
        bootstrap = Path(code.get_unzipped_code_location()) / "bootstrap"
        if bootstrap.is_file():
            # Extraction may drop the executable bit that the zip recorded.
            mode = bootstrap.stat().st_mode
            if mode & 0o111 != 0o111:
                bootstrap.chmod(mode | 0o755)
        else:
            # AWS accepts such a function and fails its invocations; so do we
            # (Runtime.InvalidEntrypoint from the shim).
            LOG.warning(
                "Function %s has no bootstrap at the root of its code: the native executor runs "
                "provided.* runtimes only",
                function_version.qualified_arn,
            )

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        # LocalStack deletes the unzipped code itself; there is no image or other state.
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        try:
            shim_path()
        except LambdaRuntimeException as e:
            LOG.warning("Native Lambda executor: %s", e)
            return False
        return True


def install_client_context_hook() -> None:
    """Lets the executor see each invocation's client context.

    LocalStack builds the invoke payload in ``ExecutionEnvironment.invoke`` and
    leaves the client context out, although the Runtime API carries it. The
    wrapper hands it to our executor just before the payload is sent; an
    environment runs one invocation at a time, so the hand-over cannot mix up
    invocations.
    """
    from localstack.services.lambda_.invocation.execution_environment import (
        ExecutionEnvironment,
    )

    original = ExecutionEnvironment.invoke
    if getattr(original, "_native_executor_hook", False):
        return

    def invoke(self, invocation):
        executor = self.runtime_executor
        if isinstance(executor, NativeRuntimeExecutor):
            executor.pending_client_context = invocation.client_context
        return original(self, invocation)

    invoke._native_executor_hook = True
    ExecutionEnvironment.invoke = invoke
