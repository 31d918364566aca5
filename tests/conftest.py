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
