"""Node credentials and lifecycle: capabilities, heartbeat, deregistration (SPEC §5, §12)."""

from __future__ import annotations

import boto3
import pytest

from orchestrator.store import keys
from tests.integration.conftest import Api, Tenant, assert_problem, register_node


@pytest.fixture
def two_nodes(api: Api, tenant: Tenant) -> tuple:
    return register_node(api, tenant, "web-01"), register_node(api, tenant, "web-02")


def caps(*names: str) -> dict:
    return {"builtin_actions": [{"name": n} for n in names]}


def test_node_updates_its_capabilities(api: Api, tenant: Tenant, two_nodes: tuple) -> None:
    node, _ = two_nodes
    response = api.request(
        "PUT",
        f"/v1/nodes/{node.id}/capabilities",
        json_body={
            **caps("restart-agent", "collect-logs"),
            "hooks": [{"name": "rotate", "checksum": "sha256:" + "c" * 64}],
        },
        token=node.nsk,
    )
    assert response.status_code == 200, response.text
    assert response.json["capabilities"]["builtin_actions"] == ["restart-agent", "collect-logs"]
    listed = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=tenant.admin_token)
    summary = next(n for n in listed.json["items"] if n["id"] == node.id)["capabilities"]
    assert summary["hooks"] == [{"name": "rotate", "checksum": "sha256:" + "c" * 64}]


def test_empty_builtin_action_name_is_422(api: Api, two_nodes: tuple) -> None:
    node, _ = two_nodes
    response = api.request("PUT", f"/v1/nodes/{node.id}/capabilities", json_body=caps("  "), token=node.nsk)
    assert_problem(response, 422, "builtin_action_invalid")


def test_duplicate_builtin_action_is_422_and_changes_nothing(api: Api, two_nodes: tuple) -> None:
    node, _ = two_nodes
    api.request("PUT", f"/v1/nodes/{node.id}/capabilities", json_body=caps("a"), token=node.nsk)
    response = api.request("PUT", f"/v1/nodes/{node.id}/capabilities", json_body=caps("b", "b"), token=node.nsk)
    assert_problem(response, 422, "builtin_action_duplicate")
    item = boto3.client("dynamodb").get_item(
        TableName=api.stack.refs["Table"], Key={k: {"S": v} for k, v in keys.node(node.id).items()}
    )["Item"]
    assert [a["M"]["name"]["S"] for a in item["capabilities"]["M"]["builtin_actions"]["L"]] == ["a"]


def test_hook_with_malformed_checksum_is_422(api: Api, two_nodes: tuple) -> None:
    node, _ = two_nodes
    response = api.request(
        "PUT",
        f"/v1/nodes/{node.id}/capabilities",
        json_body={"hooks": [{"name": "rotate", "checksum": "md5:abc"}]},
        token=node.nsk,
    )
    assert_problem(response, 422, "hook_invalid")


def test_another_nodes_nsk_is_403_nsk_node_mismatch(api: Api, two_nodes: tuple) -> None:
    first, second = two_nodes
    response = api.request("POST", f"/v1/nodes/{first.id}/heartbeat", json_body={}, token=second.nsk)
    assert_problem(response, 403, "nsk_node_mismatch")


@pytest.mark.parametrize("authorization", [None, "Bearer", "Basic abc", "Bearer not-a-key"])
def test_missing_or_malformed_nsk_is_401_nsk_revoked(api: Api, two_nodes: tuple, authorization: str | None) -> None:
    node, _ = two_nodes
    headers = {"Authorization": authorization} if authorization else {}
    response = api.request("POST", f"/v1/nodes/{node.id}/heartbeat", json_body={}, headers=headers)
    assert_problem(response, 401, "nsk_revoked")


def test_unknown_node_with_garbage_key_is_401(api: Api) -> None:
    response = api.request("POST", "/v1/nodes/unknown/heartbeat", json_body={}, token="x" * 44)
    assert_problem(response, 401, "nsk_revoked")


def test_heartbeat_records_liveness_and_answers_flags(api: Api, tenant: Tenant, two_nodes: tuple) -> None:
    node, _ = two_nodes
    response = api.request(
        "POST",
        f"/v1/nodes/{node.id}/heartbeat",
        json_body={"node_id": node.id, "status": "healthy", "uptime": "72h", "mesh": {"peer_count": 3}},
        token=node.nsk,
    )
    assert response.status_code == 200
    assert response.json == {"reconcile": False, "rotate_keys": False}
    listed = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=tenant.admin_token)
    assert next(n for n in listed.json["items"] if n["id"] == node.id)["last_heartbeat_at"] is not None


