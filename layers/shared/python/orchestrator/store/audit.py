"""An Execution's audit trail (SPEC §3): events under its partition, in id (time) order.

A target's move carries its event to the stream fold (:mod:`orchestrator.store.counters`),
which puts it here; what happens to the Execution itself is recorded directly."""

from __future__ import annotations

from typing import Any

from orchestrator.domain.audit import AuditEvent
from orchestrator.store import keys
from orchestrator.store.execution_items import audit_from_item, audit_item
from orchestrator.store.table import Table


class AuditStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def record(self, execution_id: str, event: AuditEvent) -> None:
        self.table.put(audit_item(execution_id, event.as_item()))

    def page(
        self, execution_id: str, *, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[AuditEvent], dict[str, Any] | None]:
        items, last = self.table.query_page(
            index=None,
            key_condition="PK = :pk AND begins_with(SK, :a)",
            values={":pk": keys.execution_partition(execution_id), ":a": keys.AUDIT_PREFIX},
            limit=limit,
            start_key=start_key,
        )
        return [audit_from_item(i) for i in items], last
