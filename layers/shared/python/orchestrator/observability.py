"""Logger, Tracer and Metrics, created once for every function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths

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
