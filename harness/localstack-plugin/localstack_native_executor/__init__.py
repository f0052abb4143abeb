"""Run LocalStack Lambda functions as native processes through ``runtime-shim``, without Docker."""
