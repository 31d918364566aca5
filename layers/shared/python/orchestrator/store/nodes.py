"""Nodes, their hostname claims, NSK hash index, and enrollment tokens."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestrator.clock import Uuid7Generator, parse_rfc3339, rfc3339
from orchestrator.domain.credentials import NodeCredential
from orchestrator.domain.models import Capabilities, CohortNode, EnrollmentToken, Node, NodeStatus
from orchestrator.errors import (
    EnrollmentTokenInvalid,
    HostnameAlreadyRegistered,
    NodeDeregistered,
    NodeNotFound,
)
from orchestrator.store import keys
from orchestrator.store.table import ConditionFailed, Item, Table, TransactionCanceled

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

NOT_EXISTS = "attribute_not_exists(PK)"
ACTIVE = "attribute_exists(PK) AND #status = :active"


class MeshAddressTaken(Exception):
    """Another node of the project holds this mesh address (the registration wrote nothing)."""


class PeerChanged(Exception):
    """The node's key or endpoint changed since it was read (nothing was written)."""


class NodeStore:
    def __init__(self, table: Table, index_shards: int = 0) -> None:
        """``index_shards``: the event index's (a label change is filed in it)."""
        self.table = table
        self.index_shards = index_shards

    # Enrollment tokens -------------------------------------------------------
    def put_enrollment_token(self, token: EnrollmentToken) -> None:
        expires = int(token.expires_at.timestamp())
        self.table.put(
            {
                **keys.enrollment_token(token.token_hash),
                "type": "enrollment_token",
                "project_id": token.project_id,
                "domain_id": token.domain_id,
                "created_by": token.created_by,
                "created_at": rfc3339(token.created_at),
                "expires_at": rfc3339(token.expires_at),
                "expires_epoch": expires,
                # Kept a day past expiry so a late use still reads "expired", then reaped.
                "ttl": expires + 86_400,
            },
            condition=NOT_EXISTS,
        )

    def get_enrollment_token(self, token_hash: str) -> EnrollmentToken | None:
        item = self.table.get(keys.enrollment_token(token_hash), consistent=True)
        if item is None:
            return None
        return EnrollmentToken(
            token_hash=token_hash,
            project_id=item["project_id"],
            domain_id=item["domain_id"],
            created_by=item.get("created_by", ""),
            created_at=parse_rfc3339(item["created_at"]),
            expires_at=parse_rfc3339(item["expires_at"]),
            used=bool(item.get("used_at")),
        )

    def next_mesh_sequence(self, project_id: str) -> int:
        item = self.table.update(
            keys.project_mesh_counter(project_id),
            update="ADD #seq :one",
            names={"#seq": "seq"},
            values={":one": 1},
        )
        return int(item["seq"])

    # Registration ------------------------------------------------------------
    def register(
        self,
        node: Node,
        *,
        nsk_hash: str,
        token_hash: str,
        now: datetime,
        nsk_sealed: bytes | None = None,
        mesh_ops: Sequence[TransactWriteItemTypeDef] = (),
    ) -> None:
        """Consume the token, claim the hostname and the mesh address and create the node,
        atomically, with ``mesh_ops`` (the mesh version's bump and the ``peer_added`` event).

        A hostname conflict leaves the token unused; an invalid token wins over
        a conflict (it is checked first).
        """
        try:
            self.table.transact(
                [
                    self.table.update_op(
                        keys.enrollment_token(token_hash),
                        update="SET used_at = :now, used_by_node = :node",
                        condition="attribute_exists(PK) AND attribute_not_exists(used_at) AND expires_epoch > :epoch",
                        values={":now": rfc3339(now), ":node": node.id, ":epoch": int(now.timestamp())},
                    ),
                    self.table.put_op(
                        {
                            **keys.hostname_claim(node.project_id, node.hostname),
                            "type": "hostname_claim",
                            "node_id": node.id,
                        },
                        condition=NOT_EXISTS,
                    ),
                    self.table.put_op(
                        {**_node_item(node), "nsk_hash": nsk_hash, "nsk_sealed": nsk_sealed}, condition=NOT_EXISTS
                    ),
                    self.table.put_op(
                        {**keys.nsk_index(nsk_hash), "type": "nsk_index", "node_id": node.id},
                        condition=NOT_EXISTS,
                    ),
                    self.table.put_op(_mesh_claim_item(node), condition=NOT_EXISTS),
                    *mesh_ops,
                ]
            )
        except TransactionCanceled as exc:
            if exc.reasons[0] == "ConditionalCheckFailed":
                raise EnrollmentTokenInvalid("The enrollment token is invalid, expired or already used.") from exc
            if exc.reasons[1] == "ConditionalCheckFailed":
                raise HostnameAlreadyRegistered(
                    f"A node with hostname {node.hostname!r} is already registered in this project."
                ) from exc
            if exc.reasons[4] == "ConditionalCheckFailed":
                raise MeshAddressTaken(node.mesh_ip) from exc
            raise

    # Reads -------------------------------------------------------------------
    def get_node(self, node_id: str) -> Node | None:
        item = self.table.get(keys.node(node_id))
        return node_from_item(item) if item else None

    def get_credential(self, node_id: str) -> NodeCredential | None:
        """Only what NSK authentication reads. A strongly consistent read: a key revoked
        (deregistration, rotation) before it is refused."""
        item = self.table.get(keys.node(node_id), consistent=True, attributes=CREDENTIAL_ATTRIBUTES)
        return credential_from_item(node_id, item) if item else None

    def get_node_and_credential(self, node_id: str) -> tuple[Node, NodeCredential] | None:
        """The node and its credential from one strongly consistent read of the whole item,
        for a route that authenticates the node and needs its record too."""
        item = self.table.get(keys.node(node_id), consistent=True)
        return (node_from_item(item), credential_from_item(node_id, item)) if item else None

    def project_of(self, node_id: str) -> str | None:
        """The project a node belongs to (deregistered or not); None for an unknown node."""
        item = self.table.get(keys.node(node_id), attributes=("project_id",))
        return str(item["project_id"]) if item else None

    def get_sealed_nsk(self, node_id: str) -> bytes | None:
        """The node's NSK sealed under KMS (None for a node registered before it was kept, or
        deregistered), read only to wrap a secret for the node."""
        item = self.table.get(keys.node(node_id), consistent=True, attributes=("nsk_sealed",))
        return bytes(item["nsk_sealed"]) if item and item.get("nsk_sealed") else None

    def node_id_for_nsk(self, nsk_hash: str) -> str | None:
        item = self.table.get(keys.nsk_index(nsk_hash))
        return str(item["node_id"]) if item else None

    def list_nodes(
        self, project_id: str, *, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Node], dict[str, Any] | None]:
        items, last = self.table.query_page(
            index="GSI1",
            key_condition="GSI1PK = :pk",
            values={":pk": keys.project_nodes_gsi1(project_id)},
            limit=limit,
            start_key=start_key,
        )
        return [node_from_item(i) for i in items], last

    def iter_cohort_candidates(self, project_id: str) -> Iterator[CohortNode]:
        """Every node of the project (all pages, registration order), with only what cohort
        resolution reads: a 10,000-node cohort is several MB of full node items."""
        for item in self.table.query_all(
            index="GSI1",
            key_condition="GSI1PK = :pk",
            values={":pk": keys.project_nodes_gsi1(project_id)},
            attributes=COHORT_ATTRIBUTES,
        ):
            yield cohort_node_from_item(item)

    def iter_project_nodes(self, project_id: str) -> Iterator[Node]:
        """Every node of the project (all pages), in registration order."""
        for item in self.table.query_all(
            index="GSI1", key_condition="GSI1PK = :pk", values={":pk": keys.project_nodes_gsi1(project_id)}
        ):
            yield node_from_item(item)

    # Updates -----------------------------------------------------------------
    def update_capabilities(self, node_id: str, capabilities: Capabilities, now: datetime) -> Node:
        item = self._update_active(
            node_id,
            update="SET capabilities = :caps, updated_at = :now",
            values={":caps": capabilities.model_dump(mode="json"), ":now": rfc3339(now)},
        )
        return node_from_item(item)

    def set_labels(self, node_id: str, project_id: str, changes: dict[str, str | None], now: datetime) -> Node:
        """Set or remove individual labels atomically (other labels are untouched)."""
        names: dict[str, str] = {"#status": "status", "#labels": "labels"}
        values: dict[str, Any] = {":now": rfc3339(now), ":active": NodeStatus.ACTIVE.value, ":project": project_id}
        sets: list[str] = ["updated_at = :now"]
        removes: list[str] = []
        # The node item itself is filed in the event index under this change: an event relay
        # that holds its streams learns that its labels (which feed events concern it) changed.
        for attribute, entry in keys.event_index_keys(Uuid7Generator().new_id(), self.index_shards).items():
            names[f"#{attribute}"], values[f":{attribute}"] = attribute, entry
            sets.append(f"#{attribute} = :{attribute}")
        for index, (key, value) in enumerate(sorted(changes.items())):
            names[f"#l{index}"] = key
            if value is None:
                removes.append(f"#labels.#l{index}")
            else:
                values[f":l{index}"] = value
                sets.append(f"#labels.#l{index} = :l{index}")
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            item = self.table.update(
                keys.node(node_id),
                update=update,
                condition=ACTIVE + " AND project_id = :project",
                names=names,
                values=values,
            )
        except ConditionFailed as exc:
            if exc.item is None or exc.item.get("project_id") != project_id:
                raise NodeNotFound(f"Node {node_id} does not exist in this project.") from exc
            raise NodeDeregistered(f"Node {node_id} is deregistered.") from exc
        return node_from_item(item)

    def mark_events_delivered(self, node_id: str, event_id: str) -> None:
        """Advance the node's delivery cursor (never backwards: UUIDv7 ids sort by time)."""
        try:
            self.table.update(
                keys.node(node_id),
                update="SET events_delivered_through = :e",
                condition="attribute_exists(PK) AND (attribute_not_exists(events_delivered_through) "
                "OR events_delivered_through < :e)",
                values={":e": event_id},
                returns="NONE",
            )
        except ConditionFailed:
            return  # a concurrent stream already delivered further

    def heartbeat(self, node_id: str, now: datetime, report: dict[str, Any]) -> tuple[bool, bool]:
        """Record the heartbeat; return and clear the (reconcile, rotate_keys) requests."""
        item = self._update_active(
            node_id,
            update="SET last_heartbeat_at = :now, last_heartbeat = :report REMOVE reconcile_requested, "
            "rotate_keys_requested",
            values={":now": rfc3339(now), ":report": report},
            return_old=True,
        )
        return bool(item.get("reconcile_requested")), bool(item.get("rotate_keys_requested"))

    def deregister(
        self, node: Node, nsk_hash: str | None, now: datetime, mesh_ops: Sequence[TransactWriteItemTypeDef] = ()
    ) -> None:
        """Mark deregistered, revoke the NSK (its hash and index entry) and release the
        hostname and the mesh address, atomically, with ``mesh_ops`` (the mesh version's bump
        and the ``peer_removed`` event)."""
        operations = [
            self.table.update_op(
                keys.node(node.id),
                update="SET #status = :gone, deregistered_at = :now, updated_at = :now REMOVE nsk_hash, nsk_sealed",
                condition=ACTIVE,
                names={"#status": "status"},
                values={
                    ":gone": NodeStatus.DEREGISTERED.value,
                    ":now": rfc3339(now),
                    ":active": NodeStatus.ACTIVE.value,
                },
            ),
            self.table.delete_op(
                keys.hostname_claim(node.project_id, node.hostname),
                condition="node_id = :node",
                values={":node": node.id},
            ),
            # Nodes registered before addresses were claimed hold none: nothing to delete.
            self.table.delete_op(
                keys.mesh_ip_claim(node.project_id, node.mesh_ip),
                condition="attribute_not_exists(PK) OR node_id = :node",
                values={":node": node.id},
            ),
        ]
        if nsk_hash:
            operations.append(self.table.delete_op(keys.nsk_index(nsk_hash)))
        operations.extend(mesh_ops)
        try:
            self.table.transact(operations)
        except TransactionCanceled as exc:
            if exc.reasons[0] == "ConditionalCheckFailed":
                raise NodeDeregistered(f"Node {node.id} is already deregistered.") from exc
            raise

    # The mesh -------------------------------------------------------------------
    def rotate_key(
        self, node: Node, public_key: str, now: datetime, mesh_ops: Sequence[TransactWriteItemTypeDef]
    ) -> Node:
        """The node's new mesh key, its ``key_version`` + 1 and any pending rotation request
        cleared, on the node and its mesh address claim, with ``mesh_ops``, atomically; only if
        the node's peer entry is still the one ``node`` holds (else :class:`PeerChanged`)."""
        rotated = node.model_copy(update={"public_key": public_key, "key_version": node.key_version + 1})
        self._change_peer(
            node,
            rotated,
            node_update="SET public_key = :key, key_version = :next, updated_at = :now REMOVE rotate_keys_requested",
            values={":key": public_key, ":next": rotated.key_version, ":now": rfc3339(now)},
            mesh_ops=mesh_ops,
        )
        return rotated

    def set_endpoint(
        self, node: Node, endpoint: str, nat_type: str, now: datetime, mesh_ops: Sequence[TransactWriteItemTypeDef]
    ) -> Node:
        """The node's new public endpoint, on the node and its mesh address claim, with
        ``mesh_ops``, atomically; only if the node's peer entry is still the one ``node`` holds
        (else :class:`PeerChanged`)."""
        moved = node.model_copy(update={"endpoint": endpoint, "nat_type": nat_type})
        self._change_peer(
            node,
            moved,
            node_update="SET endpoint = :endpoint, nat_type = :nat, updated_at = :now",
            values={":endpoint": endpoint, ":nat": nat_type, ":now": rfc3339(now)},
            mesh_ops=mesh_ops,
        )
        return moved

    def set_nat_type(self, node: Node, nat_type: str, now: datetime) -> None:
        """A new NAT type behind the same endpoint: the node item only (no peer sees it)."""
        self._update_active(
            node.id,
            update="SET nat_type = :nat, updated_at = :now",
            values={":nat": nat_type, ":now": rfc3339(now)},
        )

    def request_key_rotation(
        self, project_id: str, node_id: str, now: datetime, with_ops: Sequence[TransactWriteItemTypeDef] = ()
    ) -> None:
        """Flag the node so its next heartbeat answers ``rotate_keys: true``, with ``with_ops``
        (its ``rotate_keys`` event) in the same transaction (404 if it is not a node of the
        project, 409 ``node_deregistered`` if it left; nothing written either way)."""
        flag = self.table.update_op(
            keys.node(node_id),
            update="SET rotate_keys_requested = :yes, rotate_keys_requested_at = :now",
            condition=ACTIVE + " AND project_id = :project",
            names={"#status": "status"},
            values={":yes": True, ":now": rfc3339(now), ":active": NodeStatus.ACTIVE.value, ":project": project_id},
            old_on_failure=True,
        )
        try:
            self.table.transact([flag, *with_ops])
        except TransactionCanceled as exc:
            if exc.reasons[0] != "ConditionalCheckFailed":
                raise
            old = exc.items[0]
            if old is None or old.get("project_id") != project_id:
                raise NodeNotFound(f"Node {node_id} does not exist in this project.") from exc
            raise NodeDeregistered(f"Node {node_id} is deregistered.") from exc

    def _change_peer(
        self,
        node: Node,
        changed: Node,
        *,
        node_update: str,
        values: dict[str, Any],
        mesh_ops: Sequence[TransactWriteItemTypeDef],
    ) -> None:
        # The condition pins the peer entry the caller built its event from: a concurrent
        # rotation or endpoint change makes this one fail and be rebuilt, never announce a
        # stale key or endpoint.
        same_peer = (
            ACTIVE
            + " AND (key_version = :kv"
            + (" OR attribute_not_exists(key_version))" if node.key_version == 0 else ")")
            + " AND (endpoint = :ep"
            + (" OR attribute_not_exists(endpoint))" if not node.endpoint else ")")
        )
        claim = _mesh_claim_item(changed)
        try:
            self.table.transact(
                [
                    self.table.update_op(
                        keys.node(node.id),
                        update=node_update,
                        condition=same_peer,
                        names={"#status": "status"},
                        values={
                            **values,
                            ":active": NodeStatus.ACTIVE.value,
                            ":kv": node.key_version,
                            ":ep": node.endpoint,
                        },
                        old_on_failure=True,
                    ),
                    # A node registered before addresses were claimed gets its claim here.
                    self.table.put_op(
                        claim,
                        condition="attribute_not_exists(PK) OR node_id = :node",
                        values={":node": node.id},
                    ),
                    *mesh_ops,
                ]
            )
        except TransactionCanceled as exc:
            if exc.reasons[0] == "ConditionalCheckFailed":
                old = exc.items[0]
                if old is None or old.get("status") != NodeStatus.ACTIVE.value:
                    raise NodeDeregistered(f"Node {node.id} is deregistered.") from exc
                raise PeerChanged(node.id) from exc
            if exc.reasons[1] == "ConditionalCheckFailed":
                raise MeshAddressTaken(node.mesh_ip) from exc
            raise

    def _update_active(self, node_id: str, *, update: str, values: dict[str, Any], return_old: bool = False) -> Item:
        try:
            return self.table.update(
                keys.node(node_id),
                update=update,
                condition=ACTIVE,
                names={"#status": "status"},
                values={**values, ":active": NodeStatus.ACTIVE.value},
                returns="ALL_OLD" if return_old else "ALL_NEW",
            )
        except ConditionFailed as exc:
            if exc.item is None:
                raise NodeNotFound(f"Node {node_id} does not exist.") from exc
            raise NodeDeregistered(f"Node {node_id} is deregistered.") from exc


