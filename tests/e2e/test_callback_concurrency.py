"""With real threads against the local server (moto server, worker processes): conflicting reports
have exactly one winner, and 1,000 targets reporting at once leave exact counters, the right
aggregate and exactly one capacity release."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import bearer, local_aws, local_services

pytestmark = pytest.mark.e2e


def fresh_project(http: httpx.Client, admin: dict[str, str], ceiling: int) -> tuple[str, str]:
    domain = http.post("/v1/domains", headers=admin, json={"name": "c", "live_execution_ceiling": ceiling}).json()
    project = http.post(f"/v1/domains/{domain['id']}/projects", headers=admin, json={"name": "p"}).json()
    return domain["id"], project["id"]


def enroll(server: str, admin: dict[str, str], project_id: str, count: int, prefix: str) -> list[dict[str, Any]]:
    def one(index: int) -> dict[str, Any]:
        with httpx.Client(base_url=server, timeout=60) as client:
            token = client.post(f"/v1/projects/{project_id}/enrollment-tokens", headers=admin, json={}).json()["token"]
            response = client.post(
                "/v1/register",
                json={
                    "token": token,
                    "hostname": f"{prefix}-{index}",
                    "metadata": {"fleet": prefix},
                    "capabilities": {"builtin_actions": [{"name": "restart-agent"}]},
                },
            )
            assert response.status_code == 201, response.text
            return dict(response.json())

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(one, range(count)))


def local_table(local_server: dict[str, Any]) -> tuple[Any, str]:
    """A DynamoDB client on the local server's moto, and the table's name."""
    return local_aws(local_server, "dynamodb"), local_services(local_server)["table"]


def folded_counts(local_server: dict[str, Any], execution_id: str, target_count: int) -> dict[str, int]:
    """The Execution's counter shards, summed: what the stream fold has counted."""
    client, table = local_table(local_server)
    shards = client.query(
        TableName=table,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :c)",
        ExpressionAttributeValues={":pk": {"S": f"EXEC#{execution_id}"}, ":c": {"S": "COUNTER#"}},
        ConsistentRead=True,
    )["Items"]
    totals = {"pending": target_count}
    for shard in shards:
        for name, value in shard.items():
            if "N" in value:
                totals[name] = totals.get(name, 0) + int(value["N"])
    return {name: n for name, n in totals.items() if n}


def seed_nodes(local_server: dict[str, Any], project_id: str, domain_id: str, count: int) -> list[dict[str, Any]]:
    """Write ``count`` registered nodes straight into the local table (registration has its own
    tests; here only their reports matter). Returns their ids and node secret keys."""
    from datetime import UTC, datetime

    from orchestrator.domain.credentials import mint_node_secret_key, secret_hash
    from orchestrator.domain.models import BuiltinAction, Capabilities, Node
    from orchestrator.store import keys
    from orchestrator.store.nodes import _node_item
    from orchestrator.store.table import serialize

    client, table = local_table(local_server)
    now, seeded, requests = datetime.now(UTC), [], []
    for index in range(count):
        nsk = mint_node_secret_key()
        node = Node(
            id=f"seeded-{project_id[-8:]}-{index:05d}",
            project_id=project_id,
            domain_id=domain_id,
            hostname=f"k-{index}",
            labels={"fleet": "k"},
            mesh_ip="10.100.0.1",
            capabilities=Capabilities(builtin_actions=(BuiltinAction(name="restart-agent"),)),
            registered_at=now,
            updated_at=now,
        )
        requests.append({"PutRequest": {"Item": serialize({**_node_item(node), "nsk_hash": secret_hash(nsk)})}})
        requests.append({"PutRequest": {"Item": serialize({**keys.nsk_index(secret_hash(nsk)), "node_id": node.id})}})
        seeded.append({"node_id": node.id, "node_secret_key": nsk})
    for start in range(0, len(requests), 25):
        client.batch_write_item(RequestItems={table: requests[start : start + 25]})
    return seeded


