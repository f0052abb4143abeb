"""Unit tests of the start-up tuning hook; run inside LocalStack's venv (see test_executor.py)."""

import unittest
from pathlib import Path

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


class SharedTimerTest(unittest.TestCase):
    def setUp(self):
        from localstack_native_executor.tuning import _Scheduler

        self.scheduler = _Scheduler()

    def timer(self, seconds, fired):
        from localstack_native_executor.tuning import SharedTimer

        return SharedTimer(seconds, fired.set, scheduler=self.scheduler)

    def test_a_started_timer_fires_after_its_interval(self):
        import threading
        import time

        fired = threading.Event()
        started = time.monotonic()
        self.timer(0.05, fired).start()
        self.assertTrue(fired.wait(2))
        self.assertGreaterEqual(time.monotonic() - started, 0.05)

    def test_a_cancelled_timer_never_fires(self):
        import threading

        fired, later = threading.Event(), threading.Event()
        timer = self.timer(0.05, fired)
        timer.start()
        timer.cancel()
        # A timer due after it has fired by then, on the same scheduler.
        self.timer(0.1, later).start()
        self.assertTrue(later.wait(2))
        self.assertFalse(fired.is_set())

    def test_timers_fire_in_deadline_order_not_start_order(self):
        import threading

        order = []
        done = threading.Event()
        from localstack_native_executor.tuning import SharedTimer

        SharedTimer(0.15, lambda: (order.append("late"), done.set()), scheduler=self.scheduler).start()
        SharedTimer(0.05, lambda: order.append("early"), scheduler=self.scheduler).start()
        self.assertTrue(done.wait(2))
        self.assertEqual(order, ["early", "late"])

    def test_a_timer_starts_once(self):
        import threading

        timer = self.timer(60, threading.Event())
        timer.start()
        with self.assertRaises(RuntimeError):
            timer.start()
        timer.cancel()

    def test_cancelled_timers_are_swept_from_the_queue(self):
        import threading

        for _ in range(self.scheduler.SWEEP_AT + 10):
            timer = self.timer(600, threading.Event())
            timer.start()
            timer.cancel()
        self.assertLess(len(self.scheduler._queue), self.scheduler.SWEEP_AT)
        self.assertEqual(self.scheduler.pending(), 0)

    def test_the_hook_replaces_the_execution_environments_timer(self):
        from localstack.services.lambda_.invocation import execution_environment

        from localstack_native_executor.tuning import SharedTimer, share_environment_timers

        assert_hook_replaces(
            self, share_environment_timers, execution_environment, "Timer", SharedTimer
        )


class CodeUrlSignerTest(unittest.TestCase):
    def code(self, version=None):
        from localstack.services.lambda_.invocation.lambda_models import S3Code

        return S3Code(
            id="fn-1",
            account_id="111111111111",
            s3_bucket="awslambda-us-east-1-tasks",
            s3_key="snapshots/111111111111/fn-1",
            s3_object_version=version,
            code_sha256="x",
            code_size=1,
        )

    def test_the_url_is_localstacks_own(self):
        from urllib.parse import parse_qs, urlsplit

        from localstack_native_executor.tuning import presigned_code_url

        for version in (None, "v2"):
            with self.subTest(version=version):
                code = self.code(version)
                ours = urlsplit(presigned_code_url(code, "http://127.0.0.1:4566"))
                theirs = urlsplit(code.generate_presigned_url("http://127.0.0.1:4566"))
                self.assertEqual(ours.netloc, theirs.netloc)
                self.assertEqual(ours.path, theirs.path)
                ours_query, theirs_query = parse_qs(ours.query), parse_qs(theirs.query)
                # Signed a moment apart: the expiry and signature may differ, nothing else.
                for varying in ("Expires", "Signature", "X-Amz-Date", "X-Amz-Signature"):
                    ours_query.pop(varying, None), theirs_query.pop(varying, None)
                self.assertEqual(ours_query, theirs_query)
                self.assertIn("AWSAccessKeyId", ours_query)

    def test_one_client_per_endpoint(self):
        from localstack_native_executor.tuning import code_url_signer

        first = code_url_signer("http://127.0.0.1:4566")
        self.assertIs(code_url_signer("http://127.0.0.1:4566"), first)
        self.assertIsNot(code_url_signer("http://localhost:4566"), first)

    def test_the_hook_replaces_get_functions_signer(self):
        from localstack.services.lambda_.invocation.lambda_models import S3Code

        from localstack_native_executor.tuning import presigned_code_url, reuse_code_url_signer

        assert_hook_replaces(
            self, reuse_code_url_signer, S3Code, "generate_presigned_url", presigned_code_url
        )


