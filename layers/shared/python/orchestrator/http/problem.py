"""Problem+JSON (RFC 9457) documents: the single place errors become responses."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.errors import OrchestratorError

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:plexsphere:problem:"


def problem_document(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    correlation_id: str,
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "correlation_id": correlation_id,
    }
    for key, value in (extensions or {}).items():
        document.setdefault(key, value)
    return document


def problem_response(error: OrchestratorError, *, instance: str, correlation_id: str) -> Response[str]:
    document = problem_document(
        status=error.status,
        code=error.problem_code,
        title=error.title,
        detail=error.detail,
        instance=instance,
        correlation_id=correlation_id,
        extensions=error.extensions,
    )
    headers: dict[str, str | list[str]] = {"X-Correlation-Id": correlation_id}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="plexsphere"'
    retry_after = error.extensions.get("retry_after")
    if isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)
    return Response(
        status_code=error.status,
        content_type=PROBLEM_CONTENT_TYPE,
        body=json.dumps(document, separators=(",", ":")),
        headers=headers,
    )
