"""Every hook the plugin declares in code is registered in pyproject.toml,
where LocalStack's plugin loader finds it; run inside LocalStack's venv."""

import tomllib
import unittest
from pathlib import Path

from localstack_native_executor import attach, deploy_check, tuning

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def declared_hooks():
    """``namespace -> {"module:function"}`` of the hooks the modules declare."""
    found = {}
    for module in (attach, deploy_check, tuning):
        for name, value in vars(module).items():
            spec = getattr(value, "__pluginspec__", None)
            if spec is None or getattr(value, "__module__", None) != module.__name__:
                continue
            found.setdefault(spec.namespace, set()).add(f"{module.__name__}:{name}")
    return found


class EntryPointsTest(unittest.TestCase):
    def test_every_declared_hook_is_registered(self):
        registered = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"]
        declared = declared_hooks()
        self.assertIn("localstack.hooks.on_infra_start", declared)
        for namespace, hooks in declared.items():
            with self.subTest(namespace=namespace):
                self.assertEqual(hooks, set(registered.get(namespace, {}).values()))


if __name__ == "__main__":
    unittest.main()
