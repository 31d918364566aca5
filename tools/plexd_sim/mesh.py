"""The mesh half of a simulated ``plexd`` (SPEC §18): its WireGuard key, peers and endpoint.

What the agent does, read from its sources (``internal/wireguard``, ``internal/nat``,
``internal/reconcile``, ``internal/api``), without a WireGuard interface:

- It registers with the public half of a Curve25519 key pair (standard base64 of 32 bytes)
  and loads registration's ``peers`` into its peer table (``Manager.ConfigurePeers``).
- ``peer_added`` adds the payload's peer, ``peer_removed`` drops ``peer_id``,
  ``peer_key_rotated`` replaces the peer (old key out, new key and pair key in),
  ``peer_endpoint_changed`` updates the whole peer from the payload (``UpdatePeer`` is an
  upsert). Each payload is an ``api.Peer``: ``id, public_key, mesh_ip, endpoint,
  allowed_ips, psk``.
- A reconcile (``GET /state``) diffs ``peers`` against the table by id and field
  (``reconcile.diffPeers``): it adds, removes and updates, and reports each correction as
  drift (``peer_added``, ``peer_removed``, ``peer_updated``).
- ``PUT /v1/nodes/{id}/endpoint`` ``{public_endpoint, nat_type}`` after STUN discovery and
  every ``nat_traversal.refresh_interval`` (60 s); each ``peer_endpoints`` entry with an
  endpoint updates that peer's endpoint.
- Key rotation: seed 003 documents ``POST /v1/keys/rotate`` ``{node_id, new_public_key}``
  as the answer to ``rotate_keys`` (the event, or a heartbeat's ``rotate_keys: true``); the
  shipped agent only reconciles there, so the simulator does what the API describes: a new
  key pair, the call, and the answer's ``updated_peers`` (new pair keys) into the table.

One operator request reaches a node twice (the heartbeat flag and the event), so a rotation
is not started while another is in flight, nor for an event minted before the node's last
rotation began (its UUIDv7 id carries the time it was minted; the server clears the heartbeat
flag when a rotation commits, so the flag is never stale).

Everything here is thread-safe: a node's table is changed by its stream reader, by workers
(rotation and endpoint answers) and by reconciles.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from plexd_sim import wire

WIREGUARD_KEY_BYTES = 32
DEFAULT_ENDPOINT_INTERVAL = 60.0  # plexd's nat_traversal.refresh_interval
DEFAULT_NAT_TYPE = "full_cone"
PEER_EVENTS = frozenset({"peer_added", "peer_removed", "peer_key_rotated", "peer_endpoint_changed"})
MESH_EVENTS = PEER_EVENTS | {"rotate_keys"}


# --- keys and peers ----------------------------------------------------------------------------


def public_key_of(private_key: X25519PrivateKey) -> str:
    """A WireGuard public key as the API spells it: standard base64 of the raw 32 bytes."""
    return base64.b64encode(private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def _key_bytes(value: Any, name: str) -> str:
    """``value`` if it is standard base64 of 32 bytes, else :class:`ValueError`."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"{name} is not standard base64") from error
    if len(raw) != WIREGUARD_KEY_BYTES:
        raise ValueError(f"{name} is {len(raw)} bytes, not {WIREGUARD_KEY_BYTES}")
    return value


@dataclass(frozen=True)
class Peer:
    """One entry of a node's peer table (the agent's ``api.Peer``)."""

    id: str
    public_key: str
    mesh_ip: str
    endpoint: str
    allowed_ips: tuple[str, ...]
    psk: str = field(repr=False)

    @classmethod
    def from_wire(cls, value: Any) -> Peer:
        """A peer from registration, ``/state``, ``updated_peers`` or a ``peer_*`` payload;
        :class:`ValueError` when the agent could not configure it (no id, a key or pair key
        that is not 32 bytes of base64, fields of the wrong type). ``null`` strings and lists
        are Go's zero values."""
        if not isinstance(value, Mapping):
            raise ValueError("a peer must be an object")
        peer_id = value.get("id")
        if not isinstance(peer_id, str) or not peer_id:
            raise ValueError("a peer needs an id")
        mesh_ip, endpoint = value.get("mesh_ip") or "", value.get("endpoint") or ""
        allowed_ips = value.get("allowed_ips") or []
        if not isinstance(mesh_ip, str) or not isinstance(endpoint, str):
            raise ValueError(f"peer {peer_id}: mesh_ip and endpoint must be strings")
        if not isinstance(allowed_ips, list) or not all(isinstance(ip, str) for ip in allowed_ips):
            raise ValueError(f"peer {peer_id}: allowed_ips must be a list of strings")
        return cls(
            id=peer_id,
            public_key=_key_bytes(value.get("public_key"), f"peer {peer_id}: public_key"),
            mesh_ip=mesh_ip,
            endpoint=endpoint,
            allowed_ips=tuple(allowed_ips),
            psk=_key_bytes(value.get("psk"), f"peer {peer_id}: psk"),
        )


