"""Feeds (a project's, the deployment's): events written once for many nodes, in id order,
kept as long as a node's own events."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from orchestrator.domain.feed import FeedEvent
from orchestrator.store import keys
from orchestrator.store.node_events import EVENT_RETENTION_SECONDS
from orchestrator.store.table import Item, Table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef


def project_feed(project_id: str) -> str:
    return keys.project_feed_partition(project_id)


DEPLOYMENT_FEED = keys.DEPLOYMENT_FEED


class FeedStore:
    def __init__(self, table: Table, index_shards: int = 0) -> None:
        """``index_shards``: as :class:`~orchestrator.store.node_events.NodeEventStore`'s."""
        self.table = table
        self.index_shards = index_shards

    def append(self, feed: str, event: FeedEvent, now: datetime) -> None:
        """One write, whatever the number of nodes the event concerns."""
        self.table.put(self._item(feed, event, now), condition="attribute_not_exists(PK)")

    def append_op(self, feed: str, event: FeedEvent, now: datetime) -> TransactWriteItemTypeDef:
        """The same write, as one operation of a caller's transaction."""
        return self.table.put_op(self._item(feed, event, now), condition="attribute_not_exists(PK)")

    def after(self, feed: str, after_event_id: str | None, limit: int, *, consistent: bool = False) -> list[FeedEvent]:
        """The feed's events after ``after_event_id`` (all retained ones when None), oldest first."""
        values = {
            ":pk": feed,
            ":after": keys.EVENT_PREFIX + (after_event_id or ""),
            ":end": keys.EVENTS_END,
        }
        items, _ = self.table.query_page(
            index=None,
            key_condition="PK = :pk AND SK BETWEEN :after AND :end",
            values=values,
            limit=limit + 1,
            consistent=consistent,
        )
        seen = keys.feed_event(feed, after_event_id or "")["SK"]
        return [FeedEvent.model_validate(i) for i in items if i["SK"] != seen][:limit]

    def _item(self, feed: str, event: FeedEvent, now: datetime) -> Item:
        return {
            **keys.feed_event(feed, event.event_id),
            **keys.event_index_keys(event.event_id, self.index_shards),
            "type": "feed_event",
            "ttl": int(now.timestamp()) + EVENT_RETENTION_SECONDS,
            **event.model_dump(mode="json", exclude_none=True),
        }