def wait_completed(http: httpx.Client, admin: dict[str, str], path: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = dict(http.get(path, headers=admin).json())
        if body["completed_at"] or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def test_conflicting_reports_on_one_target_have_exactly_one_winner(
    local_server: dict[str, Any], http: httpx.Client
) -> None:
    admin = bearer(local_server["operator_token"])
    _, project_id = fresh_project(http, admin, ceiling=10)
    (node,) = enroll(local_server["server"], admin, project_id, 1, "race")
    dispatched = http.post(
        f"/v1/projects/{project_id}/executions:dispatch",
        headers=admin,
        json={"action": "restart-agent", "node_id": node["node_id"], "timeout_seconds": 60},
    ).json()
    url = f"{local_server['server']}/v1/nodes/{node['node_id']}/executions/{dispatched['id']}"
    statuses = ["succeeded", "failed"] * 12

    def report(status: str) -> int:
        return httpx.post(url, headers=bearer(node["node_secret_key"]), json={"status": status}, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=len(statuses)) as pool:
        codes = list(pool.map(report, statuses))
    assert sorted(codes) == [200] + [409] * (len(statuses) - 1)
    body = http.get(f"/v1/projects/{project_id}/executions/{dispatched['id']}", headers=admin).json()
    terminal = {k: v for k, v in body["counts"].items() if v}
    assert sum(terminal.values()) == 1 and set(terminal) <= {"succeeded", "failed"}
    deadline = time.monotonic() + 10  # the stream fold is asynchronous, as on AWS
    while folded_counts(local_server, dispatched["id"], 1) != terminal and time.monotonic() < deadline:
        time.sleep(0.1)
    assert folded_counts(local_server, dispatched["id"], 1) == terminal


def test_a_thousand_targets_reporting_at_once_stay_exact(local_server: dict[str, Any], http: httpx.Client) -> None:
    size = 1000
    admin = bearer(local_server["operator_token"])
    domain_id, project_id = fresh_project(http, admin, ceiling=1)
    nodes = seed_nodes(local_server, project_id, domain_id, size)
    dispatched = http.post(
        f"/v1/projects/{project_id}/executions:dispatch",
        headers=admin,
        json={"action": "restart-agent", "selector": "fleet=k", "timeout_seconds": 120},
    )
    assert dispatched.status_code == 201, dispatched.text
    execution_id = dispatched.json()["id"]
    assert dispatched.json()["target_count"] == size

    def report(node: dict[str, Any]) -> int:
        with httpx.Client(base_url=local_server["server"], timeout=60) as client:
            return client.post(
                f"/v1/nodes/{node['node_id']}/executions/{execution_id}",
                headers=bearer(node["node_secret_key"]),
                json={"status": "succeeded", "exit_code": 0},
            ).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(report, nodes))
    assert codes == [200] * size

    body = wait_completed(http, admin, f"/v1/projects/{project_id}/executions/{execution_id}")
    assert body["status"] == "succeeded"
    assert body["counts"] == {
        "pending": 0,
        "ack": 0,
        "started": 0,
        "succeeded": size,
        "failed": 0,
        "cancelled": 0,
        "timeout": 0,
    }
    # The counters the workflow polls, folded from the table's stream: each report counted once.
    assert folded_counts(local_server, execution_id, size) == {"succeeded": size}
    # And each report has its audit event, once.
    events, cursor = [], None
    while True:
        page = http.get(
            f"/v1/projects/{project_id}/executions/{execution_id}/events",
            headers=admin,
            params={"limit": 200, **({"cursor": cursor} if cursor else {})},
        ).json()
        events += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    reported = [e for e in events if e.get("node_id") and e["status"] == "succeeded"]
    assert sorted(e["node_id"] for e in reported) == sorted(n["node_id"] for n in nodes)
    # Exactly one release: with a ceiling of 1, one new dispatch fits and the next does not.
    again = {"action": "restart-agent", "node_id": nodes[0]["node_id"]}
    assert http.post(f"/v1/projects/{project_id}/executions:dispatch", headers=admin, json=again).status_code == 201
    assert http.post(f"/v1/projects/{project_id}/executions:dispatch", headers=admin, json=again).status_code == 429
