"""The simulated agents keep their WireGuard mesh as plexd does (SPEC §18), against the local
server: peer tables from registration, the ``peer_*`` events and ``/state``; key rotation on
an operator's request; endpoint reports; a departure."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from plexd_sim import SimulatedFleet, SimulatedNode

from tests.e2e.conftest import bearer, simulated_fleet

pytestmark = pytest.mark.e2e


@pytest.fixture
def project_id(local_server: dict[str, Any], http: httpx.Client) -> str:
    """A fresh project, so the mesh holds exactly the test's nodes."""
    admin = bearer(local_server["operator_token"])
    domain = http.post("/v1/domains", headers=admin, json={"name": f"mesh-{time.monotonic_ns()}"}).json()
    project = http.post(f"/v1/domains/{domain['id']}/projects", headers=admin, json={"name": "mesh"}).json()
    return str(project["id"])


@pytest.fixture
def fleet(local_server: dict[str, Any], project_id: str) -> Iterator[SimulatedFleet]:
    with simulated_fleet(
        local_server,
        project_id,
        heartbeat_interval=1,
        endpoint_interval=2,
        stream_concurrency=2,  # the server's held streams have two workers of their own
        reconnect_delay=0.1,  # plexd reconnects at once
    ) as fleet:
        yield fleet


def mesh_problems(fleet: SimulatedFleet, nodes: Sequence[SimulatedNode]) -> list[str]:
    """How the nodes' peer tables differ from a full mesh of ``nodes`` with each node's current
    key and endpoint and one pair key per pair, the same on both sides (empty: converged)."""
    problems = []
    for node in nodes:
        table = fleet.peers(node.node_id)
        others = {other.node_id: other for other in nodes if other is not node}
        if set(table) != set(others):
            problems.append(f"{node.hostname} lists {sorted(table)}, not {sorted(others)}")
            continue
        for other_id, other in others.items():
            entry = table[other_id]
            if (entry.public_key, entry.endpoint) != (other.mesh.public_key, other.mesh.endpoint):
                problems.append(f"{node.hostname} has a stale key or endpoint for {other.hostname}")
            if (entry.mesh_ip, entry.allowed_ips) != (other.mesh_ip, (f"{other.mesh_ip}/32",)):
                problems.append(f"{node.hostname} routes {other.hostname} wrong: {entry}")
            back = fleet.peers(other_id).get(node.node_id)
            if back is None or back.psk != entry.psk:
                problems.append(f"{node.hostname} and {other.hostname} hold different pair keys")
    return problems


def converged(fleet: SimulatedFleet, nodes: Sequence[SimulatedNode]) -> Callable[[], bool]:
    return lambda: not mesh_problems(fleet, nodes)


def pair_keys(fleet: SimulatedFleet, nodes: Sequence[SimulatedNode]) -> dict[frozenset[str], str]:
    return {
        frozenset((node.node_id, peer_id)): peer.psk
        for node in nodes
        for peer_id, peer in fleet.peers(node.node_id).items()
    }


def state_peers(local_server: dict[str, Any], node: SimulatedNode) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{local_server['server']}/v1/nodes/{node.node_id}/state", headers=node.auth, timeout=30)
    assert response.status_code == 200, response.text
    return {peer["id"]: peer for peer in response.json()["peers"]}


