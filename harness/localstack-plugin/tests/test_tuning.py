"""Unit tests of the start-up tuning hook; run inside LocalStack's venv (see test_executor.py)."""

import unittest

from localstack.services.cloudformation.resource_provider import ResourceProviderExecutor

from localstack_native_executor.tuning import POLL_ENV, poll_interval, set_poll_interval


class PollIntervalTest(unittest.TestCase):
    def test_unset_or_blank_keeps_localstacks_interval(self):
        self.assertIsNone(poll_interval({}))
        self.assertIsNone(poll_interval({POLL_ENV: "  "}))

    def test_a_positive_number_is_taken(self):
        self.assertEqual(poll_interval({POLL_ENV: "0.1"}), 0.1)

    def test_nonsense_and_non_positive_values_are_refused(self):
        for raw in ("fast", "0", "-1"):
            with self.subTest(raw=raw):
                self.assertIsNone(poll_interval({POLL_ENV: raw}))


class SetPollIntervalTest(unittest.TestCase):
    def test_only_sleep_time_changes_on_a_stand_in_class(self):
        class Executor:
            def deploy_loop(self, provider, resource, payload, max_timeout=300, sleep_time=5):
                return max_timeout, sleep_time

        set_poll_interval(Executor, 0.25)

        self.assertEqual(Executor().deploy_loop(None, None, None), (300, 0.25))

    def test_localstacks_executor_has_the_parameter_we_patch(self):
        # Guards against a LocalStack upgrade renaming it: the patch would then fail loudly.
        code = ResourceProviderExecutor.deploy_loop.__code__
        self.assertIn("sleep_time", code.co_varnames[: code.co_argcount])


if __name__ == "__main__":
    unittest.main()
