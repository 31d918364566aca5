"""Each node's event stream (SPEC §11): events under the node's partition, in id order,
kept ``EVENT_RETENTION_SECONDS``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from orchestrator.domain.node_events import NodeEvent
from orchestrator.store import keys
from orchestrator.store.table import Table

EVENT_RETENTION_SECONDS = 48 * 3600


class NodeEventStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def append(self, events: Iterable[NodeEvent], now: datetime) -> int:
        """Append events to nodes' streams (batched); returns the number of requests."""
        ttl = int(now.timestamp()) + EVENT_RETENTION_SECONDS
        return self.table.batch_put(
            [
                {**keys.node_event(e.node_id, e.event_id), "type": "node_event", "ttl": ttl, **e.as_item()}
                for e in events
            ]
        )

    def after(self, node_id: str, after_event_id: str | None, limit: int) -> list[NodeEvent]:
        """The node's events after ``after_event_id`` (all retained ones when None), oldest first."""
        values = {
            ":pk": keys.node_partition(node_id),
            ":after": keys.EVENT_PREFIX + (after_event_id or ""),
            ":end": keys.EVENTS_END,
        }
        condition = "PK = :pk AND SK BETWEEN :after AND :end"  # "$" sorts right after "#"
        items, _ = self.table.query_page(index=None, key_condition=condition, values=values, limit=limit + 1)
        # BETWEEN is inclusive: drop the event the node already has.
        seen = keys.node_event(node_id, after_event_id or "")["SK"]
        return [NodeEvent.model_validate(i) for i in items if i["SK"] != seen][:limit]
