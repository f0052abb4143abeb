"""Unit tests of the deploy-check hook; run inside LocalStack's venv (see test_executor.py)."""

import copy
import io
import json
import unittest
import urllib.error

from localstack.services.cloudformation.resource_provider import (
    OperationStatus,
    ProgressEvent,
    ResourceProviderExecutor,
)

from localstack_native_executor.attach import CREDENTIALS_TOKEN_ENV, CREDENTIALS_URL_ENV
from localstack_native_executor.deploy_check import (
    ask,
    check_request,
    check_url,
    guard,
    report_ran,
)

ENVIRON = {
    CREDENTIALS_URL_ENV: "http://127.0.0.1:4566/_harness/execution-role-credentials",
    CREDENTIALS_TOKEN_ENV: "t0k3n",
}

PAYLOAD = {
    "awsAccountId": "111111111111",
    "stackId": "calleecloudformation",
    "region": "us-east-1",
    "resourceType": "AWS::Lambda::Function",
    "action": "Add",
    "requestData": {
        "logicalResourceId": "Function",
        "resourceProperties": {"Role": "arn:aws:iam::111111111111:role/r"},
        "previousResourceProperties": None,
    },
}


class Answer(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def opener_answering(body, seen):
    def opener(request, timeout):
        seen.append(request)
        return Answer(json.dumps(body).encode())

    return opener


class CheckUrlTest(unittest.TestCase):
    def test_the_check_sits_next_to_the_credentials_issuer(self):
        self.assertEqual(
            check_url(ENVIRON), ("http://127.0.0.1:4566/_harness/deploy-check", "t0k3n")
        )

    def test_without_an_issuer_or_token_nothing_is_checked(self):
        self.assertIsNone(check_url({}))
        self.assertIsNone(check_url({CREDENTIALS_URL_ENV: ENVIRON[CREDENTIALS_URL_ENV]}))


class AskTest(unittest.TestCase):
    def test_the_question_names_the_stack_resource_and_properties(self):
        question = check_request(PAYLOAD)
        self.assertEqual(question["StackName"], "calleecloudformation")
        self.assertEqual(question["Account"], "111111111111")
        self.assertEqual(question["LogicalResourceId"], "Function")
        self.assertEqual(question["Action"], "Add")
        self.assertEqual(question["Properties"]["Role"], "arn:aws:iam::111111111111:role/r")

    def test_an_allowed_handler_runs_and_the_token_is_sent(self):
        seen = []
        self.assertIsNone(ask(PAYLOAD, ENVIRON, opener_answering({"Allowed": True}, seen)))
        self.assertEqual(seen[0].get_header("X-harness-issuer-token"), "t0k3n")
        self.assertEqual(seen[0].full_url, "http://127.0.0.1:4566/_harness/deploy-check")

    def test_a_denial_carries_the_gateways_message(self):
        message = ask(
            PAYLOAD, ENVIRON, opener_answering({"Allowed": False, "Message": "no PassRole"}, [])
        )
        self.assertEqual(message, "no PassRole")

    def test_an_unreachable_gateway_fails_the_resource(self):
        def opener(request, timeout):
            raise urllib.error.URLError("connection refused")

        message = ask(PAYLOAD, ENVIRON, opener)
        self.assertIn("could not check the permissions of Function", message)

    def test_an_answer_without_allowed_true_is_a_denial(self):
        message = ask(PAYLOAD, ENVIRON, opener_answering({"Allowed": "yes"}, []))
        self.assertIn("denied Function", message)


class ReportRanTest(unittest.TestCase):
    def test_the_gateway_hears_which_handler_ran_with_the_token(self):
        seen = []
        self.assertIsNone(report_ran(PAYLOAD, ENVIRON, opener_answering({}, seen)))
        self.assertEqual(seen[0].full_url, "http://127.0.0.1:4566/_harness/handler-ran")
        self.assertEqual(seen[0].get_header("X-harness-issuer-token"), "t0k3n")
        self.assertEqual(
            json.loads(seen[0].data),
            {
                "StackName": "calleecloudformation",
                "Account": "111111111111",
                "Region": "us-east-1",
                "LogicalResourceId": "Function",
                "ResourceType": "AWS::Lambda::Function",
                "Action": "Add",
                "Properties": {"Role": "arn:aws:iam::111111111111:role/r"},
                "PreviousProperties": None,
                "Model": None,
            },
        )

    def test_the_gateway_hears_the_names_the_handler_generated(self):
        seen = []
        event = ProgressEvent(
            status=OperationStatus.SUCCESS,
            resource_model={"FunctionName": "stack-Function-ABC", "Arn": "arn:f"},
        )
        self.assertIsNone(report_ran(PAYLOAD, ENVIRON, opener_answering({}, seen), event=event))
        self.assertEqual(
            json.loads(seen[0].data)["Model"],
            {"FunctionName": "stack-Function-ABC", "Arn": "arn:f"},
        )

    def test_without_a_gateway_nobody_is_told(self):
        def opener(request, timeout):
            raise AssertionError("nothing to tell")

        self.assertIsNone(report_ran(PAYLOAD, {}, opener))

    def test_an_unreachable_gateway_is_a_failure(self):
        def opener(request, timeout):
            raise urllib.error.URLError("connection refused")

        message = report_ran(PAYLOAD, ENVIRON, opener)
        self.assertIn("could not be told that the handler of Function", message)


class GuardTest(unittest.TestCase):
    def test_a_denied_change_never_reaches_its_handler_and_is_asked_once(self):
        calls = []

        class Executor:
            def execute_action(self, provider, payload):
                calls.append("handler")
                return "ran"

        answers = iter(["denied: no PassRole", None])
        import localstack_native_executor.deploy_check as module

        real_ask, real_report = module.ask, module.report_ran
        module.ask = lambda payload, environ: next(answers)
        module.report_ran = lambda payload, environ, event=None: None
        try:
            guard(Executor, lambda message: ("failed", message), environ_source=lambda: ENVIRON)
            executor = Executor()
            first = copy.deepcopy(PAYLOAD)
            self.assertEqual(executor.execute_action(None, first), ("failed", "denied: no PassRole"))
            # An in-progress poll of the same change is not asked again.
            self.assertEqual(executor.execute_action(None, first), "ran")
            # The next resource of the change set, through the same executor
            # (the v2 engine's way), is asked.
            self.assertEqual(executor.execute_action(None, copy.deepcopy(PAYLOAD)), "ran")
            self.assertRaises(StopIteration, next, answers)
        finally:
            module.ask, module.report_ran = real_ask, real_report
        self.assertEqual(calls, ["handler", "handler"])

    def test_every_run_of_a_handler_is_reported_and_an_unheard_one_fails_the_resource(self):
        class Executor:
            def execute_action(self, provider, payload):
                return "ran"

        reports = []
        replies = iter([None, None, "the gateway is gone"])
        import localstack_native_executor.deploy_check as module

        real_ask, real_report = module.ask, module.report_ran
        module.ask = lambda payload, environ: None

        def report(payload, environ, event=None):
            reports.append((payload["requestData"]["logicalResourceId"], event))
            return next(replies)

        module.report_ran = report
        try:
            guard(Executor, lambda message: ("failed", message), environ_source=lambda: ENVIRON)
            executor = Executor()
            change = copy.deepcopy(PAYLOAD)
            self.assertEqual(executor.execute_action(None, change), "ran")
            # An in-progress poll runs the handler again, and may change more.
            self.assertEqual(executor.execute_action(None, change), "ran")
            self.assertEqual(
                executor.execute_action(None, change), ("failed", "the gateway is gone")
            )
        finally:
            module.ask, module.report_ran = real_ask, real_report
        self.assertEqual(reports, [("Function", "ran")] * 3)

    def test_localstacks_executor_has_the_method_we_wrap(self):
        # Guards against a LocalStack upgrade renaming it.
        code = ResourceProviderExecutor.execute_action.__code__
        self.assertEqual(code.co_varnames[:3], ("self", "resource_provider", "raw_payload"))


if __name__ == "__main__":
    unittest.main()
