"""A project's policies (SPEC §18): one item each in the project's partition, versioned; each
change is written in one transaction with its ``policy_updated`` feed event."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from orchestrator.clock import parse_rfc3339, rfc3339
from orchestrator.domain.policies import Policy, PolicyRule
from orchestrator.store import keys
from orchestrator.store.table import Item, Table, TransactionCanceled

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

NOT_EXISTS = "attribute_not_exists(PK)"
AT_VERSION = "version = :seen"


class PolicyChanged(Exception):
    """Another write changed (or removed) the policy since it was read."""


class PolicyStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, project_id: str, policy_id: str) -> Policy | None:
        item = self.table.get(keys.policy(project_id, policy_id), consistent=True)
        return policy_from_item(item) if item else None

    def list_policies(
        self, project_id: str, *, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Policy], dict[str, Any] | None]:
        """One page of the project's policies, in policy id order."""
        items, last = self.table.query_page(
            index=None,
            key_condition="PK = :pk AND begins_with(SK, :prefix)",
            values={":pk": keys.project_partition(project_id), ":prefix": keys.POLICY_PREFIX},
            limit=limit,
            start_key=start_key,
        )
        return [policy_from_item(i) for i in items], last

    def all_policies(self, project_id: str) -> list[Policy]:
        """Every policy of the project: one Query (a page per MB)."""
        return [
            policy_from_item(i)
            for i in self.table.query_all(
                index=None,
                key_condition="PK = :pk AND begins_with(SK, :prefix)",
                values={":pk": keys.project_partition(project_id), ":prefix": keys.POLICY_PREFIX},
            )
        ]

    def put(
        self, policy: Policy, *, previous_version: int | None, with_ops: Sequence[TransactWriteItemTypeDef]
    ) -> None:
        """Create (``previous_version`` None: only if absent) or replace the version read, in
        one transaction with ``with_ops``; :class:`PolicyChanged` if another write came first."""
        if previous_version is None:
            op = self.table.put_op(_item(policy), condition=NOT_EXISTS)
        else:
            op = self.table.put_op(_item(policy), condition=AT_VERSION, values={":seen": previous_version})
        self._transact([op, *with_ops])

    def delete(
        self, project_id: str, policy_id: str, *, version: int, with_ops: Sequence[TransactWriteItemTypeDef]
    ) -> None:
        """Delete the version read, in one transaction with ``with_ops``."""
        op = self.table.delete_op(keys.policy(project_id, policy_id), condition=AT_VERSION, values={":seen": version})
        self._transact([op, *with_ops])

    def _transact(self, operations: list[TransactWriteItemTypeDef]) -> None:
        try:
            self.table.transact(operations)
        except TransactionCanceled as exc:
            if exc.reasons and exc.reasons[0] == "ConditionalCheckFailed":
                raise PolicyChanged from exc
            raise


def _item(policy: Policy) -> Item:
    return {
        **keys.policy(policy.project_id, policy.id),
        "type": "policy",
        "project_id": policy.project_id,
        "policy_id": policy.id,
        "selector": policy.selector,
        "rules": [rule.model_dump() for rule in policy.rules],
        "version": policy.version,
        "updated_at": rfc3339(policy.updated_at),
        "updated_by": policy.updated_by,
    }


def policy_from_item(item: Item) -> Policy:
    return Policy(
        project_id=item["project_id"],
        id=item["policy_id"],
        selector=item["selector"],
        rules=tuple(PolicyRule.model_validate(rule) for rule in item.get("rules", [])),
        version=int(item["version"]),
        updated_at=parse_rfc3339(item["updated_at"]),
        updated_by=item["updated_by"],
    )