def simulated_endpoint() -> str:
    """A public endpoint as a STUN binding would find one (documentation addresses, RFC 5737)."""
    return f"203.0.113.{1 + secrets.randbelow(254)}:{51820 + secrets.randbelow(10000)}"


def minted_at_ms(event_id: str) -> int | None:
    """The Unix time in milliseconds a UUIDv7 event id was minted at (``None`` for another id)."""
    try:
        parsed = uuid.UUID(event_id)
    except ValueError:
        return None
    return parsed.int >> 80 if parsed.version == 7 else None


@dataclass(frozen=True)
class Correction:
    """What a reconcile corrected, as the agent reports it in ``POST /drift``."""

    type: Literal["peer_added", "peer_removed", "peer_updated"]
    detail: str

    def as_wire(self) -> dict[str, str]:
        return {"type": self.type, "detail": self.detail}


class NodeMesh:
    """One node's WireGuard side: its key pair, its public endpoint and its peer table."""

    def __init__(self, endpoint: str | None = None, nat_type: str = DEFAULT_NAT_TYPE) -> None:
        self._lock = threading.Lock()
        self._private_key = X25519PrivateKey.generate()
        self._peers: dict[str, Peer] = {}
        self._changes = 0  # bumped by every change of the table (see reconcile)
        self._endpoint = endpoint or simulated_endpoint()
        self.nat_type = nat_type
        self._rotating = False
        self._rotation_began_ms = 0
        self.rotations = 0  # completed rotations

    def __repr__(self) -> str:
        return f"NodeMesh(public_key={self.public_key!r}, endpoint={self.endpoint!r}, peers={len(self.peers())})"

    @property
    def public_key(self) -> str:
        with self._lock:
            return public_key_of(self._private_key)

    @property
    def endpoint(self) -> str:
        with self._lock:
            return self._endpoint

    @endpoint.setter
    def endpoint(self, value: str) -> None:
        with self._lock:
            self._endpoint = value

    @property
    def changes(self) -> int:
        with self._lock:
            return self._changes

    def peers(self) -> dict[str, Peer]:
        """A copy of the table, by peer id."""
        with self._lock:
            return dict(self._peers)

    def load(self, peers: Sequence[Peer]) -> None:
        """Replace the table (registration's ``peers``)."""
        with self._lock:
            self._peers = {peer.id: peer for peer in peers}
            self._changes += 1

    def put(self, peer: Peer) -> None:
        """Add or replace one peer (``peer_added``, ``peer_key_rotated``, ``peer_endpoint_changed``,
        an ``updated_peers`` entry)."""
        with self._lock:
            self._peers[peer.id] = peer
            self._changes += 1

    def remove(self, peer_id: str) -> bool:
        with self._lock:
            found = self._peers.pop(peer_id, None) is not None
            self._changes += found
            return found

    def set_peer_endpoints(self, endpoints: Mapping[str, str]) -> None:
        """``peer_endpoints`` of an endpoint answer: a known peer's endpoint, when one is given."""
        with self._lock:
            for peer_id, endpoint in endpoints.items():
                known = self._peers.get(peer_id)
                if known is not None and endpoint and known.endpoint != endpoint:
                    self._peers[peer_id] = replace(known, endpoint=endpoint)
                    self._changes += 1

    def reconcile(self, desired: Sequence[Peer], changes_before: int) -> list[Correction] | None:
        """Make the table ``/state``'s ``peers`` and say what changed (plexd's ``diffPeers``).
        ``None``, changing nothing, when the table changed since ``changes_before`` (read before
        the request): an event applied meanwhile may be newer than the answer, so the next
        reconcile decides."""
        wanted = {peer.id: peer for peer in desired}
        with self._lock:
            if self._changes != changes_before:
                return None
            corrections = [
                Correction("peer_removed", f"peer {peer_id}") for peer_id in self._peers if peer_id not in wanted
            ]
            for peer in desired:
                known = self._peers.get(peer.id)
                if known is None:
                    corrections.append(Correction("peer_added", f"peer {peer.id}"))
                elif not _same(known, peer):
                    corrections.append(Correction("peer_updated", f"peer {peer.id}"))
            if corrections:
                self._peers = wanted
                self._changes += 1
            return corrections

    # rotation

    def begin_rotation(self, requested_at_ms: int | None) -> X25519PrivateKey | None:
        """A new key pair for a rotation to start, or ``None`` when one is in flight or the
        request (minted at ``requested_at_ms``) is older than the last rotation's start."""
        with self._lock:
            if self._rotating or (requested_at_ms is not None and requested_at_ms < self._rotation_began_ms):
                return None
            self._rotating = True
            self._rotation_began_ms = time.time_ns() // 1_000_000
            return X25519PrivateKey.generate()

    def end_rotation(self, new_key: X25519PrivateKey | None, updated_peers: Sequence[Peer] = ()) -> None:
        """The rotation is over: with ``new_key`` when the server took it (then its
        ``updated_peers`` carry the new pair keys), else the old key stays."""
        with self._lock:
            self._rotating = False
            if new_key is None:
                return
            self._private_key = new_key
            self.rotations += 1
            for peer in updated_peers:
                self._peers[peer.id] = peer
            self._changes += 1


