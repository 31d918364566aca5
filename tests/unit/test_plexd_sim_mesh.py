"""The simulated agent's mesh state (tools/plexd_sim/mesh.py) on its own: what it accepts as a
peer, when it starts a key rotation, and when a reconcile may overwrite its table."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import pytest
from plexd_sim.mesh import NodeMesh, Peer, minted_at_ms, public_key_of


def key(fill: int, size: int = 32) -> str:
    return base64.b64encode(bytes([fill]) * size).decode()


def wire_peer(peer_id: str = "n-1", **changes: Any) -> dict[str, Any]:
    peer = {
        "id": peer_id,
        "public_key": key(1),
        "mesh_ip": "10.100.0.1",
        "endpoint": "",
        "allowed_ips": ["10.100.0.1/32"],
        "psk": key(2),
    }
    return peer | changes


def uuid7_at(ms: int) -> str:
    return str(uuid.UUID(int=(ms << 80) | (0x7 << 76) | (0b10 << 62) | 1))


def test_a_peer_is_read_as_the_agent_receives_it_with_gos_null_lists() -> None:
    peer = Peer.from_wire(wire_peer(endpoint=None, allowed_ips=None))
    assert (peer.id, peer.endpoint, peer.allowed_ips, peer.psk) == ("n-1", "", (), key(2))


@pytest.mark.parametrize(
    "changes",
    [
        {"id": ""},
        {"public_key": key(1, 31)},
        {"public_key": "not base64!"},
        {"psk": key(2, 33)},
        {"psk": None},
        {"allowed_ips": "10.100.0.1/32"},
    ],
)
def test_a_peer_the_agent_could_not_configure_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Peer.from_wire(wire_peer(**changes))


def test_the_node_registers_with_the_public_half_of_its_curve25519_key() -> None:
    mesh = NodeMesh()
    assert len(base64.b64decode(mesh.public_key, validate=True)) == 32
    assert NodeMesh().public_key != mesh.public_key


def test_a_rotation_is_not_started_twice_for_one_request() -> None:
    mesh = NodeMesh()
    before = mesh.public_key
    requested = time.time_ns() // 1_000_000 - 1_000  # the operator asked a second ago
    new_key = mesh.begin_rotation(None)  # the heartbeat's flag
    assert new_key is not None
    assert mesh.begin_rotation(requested) is None  # the event, while the rotation is in flight
    mesh.end_rotation(new_key, [Peer.from_wire(wire_peer(psk=key(9)))])
    assert mesh.public_key == public_key_of(new_key) != before and mesh.rotations == 1
    assert mesh.peers()["n-1"].psk == key(9)
    assert mesh.begin_rotation(requested) is None  # the same event, read after the rotation
    assert mesh.begin_rotation(time.time_ns() // 1_000_000 + 1_000) is not None  # a later request


def test_a_refused_rotation_keeps_the_old_key_and_lets_the_next_request_through() -> None:
    mesh = NodeMesh()
    before = mesh.public_key
    assert mesh.begin_rotation(None) is not None
    mesh.end_rotation(None)
    assert (mesh.public_key, mesh.rotations) == (before, 0)
    assert mesh.begin_rotation(None) is not None


def test_an_event_ids_mint_time_is_read_from_its_uuidv7() -> None:
    assert minted_at_ms(uuid7_at(1_700_000_000_123)) == 1_700_000_000_123
    assert minted_at_ms(str(uuid.uuid4())) is None
    assert minted_at_ms("not-a-uuid") is None


def test_a_reconcile_corrects_the_table_and_names_each_correction() -> None:
    mesh = NodeMesh()
    mesh.load([Peer.from_wire(wire_peer("gone")), Peer.from_wire(wire_peer("moved"))])
    desired = [Peer.from_wire(wire_peer("moved", endpoint="198.51.100.1:51820")), Peer.from_wire(wire_peer("new"))]
    corrections = mesh.reconcile(desired, mesh.changes)
    assert corrections is not None
    assert sorted((c.type, c.detail) for c in corrections) == [
        ("peer_added", "peer new"),
        ("peer_removed", "peer gone"),
        ("peer_updated", "peer moved"),
    ]
    assert mesh.peers() == {peer.id: peer for peer in desired}
    assert mesh.reconcile(desired, mesh.changes) == []  # nothing left to correct


def test_a_reconcile_raced_by_an_event_changes_nothing() -> None:
    mesh = NodeMesh()
    changes = mesh.changes  # read before GET /state
    rotated = Peer.from_wire(wire_peer(public_key=key(7)))
    mesh.put(rotated)  # peer_key_rotated, applied while the answer was on its way
    assert mesh.reconcile([Peer.from_wire(wire_peer())], changes) is None
    assert mesh.peers() == {"n-1": rotated}


def test_peer_endpoints_update_only_known_peers() -> None:
    mesh = NodeMesh()
    mesh.load([Peer.from_wire(wire_peer())])
    mesh.set_peer_endpoints({"n-1": "198.51.100.5:51820", "unknown": "198.51.100.6:51820"})
    assert {peer_id: peer.endpoint for peer_id, peer in mesh.peers().items()} == {"n-1": "198.51.100.5:51820"}
