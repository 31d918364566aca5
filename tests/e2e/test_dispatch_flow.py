"""Against the local server: the template's state machine times out silent targets, and the
capacity ceiling holds under concurrent dispatches (real threads, moto server, worker processes)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import bearer, problem, project_with_nodes

pytestmark = pytest.mark.e2e


@pytest.fixture
def project(local_server: dict[str, Any], http: httpx.Client) -> dict[str, str]:
    """A fresh project (own Domain, so its ceiling is ours) with two registered nodes."""
    made = project_with_nodes(
        http,
        bearer(local_server["operator_token"]),
        [(f"flow-{index}", {"env": "prod"}, ["restart-agent"]) for index in range(2)],
    )
    return {
        "domain_id": made["domain_id"],
        "project_id": made["project_id"],
        "node_0": made["nodes"][0]["id"],
        "node_1": made["nodes"][1]["id"],
    }


def test_silent_nodes_time_out_and_the_slot_is_released(
    local_server: dict[str, Any], http: httpx.Client, project: dict[str, str]
) -> None:
    admin = bearer(local_server["operator_token"])
    base = f"/v1/projects/{project['project_id']}/executions"
    http.patch(f"/v1/domains/{project['domain_id']}", headers=admin, json={"live_execution_ceiling": 1})
    dispatched = http.post(
        f"{base}:dispatch",
        headers=admin,
        json={"action": "restart-agent", "selector": "env=prod", "timeout_seconds": 3},
    )
    assert dispatched.status_code == 201, dispatched.text
    # The only slot is taken while it runs.
    problem(
        http.post(f"{base}:dispatch", headers=admin, json={"action": "restart-agent", "selector": "env=prod"}),
        429,
        "capacity_exceeded",
    )
    deadline = time.monotonic() + 30
    while True:
        body = http.get(f"{base}/{dispatched.json()['id']}", headers=admin).json()
        if body["completed_at"] or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert body["status"] == "timeout"
    assert [t["status"] for t in body["targets"]] == ["timeout", "timeout"]
    # The slot came back exactly once: one more dispatch fits, the next does not.
    again = http.post(f"{base}:dispatch", headers=admin, json={"action": "restart-agent", "selector": "env=prod"})
    assert again.status_code == 201
    problem(
        http.post(f"{base}:dispatch", headers=admin, json={"action": "restart-agent", "selector": "env=prod"}),
        429,
        "capacity_exceeded",
    )


def test_concurrent_dispatches_against_a_ceiling_admit_exactly_that_many(
    local_server: dict[str, Any], http: httpx.Client, project: dict[str, str]
) -> None:
    ceiling, attempts = 3, 12
    admin = bearer(local_server["operator_token"])
    http.patch(f"/v1/domains/{project['domain_id']}", headers=admin, json={"live_execution_ceiling": ceiling})
    url = f"{local_server['server']}/v1/projects/{project['project_id']}/executions:dispatch"

    def attempt(index: int) -> int:
        body = {"action": "restart-agent", "node_id": project[f"node_{index % 2}"], "timeout_seconds": 300}
        return httpx.post(url, headers=admin, json=body, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        statuses = list(pool.map(attempt, range(attempts)))
    assert sorted(statuses) == [201] * ceiling + [429] * (attempts - ceiling)
