"""Cursor pagination shared by every list route."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from orchestrator import secrets
from orchestrator.http.api import query_param
from orchestrator.http.cursor import binding, decode_cursor, encode_cursor, parse_limit


@dataclass(frozen=True)
class PageRequest:
    limit: int
    start_key: dict[str, Any] | None
    bound_to: str


def page_request(
    app: APIGatewayRestResolver, *, subject: str, route: str, filters: Mapping[str, str | None]
) -> PageRequest:
    """``limit`` and the decoded ``cursor`` of this request, bound to caller, route and filters."""
    limit = parse_limit(query_param(app, "limit"))
    bound_to = binding(subject, route, filters)
    cursor = query_param(app, "cursor")
    start_key = decode_cursor(secrets.cursor_key(), cursor, bound_to) if cursor else None
    return PageRequest(limit=limit, start_key=start_key, bound_to=bound_to)


def page_body(items: list[dict[str, Any]], last_key: Mapping[str, Any] | None, page: PageRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"items": items}
    if last_key:
        body["next_cursor"] = encode_cursor(secrets.cursor_key(), last_key, page.bound_to)
    return body
