"""Reads of the event index (GSI5, ``domain.event_index``): the events filed under one
minute and shard after an id, each as a node's own event or as an event of a feed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.domain.feed import FeedEvent
from orchestrator.domain.node_events import NodeEvent
from orchestrator.store import keys
from orchestrator.store.table import Table

PAGE_SIZE = 500


@dataclass(frozen=True)
class IndexedEvent:
    """An event found in the index: a node's own (``feed`` None) or one of ``feed``'s
    (a project's feed partition, or the deployment's)."""

    event: NodeEvent | FeedEvent
    feed: str | None = None

    @property
    def event_id(self) -> str:
        return self.event.event_id


class EventIndexStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def after(self, minute: str, shard: int, after_event_id: str) -> list[IndexedEvent]:
        """Every event filed under (``minute``, ``shard``) with an id after ``after_event_id``,
        in id order (all pages)."""
        values = {":pk": keys.event_index_partition(minute, shard), ":after": after_event_id}
        found: list[IndexedEvent] = []
        start: dict[str, Any] | None = None
        while True:
            items, start = self.table.query_page(
                index=keys.EVENT_INDEX,
                key_condition="GSI5PK = :pk AND GSI5SK > :after",
                values=values,
                limit=PAGE_SIZE,
                start_key=start,
            )
            found.extend(_indexed(item) for item in items)
            if start is None:
                return found


def _indexed(item: dict[str, Any]) -> IndexedEvent:
    if item.get("type") == "feed_event":
        return IndexedEvent(FeedEvent.model_validate(item), feed=str(item["PK"]))
    return IndexedEvent(NodeEvent.model_validate(item))
