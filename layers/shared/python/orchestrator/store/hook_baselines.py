"""Pinned hook checksums per Project (SPEC §6): what a hook's ``action_request`` carries."""

from __future__ import annotations

from datetime import datetime

from orchestrator.clock import rfc3339
from orchestrator.store import keys
from orchestrator.store.table import ConditionFailed, Table

NOT_EXISTS = "attribute_not_exists(PK)"


class HookBaselineStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, project_id: str, hook: str) -> str | None:
        item = self.table.get(keys.hook_baseline(project_id, hook), consistent=True)
        return str(item["checksum"]) if item else None

    def pin(
        self, project_id: str, hook: str, checksum: str, *, by: str, now: datetime, only_if_absent: bool = False
    ) -> bool:
        """Pin (or, trust on first use, pin only if none is pinned yet). True if written."""
        try:
            self.table.put(
                {
                    **keys.hook_baseline(project_id, hook),
                    "type": "hook_baseline",
                    "hook": hook,
                    "checksum": checksum,
                    "pinned_by": by,
                    "pinned_at": rfc3339(now),
                },
                condition=NOT_EXISTS if only_if_absent else None,
            )
        except ConditionFailed:
            return False
        return True
