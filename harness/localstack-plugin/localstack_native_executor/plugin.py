"""The plux plugin LocalStack loads when ``LAMBDA_RUNTIME_EXECUTOR=native``."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class NativeRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    """Provides :class:`NativeRuntimeExecutor` under the name ``native``."""

    name = "native"

    def load(self, *args, **kwargs):
        # Imported lazily, like LocalStack's own docker plugin, so that merely
        # listing plugins does not pull in the Lambda service.
        from localstack_native_executor.executor import (
            NativeRuntimeExecutor,
            install_client_context_hook,
        )

        install_client_context_hook()
        return NativeRuntimeExecutor
