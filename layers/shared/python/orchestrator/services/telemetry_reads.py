"""An operator reads a node's telemetry (SPEC §19): newest first, one bounded scan per page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.domain import telemetry_reads
from orchestrator.domain.models import Permission
from orchestrator.domain.telemetry import Kind
from orchestrator.domain.telemetry_reads import Page, Position, Window
from orchestrator.errors import NodeNotFound
from orchestrator.services.access import authorize_project
from orchestrator.services.context import Context
from orchestrator.services.nodes import MAX_NODE_ID_LENGTH
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
    reports, from one read of the node). The walk never goes below the hour the node
    registered in, nor above the hour of now (a little ahead, for clock skew)."""
    authorize_project(ctx.tenancy, subject, project_id, Permission.READ)
    node = ctx.nodes.get_node(node_id) if len(node_id) <= MAX_NODE_ID_LENGTH else None
    if node is None or node.project_id != project_id:
        raise NodeNotFound(f"Node {node_id} is not a node of this project.")
    objects = TelemetryObjects(bucket(ctx), kind, project_id, node_id)
    ceiling = ctx.clock.now() + telemetry_reads.CLOCK_AHEAD
    return telemetry_reads.scan(
        objects, start, limit=limit, floor=telemetry_reads.hour_of(node.registered_at), ceiling=ceiling
    )
