"""GET .../actions (catalog) and POST .../actions/{action}:prepare (dry run)."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Api, RegisteredNode, Tenant, assert_problem, operator_token, register_node

GOOD, BAD = "sha256:" + "a" * 64, "sha256:" + "b" * 64


@pytest.fixture
def fleet(api: Api, tenant: Tenant) -> list[RegisteredNode]:
    level = {
        "name": "set-level",
        "description": "Set the log level",
        "dangerous": True,
        "parameters": [{"name": "level", "type": "integer", "required": True, "default": 2}],
    }
    return [
        register_node(
            api,
            tenant,
            "a",
            metadata={"env": "prod"},
            capabilities={"builtin_actions": [level], "hooks": [{"name": "rotate", "checksum": GOOD}]},
        ),
        register_node(
            api,
            tenant,
            "b",
            metadata={"env": "prod"},
            capabilities={"builtin_actions": [level], "hooks": [{"name": "rotate", "checksum": BAD}]},
        ),
        register_node(api, tenant, "c", metadata={"env": "dev"}, capabilities={"builtin_actions": [{"name": "ping"}]}),
    ]


def test_catalog_lists_declared_actions_with_counts_and_checksum_state(api: Api, tenant: Tenant, fleet: list) -> None:
    response = api.request("GET", f"/v1/projects/{tenant.project_id}/actions", token=tenant.admin_token)
    assert response.status_code == 200
    items = {(i["type"], i["name"]): i for i in response.json["items"]}
    assert set(items) == {("builtin", "set-level"), ("builtin", "ping"), ("hook", "rotate")}
    level = items[("builtin", "set-level")]
    assert level["node_count"] == 2 and level["dangerous"] is True
    assert level["input_schema"] == {
        "type": "object",
        "properties": {"level": {"type": "integer", "default": 2}},
        "required": ["level"],
        "additionalProperties": False,
    }
    rotate = items[("hook", "rotate")]
    assert rotate["checksum"] == {"baseline": GOOD, "state": "drift", "drifting_nodes": [fleet[1].id]}


def test_catalog_needs_read_access(api: Api, tenant: Tenant, fleet: list) -> None:
    response = api.request("GET", f"/v1/projects/{tenant.project_id}/actions", token=operator_token("eve"))
    assert_problem(response, 403, "rebac_denied")


def test_prepare_previews_schema_defaults_and_cohort_and_writes_nothing(api: Api, tenant: Tenant, fleet: list) -> None:
    before = api.table_items()
    response = api.request(
        "POST",
        f"/v1/projects/{tenant.project_id}/actions/set-level:prepare",
        json_body={"selector": "env=prod"},
        token=tenant.admin_token,
    )
    assert response.status_code == 200, response.text
    body = response.json
    assert body["defaults"] == {"level": 2}
    assert body["requires_confirmation"] is True
    assert body["cohort"]["count"] == 2
    assert {n["node_id"] for n in body["cohort"]["nodes"]} == {fleet[0].id, fleet[1].id}
    assert api.table_items() == before


def test_prepare_of_a_hook_names_drifting_nodes(api: Api, tenant: Tenant, fleet: list) -> None:
    response = api.request(
        "POST",
        f"/v1/projects/{tenant.project_id}/actions/rotate:prepare",
        json_body={"type": "hook", "selector": "env=prod"},
        token=tenant.admin_token,
    )
    assert response.json["hook"]["baseline"] == GOOD
    assert [n["node_id"] for n in response.json["hook"]["drifting_nodes"]] == [fleet[1].id]


def test_prepare_applies_the_dispatch_target_rules(api: Api, tenant: Tenant, fleet: list) -> None:
    path = f"/v1/projects/{tenant.project_id}/actions"
    assert_problem(
        api.request("POST", f"{path}/set-level:prepare", json_body={}, token=tenant.admin_token), 400, "invalid_target"
    )
    assert_problem(
        api.request("POST", f"{path}/set-level:prepare", json_body={"selector": "env=("}, token=tenant.admin_token),
        400,
        "malformed_selector",
    )
    assert_problem(
        api.request("POST", f"{path}/set-level:prepare", json_body={"selector": "env=dev"}, token=tenant.admin_token),
        422,
        "selector_empty_cohort",
    )
    assert_problem(
        api.request("POST", f"{path}/set-level:explode", json_body={"selector": "env=dev"}, token=tenant.admin_token),
        404,
        "route_not_found",
    )
