"""GET .../executions (creation order, index-served filters, bound cursors) and GET .../executions/{id}."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Api, RegisteredNode, Tenant, assert_problem, operator_token, register_node


@pytest.fixture
def node(api: Api, tenant: Tenant) -> RegisteredNode:
    caps = {"builtin_actions": [{"name": "restart-agent"}, {"name": "collect-logs"}]}
    return register_node(api, tenant, "web-1", metadata={"env": "prod"}, capabilities=caps)


def dispatch(api: Api, tenant: Tenant, node: RegisteredNode, action: str) -> str:
    response = api.request(
        "POST",
        f"/v1/projects/{tenant.project_id}/executions:dispatch",
        json_body={"action": action, "node_id": node.id},
        token=tenant.admin_token,
    )
    assert response.status_code == 201, response.text
    return str(response.json["id"])


def listing(api: Api, tenant: Tenant, **query: object) -> dict:
    response = api.request("GET", f"/v1/projects/{tenant.project_id}/executions", token=tenant.admin_token, query=query)
    assert response.status_code == 200, response.text
    return dict(response.json)


def test_list_pages_in_creation_order(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    created = [dispatch(api, tenant, node, "restart-agent") for _ in range(3)]
    first = listing(api, tenant, limit=2)
    assert [e["id"] for e in first["items"]] == created[:2]
    second = listing(api, tenant, limit=2, cursor=first["next_cursor"])
    assert [e["id"] for e in second["items"]] == created[2:]
    assert "next_cursor" not in second
    # Every item carries its targets (the SDK's Execution requires the list)
    for item in first["items"] + second["items"]:
        assert [t["node_id"] for t in item["targets"]] == [node.id]
        assert item["targets"][0]["status"] == "pending"
        assert item["targets_truncated"] is False


def test_action_name_filter(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    restarts = [dispatch(api, tenant, node, "restart-agent") for _ in range(2)]
    dispatch(api, tenant, node, "collect-logs")
    assert [e["id"] for e in listing(api, tenant, action_name="restart-agent")["items"]] == restarts


def test_status_filter_and_both_filters(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    pending = dispatch(api, tenant, node, "restart-agent")
    assert [e["id"] for e in listing(api, tenant, status="pending")["items"]] == [pending]
    assert listing(api, tenant, status="succeeded")["items"] == []
    assert [e["id"] for e in listing(api, tenant, status="pending", action_name="restart-agent")["items"]] == [pending]
    assert listing(api, tenant, status="pending", action_name="collect-logs")["items"] == []


def test_cursor_is_bound_to_the_filters(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    for _ in range(2):
        dispatch(api, tenant, node, "restart-agent")
    cursor = listing(api, tenant, limit=1, action_name="restart-agent")["next_cursor"]
    response = api.request(
        "GET",
        f"/v1/projects/{tenant.project_id}/executions",
        token=tenant.admin_token,
        query={"cursor": cursor, "action_name": "collect-logs"},
    )
    assert_problem(response, 403, "cursor_binding_mismatch")


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "201"}, "invalid_limit"),
        ({"cursor": "x.y"}, "invalid_cursor"),
        ({"status": "done"}, "invalid_parameter"),
        ({"action_name": "bad name"}, "invalid_parameter"),
    ],
)
def test_bad_list_queries_are_400(api: Api, tenant: Tenant, query: dict, code: str) -> None:
    response = api.request("GET", f"/v1/projects/{tenant.project_id}/executions", token=tenant.admin_token, query=query)
    assert_problem(response, 400, code)


def test_tampered_cursor_is_400(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    for _ in range(2):
        dispatch(api, tenant, node, "restart-agent")
    cursor = listing(api, tenant, limit=1)["next_cursor"]
    payload, signature = cursor.split(".")
    response = api.request(
        "GET",
        f"/v1/projects/{tenant.project_id}/executions",
        token=tenant.admin_token,
        query={"cursor": payload + "." + signature[::-1]},
    )
    assert_problem(response, 400, "invalid_cursor")


def test_get_returns_the_metadata_projection(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    execution_id = dispatch(api, tenant, node, "restart-agent")
    body = api.request(
        "GET", f"/v1/projects/{tenant.project_id}/executions/{execution_id}", token=tenant.admin_token
    ).json
    assert set(body) >= {
        "id",
        "project_id",
        "domain_id",
        "action",
        "type",
        "parameters",
        "timeout_seconds",
        "status",
        "created_at",
        "updated_at",
        "started_at",
        "completed_at",
        "triggered_by",
        "targets",
        "counts",
    }
    assert [t["node_id"] for t in body["targets"]] == [node.id]
    assert node.nsk not in str(body)


def test_unknown_execution_is_404(api: Api, tenant: Tenant) -> None:
    response = api.request("GET", f"/v1/projects/{tenant.project_id}/executions/nope", token=tenant.admin_token)
    assert_problem(response, 404, "execution_not_found")


def test_execution_of_another_project_is_404(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    execution_id = dispatch(api, tenant, node, "restart-agent")
    other = api.request(
        "POST", f"/v1/domains/{tenant.domain_id}/projects", json_body={"name": "other"}, token=tenant.admin_token
    ).json["id"]
    response = api.request("GET", f"/v1/projects/{other}/executions/{execution_id}", token=tenant.admin_token)
    assert_problem(response, 404, "execution_not_found")


def test_non_members_cannot_read(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    execution_id = dispatch(api, tenant, node, "restart-agent")
    for path in ("executions", f"executions/{execution_id}"):
        response = api.request("GET", f"/v1/projects/{tenant.project_id}/{path}", token=operator_token("eve"))
        assert_problem(response, 403, "rebac_denied")


@pytest.mark.parametrize(
    "stored",
    [
        # before the bytes travelled in the reference: size as inline_bytes, bytes beside
        ({"kind": "inline", "inline_bytes": 13}, b"restarted ok\n"),
        # before the size was named size: size as inline_bytes, bytes in content
        ({"kind": "inline", "inline_bytes": 13, "content": b"restarted ok\n"}, None),
    ],
)
def test_targets_stored_in_the_old_output_shape_read_in_the_sdks_shape(
    api: Api, tenant: Tenant, node: RegisteredNode, stored: tuple[dict, bytes | None]
) -> None:
    import base64

    import boto3

    from orchestrator.store.table import serialize

    # Given a target whose output reference was written in an earlier shape
    execution_id = dispatch(api, tenant, node, "restart-agent")
    ref, beside = stored
    values = {":r": ref} | ({":o": beside} if beside is not None else {})
    boto3.client("dynamodb").update_item(
        TableName=api.stack.refs["Table"],
        Key=serialize({"PK": f"EXEC#{execution_id}", "SK": f"TARGET#{node.id}"}),
        UpdateExpression="SET output_ref = :r" + (", output_inline = :o" if beside is not None else ""),
        ExpressionAttributeValues=serialize(values),
    )
    # When an operator reads the Execution, the list and the output
    path = f"/v1/projects/{tenant.project_id}/executions/{execution_id}"
    got = api.request("GET", path, token=tenant.admin_token).json["targets"][0]["output_ref"]
    listed = listing(api, tenant)["items"][0]["targets"][0]["output_ref"]
    output = api.request("GET", f"{path}/targets/{node.id}/output", token=tenant.admin_token).json
    # Then each is the new shape, with the same bytes
    expected = {"kind": "inline", "inline_bytes": base64.b64encode(b"restarted ok\n").decode(), "size": 13}
    assert got == listed == expected
    assert output == {"kind": "inline", "size": 13, "content_base64": expected["inline_bytes"]}


def test_list_items_cap_their_targets_and_say_so(api: Api, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.services import executions

    # Given an Execution on three nodes, and a cap of two listed targets
    caps = {"builtin_actions": [{"name": "restart-agent"}]}
    nodes = [register_node(api, tenant, f"web-{i}", metadata={"env": "cap"}, capabilities=caps) for i in range(3)]
    monkeypatch.setattr(executions, "LISTED_TARGETS", 2)
    created = api.request(
        "POST",
        f"/v1/projects/{tenant.project_id}/executions:dispatch",
        json_body={"action": "restart-agent", "selector": "env=cap"},
        token=tenant.admin_token,
    )
    assert created.status_code == 201, created.text
    # When the list is read
    (item,) = listing(api, tenant)["items"]
    # Then it carries the first two targets by node id and says there are more
    assert [t["node_id"] for t in item["targets"]] == sorted(n.id for n in nodes)[:2]
    assert item["targets_truncated"] is True
    # While the Execution itself has them all
    full = api.request(
        "GET", f"/v1/projects/{tenant.project_id}/executions/{created.json['id']}", token=tenant.admin_token
    )
    assert len(full.json["targets"]) == 3 and full.json["targets_truncated"] is False
