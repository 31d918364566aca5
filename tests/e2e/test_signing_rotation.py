"""Signing-key rotation against its own local server (it changes the deployment's key, so it
does not share the session's): connected simulated nodes learn the new key from the stream
and keep verifying every event."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from plexd_sim import SimulatedFleet

from tests.e2e.conftest import bearer, start_server, stop_server
from tests.e2e.test_plexctl import Plexctl, private_file

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    process, credentials = start_server(Path(tmp_path_factory.mktemp("rotation")))
    try:
        yield credentials
    finally:
        stop_server(process)


def test_connected_nodes_follow_a_signing_key_rotation(own_server: dict[str, Any], tmp_path: Path) -> None:
    server, token, project = own_server["server"], own_server["operator_token"], own_server["project_id"]
    fleet = SimulatedFleet(server, token, project, duration=0.2, heartbeat_interval=5, stream_concurrency=2)
    try:
        nodes = fleet.enroll(2, hostname_prefix=f"rot-{time.time_ns()}")
        fleet.start()
        before = httpx.get(f"{server}/v1/signing-keys", headers=bearer(token), timeout=30).json()

        # The deployment's admin rotates the key with plexctl.
        plexctl = Plexctl(tmp_path, server=server, token_file=private_file(tmp_path / "token", token + "\n"))
        rotated = plexctl("signing-key", "rotate", "-o", "json")
        assert rotated.code == 0, rotated
        keys = rotated.json()
        assert keys["previous"] == before["current"] != keys["current"]

        def announced() -> bool:
            return all(fleet.events(node.node_id, "signing_key_rotated") for node in nodes)

        assert fleet.wait_until(announced, timeout=20), fleet.summary()
        for node in nodes:
            (event,) = fleet.events(node.node_id, "signing_key_rotated")
            assert event.payload["current"] == keys["current"]
            assert event.payload["previous"] == keys["previous"]

        # Events after the rotation are signed with the new key and still verify.
        dispatched = httpx.post(
            f"{server}/v1/projects/{project}/executions:dispatch",
            headers=bearer(token),
            json={"action": "restart-agent", "node_id": nodes[0].node_id},
            timeout=30,
        )
        assert dispatched.status_code == 201, dispatched.text
        execution_id = dispatched.json()["id"]
        assert fleet.wait_until(lambda: nodes[0].node_id in fleet.action_requests(execution_id), timeout=20)
        assert fleet.verification_failures == []

        # A node registering now is handed the new key.
        (late,) = fleet.enroll(1, hostname_prefix=f"rot-late-{time.time_ns()}")
        state = httpx.get(f"{server}/v1/nodes/{late.node_id}/state", headers=late.auth, timeout=30).json()
        assert state["signing_keys"]["current"] == keys["current"]
        assert state["signing_keys"]["previous"] == keys["previous"]
    finally:
        fleet.stop()
        fleet.close()