def _node_item(node: Node) -> Item:
    return {
        **keys.node(node.id),
        "type": "node",
        "id": node.id,
        "project_id": node.project_id,
        "domain_id": node.domain_id,
        "hostname": node.hostname,
        "metadata": node.metadata,
        "labels": node.labels,
        "capabilities": node.capabilities.model_dump(mode="json"),
        "status": node.status.value,
        "mesh_ip": node.mesh_ip,
        "public_key": node.public_key,
        "key_version": node.key_version,
        "endpoint": node.endpoint,
        "registered_at": rfc3339(node.registered_at),
        "updated_at": rfc3339(node.updated_at),
        "GSI1PK": keys.project_nodes_gsi1(node.project_id),
        "GSI1SK": node.id,
    }


def _mesh_claim_item(node: Node) -> Item:
    """The node's mesh address claim, which is also its entry in the project's peer list."""
    return {
        **keys.mesh_ip_claim(node.project_id, node.mesh_ip),
        "type": "mesh_ip_claim",
        "node_id": node.id,
        "mesh_ip": node.mesh_ip,
        "public_key": node.public_key,
        "key_version": node.key_version,
        "endpoint": node.endpoint,
    }


COHORT_ATTRIBUTES = ("id", "hostname", "labels", "capabilities", "status")
CREDENTIAL_ATTRIBUTES = ("status", "nsk_hash", "events_delivered_through", "project_id", "labels", "key_version")