class TemplateLoaderTest(unittest.TestCase):
    def test_every_template_parses_as_with_localstacks_loader(self):
        import yaml
        from localstack.services.cloudformation.engine import yaml_parser

        from localstack_native_executor.tuning import c_template_loader

        loader = c_template_loader(yaml_parser.NoDatesSafeLoader)
        self.assertIsNotNone(loader, "LocalStack's venv has PyYAML with libyaml")
        templates = sorted(CLOUDFORMATION.glob("*.yaml"))
        self.assertGreaterEqual(len(templates), 6)
        for template in templates:
            with self.subTest(template=template.name):
                text = template.read_text()
                self.assertEqual(
                    yaml.load(text, loader), yaml.load(text, yaml_parser.NoDatesSafeLoader)
                )

    def test_short_forms_and_dates_read_as_localstack_reads_them(self):
        from localstack.services.cloudformation.engine import yaml_parser

        from localstack_native_executor.tuning import c_template_loader

        loader = c_template_loader(yaml_parser.NoDatesSafeLoader)
        text = "A: !GetAtt Fn.Arn\nB: !Sub [x, {y: !Ref Z}]\nC: 2024-01-01\n"
        import yaml

        self.assertEqual(
            yaml.load(text, loader),
            {"A": {"Fn::GetAtt": ["Fn", "Arn"]}, "B": {"Fn::Sub": ["x", {"y": {"Ref": "Z"}}]}, "C": "2024-01-01"},
        )

    def test_the_hook_swaps_the_loader_parse_yaml_uses(self):
        from localstack.services.cloudformation.engine import yaml_parser

        from localstack_native_executor.tuning import parse_templates_in_c

        original = yaml_parser.customloader
        try:
            parse_templates_in_c()
            self.assertIsNot(yaml_parser.customloader, original)
            self.assertEqual(yaml_parser.parse_yaml("R: !Ref X"), {"R": {"Ref": "X"}})
        finally:
            yaml_parser.customloader = original


CLOUDFORMATION = Path(__file__).resolve().parents[3] / "cloudformation"


def assert_hook_replaces(test, hook, owner, name, replacement):
    """Runs ``hook`` and checks it set ``owner.name`` to ``replacement``; restores the original."""
    original = getattr(owner, name)
    try:
        hook()
        test.assertIs(getattr(owner, name), replacement)
    finally:
        setattr(owner, name, original)


class MetricsOnOneThreadTest(unittest.TestCase):
    def test_metric_recordings_run_in_order_on_one_worker_thread(self):
        import concurrent.futures
        import threading

        from localstack_native_executor.tuning import metrics_on_one_thread

        started = []
        ran = []
        worker = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        start = metrics_on_one_thread(lambda *a, **k: started.append(k["name"]), worker)
        for i in range(5):
            result = start(
                lambda *args, i=i, **kwargs: ran.append((i, threading.current_thread().name)),
                name=f"record-cloudwatch-metric-f:$LATEST-{i}",
            )
            self.assertIsNone(result)
        worker.shutdown(wait=True)

        self.assertEqual(started, [], "no thread of their own")
        self.assertEqual([i for i, _ in ran], [0, 1, 2, 3, 4])
        self.assertEqual(len({name for _, name in ran}), 1)

    def test_a_failing_recording_is_logged_not_raised(self):
        import concurrent.futures

        from localstack_native_executor.tuning import metrics_on_one_thread

        worker = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        start = metrics_on_one_thread(lambda *a, **k: None, worker)

        def fails(*args, **kwargs):
            raise RuntimeError("cloudwatch is gone")

        with self.assertLogs("localstack_native_executor.tuning", level="INFO") as logged:
            start(fails, name="record-cloudwatch-metric-error-f:$LATEST")
            worker.shutdown(wait=True)
        self.assertIn("cloudwatch is gone", logged.output[0])

    def test_other_threads_start_as_before_and_wrapping_twice_changes_nothing(self):
        from localstack_native_executor.tuning import metrics_on_one_thread

        started = []

        def original(method, *args, **kwargs):
            started.append(kwargs.get("name"))
            return "a thread"

        start = metrics_on_one_thread(original, worker=None)
        self.assertIs(metrics_on_one_thread(start, worker=None), start)
        self.assertEqual(start(print, name="scale-environments"), "a thread")
        self.assertEqual(start(print), "a thread")
        self.assertEqual(started, ["scale-environments", None])

    def test_localstack_names_its_metric_threads_as_we_expect(self):
        # Guards against a LocalStack upgrade renaming them: the patch would
        # then start their threads as before, which costs time, not behaviour.
        import inspect

        from localstack.services.lambda_.invocation import version_manager

        from localstack_native_executor.tuning import METRIC_THREAD_NAME

        source = inspect.getsource(version_manager.LambdaVersionManager.invoke)
        self.assertEqual(source.count(f'name=f"{METRIC_THREAD_NAME}'), 2)
        self.assertIn("start_thread(", source)

    def test_the_hook_replaces_the_version_managers_start_thread(self):
        from localstack.services.lambda_.invocation import version_manager

        from localstack_native_executor.tuning import record_lambda_metrics_on_one_thread

        original = version_manager.start_thread
        try:
            record_lambda_metrics_on_one_thread()
            self.assertTrue(getattr(version_manager.start_thread, "_harness_metrics", False))
        finally:
            version_manager.start_thread = original


if __name__ == "__main__":
    unittest.main()
