"""Logger, Tracer and Metrics, created once for every function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

logger = Logger(service="action-orchestrator")
tracer = Tracer(service="action-orchestrator")
metrics = Metrics(namespace="ActionOrchestrator", service="action-orchestrator")

F = TypeVar("F", bound=Callable[..., Any])


def api_entrypoint(handler: F) -> F:
    """Decorate an API Gateway handler: the same decorator order everywhere."""
    wrapped = logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)(
        metrics.log_metrics(tracer.capture_lambda_handler(handler, capture_response=False))
    )
    return cast(F, wrapped)


def task_entrypoint(handler: F) -> F:
    """Decorate an internal (workflow, stream, authorizer) handler."""
    wrapped = logger.inject_lambda_context(
        metrics.log_metrics(tracer.capture_lambda_handler(handler, capture_response=False))
    )
    return cast(F, wrapped)


def count(name: str) -> None:
    """Add 1 to a count metric. A no-op when metrics are disabled: Powertools then skips the
    per-invocation flush but still auto-flushes at 100 values, printing EMF blobs locally."""
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
