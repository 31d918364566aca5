"""What nodes report about themselves (SPEC §18): report entries and drift, written by the
node, read by the project's operators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.domain.credentials import NodeCredential
from orchestrator.domain.reports import DriftCorrection, DriftReport, ReportBatch, StoredReport, check_batch
from orchestrator.errors import DriftTooLarge
from orchestrator.services.context import Context
from orchestrator.services.nodes import readable_node


@dataclass(frozen=True)
class SyncResult:
    accepted: int
    deleted: int
    versions: dict[str, int]


def sync_reports(ctx: Context, caller: NodeCredential, batch: ReportBatch) -> SyncResult:
    """Store the node's batch whole or not at all (one transaction; 409 on a stale version)."""
    check_batch(batch)
    write_ids = [ctx.ids.new_id() for _ in batch.entries]  # minted just before the write: newest last
    ctx.reports.sync(caller.node_id, batch, write_ids, ctx.clock.now())
    return SyncResult(
        accepted=len(batch.entries),
        deleted=len(batch.deleted),
        versions={entry.key: entry.version for entry in batch.entries},
    )


MAX_DRIFT_BYTES = 256 * 1024


def record_drift(
    ctx: Context, caller: NodeCredential, timestamp: str, corrections: tuple[DriftCorrection, ...]
) -> DriftReport:
    """Keep one drift report (30 days): its corrections at most ``MAX_DRIFT_BYTES`` of UTF-8
    (413 ``drift_too_large``), so the item stays well under DynamoDB's 400 KB whatever the
    characters (the schema's bounds count characters, up to 4 bytes each)."""
    size = sum(len(c.type.encode()) + len(c.detail.encode()) for c in corrections)
    if size > MAX_DRIFT_BYTES:
        raise DriftTooLarge(f"The corrections are {size} bytes of text; at most {MAX_DRIFT_BYTES}.")
    drift = DriftReport(id=ctx.ids.new_id(), timestamp=timestamp, corrections=corrections, received_at=ctx.clock.now())
    ctx.reports.add_drift(caller.node_id, drift)
    return drift


def list_reports(
    ctx: Context, subject: str, project_id: str, node_id: str, *, limit: int, start_key: dict[str, Any] | None
) -> tuple[list[StoredReport], dict[str, Any] | None]:
    """A node's report entries, most recently written first (viewer)."""
    readable_node(ctx, subject, project_id, node_id)
    return ctx.reports.list_reports(node_id, limit=limit, start_key=start_key)


def list_drift(
    ctx: Context, subject: str, project_id: str, node_id: str, *, limit: int, start_key: dict[str, Any] | None
) -> tuple[list[DriftReport], dict[str, Any] | None]:
    """A node's drift reports of the last 30 days, newest first (viewer)."""
    readable_node(ctx, subject, project_id, node_id)
    return ctx.reports.list_drift(node_id, limit=limit, start_key=start_key)