def cohort_node_from_item(item: Item) -> CohortNode:
    return CohortNode(
        id=item["id"],
        hostname=item["hostname"],
        labels=item.get("labels", {}),
        capabilities=Capabilities.model_validate(item.get("capabilities", {})),
        status=NodeStatus(item["status"]),
    )


def credential_from_item(node_id: str, item: Item) -> NodeCredential:
    return NodeCredential(
        node_id=node_id,
        active=item.get("status") == NodeStatus.ACTIVE.value,
        nsk_hash=item.get("nsk_hash"),
        events_delivered_through=item.get("events_delivered_through"),
        project_id=item.get("project_id"),
        labels=item.get("labels", {}),
        key_version=int(item.get("key_version", 0)),
    )


def node_from_item(item: Item) -> Node:
    return Node(
        id=item["id"],
        project_id=item["project_id"],
        domain_id=item["domain_id"],
        hostname=item["hostname"],
        metadata=item.get("metadata", {}),
        labels=item.get("labels", {}),
        capabilities=Capabilities.model_validate(item.get("capabilities", {})),
        status=NodeStatus(item["status"]),
        mesh_ip=item["mesh_ip"],
        public_key=item.get("public_key", ""),
        key_version=int(item.get("key_version", 0)),
        endpoint=item.get("endpoint", ""),
        nat_type=item.get("nat_type", ""),
        registered_at=parse_rfc3339(item["registered_at"]),
        updated_at=parse_rfc3339(item["updated_at"]),
        last_heartbeat_at=parse_rfc3339(item["last_heartbeat_at"]) if item.get("last_heartbeat_at") else None,
        deregistered_at=parse_rfc3339(item["deregistered_at"]) if item.get("deregistered_at") else None,
    )
