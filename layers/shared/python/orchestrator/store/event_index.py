"""Reads of the event index (GSI5, ``domain.event_index``): the events filed under one
minute and shard after an id, each as a node's own event or as an event of a feed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.domain.feed import FeedEvent
from orchestrator.domain.node_events import NodeEvent
from orchestrator.store import keys
from orchestrator.store.keys import Key
from orchestrator.store.table import Item, Table


@dataclass(frozen=True)
class IndexedEvent:
    """An entry of the index: a node's own event (``feed`` None), one of ``feed``'s (a
    project's feed partition, or the deployment's), or a node whose labels changed
    (``event`` None, ``changed_node`` its id; ``entry_id`` the change's UUIDv7)."""

    event: NodeEvent | FeedEvent | None
    feed: str | None = None
    changed_node: str | None = None
    entry_id: str = ""

    @property
    def event_id(self) -> str:
        return self.event.event_id if self.event is not None else self.entry_id


class EventIndexStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def after(self, minute: str, shard: int, after_event_id: str) -> list[IndexedEvent]:
        """Every event filed under (``minute``, ``shard``) with an id after ``after_event_id``,
        in id order (all pages)."""
        return [_indexed(item) for item in self._query(minute, shard, after_event_id)]

    def ids_after(
        self, minute: str, shard: int, after_event_id: str, through: str | None = None
    ) -> list[tuple[str, Key]]:
        """The same events' ids and table keys only (those up to ``through`` included, if
        given): a re-read that mostly finds events already handed over transfers and parses a
        fraction of the bytes (DynamoDB reads the same)."""
        items = self._query(minute, shard, after_event_id, attributes=("PK", "SK", "GSI5SK"), through=through)
        return [
            (str(i["GSI5SK"]), {"PK": str(i["PK"]), "SK": str(i["SK"])}) for i in items if i["GSI5SK"] != after_event_id
        ]

    def load(self, event_keys: Sequence[Key]) -> list[IndexedEvent]:
        """The events at ``event_keys`` (100 per request), in id order."""
        found: list[IndexedEvent] = []
        for start in range(0, len(event_keys), 100):
            found.extend(_indexed(item) for item in self.table.batch_get(event_keys[start : start + 100]))
        return sorted(found, key=lambda e: e.event_id)

    def _query(
        self, minute: str, shard: int, after_event_id: str, attributes: Sequence[str] = (), through: str | None = None
    ) -> list[Item]:
        values = {":pk": keys.event_index_partition(minute, shard), ":after": after_event_id}
        condition = "GSI5PK = :pk AND GSI5SK > :after"
        if through is not None:  # BETWEEN is inclusive: the caller drops ``after_event_id``
            if through < after_event_id:
                raise ValueError("ids_after: through is before after_event_id")  # DynamoDB refuses it
            condition, values[":through"] = "GSI5PK = :pk AND GSI5SK BETWEEN :after AND :through", through
        return list(
            self.table.query_all(index=keys.EVENT_INDEX, key_condition=condition, values=values, attributes=attributes)
        )


def _indexed(item: dict[str, Any]) -> IndexedEvent:
    if item.get("type") == "feed_event":
        return IndexedEvent(FeedEvent.model_validate(item), feed=str(item["PK"]))
    if item.get("type") == "node_event":
        return IndexedEvent(NodeEvent.model_validate(item))
    return IndexedEvent(None, changed_node=str(item["id"]), entry_id=str(item["GSI5SK"]))
