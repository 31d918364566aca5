"""Node reports and drift (SPEC §18) against the local server: the agent's own bytes
(tests/e2e/plexd_wire.py: Go JSON, ``null`` slices, gzip over 1 KiB), the simulator's
debounced sync and drift after a reconcile, and the operators' reads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from plexd_sim import SimulatedFleet

from tests.e2e.conftest import simulated_fleet
from tests.e2e.plexd_wire import GoAgent
from tests.e2e.test_agent_conformance import enrollment_token, register

pytestmark = pytest.mark.e2e


@pytest.fixture
def agent(local_server: dict[str, Any]) -> GoAgent:
    return GoAgent(local_server["server"])


@pytest.fixture
def project(local_server: dict[str, Any], http: httpx.Client) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {local_server['operator_token']}"}
    domain = http.post("/v1/domains", headers=admin, json={"name": f"reports-{time.monotonic_ns()}"}).json()
    made = http.post(f"/v1/domains/{domain['id']}/projects", headers=admin, json={"name": "reports"}).json()
    return {"id": made["id"], "admin": admin}


def health(key: str, version: int, detail: str) -> dict[str, Any]:
    """``ReportEntry`` as Go marshals it (field order, ``time.Time`` with nanoseconds)."""
    return {
        "key": key,
        "content_type": "application/json",
        "payload": {"status": "healthy", "detail": detail, "checks": None},
        "version": version,
        "updated_at": "2026-12-02T10:30:00.123456789Z",
    }


def test_the_agents_gzipped_report_batch_and_drift_are_stored_and_read_back(
    agent: GoAgent, http: httpx.Client, project: dict[str, Any]
) -> None:
    node = register(agent, enrollment_token(http, project), "reports-01")
    node_id, nsk = node["node_id"], node["node_secret_key"]
    base = f"/v1/projects/{project['id']}/nodes/{node_id}"

    # Given a batch over 1 KiB with Go's null for the empty deleted list: sent gzipped
    batch = {"entries": [health(f"check-{i}", 1, "<ok> & " + "x" * 200) for i in range(8)], "deleted": None}
    reply = agent.request("POST", f"/v1/nodes/{node_id}/report", batch, token=nsk)
    assert agent.sent[-1]["Content-Encoding"] == "gzip"
    assert reply.status == 200, reply.body
    assert reply.json()["accepted"] == 8

    # When the same versions come again (a replay), the agent reads a raw 409 naming every key
    replay = agent.request("POST", f"/v1/nodes/{node_id}/report", batch, token=nsk)
    assert replay.status == 409
    problem = replay.json()
    assert problem["code"] == "report_version_conflict"
    assert problem["keys"] == [f"check-{i}" for i in range(8)]

    # And a newer version of one key plus a delete of another goes through
    update = {"entries": [health("check-3", 2, "degraded")], "deleted": ["check-0"]}
    assert agent.request("POST", f"/v1/nodes/{node_id}/report", update, token=nsk).status == 200

    # Then the operator reads the entries, most recently written first, payloads as sent
    items = http.get(f"{base}/reports", headers=project["admin"]).json()["items"]
    assert items[0]["key"] == "check-3"
    assert {i["key"] for i in items} == {f"check-{i}" for i in range(1, 8)}
    assert items[0]["version"] == 2 and items[0]["payload"] == {
        "status": "healthy",
        "detail": "degraded",
        "checks": None,
    }
    assert items[0]["updated_at"] == "2026-12-02T10:30:00.123456789Z"

    # And drift: null corrections, then one over 1 KiB (gzipped), read newest first
    empty = {"timestamp": "2026-12-02T10:31:00Z", "corrections": None}
    assert agent.request("POST", f"/v1/nodes/{node_id}/drift", empty, token=nsk).status == 200
    corrections = [{"type": "peer_added", "detail": f"n_peer{i} was missing from WireGuard config"} for i in range(30)]
    big = {"timestamp": "2026-12-02T10:32:00.5Z", "corrections": corrections}
    reply = agent.request("POST", f"/v1/nodes/{node_id}/drift", big, token=nsk)
    assert agent.sent[-1]["Content-Encoding"] == "gzip"
    assert reply.status == 200, reply.body
    drift = http.get(f"{base}/drift", headers=project["admin"], params={"limit": 1}).json()
    assert drift["items"][0]["timestamp"] == "2026-12-02T10:32:00.5Z"
    assert drift["items"][0]["corrections"] == corrections
    older = http.get(f"{base}/drift", headers=project["admin"], params={"cursor": drift["next_cursor"]}).json()
    assert [i["corrections"] for i in older["items"]] == [[]]
    assert "next_cursor" not in older


def test_another_nodes_key_is_403_and_a_missing_key_401_as_the_agent_reads_them(
    agent: GoAgent, http: httpx.Client, project: dict[str, Any]
) -> None:
    first = register(agent, enrollment_token(http, project), "reports-02")
    second = register(agent, enrollment_token(http, project), "reports-03")
    body = {"entries": [health("a", 1, "x")], "deleted": None}
    wrong = agent.request("POST", f"/v1/nodes/{first['node_id']}/report", body, token=second["node_secret_key"])
    assert (wrong.status, wrong.json()["code"]) == (403, "nsk_node_mismatch")
    missing = agent.request("POST", f"/v1/nodes/{first['node_id']}/drift", {"timestamp": "2026-12-02T10:31:00Z"})
    assert (missing.status, missing.json()["code"]) == (401, "nsk_revoked")


@pytest.fixture
def fleet(local_server: dict[str, Any], project: dict[str, Any]) -> Iterator[SimulatedFleet]:
    with simulated_fleet(
        local_server,
        project["id"],
        heartbeat_interval=30,
        stream_concurrency=1,
        report_debounce=0.3,
    ) as fleet:
        yield fleet


def test_the_simulator_syncs_debounced_reports_and_posts_drift_after_a_reconcile(
    fleet: SimulatedFleet, http: httpx.Client, project: dict[str, Any]
) -> None:
    (node,) = fleet.enroll(1, hostname_prefix="reports-sim")
    base = f"/v1/projects/{project['id']}/nodes/{node.node_id}"
    with fleet:
        # Given two quick changes of one key and one of another: one debounced batch
        fleet.set_report(node.node_id, "app-health", {"status": "starting"})
        fleet.set_report(node.node_id, "app-health", {"status": "healthy", "note": "y" * 1500})
        fleet.set_report(node.node_id, "disk", {"free_gb": 12.5})
        assert fleet.wait_until(lambda: len(fleet.reports_sent(node.node_id, "report")) >= 1, timeout=15)
        time.sleep(0.6)  # nothing more is pending: no second batch
        (sent,) = fleet.reports_sent(node.node_id, "report")
        assert (sent.status_code, sorted(sent.keys)) == (200, ["app-health", "disk"])
        assert sent.body["versions"] == {"app-health": 2, "disk": 1}

        # When one is deleted, the delete is synced too
        fleet.delete_report(node.node_id, "disk")
        assert fleet.wait_until(lambda: len(fleet.reports_sent(node.node_id, "report")) == 2, timeout=15)
        assert fleet.reports_sent(node.node_id, "report")[1].deleted == ("disk",)

        # And a reconcile that finds the node trusting a stale key (a missed rotation) posts drift
        node.verifier.set_keys([Ed25519PrivateKey.generate().public_key()])
        fleet.reconcile(node.node_id)
        (drift,) = fleet.reports_sent(node.node_id, "drift")
        assert (drift.status_code, drift.keys) == (200, ("signing_keys_updated",))
        assert node.verifier.trusted_keys() == [node.signing_public_key]
        fleet.reconcile(node.node_id)  # nothing to correct: no drift
        assert len(fleet.reports_sent(node.node_id, "drift")) == 1

    reports = http.get(f"{base}/reports", headers=project["admin"]).json()["items"]
    assert [(r["key"], r["version"], r["payload"]["status"]) for r in reports] == [("app-health", 2, "healthy")]
    drifts = http.get(f"{base}/drift", headers=project["admin"]).json()["items"]
    assert [c["type"] for d in drifts for c in d["corrections"]] == ["signing_keys_updated"]
