"""A node's event stream (SPEC §11): events stored unsigned, signed at each delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from orchestrator.clock import rfc3339


class NodeEvent(BaseModel):
    """One event for one node: ``payload`` is what the signed envelope carries (it starts with
    the event's own ``event_id`` and ``occurred_at``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: str
    event_type: str
    node_id: str
    occurred_at: str
    payload: dict[str, Any]
    execution_id: str | None = None

    @classmethod
    def new(
        cls,
        event_id: str,
        event_type: str,
        node_id: str,
        now: datetime,
        fields: dict[str, Any],
        *,
        execution_id: str | None = None,
    ) -> NodeEvent:
        """An event whose payload is ``event_id``, ``occurred_at``, then ``fields``."""
        occurred_at = rfc3339(now)
        return cls(
            event_id=event_id,
            event_type=event_type,
            node_id=node_id,
            occurred_at=occurred_at,
            payload={"event_id": event_id, "occurred_at": occurred_at, **fields},
            execution_id=execution_id,
        )

    def as_item(self) -> dict[str, Any]:
        """The event's attributes as its stream item holds them (keys and TTL are the store's)."""
        item: dict[str, Any] = {
            "node_id": self.node_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at,
            "payload": self.payload,
        }
        if self.execution_id is not None:
            item["execution_id"] = self.execution_id
        return item
