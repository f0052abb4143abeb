"""Attaching a harness to an emulator it did not start (``--backend external``).

A harness that starts LocalStack tells the executor, through LocalStack's
environment, where functions must send their AWS calls (its IAM gateway),
which CA to trust and where to get execution-role credentials (see
``executor.py``). A harness pointed at an emulator that is already running
cannot set that environment, so it posts the same four settings to
``POST /_harness/attach`` on the emulator, before it deploys anything:

    {"lambda_endpoint": "https://127.0.0.1:4566", "ca_pem": "-----BEGIN CERTIFICATE-----...",
     "credentials_url": "http://127.0.0.1:4566/_harness/issue", "credentials_token": "..."}

From then on, every execution environment this executor starts uses them.
The attach is refused (409) when it could not hold for every function:

- an environment is already running: it was started with the old settings and
  would keep calling the emulator (or an earlier gateway) directly;
- another harness is attached and its gateway still accepts connections, or
  LocalStack's own environment already names a gateway (a harness started
  this emulator).

An attachment whose gateway is gone, with no environment left running, is
replaced: no function can still use it. Environments started while attached
keep the gateway's address, so once it is gone their AWS calls fail instead of
reaching the emulator unchecked.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import urllib.parse
import urllib.request
import threading
from collections.abc import Mapping

from localstack.runtime import hooks

LOG = logging.getLogger(__name__)

ATTACH_PATH = "/_harness/attach"
TOKEN_HEADER = "x-harness-issuer-token"
PROBE_TIMEOUT_SECONDS = 0.5
# The settings an attach sets, as executor.py reads them from the environment.
ENDPOINT_ENV = "HARNESS_LAMBDA_ENDPOINT_URL"
CA_FILE_ENV = "HARNESS_LAMBDA_CA_FILE"
CREDENTIALS_URL_ENV = "HARNESS_CREDENTIALS_URL"
CREDENTIALS_TOKEN_ENV = "HARNESS_CREDENTIALS_TOKEN"
FIELDS = ("lambda_endpoint", "ca_pem", "credentials_url", "credentials_token")


def executor_request(url: str, token: str, body) -> urllib.request.Request:
    """A POST of ``body`` as JSON to one of the gateway's executor routes, with the executor's token."""
    return urllib.request.Request(
        url,
        data=json.dumps(body, default=str).encode(),
        headers={"content-type": "application/json", TOKEN_HEADER: token},
        method="POST",
    )


class Attachment:
    """The settings a harness attached, and which environments are running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings: dict[str, str] = {}
        self._running: set[str] = set()

    def settings(self, environ: Mapping[str, str] = os.environ) -> Mapping[str, str]:
        """``environ`` with the attached settings over it."""
        with self._lock:
            if not self._settings:
                return environ
            merged = dict(environ)
            merged.update(self._settings)
            return merged

    def started(self, environment_id: str) -> None:
        with self._lock:
            self._running.add(environment_id)

    def stopped(self, environment_id: str) -> None:
        with self._lock:
            self._running.discard(environment_id)

    def attach(
        self,
        body: object,
        environ: Mapping[str, str] = os.environ,
        ca_dir: str | None = None,
        alive=None,
    ) -> tuple[int, dict[str, str]]:
        """Attaches the harness ``body`` describes; returns an HTTP status and a JSON body."""
        if not isinstance(body, dict):
            return 400, error("InvalidRequest", "the body must be a JSON object")
        values = {}
        for field in FIELDS:
            value = body.get(field)
            if not isinstance(value, str) or not value.strip():
                return 400, error("InvalidRequest", f"`{field}` must be a non-empty string")
            values[field] = value.strip()
        for field in ("lambda_endpoint", "credentials_url"):
            if not values[field].startswith(("http://", "https://")):
                return 400, error("InvalidRequest", f"`{field}` must be an http(s) URL")
        if "-----BEGIN CERTIFICATE-----" not in values["ca_pem"]:
            return 400, error("InvalidRequest", "`ca_pem` must be a PEM certificate")
        with self._lock:
            if environ.get(ENDPOINT_ENV):
                return 409, error(
                    "AlreadyAttached",
                    f"this emulator was started with its functions calling {environ[ENDPOINT_ENV]}",
                )
            if self._settings and (alive or gateway_alive)(self._settings[ENDPOINT_ENV]):
                return 409, error(
                    "AlreadyAttached",
                    f"another harness is attached and its gateway answers: functions call "
                    f"{self._settings[ENDPOINT_ENV]}",
                )
            if self._running:
                return 409, error(
                    "EnvironmentsRunning",
                    f"{len(self._running)} execution environment(s) started before this attach "
                    "would keep calling the emulator directly; restart the emulator and attach "
                    "before invoking anything",
                )
            if self._settings:
                remove(self._settings[CA_FILE_ENV])
            handle, ca_file = tempfile.mkstemp(prefix="harness-ca-", suffix=".pem", dir=ca_dir)
            with os.fdopen(handle, "w") as out:
                out.write(body["ca_pem"])
            self._settings = {
                ENDPOINT_ENV: values["lambda_endpoint"],
                CA_FILE_ENV: ca_file,
                CREDENTIALS_URL_ENV: values["credentials_url"],
                CREDENTIALS_TOKEN_ENV: values["credentials_token"],
            }
        LOG.info("Functions now call the harness gateway at %s", values["lambda_endpoint"])
        return 200, {"attached": values["lambda_endpoint"]}


def error(code: str, message: str) -> dict[str, str]:
    return {"__type": code, "message": message}


def gateway_alive(url: str) -> bool:
    """Whether something still accepts connections where ``url`` points."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=PROBE_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


ATTACHMENT = Attachment()


def serve(request, **_kwargs):
    """The ``/_harness/attach`` route on LocalStack's router."""
    from localstack.http import Response

    try:
        parsed = json.loads(request.get_data() or b"null")
    except ValueError as e:
        status, body = 400, error("InvalidRequest", f"the body is not JSON: {e}")
    else:
        status, body = ATTACHMENT.attach(parsed)
    return Response(json.dumps(body), status=status, mimetype="application/json")


@hooks.on_infra_start()
def register_route():
    """Adds ``/_harness/attach`` to LocalStack's router (an ``on_infra_start`` hook)."""
    from localstack.services.edge import ROUTER

    ROUTER.add(path=ATTACH_PATH, endpoint=serve, methods=["POST"])
