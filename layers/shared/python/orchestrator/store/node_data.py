"""A node's operator data entries (SPEC §18): ``NODE#<id> / DATA#<key>``, beside the node's
item and event stream. Each change is one transaction: the entry, the node's data revision
(checked and bumped, so changes of one node's entries are serialized) and the
``node_state_updated`` event carrying every entry after it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from orchestrator.clock import parse_rfc3339, rfc3339
from orchestrator.domain.models import NodeStatus
from orchestrator.domain.node_data import DataEntry, DataOwner
from orchestrator.errors import NodeDeregistered, NodeNotFound
from orchestrator.store import keys
from orchestrator.store.table import Item, Table, TransactionCanceled

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

OWNER_ATTRIBUTES = ("project_id", "status", "metadata", "data_revision")


class NodeDataChanged(Exception):
    """Another change of the node's entries came first (its data revision moved)."""


class NodeDataStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def owner(self, node_id: str) -> DataOwner | None:
        item = self.table.get(keys.node(node_id), consistent=True, attributes=OWNER_ATTRIBUTES)
        if not item:
            return None
        return DataOwner(
            node_id=node_id,
            project_id=item["project_id"],
            active=item.get("status") == NodeStatus.ACTIVE.value,
            metadata=item.get("metadata") or {},
            data_revision=int(item.get("data_revision", 0)),
        )

    def entries(self, node_id: str) -> list[DataEntry]:
        """Every entry of the node, in key order (one Query)."""
        return [
            _entry(i)
            for i in self.table.query_all(
                index=None,
                key_condition="PK = :pk AND begins_with(SK, :prefix)",
                values={":pk": keys.node_partition(node_id), ":prefix": keys.DATA_PREFIX},
                consistent=True,
            )
        ]

    def put(self, owner: DataOwner, entry: DataEntry, event_op: TransactWriteItemTypeDef) -> None:
        item = {
            **keys.node_data(owner.node_id, entry.key),
            "type": "node_data",
            "key": entry.key,
            "content_type": entry.content_type,
            # JSON text: the payload comes back exactly as written (DynamoDB numbers would not).
            "payload_json": json.dumps(entry.payload, separators=(",", ":"), ensure_ascii=False),
            "version": entry.version,
            "updated_at": rfc3339(entry.updated_at),
        }
        self._transact(owner, self.table.put_op(item), event_op)

    def delete(self, owner: DataOwner, key: str, event_op: TransactWriteItemTypeDef) -> None:
        op = self.table.delete_op(keys.node_data(owner.node_id, key), condition="attribute_exists(PK)")
        self._transact(owner, op, event_op)

    def _transact(
        self, owner: DataOwner, entry_op: TransactWriteItemTypeDef, event_op: TransactWriteItemTypeDef
    ) -> None:
        revision = self.table.update_op(
            keys.node(owner.node_id),
            update="SET data_revision = :next",
            condition="attribute_exists(PK) AND project_id = :project AND #status = :active AND "
            + ("data_revision = :seen" if owner.data_revision else "attribute_not_exists(data_revision)"),
            names={"#status": "status"},
            values={
                ":next": owner.data_revision + 1,
                ":project": owner.project_id,
                ":active": NodeStatus.ACTIVE.value,
                **({":seen": owner.data_revision} if owner.data_revision else {}),
            },
            old_on_failure=True,
        )
        try:
            self.table.transact([revision, entry_op, event_op])
        except TransactionCanceled as exc:
            if exc.reasons[0] == "ConditionalCheckFailed":
                node = exc.items[0]
                if node is None or node.get("project_id") != owner.project_id:
                    raise NodeNotFound(f"Node {owner.node_id} does not exist in this project.") from exc
                if node.get("status") != NodeStatus.ACTIVE.value:
                    raise NodeDeregistered(f"Node {owner.node_id} is deregistered.") from exc
            if "ConditionalCheckFailed" in exc.reasons:
                raise NodeDataChanged from exc
            raise


def _entry(item: Item) -> DataEntry:
    return DataEntry(
        key=item["key"],
        content_type=item["content_type"],
        payload=json.loads(item["payload_json"]),
        version=int(item["version"]),
        updated_at=parse_rfc3339(item["updated_at"]),
    )