def _same(a: Peer, b: Peer) -> bool:
    """plexd's ``peerChanged`` negated: every field equal, allowed IPs in any order."""
    return replace(a, allowed_ips=tuple(sorted(a.allowed_ips))) == replace(b, allowed_ips=tuple(sorted(b.allowed_ips)))


# --- what the node sends -------------------------------------------------------------------------


class MeshNode(Protocol):
    """What the mesh needs of a simulated node (:class:`plexd_sim.SimulatedNode`)."""

    node_id: str
    hostname: str
    revoked: bool
    mesh: NodeMesh

    @property
    def auth(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class MeshSent:
    """A ``POST /v1/keys/rotate`` or ``PUT /v1/nodes/{id}/endpoint`` the node sent, and its answer.

    ``public_key`` is the key sent (rotation) and ``endpoint`` the endpoint reported; ``peers``
    how many ``updated_peers``/``peer_endpoints`` came back. ``status_code`` is ``None`` when no
    answer arrived (``error`` says why)."""

    node_id: str
    hostname: str
    kind: Literal["rotate", "endpoint"]
    status_code: int | None
    code: str | None
    public_key: str | None
    endpoint: str | None
    peers: int
    error: str | None


Fail = Callable[[MeshNode, str | None, str | None, str, str], None]
"""Record an event the node dropped: ``(node, event_id, event_type, reason, detail)``."""


class MeshAgent:
    """The mesh behaviour of every node of a fleet: applies the mesh events, rotates keys,
    reports endpoints and reconciles peers. ``record`` gets each :class:`MeshSent`; ``fail``
    each payload the node cannot apply; ``schedule(delay, task)`` runs a task later on the
    fleet's workers (nothing once the fleet stops)."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        endpoint_interval: float,
        record: Callable[[MeshSent], None],
        fail: Fail,
        schedule: Callable[[float, Callable[[], None]], None],
    ) -> None:
        if endpoint_interval <= 0:
            raise ValueError("endpoint_interval must be positive")
        self._http = http
        self._endpoint_interval = endpoint_interval
        self._record = record
        self._fail = fail
        self._schedule = schedule

    # events

    def on_event(self, node: MeshNode, event_id: str, event_type: str, payload: Mapping[str, Any]) -> None:
        """Apply a verified mesh event (one of :data:`MESH_EVENTS`)."""
        if event_type == "rotate_keys":
            if payload.get("node_id") not in (None, "", node.node_id):
                self._fail(node, event_id, event_type, "wrong_node", f"addressed to {payload.get('node_id')}")
                return
            self.request_rotation(node, minted_at_ms(event_id))
            return
        if event_type == "peer_removed":
            peer_id = payload.get("peer_id")
            if not isinstance(peer_id, str) or not peer_id:
                self._fail(node, event_id, event_type, "bad_payload", "peer_removed needs a peer_id")
                return
            node.mesh.remove(peer_id)  # an unknown peer: nothing to remove (plexd logs it)
            return
        try:
            peer = Peer.from_wire(payload)
        except ValueError as error:
            self._fail(node, event_id, event_type, "bad_payload", str(error))
            return
        if peer.id == node.node_id:
            self._fail(node, event_id, event_type, "self_peer", "an event about the node itself")
            return
        node.mesh.put(peer)

    # key rotation

    def request_rotation(self, node: MeshNode, requested_at_ms: int | None = None) -> None:
        """Rotate soon (on a worker), unless a rotation already answers this request."""
        new_key = node.mesh.begin_rotation(requested_at_ms)
        if new_key is not None:
            self._schedule(0.0, lambda: self._rotate(node, new_key))

    def _rotate(self, node: MeshNode, new_key: X25519PrivateKey) -> None:
        public_key = public_key_of(new_key)
        updated: list[Peer] = []
        taken = False
        try:
            if node.revoked:
                return
            body = {"node_id": node.node_id, "new_public_key": public_key}
            try:
                response = self._http.post("/v1/keys/rotate", **wire.agent_body(body, node.auth))
            except httpx.HTTPError as error:
                failed = MeshSent(node.node_id, node.hostname, "rotate", None, None, public_key, None, 0, str(error))
                self._record(failed)
                return
            answer = _json_object(response)
            taken = response.status_code == 200
            if taken:
                updated = self._peers_of(node, answer.get("updated_peers"), "updated_peers")
            self._record(
                MeshSent(
                    node.node_id,
                    node.hostname,
                    "rotate",
                    response.status_code,
                    _problem_code(answer),
                    public_key,
                    None,
                    len(updated),
                    None,
                )
            )
        finally:
            node.mesh.end_rotation(new_key if taken else None, updated)

    # endpoints

    def start(self, node: MeshNode) -> None:
        """Report the endpoint now and every ``endpoint_interval`` seconds (plexd's NAT refresh)."""
        self._schedule(0.0, lambda: self._refresh(node))

    def _refresh(self, node: MeshNode) -> None:
        if node.revoked:
            return
        self.report_endpoint(node)
        self._schedule(self._endpoint_interval, lambda: self._refresh(node))

    def report_endpoint(self, node: MeshNode) -> MeshSent:
        """``PUT /v1/nodes/{id}/endpoint`` with the node's endpoint; apply ``peer_endpoints``."""
        endpoint = node.mesh.endpoint
        body = {"public_endpoint": endpoint, "nat_type": node.mesh.nat_type}
        try:
            response = self._http.put(f"/v1/nodes/{node.node_id}/endpoint", **wire.agent_body(body, node.auth))
        except httpx.HTTPError as error:
            sent = MeshSent(node.node_id, node.hostname, "endpoint", None, None, None, endpoint, 0, str(error))
        else:
            answer, count = _json_object(response), 0
            if response.status_code == 200:
                endpoints = _peer_endpoints(answer.get("peer_endpoints"))
                node.mesh.set_peer_endpoints(endpoints)
                count = len(endpoints)
            elif response.status_code in (401, 403):
                node.revoked = True
            sent = MeshSent(
                node.node_id,
                node.hostname,
                "endpoint",
                response.status_code,
                _problem_code(answer),
                None,
                endpoint,
                count,
                None,
            )
        self._record(sent)
        return sent

    # registration and reconcile

    def load_registration(self, node: MeshNode, peers: Any) -> None:
        node.mesh.load(self._peers_of(node, peers, "register"))

    def reconcile(self, node: MeshNode, peers: Any, changes_before: int) -> list[Correction]:
        """Correct the table from ``/state``'s ``peers``; the corrections, for drift."""
        corrections = node.mesh.reconcile(self._peers_of(node, peers, "state"), changes_before)
        return corrections or []

    def _peers_of(self, node: MeshNode, peers: Any, where: str) -> list[Peer]:
        """The peers of an answer; one the agent could not configure is dropped and recorded."""
        if peers is None:
            return []  # Go's nil slice
        if not isinstance(peers, list):
            self._fail(node, None, where, "bad_payload", "peers must be a list")
            return []
        parsed = []
        for value in peers:
            try:
                parsed.append(Peer.from_wire(value))
            except ValueError as error:
                self._fail(node, None, where, "bad_payload", str(error))
        return parsed


def _peer_endpoints(value: Any) -> dict[str, str]:
    if not isinstance(value, list):
        return {}
    return {
        entry["peer_id"]: entry["endpoint"]
        for entry in value
        if isinstance(entry, dict) and isinstance(entry.get("peer_id"), str) and isinstance(entry.get("endpoint"), str)
    }


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _problem_code(answer: Mapping[str, Any]) -> str | None:
    code = answer.get("code")
    return code if isinstance(code, str) else None
