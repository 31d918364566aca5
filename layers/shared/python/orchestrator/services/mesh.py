"""The mesh (SPEC §18): peers with pair keys, key rotation, endpoints
(docs/node-state-plane.md §1, §2, §6).

Every change of a node's place in the mesh (registration, deregistration, key rotation, a new
endpoint) is one transaction that also bumps the project's ``mesh_version`` and writes one
event to the project's feed. The peer list of a version is materialized once as an S3 object
and kept in this container's memory: a reader reads the version (one small read) and serves
the peers from memory, or one S3 GET; only the first reader of a version builds it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock
from typing import TYPE_CHECKING, Any

from orchestrator import secrets
from orchestrator.domain.feed import Audience, FeedEvent, PeerKeyRef
from orchestrator.domain.mesh import MeshPeer, parse_endpoint, parse_public_key, peer_entries
from orchestrator.domain.models import Node, Permission
from orchestrator.domain.node_events import NodeEvent
from orchestrator.errors import NodeDeregistered, PeerEntryConflict
from orchestrator.services.access import authorize_project
from orchestrator.services.context import Context
from orchestrator.store.feeds import project_feed
from orchestrator.store.nodes import PeerChanged

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

CACHED_PROJECTS = 64
BUILD_ATTEMPTS = 3
CHANGE_ATTEMPTS = 3


@dataclass(frozen=True)
class Snapshot:
    mesh_version: int
    peers: tuple[MeshPeer, ...]


class SnapshotCache:
    """The newest snapshot seen per project, for the container's life (bounded, LRU)."""

    def __init__(self, size: int = CACHED_PROJECTS) -> None:
        self.size = size
        self._entries: OrderedDict[str, Snapshot] = OrderedDict()
        self._lock = Lock()

    def get(self, project_id: str, at_least: int) -> Snapshot | None:
        with self._lock:
            found = self._entries.get(project_id)
            if found is None or found.mesh_version < at_least:
                return None
            self._entries.move_to_end(project_id)
            return found

    def put(self, project_id: str, snapshot: Snapshot) -> None:
        with self._lock:
            current = self._entries.get(project_id)
            if current is None or current.mesh_version < snapshot.mesh_version:
                self._entries[project_id] = snapshot
            self._entries.move_to_end(project_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


CACHE = SnapshotCache()


def snapshot(ctx: Context, project_id: str) -> Snapshot:
    """The project's peers at its current mesh version or newer: from memory, else the
    version's S3 object, else built (one Query, one PUT). Never older than the version read."""
    version = ctx.mesh.version(project_id)
    cached = CACHE.get(project_id, version)
    if cached is not None:
        return cached
    stored = ctx.mesh_snapshots.get(project_id, version)
    if stored is not None:
        found = Snapshot(version, tuple(stored))
        CACHE.put(project_id, found)
        return found
    return _build(ctx, project_id, version)


def _build(ctx: Context, project_id: str, version: int) -> Snapshot:
    """Query the peers, then read the version again: unchanged, the peers are exactly that
    version's (a change commits its peer entry and its bump together), and are stored under
    it, so two builders of one version write the same object. A mesh changing under the
    build is tried again; peers still moving are served (newer than the version read) but not
    stored."""
    for _ in range(BUILD_ATTEMPTS):
        peers = tuple(ctx.mesh.peers(project_id))
        confirmed = ctx.mesh.version(project_id)
        if confirmed == version:
            ctx.mesh_snapshots.put(project_id, version, peers)
            built = Snapshot(version, peers)
            CACHE.put(project_id, built)
            return built
        version = confirmed
    return Snapshot(version, peers)


def peers_for(ctx: Context, project_id: str, node_id: str, key_version: int) -> list[dict[str, Any]]:
    """The other active nodes of the project as the node receives them, each with its pair key."""
    return peer_entries(secrets.mesh_key(), project_id, (node_id, key_version), snapshot(ctx, project_id).peers)


# Changes ---------------------------------------------------------------------------------
def _announce(
    ctx: Context, node: Node, event_type: str, fields: dict[str, Any], *, with_psk: bool
) -> list[TransactWriteItemTypeDef]:
    """The bump of the project's mesh version and the one feed event telling the other nodes,
    as operations of the change's transaction (the event id minted just before the write)."""
    now = ctx.clock.now()
    event = FeedEvent.new(
        ctx.ids.new_id(),
        event_type,
        now,
        fields,
        audience=Audience(exclude_node=node.id),
        psk_peer=PeerKeyRef(peer_id=node.id, key_version=node.key_version) if with_psk else None,
    )
    return [ctx.mesh.bump_op(node.project_id), ctx.feeds.append_op(project_feed(node.project_id), event, now)]


def as_peer(node: Node) -> MeshPeer:
    return MeshPeer(
        id=node.id,
        public_key=node.public_key,
        mesh_ip=node.mesh_ip,
        endpoint=node.endpoint,
        key_version=node.key_version,
    )


def joined(ctx: Context, node: Node) -> list[TransactWriteItemTypeDef]:
    """Registration's share: the mesh version and ``peer_added`` (the new node's entry). A node
    registered without a mesh key is nobody's peer: nothing to announce."""
    if not node.public_key:
        return []
    return _announce(ctx, node, "peer_added", as_peer(node).event_fields(), with_psk=True)


def left(ctx: Context, node: Node) -> list[TransactWriteItemTypeDef]:
    """Deregistration's share: the mesh version and ``peer_removed {peer_id}``."""
    return _announce(ctx, node, "peer_removed", {"peer_id": node.id}, with_psk=False)


def rotate_key(ctx: Context, node: Node, new_public_key: str) -> list[dict[str, Any]]:
    """Store the node's new mesh key (``key_version`` + 1, a pending rotation request
    cleared), bump the mesh version and send ``peer_key_rotated`` to the other nodes, in one
    transaction; answer its peers with the pair keys of the new version."""
    public_key = parse_public_key(new_public_key)
    for _ in range(CHANGE_ATTEMPTS):
        rotated = node.model_copy(update={"public_key": public_key, "key_version": node.key_version + 1})
        try:
            ctx.nodes.rotate_key(
                node,
                public_key,
                ctx.clock.now(),
                _announce(ctx, rotated, "peer_key_rotated", as_peer(rotated).event_fields(), with_psk=True),
            )
        except PeerChanged:
            node = _current(ctx, node.id)  # its endpoint moved meanwhile: announce the current one
            continue
        return peers_for(ctx, node.project_id, node.id, rotated.key_version)
    raise PeerEntryConflict("The node's mesh entry kept changing during the rotation; try again.")


def report_endpoint(ctx: Context, node: Node, public_endpoint: str, nat_type: str) -> list[dict[str, str]]:
    """Record the node's public endpoint. The same endpoint again (the agent's 60 s refresh)
    writes nothing; a new one bumps the mesh version and sends ``peer_endpoint_changed``, in
    one transaction. Answers the other peers' known endpoints."""
    endpoint = parse_endpoint(public_endpoint)
    for _ in range(CHANGE_ATTEMPTS):
        if endpoint == node.endpoint:
            if nat_type != node.nat_type:
                ctx.nodes.set_nat_type(node, nat_type, ctx.clock.now())
            break
        moved = node.model_copy(update={"endpoint": endpoint})
        try:
            ctx.nodes.set_endpoint(
                node,
                endpoint,
                nat_type,
                ctx.clock.now(),
                _announce(ctx, moved, "peer_endpoint_changed", as_peer(moved).event_fields(), with_psk=True),
            )
            break
        except PeerChanged:
            node = _current(ctx, node.id)  # rotated, or moved by a concurrent report
    else:
        raise PeerEntryConflict("The node's mesh entry kept changing; try again.")
    return [
        {"peer_id": peer.id, "endpoint": peer.endpoint}
        for peer in snapshot(ctx, node.project_id).peers
        if peer.id != node.id and peer.endpoint
    ]


def request_key_rotation(ctx: Context, subject: str, project_id: str, node_id: str) -> None:
    """An operator asks a node to rotate its mesh key: its next heartbeat answers
    ``rotate_keys: true`` and its stream gets ``rotate_keys``, in one transaction (operator
    relation or above)."""
    authorize_project(ctx.tenancy, subject, project_id, Permission.DISPATCH)
    now = ctx.clock.now()
    event = NodeEvent.new(ctx.ids.new_id(), "rotate_keys", node_id, now, {"node_id": node_id})
    ctx.nodes.request_key_rotation(project_id, node_id, now, with_ops=[ctx.node_events.append_op(event, now)])


def _current(ctx: Context, node_id: str) -> Node:
    found = ctx.nodes.get_node_and_credential(node_id)
    if found is None or not found[0].is_active:
        raise NodeDeregistered(f"Node {node_id} is deregistered.")
    return found[0]
