"""Operator data entries for a node (SPEC §18): operators write, viewers read. Each change is
one transaction (entry, the node's data revision, and a ``node_state_updated`` event on that
node's own stream carrying its metadata and every entry, as plexd replaces its cache from it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from orchestrator.domain.models import Permission
from orchestrator.domain.node_data import (
    MAX_NODE_DATA_BYTES,
    DataEntry,
    DataOwner,
    encoded_data_size,
    state_update_fields,
    with_entry,
    without_key,
)
from orchestrator.domain.node_events import NodeEvent
from orchestrator.errors import NodeDataConflict, NodeDataNotFound, NodeDataTooLarge, NodeDeregistered, NodeNotFound
from orchestrator.services.access import authorize_project
from orchestrator.services.context import Context
from orchestrator.services.nodes import readable_node
from orchestrator.store.node_data import NodeDataChanged

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

T = TypeVar("T")
NODE_STATE_UPDATED = "node_state_updated"
WRITE_ATTEMPTS = 3


@dataclass(frozen=True)
class DataWrite:
    entry: DataEntry
    created: bool


def put_entry(
    ctx: Context, subject: str, project_id: str, node_id: str, key: str, *, content_type: str, payload: Any
) -> DataWrite:
    """Create (version 1) or replace (version + 1) the node's entry ``key``. Operators and up."""
    authorize_project(ctx.tenancy, subject, project_id, Permission.OPERATE)

    def attempt() -> DataWrite:
        owner = _writable_owner(ctx, project_id, node_id)
        entries = ctx.node_data.entries(node_id)
        current = next((e for e in entries if e.key == key), None)
        now = ctx.clock.now()
        entry = DataEntry(
            key=key,
            content_type=content_type,
            payload=payload,
            version=(current.version if current else 0) + 1,
            updated_at=now,
        )
        after = with_entry(entries, entry)
        size = encoded_data_size(after)
        if size > MAX_NODE_DATA_BYTES:
            raise NodeDataTooLarge(
                f"The node's data entries would encode to {size} bytes; at most {MAX_NODE_DATA_BYTES} fit in one"
                " node_state_updated event."
            )
        ctx.node_data.put(owner, entry, _state_event_op(ctx, owner, after))
        return DataWrite(entry, created=current is None)

    return _retrying(attempt)


def delete_entry(ctx: Context, subject: str, project_id: str, node_id: str, key: str) -> None:
    """Delete the node's entry ``key`` (404 ``node_data_not_found`` when absent). Operators and up."""
    authorize_project(ctx.tenancy, subject, project_id, Permission.OPERATE)

    def attempt() -> None:
        owner = _writable_owner(ctx, project_id, node_id)
        entries = ctx.node_data.entries(node_id)
        if not any(e.key == key for e in entries):
            raise NodeDataNotFound(f"Node {node_id} has no data entry {key!r}.")
        ctx.node_data.delete(owner, key, _state_event_op(ctx, owner, without_key(entries, key)))

    _retrying(attempt)


def list_entries(ctx: Context, subject: str, project_id: str, node_id: str) -> list[DataEntry]:
    """Every entry of the node, in key order. Viewers and up."""
    readable_node(ctx, subject, project_id, node_id)
    return ctx.node_data.entries(node_id)


def node_entries(ctx: Context, node_id: str) -> list[dict[str, Any]]:
    """The node's entries as ``/state`` ``data`` carries them."""
    return [e.view() for e in ctx.node_data.entries(node_id)]


def _writable_owner(ctx: Context, project_id: str, node_id: str) -> DataOwner:
    owner = ctx.node_data.owner(node_id)
    if owner is None or owner.project_id != project_id:
        raise NodeNotFound(f"Node {node_id} does not exist in this project.")
    if not owner.active:
        raise NodeDeregistered(f"Node {node_id} is deregistered.")
    return owner


def _state_event_op(ctx: Context, owner: DataOwner, entries: list[DataEntry]) -> TransactWriteItemTypeDef:
    now = ctx.clock.now()
    event = NodeEvent.new(
        ctx.ids.new_id(), NODE_STATE_UPDATED, owner.node_id, now, state_update_fields(owner.metadata, entries)
    )
    return ctx.node_events.append_op(event, now)


def _retrying(attempt: Callable[[], T]) -> T:
    for _ in range(WRITE_ATTEMPTS):
        try:
            return attempt()
        except NodeDataChanged:
            continue
    raise NodeDataConflict("The node's data entries kept changing concurrently; retry.")
