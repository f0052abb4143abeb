"""Unit tests of attaching a harness to a running emulator; run inside LocalStack's venv (see test_executor.py)."""

import os
import socket
import tempfile
import unittest

from localstack_native_executor.attach import (
    CA_FILE_ENV,
    CREDENTIALS_TOKEN_ENV,
    CREDENTIALS_URL_ENV,
    ENDPOINT_ENV,
    Attachment,
    gateway_alive,
)

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def body(**changes):
    values = {
        "lambda_endpoint": "https://127.0.0.1:45000",
        "ca_pem": PEM,
        "credentials_url": "http://127.0.0.1:45000/_harness/issue",
        "credentials_token": "secret-token",
    }
    values.update(changes)
    return values


class AttachTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.attachment = Attachment()

    def tearDown(self):
        self.dir.cleanup()

    def attach(self, payload, environ=None, alive=lambda url: True):
        return self.attachment.attach(
            payload, environ or {"PATH": "/bin"}, ca_dir=self.dir.name, alive=alive
        )

    def test_unattached_settings_are_the_environment_itself(self):
        environ = {"PATH": "/bin"}
        self.assertIs(self.attachment.settings(environ), environ)

    def test_an_attach_sets_all_four_settings_and_writes_the_ca(self):
        status, answer = self.attach(body())

        self.assertEqual((status, answer), (200, {"attached": "https://127.0.0.1:45000"}))
        settings = self.attachment.settings({"PATH": "/bin", ENDPOINT_ENV: ""})
        self.assertEqual(settings["PATH"], "/bin")
        self.assertEqual(settings[ENDPOINT_ENV], "https://127.0.0.1:45000")
        self.assertEqual(settings[CREDENTIALS_URL_ENV], "http://127.0.0.1:45000/_harness/issue")
        self.assertEqual(settings[CREDENTIALS_TOKEN_ENV], "secret-token")
        with open(settings[CA_FILE_ENV]) as ca:
            self.assertEqual(ca.read(), PEM)

    def test_malformed_bodies_are_refused_naming_the_field(self):
        cases = [
            (None, "JSON object"),
            (body(ca_pem="not a cert"), "ca_pem"),
            (body(lambda_endpoint="ftp://x"), "lambda_endpoint"),
            (body(credentials_token=""), "credentials_token"),
            ({k: v for k, v in body().items() if k != "credentials_url"}, "credentials_url"),
        ]
        for payload, named in cases:
            with self.subTest(named=named):
                status, answer = self.attach(payload)
                self.assertEqual(status, 400)
                self.assertIn(named, answer["message"])
        self.assertNotIn(ENDPOINT_ENV, self.attachment.settings({}))

    def test_a_running_environment_refuses_the_attach(self):
        self.attachment.started("env-1")

        status, answer = self.attach(body())

        self.assertEqual(status, 409)
        self.assertEqual(answer["__type"], "EnvironmentsRunning")
        self.assertNotIn(ENDPOINT_ENV, self.attachment.settings({}))
        # Once it stopped, the attach goes through.
        self.attachment.stopped("env-1")
        self.assertEqual(self.attach(body())[0], 200)

    def test_a_second_harness_or_a_started_gateway_refuses_the_attach(self):
        status, answer = self.attach(body(), {ENDPOINT_ENV: "https://127.0.0.1:4566"})
        self.assertEqual((status, answer["__type"]), (409, "AlreadyAttached"))

        self.assertEqual(self.attach(body())[0], 200)
        status, answer = self.attach(body(lambda_endpoint="https://127.0.0.1:46000"))
        self.assertEqual((status, answer["__type"]), (409, "AlreadyAttached"))
        self.assertEqual(
            self.attachment.settings({})[ENDPOINT_ENV], "https://127.0.0.1:45000"
        )

    def test_an_attachment_whose_gateway_is_gone_is_replaced(self):
        self.assertEqual(self.attach(body())[0], 200)
        old_ca = self.attachment.settings({})[CA_FILE_ENV]
        probed = []

        def gone(url):
            probed.append(url)
            return False

        status, _ = self.attach(body(lambda_endpoint="https://127.0.0.1:46000"), alive=gone)

        self.assertEqual(status, 200)
        self.assertEqual(probed, ["https://127.0.0.1:45000"])
        self.assertEqual(self.attachment.settings({})[ENDPOINT_ENV], "https://127.0.0.1:46000")
        self.assertFalse(os.path.exists(old_ca))


class GatewayAliveTest(unittest.TestCase):
    def test_a_listening_port_is_alive_and_a_closed_one_is_not(self):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            self.assertTrue(gateway_alive(f"https://127.0.0.1:{port}"))
        self.assertFalse(gateway_alive(f"https://127.0.0.1:{port}"))


if __name__ == "__main__":
    unittest.main()