def test_simulated_nodes_keep_a_symmetric_mesh_through_rotation_endpoint_change_and_departure(
    local_server: dict[str, Any], fleet: SimulatedFleet, project_id: str
) -> None:
    # Given three simulated nodes enrolled one after the other and running
    a, b, c = fleet.enroll(3, hostname_prefix=f"mesh-{time.time_ns()}")
    assert fleet.peers(a.node_id) == {} and set(fleet.peers(c.node_id)) == {a.node_id, b.node_id}
    fleet.start()

    # Then every node lists the other two, with their keys and reported endpoints, and each
    # pair holds one pair key on both sides (peer_added, endpoint reports, peer_endpoint_changed)
    nodes = [a, b, c]
    assert fleet.wait_until(converged(fleet, nodes), timeout=30), mesh_problems(fleet, nodes)
    assert {event.payload["peer_id"] for event in fleet.events(a.node_id, "peer_added")} == {b.node_id, c.node_id}
    assert all(sent.status_code == 200 for sent in fleet.mesh_requests(kind="endpoint"))
    keys_before, a_key_before = pair_keys(fleet, nodes), a.mesh.public_key

    # When an operator asks node a to rotate its key
    asked = httpx.post(
        f"{local_server['server']}/v1/projects/{project_id}/nodes/{a.node_id}/rotate-keys",
        headers=bearer(local_server["operator_token"]),
        timeout=30,
    )
    assert asked.status_code == 202, asked.text

    # Then it rotates once, and the others hear its new key with new pair keys (peer_key_rotated)
    def rotated_and_heard() -> bool:
        heard = [
            event
            for node in (b, c)
            for event in fleet.events(node.node_id, "peer_key_rotated")
            if event.payload["public_key"] == a.mesh.public_key
        ]
        return a.mesh.rotations == 1 and len(heard) == 2 and not mesh_problems(fleet, nodes)

    assert fleet.wait_until(rotated_and_heard, timeout=30), (a.mesh.rotations, mesh_problems(fleet, nodes))
    assert a.mesh.public_key != a_key_before
    keys_after = pair_keys(fleet, nodes)
    for pair, psk in keys_after.items():
        assert (psk != keys_before[pair]) == (a.node_id in pair), "exactly the pairs of the rotated node re-keyed"
    # ... once, though the request reached it twice: as an event and as the next heartbeat's flag
    assert fleet.wait_until(lambda: bool(fleet.events(a.node_id, "rotate_keys")), timeout=15)
    beats_then = len(fleet.heartbeats(a.node_id))
    assert fleet.wait_until(lambda: len(fleet.heartbeats(a.node_id)) >= beats_then + 2, timeout=15)
    assert [sent.status_code for sent in fleet.mesh_requests(a.node_id, "rotate")] == [200]
    assert a.mesh.rotations == 1

    # When node b's NAT binding moves
    moved = fleet.set_endpoint(b.node_id, "198.51.100.7:41000")
    assert moved.status_code == 200

    # Then the others hear it (peer_endpoint_changed) and route to the new endpoint
    def endpoint_heard() -> bool:
        return all(
            any(
                (event.payload["peer_id"], event.payload["endpoint"]) == (b.node_id, "198.51.100.7:41000")
                for event in fleet.events(node.node_id, "peer_endpoint_changed")
            )
            for node in (a, c)
        ) and not mesh_problems(fleet, nodes)

    assert fleet.wait_until(endpoint_heard, timeout=30), mesh_problems(fleet, nodes)

    # When node c leaves
    assert fleet.deregister(c.node_id)

    # Then it is gone from the others' tables (peer_removed), and the rest of the mesh stands
    assert fleet.wait_until(converged(fleet, [a, b]), timeout=30), mesh_problems(fleet, [a, b])
    assert all(
        [event.payload["peer_id"] for event in fleet.events(node.node_id, "peer_removed")] == [c.node_id]
        for node in (a, b)
    )

    # And what each node holds is what /state serves; a reconcile finds nothing to correct
    for node in (a, b):
        served = state_peers(local_server, node)
        held = fleet.peers(node.node_id)
        assert {peer_id: (p["public_key"], p["endpoint"], p["psk"]) for peer_id, p in served.items()} == {
            peer_id: (p.public_key, p.endpoint, p.psk) for peer_id, p in held.items()
        }
        fleet.reconcile(node.node_id)
        assert fleet.peers(node.node_id) == held
    assert not [sent for sent in fleet.reports_sent(kind="drift") if "peer_added" in sent.keys]
    assert fleet.verification_failures == []


def test_a_reconcile_restores_a_lost_peer_from_state_and_reports_the_drift(fleet: SimulatedFleet) -> None:
    # Given two registered nodes (not running: nothing else changes their tables)
    a, b = fleet.enroll(2, hostname_prefix=f"mesh-drift-{time.time_ns()}")
    assert set(fleet.peers(b.node_id)) == {a.node_id}
    held = fleet.peers(b.node_id)
    # When node b loses its peer (as a WireGuard interface reset would) and reconciles
    assert b.mesh.remove(a.node_id)
    fleet.reconcile(b.node_id)
    # Then /state puts it back, exactly, and the node reports the correction as drift
    assert fleet.peers(b.node_id) == held
    (drift,) = fleet.reports_sent(b.node_id, kind="drift")
    assert drift.keys == ("peer_added",) and drift.status_code == 200
    assert fleet.verification_failures == []
