"""Node data entries (SPEC §18): operators write, viewers read; each change sends the node a
`node_state_updated` with its metadata and every entry (plexd replaces its cache from it), and
`/state` `data` lists them."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Api, RegisteredNode, Tenant, assert_problem, operator_token, register_node
from tests.integration.test_policies import grant, received, state

CONFIG = {"content_type": "application/json", "payload": {"region": "eu-1", "weights": [1, 2.5], "note": "<&>"}}


def data_path(tenant: Tenant, node: RegisteredNode | str, key: str | None = None) -> str:
    node_id = node if isinstance(node, str) else node.id
    base = f"/v1/projects/{tenant.project_id}/nodes/{node_id}/data"
    return f"{base}/{key}" if key else base


def put(api: Api, tenant: Tenant, node: RegisteredNode | str, key: str, body: Any, token: str | None = None) -> Any:
    return api.request("PUT", data_path(tenant, node, key), json_body=body, token=token or tenant.admin_token)


def test_put_creates_then_bumps_the_version_and_the_node_hears_every_entry(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01", metadata={"role": "web"})
    created = put(api, tenant, node, "config", CONFIG)
    assert created.status_code == 201, created.text
    assert {k: created.json[k] for k in ("key", "content_type", "payload", "version")} == {
        "key": "config",
        **CONFIG,
        "version": 1,
    }
    assert put(api, tenant, node, "extra", {"content_type": "text/plain", "payload": "hi"}).status_code == 201
    updated = put(api, tenant, node, "config", {"content_type": "application/json", "payload": None})
    assert (updated.status_code, updated.json["version"], updated.json["payload"]) == (200, 2, None)

    events = received(api, node, "node_state_updated")
    assert len(events) == 3
    last = events[-1]["payload"]
    assert last["metadata"] == {"role": "web"}
    assert [(e["key"], e["version"], e["payload"]) for e in last["data"]] == [("config", 2, None), ("extra", 1, "hi")]
    assert [e["key"] for e in events[0]["payload"]["data"]] == ["config"]

    served = state(api, node)["data"]
    assert served == last["data"]
    listed = api.request("GET", data_path(tenant, node), token=tenant.admin_token)
    assert listed.status_code == 200
    assert listed.json == {"items": served}


def test_delete_is_204_and_the_node_hears_the_entries_left(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01")
    put(api, tenant, node, "config", CONFIG)
    deleted = api.request("DELETE", data_path(tenant, node, "config"), token=tenant.admin_token)
    assert deleted.status_code == 204
    assert received(api, node, "node_state_updated")[-1]["payload"]["data"] == []
    assert state(api, node)["data"] == []
    before = api.table_items()
    again = api.request("DELETE", data_path(tenant, node, "config"), token=tenant.admin_token)
    assert_problem(again, 404, "node_data_not_found")
    assert api.table_items() == before


def test_only_the_node_concerned_hears_of_its_data(api: Api, tenant: Tenant) -> None:
    node, other = register_node(api, tenant, "web-01"), register_node(api, tenant, "web-02")
    put(api, tenant, node, "config", CONFIG)
    assert received(api, other, "node_state_updated") == []
    assert state(api, other)["data"] == []


def test_operator_writes_viewer_reads(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01")
    grant(api, tenant, "operator@example.com", "operator")
    grant(api, tenant, "viewer@example.com", "viewer")
    assert put(api, tenant, node, "config", CONFIG, token=operator_token("operator@example.com")).status_code == 201
    viewer = operator_token("viewer@example.com")
    assert api.request("GET", data_path(tenant, node), token=viewer).status_code == 200
    before = api.table_items()
    problem = assert_problem(put(api, tenant, node, "config", CONFIG, token=viewer), 403, "rebac_denied")
    assert problem["relation_path"][-1] == f"project:{tenant.project_id}#operator"
    assert_problem(api.request("DELETE", data_path(tenant, node, "config"), token=viewer), 403, "rebac_denied")
    stranger = operator_token("stranger@example.com")
    assert_problem(api.request("GET", data_path(tenant, node), token=stranger), 403, "rebac_denied")
    assert api.table_items() == before


def test_node_outside_the_project_is_404_and_a_deregistered_one_409(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01")
    other_project = api.request(
        "POST", f"/v1/domains/{tenant.domain_id}/projects", json_body={"name": "other"}, token=tenant.admin_token
    ).json["id"]
    before = api.table_items()
    assert_problem(put(api, tenant, "0190b6a4-0000-7000-8000-000000000000", "k", CONFIG), 404, "node_not_found")
    foreign = api.request(
        "PUT", f"/v1/projects/{other_project}/nodes/{node.id}/data/k", json_body=CONFIG, token=tenant.admin_token
    )
    assert_problem(foreign, 404, "node_not_found")
    assert_problem(
        api.request("GET", f"/v1/projects/{other_project}/nodes/{node.id}/data", token=tenant.admin_token),
        404,
        "node_not_found",
    )
    assert api.table_items() == before
    assert api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk).status_code == 200
    before = api.table_items()
    assert_problem(put(api, tenant, node, "k", CONFIG), 409, "node_deregistered")
    assert api.table_items() == before


def test_bad_bodies_and_keys_are_400_and_write_nothing(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01")
    before = api.table_items()
    for body in (
        {"content_type": "application/json"},  # no payload
        {"content_type": "not a type", "payload": 1},
        {"content_type": "text/plain", "payload": "x" * (16 * 1024 + 1)},
        {"content_type": "text/plain", "payload": "<" * (3 * 1024)},  # 18 KiB as Go escapes it
        {"content_type": "text/plain", "payload": 1, "version": 3},
    ):
        assert_problem(put(api, tenant, node, "config", body), 400, "invalid_body")
    for key in ("-lead", "a" * 129, "a:b", ".."):
        assert_problem(put(api, tenant, node, key, CONFIG), 400, "invalid_parameter")
        assert_problem(
            api.request("DELETE", data_path(tenant, node, key), token=tenant.admin_token), 400, "invalid_parameter"
        )
    assert api.table_items() == before


def test_entries_beyond_one_events_room_are_422_and_write_nothing(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01")
    big = {"content_type": "text/plain", "payload": "x" * (15 * 1024)}
    assert put(api, tenant, node, "one", big).status_code == 201
    assert put(api, tenant, node, "two", big).status_code == 201
    before = api.table_items()
    assert_problem(put(api, tenant, node, "three", big), 422, "node_data_too_large")
    assert api.table_items() == before
    assert put(api, tenant, node, "two", {"content_type": "text/plain", "payload": "small"}).status_code == 200
