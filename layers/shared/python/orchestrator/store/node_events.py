"""Each node's event stream (SPEC §11): events under the node's partition, in id order,
kept ``EVENT_RETENTION_SECONDS``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from orchestrator.domain.node_events import NodeEvent
from orchestrator.store import keys
from orchestrator.store.table import Item, Table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

EVENT_RETENTION_SECONDS = 48 * 3600


class NodeEventStore:
    def __init__(self, table: Table, index_shards: int = 0) -> None:
        """``index_shards``: how many shards of the event index (GSI5) events are filed under
        (0: not indexed)."""
        self.table = table
        self.index_shards = index_shards

    def append(self, events: Iterable[NodeEvent], now: datetime) -> int:
        """Append events to nodes' streams (batched); returns the number of requests.

        ``events`` is consumed lazily, 25 at a time, as each batch write is sent
        (:meth:`Table.batch_put`): a generator that mints each event's id as it yields it mints
        it right before its write. A writer of many events must do so: an id minted long before
        its write could land behind a later event a reader (a node, the event relay) already
        read past."""
        return self.table.batch_put(_item(e, now, self.index_shards) for e in events)

    def append_op(self, event: NodeEvent, now: datetime) -> TransactWriteItemTypeDef:
        """One event's write, as one operation of a caller's transaction."""
        return self.table.put_op(_item(event, now, self.index_shards), condition="attribute_not_exists(PK)")

    def after(
        self, node_id: str, after_event_id: str | None, limit: int, *, consistent: bool = False
    ) -> list[NodeEvent]:
        """The node's events after ``after_event_id`` (all retained ones when None), oldest first
        (``consistent``: every write acknowledged before the read is in it)."""
        values = {
            ":pk": keys.node_partition(node_id),
            ":after": keys.EVENT_PREFIX + (after_event_id or ""),
            ":end": keys.EVENTS_END,
        }
        condition = "PK = :pk AND SK BETWEEN :after AND :end"  # "$" sorts right after "#"
        items, _ = self.table.query_page(
            index=None, key_condition=condition, values=values, limit=limit + 1, consistent=consistent
        )
        # BETWEEN is inclusive: drop the event the node already has.
        seen = keys.node_event(node_id, after_event_id or "")["SK"]
        return [NodeEvent.model_validate(i) for i in items if i["SK"] != seen][:limit]


def _item(event: NodeEvent, now: datetime, index_shards: int) -> Item:
    ttl = int(now.timestamp()) + EVENT_RETENTION_SECONDS
    return {
        **keys.node_event(event.node_id, event.event_id),
        **keys.event_index_keys(event.event_id, index_shards),
        "type": "node_event",
        "ttl": ttl,
        **event.as_item(),
    }
