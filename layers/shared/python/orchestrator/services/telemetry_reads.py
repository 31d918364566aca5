"""An operator reads a node's telemetry (SPEC §19): newest first, one bounded scan per page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.domain import telemetry_reads
from orchestrator.domain.telemetry import Kind
from orchestrator.domain.telemetry_reads import Page, Position, Window
from orchestrator.services.context import Context
from orchestrator.services.nodes import readable_node
from orchestrator.settings import require
from orchestrator.store.telemetry_objects import TelemetryObjects

OPERATION = "node_telemetry_listing"
NOT_PROVISIONED = f"{OPERATION}_not_provisioned"


def bucket(ctx: Context) -> str:
    """The telemetry bucket (501 ``node_telemetry_listing_not_provisioned`` without it)."""
    return require(ctx.settings.telemetry_bucket, NOT_PROVISIONED)


def window(ctx: Context, since: str | None, until: str | None) -> Window:
    """The window ``since`` and ``until`` give (400 ``invalid_parameter``)."""
    return telemetry_reads.window(since, until, ctx.clock.now())


def start_position(window: Window, cursor: Mapping[str, Any] | None) -> Position:
    """Where the read starts: the cursor's position, else the top of ``window``. A cursor
    carries the window it was minted for, so a default ``until`` (now) does not move between
    pages."""
    return Position.from_cursor(cursor) if cursor is not None else telemetry_reads.first_position(window)


def read(ctx: Context, subject: str, project_id: str, node_id: str, *, kind: Kind, start: Position, limit: int) -> Page:
    """One page of the node's ``kind`` lines from ``start`` (viewer; 403/404 as the node's
    reports). The walk never goes below the hour the node registered in."""
    readable_node(ctx, subject, project_id, node_id)
    node = ctx.nodes.get_node(node_id)
    floor = telemetry_reads.hour_of(node.registered_at) if node is not None else None
    objects = TelemetryObjects(bucket(ctx), kind, project_id, node_id)
    return telemetry_reads.scan(objects, start, limit=limit, floor=floor)
