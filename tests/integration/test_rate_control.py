"""Rate control (SPEC §9): max_concurrency targets in flight; after max_errors failures the rest are cancelled."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import Api, RegisteredNode, Tenant, register_node


@pytest.fixture
def four(api: Api, tenant: Tenant) -> list[RegisteredNode]:
    caps = {"builtin_actions": [{"name": "restart-agent"}]}
    nodes = [register_node(api, tenant, f"web-{i}", metadata={"env": "prod"}, capabilities=caps) for i in range(4)]
    return sorted(nodes, key=lambda n: n.id)  # release order


def dispatch(api: Api, tenant: Tenant, rate: dict) -> str:
    response = api.request(
        "POST",
        f"/v1/projects/{tenant.project_id}/executions:dispatch",
        token=tenant.admin_token,
        json_body={"action": "restart-agent", "selector": "env=prod", "timeout_seconds": 30, "rate": rate},
    )
    assert response.status_code == 201, response.text
    assert response.json["rate"] == rate
    return str(response.json["id"])


def requested(api: Api, node: RegisteredNode) -> bool:
    text = api.request("GET", f"/v1/nodes/{node.id}/events", token=node.nsk, headers={"Last-Event-ID": "0"}).text
    return "event: action_request" in text


def sees(api: Api, node: RegisteredNode) -> bool:
    return bool(api.request("GET", f"/v1/nodes/{node.id}/state", token=node.nsk).json["executions"])


def eventually(check, timeout: float = 15) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def report(api: Api, node: RegisteredNode, execution: str, status: str) -> None:
    response = api.request(
        "POST", f"/v1/nodes/{node.id}/executions/{execution}", json_body={"status": status}, token=node.nsk
    )
    assert response.status_code == 200, response.text


def test_max_concurrency_holds_targets_back_until_room_frees(api: Api, tenant: Tenant, four: list) -> None:
    execution = dispatch(api, tenant, {"max_concurrency": 2})
    assert eventually(lambda: requested(api, four[0]) and requested(api, four[1]))
    assert [sees(api, n) for n in four] == [True, True, False, False]
    assert not requested(api, four[2]) and not requested(api, four[3])
    report(api, four[0], execution, "succeeded")
    assert eventually(lambda: requested(api, four[2]))
    assert not requested(api, four[3])  # still two in flight: four[1] and four[2]
    report(api, four[1], execution, "succeeded")
    assert eventually(lambda: requested(api, four[3]))


def test_max_errors_cancels_the_targets_not_yet_sent(api: Api, tenant: Tenant, four: list) -> None:
    execution = dispatch(api, tenant, {"max_concurrency": 1, "max_errors": 0})
    assert eventually(lambda: requested(api, four[0]))
    report(api, four[0], execution, "failed")

    def finished() -> bool:
        body = api.request(
            "GET", f"/v1/projects/{tenant.project_id}/executions/{execution}", token=tenant.admin_token
        ).json
        return bool(body["completed_at"])

    assert eventually(finished)
    body = api.request("GET", f"/v1/projects/{tenant.project_id}/executions/{execution}", token=tenant.admin_token).json
    assert body["status"] == "failed"
    assert [t["status"] for t in sorted(body["targets"], key=lambda t: t["node_id"])] == [
        "failed",
        "cancelled",
        "cancelled",
        "cancelled",
    ]
    assert {t.get("error") for t in body["targets"][1:]} <= {"max_errors_reached", None}
    assert not any(requested(api, n) for n in four[1:])
