"""Shared fixtures.

Fake AWS credentials are set before anything creates a client; moto mocks
start before any handler runs; the table, bucket, secrets and state machine
are created from template.yaml itself (tools/orchestrator_local.resources),
so tests cannot drift from the deployed shape.
"""

from __future__ import annotations

import os

for _name in list(os.environ):
    if _name.startswith("AWS_ENDPOINT_URL"):
        del os.environ[_name]
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)


def _parse_botocore_data_once() -> None:
    """Every test starts a fresh moto account, which makes boto3 start a fresh session, whose
    loader parses botocore's JSON data (endpoints, service models) again: about 40 ms per
    client, a third of an integration test's time. The files never change within a run, so
    each is parsed once per process and shared (botocore only reads them)."""
    import botocore.loaders

    parse = botocore.loaders.JSONFileLoader.load_file
    parsed: dict[str, object] = {}

    def load_file(self: botocore.loaders.JSONFileLoader, file_path: str) -> object:
        if file_path not in parsed:
            parsed[file_path] = parse(self, file_path)
        return parsed[file_path]

    botocore.loaders.JSONFileLoader.load_file = load_file  # type: ignore[method-assign]


_parse_botocore_data_once()
