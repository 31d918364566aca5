"""An Execution's audit trail: one event per thing that happened to it (SPEC §3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from orchestrator.clock import event_time
from orchestrator.domain.executions import TargetStatus


class AuditEvent(BaseModel):
    """``id, status, occurred_at, node_id?, detail?, actor``. ``occurred_at`` is the time the
    UUIDv7 id carries, so the trail in id order is in time order whichever clock minted it."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: TargetStatus
    occurred_at: str
    actor: str
    node_id: str | None = None
    detail: dict[str, Any] | None = None

    @classmethod
    def new(
        cls,
        event_id: str,
        now: datetime,
        *,
        status: TargetStatus,
        actor: str,
        node_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEvent:
        return cls(
            id=event_id,
            status=status,
            occurred_at=event_time(event_id, now),
            actor=actor,
            node_id=node_id,
            detail=detail or None,
        )

    def as_item(self) -> dict[str, Any]:
        """The event as the table (and a target's ``last_event``) holds it: absent fields left out."""
        item: dict[str, Any] = {"id": self.id, "status": self.status.value, "occurred_at": self.occurred_at}
        if self.node_id is not None:
            item["node_id"] = self.node_id
        item["actor"] = self.actor
        if self.detail:
            item["detail"] = self.detail
        return item


@dataclass(frozen=True)
class Closing:
    """Why and by whom open targets are closed (timeout, cancel, max_errors, a failed dispatch):
    each closed target gets an audit event saying so."""

    actor: str
    new_id: Callable[[], str]
    error: str | None = None

    def audit_event(self, node_id: str, old: TargetStatus, to: TargetStatus, now: datetime) -> AuditEvent:
        detail: dict[str, Any] = {"from": old.value}
        if self.error is not None:
            detail["reason"] = self.error
        return AuditEvent.new(self.new_id(), now, status=to, actor=self.actor, node_id=node_id, detail=detail)