def test_heartbeat_without_body_is_accepted(api: Api, two_nodes: tuple) -> None:
    node, _ = two_nodes
    response = api.request("POST", f"/v1/nodes/{node.id}/heartbeat", token=node.nsk)
    assert response.status_code == 200


def test_reconcile_request_is_delivered_once(api: Api, two_nodes: tuple) -> None:
    node, _ = two_nodes
    boto3.client("dynamodb").update_item(
        TableName=api.stack.refs["Table"],
        Key={k: {"S": v} for k, v in keys.node(node.id).items()},
        UpdateExpression="SET reconcile_requested = :t",
        ExpressionAttributeValues={":t": {"BOOL": True}},
    )
    first = api.request("POST", f"/v1/nodes/{node.id}/heartbeat", json_body={}, token=node.nsk)
    second = api.request("POST", f"/v1/nodes/{node.id}/heartbeat", json_body={}, token=node.nsk)
    assert first.json == {"reconcile": True, "rotate_keys": False}
    assert second.json == {"reconcile": False, "rotate_keys": False}


def test_deregistration_revokes_the_nsk(api: Api, tenant: Tenant, two_nodes: tuple) -> None:
    node, other = two_nodes
    response = api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk)
    assert response.status_code == 200
    assert response.json == {"node_id": node.id, "status": "deregistered"}
    after = api.request("POST", f"/v1/nodes/{node.id}/heartbeat", json_body={}, token=node.nsk)
    assert_problem(after, 401, "nsk_revoked")
    again = api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk)
    assert_problem(again, 401, "nsk_revoked")
    # The other node is unaffected.
    assert api.request("POST", f"/v1/nodes/{other.id}/heartbeat", json_body={}, token=other.nsk).status_code == 200
    listed = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=tenant.admin_token)
    statuses = {n["id"]: n["status"] for n in listed.json["items"]}
    assert statuses == {node.id: "deregistered", other.id: "online"}


def test_deregistered_hostname_can_register_again(api: Api, tenant: Tenant, two_nodes: tuple) -> None:
    node, _ = two_nodes
    api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk)
    again = register_node(api, tenant, node.hostname)
    assert again.id != node.id


def test_deregistered_nodes_nsk_cannot_act_for_another_node(api: Api, two_nodes: tuple) -> None:
    node, other = two_nodes
    api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk)
    response = api.request("POST", f"/v1/nodes/{other.id}/heartbeat", json_body={}, token=node.nsk)
    assert_problem(response, 401, "nsk_revoked")


def test_operator_sets_and_removes_labels(api: Api, tenant: Tenant, two_nodes: tuple) -> None:
    node, _ = two_nodes
    path = f"/v1/projects/{tenant.project_id}/nodes/{node.id}"
    set_response = api.request(
        "PATCH", path, json_body={"labels": {"tier": "edge", "env": "prod"}}, token=tenant.admin_token
    )
    assert set_response.status_code == 200, set_response.text
    assert set_response.json["labels"] == {"tier": "edge", "env": "prod"}
    removed = api.request("PATCH", path, json_body={"labels": {"tier": None}}, token=tenant.admin_token)
    assert removed.json["labels"] == {"env": "prod"}


def test_invalid_label_is_400_and_unknown_node_is_404(api: Api, tenant: Tenant, two_nodes: tuple) -> None:
    node, _ = two_nodes
    bad = api.request(
        "PATCH",
        f"/v1/projects/{tenant.project_id}/nodes/{node.id}",
        json_body={"labels": {"bad key": "x"}},
        token=tenant.admin_token,
    )
    assert_problem(bad, 400, "invalid_body")
    missing = api.request(
        "PATCH",
        f"/v1/projects/{tenant.project_id}/nodes/nope",
        json_body={"labels": {"a": "b"}},
        token=tenant.admin_token,
    )
    assert_problem(missing, 404, "node_not_found")


def test_capability_without_a_name_is_422_like_an_empty_one(api: Api, two_nodes: tuple) -> None:
    node, _ = two_nodes
    response = api.request(
        "PUT",
        f"/v1/nodes/{node.id}/capabilities",
        json_body={"builtin_actions": [{"description": "no name"}]},
        token=node.nsk,
    )
    assert_problem(response, 422, "builtin_action_invalid")
    hook = api.request("PUT", f"/v1/nodes/{node.id}/capabilities", json_body={"hooks": [{"name": "h"}]}, token=node.nsk)
    assert_problem(hook, 422, "hook_invalid")
