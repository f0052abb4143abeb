"""Unit tests of the executor's pure helpers; run inside LocalStack's venv:

    python -m unittest discover -s harness/localstack-plugin/tests -t harness/localstack-plugin
"""

import base64
import json
import os
import stat
import tempfile
import unittest
from pathlib import Path

from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException

from localstack_native_executor.executor import (
    decode_client_context,
    function_env,
    inline_result,
    parse_announcement,
    shim_path,
)


class FunctionEnvTest(unittest.TestCase):
    def test_values_become_strings_and_task_root_points_at_the_code(self):
        env = function_env(
            {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": 128, "LAMBDA_TASK_ROOT": "/var/task", "UNSET": None},
            Path("/code/dir"),
            {"PATH": "/bin"},
        )
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128")
        self.assertEqual(env["LAMBDA_TASK_ROOT"], "/code/dir")
        self.assertNotIn("UNSET", env)
        self.assertEqual(env["PATH"], "/bin")

    def test_harness_endpoint_replaces_the_localstack_endpoint(self):
        env = function_env(
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"},
            Path("/c"),
            {"HARNESS_LAMBDA_ENDPOINT_URL": "http://127.0.0.1:9000"},
        )
        self.assertEqual(env["AWS_ENDPOINT_URL"], "http://127.0.0.1:9000")

    def test_the_harness_ca_becomes_the_functions_trust_store(self):
        env = function_env(
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"},
            Path("/c"),
            {
                "HARNESS_LAMBDA_ENDPOINT_URL": "https://127.0.0.1:9000",
                "HARNESS_LAMBDA_CA_FILE": "/run/ca.pem",
            },
        )
        self.assertEqual(env["AWS_ENDPOINT_URL"], "https://127.0.0.1:9000")
        self.assertEqual(env["SSL_CERT_FILE"], "/run/ca.pem")
        self.assertNotIn("SSL_CERT_FILE", function_env({}, Path("/c"), {}))

    def test_without_override_the_localstack_endpoint_stays(self):
        env = function_env({"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}, Path("/c"), {})
        self.assertEqual(env["AWS_ENDPOINT_URL"], "http://127.0.0.1:4566")

    def test_function_path_wins_and_localstack_secrets_do_not_leak(self):
        env = function_env(
            {"PATH": "/function/bin"},
            Path("/c"),
            {"PATH": "/bin", "LOCALSTACK_AUTH_TOKEN": "secret", "SHIM_DEBUG": "1"},
        )
        self.assertEqual(env["PATH"], "/function/bin")
        self.assertNotIn("LOCALSTACK_AUTH_TOKEN", env)
        self.assertEqual(env["SHIM_DEBUG"], "1")


class AnnouncementTest(unittest.TestCase):
    def test_address_is_parsed(self):
        self.assertEqual(parse_announcement(b"listening 127.0.0.1:40123\n"), ("127.0.0.1", 40123))

    def test_anything_else_is_rejected(self):
        for line in (b"", b"listening\n", b"listening 127.0.0.1\n", b"hello 1.2.3.4:5\n"):
            with self.subTest(line=line), self.assertRaises(ValueError):
                parse_announcement(line)


class ClientContextTest(unittest.TestCase):
    def test_base64_json_is_decoded(self):
        raw = base64.b64encode(json.dumps({"custom": {"a": "b"}}).encode()).decode()
        self.assertEqual(json.loads(decode_client_context(raw)), {"custom": {"a": "b"}})

    def test_plain_json_passes(self):
        self.assertEqual(decode_client_context('{"custom":{}}'), '{"custom":{}}')

    def test_missing_or_invalid_is_dropped(self):
        for raw in (None, "", "bm90IGpzb24=", "[1,2]"):
            with self.subTest(raw=raw):
                self.assertIsNone(decode_client_context(raw))


class ShimPathTest(unittest.TestCase):
    def test_unset_is_an_error_naming_the_variable(self):
        with self.assertRaisesRegex(LambdaRuntimeException, "HARNESS_RUNTIME_SHIM"):
            shim_path({})

    def test_non_executable_is_an_error(self):
        with tempfile.NamedTemporaryFile() as f:
            with self.assertRaisesRegex(LambdaRuntimeException, "not an executable"):
                shim_path({"HARNESS_RUNTIME_SHIM": f.name})

    def test_executable_is_returned(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "runtime-shim")
            Path(path).write_text("#!/bin/sh\n")
            os.chmod(path, stat.S_IRWXU)
            self.assertEqual(shim_path({"HARNESS_RUNTIME_SHIM": path}), path)


if __name__ == "__main__":
    unittest.main()


class InlineResultTest(unittest.TestCase):
    def test_logs_come_first_then_the_payload(self):
        logs = "START RequestId: r\nREPORT RequestId: r\tDuration: 1.00 ms\t\n"
        body = logs.encode() + b'{"ok":true}'
        headers = {"X-Harness-Outcome": "response", "X-Harness-Logs-Length": str(len(logs))}
        result = inline_result("r", 200, headers, body)
        self.assertEqual(result.request_id, "r")
        self.assertEqual(result.payload, b'{"ok":true}')
        self.assertEqual(result.logs, logs)
        self.assertFalse(result.is_error)

    def test_an_error_outcome_is_an_error_result(self):
        headers = {"X-Harness-Outcome": "error", "X-Harness-Logs-Length": "0"}
        result = inline_result("r", 200, headers, b'{"errorType":"X"}')
        self.assertTrue(result.is_error)
        self.assertEqual(result.logs, "")

    def test_an_answer_without_a_result_gives_none(self):
        # A shim that speaks LocalStack's own protocol answers 202 and posts callbacks.
        self.assertIsNone(inline_result("r", 202, {}, b""))
        self.assertIsNone(inline_result("r", 200, {"X-Harness-Outcome": "maybe"}, b""))

    def test_a_logs_length_beyond_the_body_gives_none(self):
        headers = {"X-Harness-Outcome": "response", "X-Harness-Logs-Length": "99"}
        self.assertIsNone(inline_result("r", 200, headers, b"short"))
        headers["X-Harness-Logs-Length"] = "many"
        self.assertIsNone(inline_result("r", 200, headers, b"short"))
