"""What the in-process benches share: fake credentials and quiet Powertools, set before the
library is imported (import this module first), and a counter of the requests the
library's AWS clients make (the cost users pay)."""

from __future__ import annotations

import os
import warnings
from collections import Counter
from typing import Any

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
)
for _name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
    del os.environ[_name]

warnings.filterwarnings("ignore", message="No application metrics to publish")

from orchestrator import aws  # noqa: E402  (after the environment it reads)


class Counting:
    """Counts the requests made on the library's clients of ``services`` (DynamoDB by
    default), by operation name, or ``service:operation`` when there are several."""

    def __init__(self, services: tuple[str, ...] = ("dynamodb",)) -> None:
        self.calls: Counter[str] = Counter()
        self.qualified = len(services) > 1
        for service in services:
            getattr(aws, service)().meta.events.register("before-call", self.on_call)

    def on_call(self, model: Any, **_: Any) -> None:
        name = f"{model.service_model.service_name}:{model.name}" if self.qualified else model.name
        self.calls[name] += 1

    def take(self) -> Counter[str]:
        taken, self.calls = self.calls, Counter()
        return taken
