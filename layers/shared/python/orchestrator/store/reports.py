"""A node's report entries and drift reports, under the node's partition (SPEC §18).

Report entries: ``NODE#n / REPORT#<key>``, one per key, each write a new ``GSI1SK`` (a
UUIDv7) under ``GSI1PK = NODE#n#REPORTS``, so the newest written sorts last on the index.
Drift reports: ``NODE#n / DRIFT#<uuidv7>``, reaped by TTL after 30 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from orchestrator.clock import parse_rfc3339, rfc3339
from orchestrator.domain.reports import (
    DRIFT_RETENTION_SECONDS,
    DriftCorrection,
    DriftReport,
    ReportBatch,
    ReportEntry,
    StoredReport,
    conflicting_keys,
)
from orchestrator.errors import DatastoreUnavailable, ReportVersionConflict
from orchestrator.store import keys
from orchestrator.store.table import Item, Table, TransactionCanceled

# The version rule (domain.reports.accepts_version) as a write condition.
NEWER_VERSION = "attribute_not_exists(PK) OR #version < :version"


class ReportStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    # Report entries ------------------------------------------------------------------
    def sync(self, node_id: str, batch: ReportBatch, write_ids: Sequence[str], now: datetime) -> None:
        """Write the whole batch or nothing, in one ``TransactWriteItems``: each entry a put
        over an older version (or none), each deleted key a delete. An entry whose version is
        not greater than the stored one cancels it: 409 ``report_version_conflict`` naming
        every such key."""
        operations = [
            self.table.put_op(
                _report_item(node_id, entry, write_id, now),
                condition=NEWER_VERSION,
                names={"#version": "version"},
                values={":version": entry.version},
            )
            for entry, write_id in zip(batch.entries, write_ids, strict=True)
        ]
        operations += [self.table.delete_op(keys.node_report(node_id, key)) for key in batch.deleted]
        if not operations:
            return
        # A TransactionConflict is sent again by Table.transact (then 503).
        try:
            self.table.transact(operations)
        except TransactionCanceled as exc:
            refused = conflicting_keys(batch, exc.reasons)
            if refused:
                raise ReportVersionConflict(
                    "Each of these entries has a version not greater than the stored one; nothing of the batch"
                    " was written.",
                    keys=refused,
                ) from exc
            raise DatastoreUnavailable("The datastore is temporarily unavailable.") from exc

    def list_reports(
        self, node_id: str, *, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[StoredReport], dict[str, Any] | None]:
        """The node's entries, the most recently written first."""
        items, last = self.table.query_page(
            index="GSI1",
            key_condition="GSI1PK = :pk",
            values={":pk": keys.node_reports_gsi1(node_id)},
            limit=limit,
            start_key=start_key,
            forward=False,
        )
        return [_stored_report(i) for i in items], last

    # Drift -----------------------------------------------------------------------------
    def add_drift(self, node_id: str, drift: DriftReport) -> None:
        """One item per report (its id is fresh: the put is conditional only as a guard)."""
        self.table.put(
            {
                **keys.node_drift(node_id, drift.id),
                "type": "node_drift",
                "id": drift.id,
                "timestamp": drift.timestamp,
                "corrections": [c.model_dump() for c in drift.corrections],
                "received_at": rfc3339(drift.received_at),
                "ttl": int(drift.received_at.timestamp()) + DRIFT_RETENTION_SECONDS,
            },
            condition="attribute_not_exists(PK)",
        )

    def list_drift(
        self, node_id: str, *, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[DriftReport], dict[str, Any] | None]:
        """The node's drift reports, newest first (UUIDv7 ids sort by time)."""
        items, last = self.table.query_page(
            index=None,
            key_condition="PK = :pk AND begins_with(SK, :drift)",
            values={":pk": keys.node_partition(node_id), ":drift": keys.DRIFT_PREFIX},
            limit=limit,
            start_key=start_key,
            forward=False,
        )
        return [_drift(i) for i in items], last


def _report_item(node_id: str, entry: ReportEntry, write_id: str, now: datetime) -> Item:
    return {
        **keys.node_report(node_id, entry.key),
        "type": "node_report",
        "key": entry.key,
        "content_type": entry.content_type,
        "payload_json": entry.payload_json,
        "version": entry.version,
        "updated_at": entry.updated_at,
        "received_at": rfc3339(now),
        "GSI1PK": keys.node_reports_gsi1(node_id),
        "GSI1SK": write_id,
    }


def _stored_report(item: Item) -> StoredReport:
    return StoredReport(
        key=item["key"],
        content_type=item.get("content_type", ""),
        payload_json=item["payload_json"],
        version=int(item["version"]),
        updated_at=item.get("updated_at", ""),
        received_at=parse_rfc3339(item["received_at"]),
    )


def _drift(item: Item) -> DriftReport:
    return DriftReport(
        id=item["id"],
        timestamp=item.get("timestamp", ""),
        corrections=tuple(DriftCorrection.model_validate(c) for c in item.get("corrections", [])),
        received_at=parse_rfc3339(item["received_at"]),
    )
