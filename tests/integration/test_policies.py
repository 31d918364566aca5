"""Policies (SPEC §18): admin writes, viewer reads; each change is one `policy_updated` feed
event for the nodes the policy concerned before or after it; `/state` serves the matching ones."""

from __future__ import annotations

import json
from typing import Any

import pytest
from plexd_sim.wire import SseParser

from tests.integration.conftest import Api, RegisteredNode, Tenant, assert_problem, operator_token, register_node

VIEWER = "viewer@example.com"
OPERATOR = "operator@example.com"
ANY_ALLOW = {"src": "*", "dst": "*", "port": 443, "protocol": "tcp", "action": "allow"}


def policy_path(tenant: Tenant, policy_id: str = "web-ingress") -> str:
    return f"/v1/projects/{tenant.project_id}/policies/{policy_id}"


def put(
    api: Api, tenant: Tenant, body: dict[str, Any], policy_id: str = "web-ingress", token: str | None = None
) -> Any:
    return api.request("PUT", policy_path(tenant, policy_id), json_body=body, token=token or tenant.admin_token)


def grant(api: Api, tenant: Tenant, subject: str, relation: str) -> None:
    response = api.request(
        "PUT",
        f"/v1/projects/{tenant.project_id}/members/{subject}",
        json_body={"relation": relation},
        token=tenant.admin_token,
    )
    assert response.status_code in (200, 201), response.text


def received(api: Api, node: RegisteredNode, event_type: str) -> list[dict[str, Any]]:
    """The envelopes of ``event_type`` on the node's stream (replayed from the start)."""
    body = api.request("GET", f"/v1/nodes/{node.id}/events", token=node.nsk, headers={"Last-Event-ID": "0"}).text
    parser = SseParser()
    messages = [m for line in body.split("\n") if (m := parser.feed_line(line)) is not None]
    return [json.loads(m.data) for m in messages if m.event == event_type]


def state(api: Api, node: RegisteredNode) -> dict[str, Any]:
    response = api.request("GET", f"/v1/nodes/{node.id}/state", token=node.nsk)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json
    return body


@pytest.fixture
def fleet(api: Api, tenant: Tenant) -> dict[str, RegisteredNode]:
    return {
        "web": register_node(api, tenant, "web-01", metadata={"role": "web"}),
        "db": register_node(api, tenant, "db-01", metadata={"role": "db"}),
        "cache": register_node(api, tenant, "cache-01", metadata={"role": "cache"}),
    }


def test_put_creates_then_replaces_with_a_new_version(api: Api, tenant: Tenant) -> None:
    created = put(api, tenant, {"selector": "role=web", "rules": [ANY_ALLOW]})
    assert created.status_code == 201, created.text
    assert created.json["version"] == 1
    assert created.json["rules"] == [ANY_ALLOW]
    assert created.json["updated_by"].startswith("user:")
    replaced = put(api, tenant, {"selector": "role=db", "rules": []})
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json["version"], replaced.json["selector"], replaced.json["rules"]) == (2, "role=db", [])
    read = api.request("GET", policy_path(tenant), token=tenant.admin_token)
    assert read.status_code == 200
    assert read.json == replaced.json


def test_rule_defaults_are_any_port_and_any_protocol(api: Api, tenant: Tenant) -> None:
    created = put(api, tenant, {"selector": "role=web", "rules": [{"src": "*", "dst": "*", "action": "deny"}]})
    assert created.json["rules"] == [{"src": "*", "dst": "*", "port": 0, "protocol": "any", "action": "deny"}]


def test_policy_change_reaches_exactly_the_nodes_of_its_old_or_new_selector(
    api: Api, tenant: Tenant, fleet: dict[str, RegisteredNode]
) -> None:
    put(api, tenant, {"selector": "role=web", "rules": [ANY_ALLOW]})
    moved = put(api, tenant, {"selector": "role=db", "rules": [ANY_ALLOW]})
    assert moved.status_code == 200
    web, db, cache = (received(api, fleet[n], "policy_updated") for n in ("web", "db", "cache"))
    assert [e["payload"]["version"] for e in web] == [1, 2]  # concerned before the move
    assert [e["payload"]["version"] for e in db] == [2]  # concerned after it
    assert cache == []
    assert db[0]["payload"]["policy_id"] == "web-ingress"
    assert db[0]["payload"]["deleted"] is False
    assert set(db[0]) == {"event_type", "event_id", "issued_at", "nonce", "payload", "signature"}


def test_one_change_is_one_feed_item_whatever_the_fleet(
    api: Api, tenant: Tenant, fleet: dict[str, RegisteredNode]
) -> None:
    before = api.table_items()
    put(api, tenant, {"selector": "role in (web,db,cache)", "rules": [ANY_ALLOW]})
    new = [i for i in api.table_items() if i not in before]
    assert sorted(i["type"]["S"] for i in new) == ["feed_event", "policy"]


def test_state_serves_the_policies_whose_selector_matches_the_node(
    api: Api, tenant: Tenant, fleet: dict[str, RegisteredNode]
) -> None:
    web_id, db_id = fleet["web"].id, fleet["db"].id
    rule = {"src": web_id, "dst": db_id, "port": 5432, "protocol": "tcp", "action": "allow"}
    put(api, tenant, {"selector": "role in (web,db)", "rules": [rule]}, "web-to-db")
    put(api, tenant, {"selector": "role=web", "rules": [{"src": "*", "dst": "*", "action": "deny"}]}, "web-deny")
    assert state(api, fleet["web"])["policies"] == [
        {"id": "web-deny", "rules": [{"src": "*", "dst": "*", "port": 0, "protocol": "", "action": "deny"}]},
        {"id": "web-to-db", "rules": [rule]},
    ]
    assert state(api, fleet["db"])["policies"] == [{"id": "web-to-db", "rules": [rule]}]
    assert state(api, fleet["cache"])["policies"] == []


def test_delete_is_204_tells_the_concerned_nodes_and_leaves_state(
    api: Api, tenant: Tenant, fleet: dict[str, RegisteredNode]
) -> None:
    put(api, tenant, {"selector": "role=web", "rules": [ANY_ALLOW]})
    deleted = api.request("DELETE", policy_path(tenant), token=tenant.admin_token)
    assert deleted.status_code == 204
    assert deleted.data == b""
    events = received(api, fleet["web"], "policy_updated")
    assert [(e["payload"]["version"], e["payload"]["deleted"]) for e in events] == [(1, False), (2, True)]
    assert received(api, fleet["db"], "policy_updated") == []
    assert state(api, fleet["web"])["policies"] == []
    assert_problem(api.request("GET", policy_path(tenant), token=tenant.admin_token), 404, "policy_not_found")


def test_list_pages_in_policy_id_order_with_a_bound_cursor(api: Api, tenant: Tenant) -> None:
    for policy_id in ("c", "a", "b"):
        put(api, tenant, {"selector": "role=web", "rules": []}, policy_id)
    path = f"/v1/projects/{tenant.project_id}/policies"
    first = api.request("GET", path, token=tenant.admin_token, query={"limit": 2})
    assert [p["id"] for p in first.json["items"]] == ["a", "b"]
    second = api.request("GET", path, token=tenant.admin_token, query={"limit": 2, "cursor": first.json["next_cursor"]})
    assert [p["id"] for p in second.json["items"]] == ["c"]
    assert "next_cursor" not in second.json
    assert_problem(api.request("GET", path, token=tenant.admin_token, query={"limit": 0}), 400, "invalid_limit")
    assert_problem(
        api.request("GET", path, token=tenant.admin_token, query={"cursor": "junk.junk"}), 400, "invalid_cursor"
    )


def test_viewer_reads_but_cannot_write(api: Api, tenant: Tenant) -> None:
    put(api, tenant, {"selector": "role=web", "rules": []})
    grant(api, tenant, VIEWER, "viewer")
    grant(api, tenant, OPERATOR, "operator")
    viewer = operator_token(VIEWER)
    assert api.request("GET", policy_path(tenant), token=viewer).status_code == 200
    assert api.request("GET", f"/v1/projects/{tenant.project_id}/policies", token=viewer).status_code == 200
    before = api.table_items()
    for token in (viewer, operator_token(OPERATOR)):
        problem = assert_problem(put(api, tenant, {"selector": "a=b", "rules": []}, token=token), 403, "rebac_denied")
        assert problem["relation_path"][-1] == f"project:{tenant.project_id}#admin"
        assert_problem(api.request("DELETE", policy_path(tenant), token=token), 403, "rebac_denied")
    assert api.table_items() == before


def test_strangers_are_denied_reads(api: Api, tenant: Tenant) -> None:
    stranger = operator_token("stranger@example.com")
    assert_problem(api.request("GET", policy_path(tenant), token=stranger), 403, "rebac_denied")
    assert_problem(
        api.request("GET", f"/v1/projects/{tenant.project_id}/policies", token=stranger), 403, "rebac_denied"
    )


BAD_RULES = [
    ({"src": "10.0.0.0/8", "dst": "*", "action": "allow"}, "src"),
    ({"src": "*", "dst": "web-01", "action": "allow"}, "dst"),
    ({"src": "*", "dst": "*", "port": 70000, "protocol": "tcp", "action": "allow"}, "port"),
    ({"src": "*", "dst": "*", "port": "80", "protocol": "tcp", "action": "allow"}, "port"),
    ({"src": "*", "dst": "*", "port": 80, "action": "allow"}, "port"),
    ({"src": "*", "dst": "*", "protocol": "icmp", "action": "allow"}, "protocol"),
    ({"src": "*", "dst": "*", "action": "permit"}, "action"),
    ({"src": "*", "dst": "*", "action": "allow", "extra": 1}, "extra"),
]


def test_unenforceable_rules_are_400_naming_the_field_and_write_nothing(api: Api, tenant: Tenant) -> None:
    before = api.table_items()
    for rule, named in BAD_RULES:
        problem = assert_problem(put(api, tenant, {"selector": "role=web", "rules": [rule]}), 400, "invalid_body")
        assert named in json.dumps(problem["errors"]), rule
    assert api.table_items() == before


def test_too_many_rules_is_400(api: Api, tenant: Tenant) -> None:
    before = api.table_items()
    assert_problem(put(api, tenant, {"selector": "role=web", "rules": [ANY_ALLOW] * 257}), 400, "invalid_body")
    assert api.table_items() == before


def test_malformed_selector_is_400_naming_the_position(api: Api, tenant: Tenant) -> None:
    before = api.table_items()
    problem = assert_problem(put(api, tenant, {"selector": "role in (web", "rules": []}), 400, "malformed_selector")
    assert problem["position"] == len("role in (web")
    assert api.table_items() == before


def test_bad_policy_id_is_400_invalid_parameter(api: Api, tenant: Tenant) -> None:
    before = api.table_items()
    for policy_id in ("-lead", "a" * 65, "sp ace", "a:b"):
        assert_problem(put(api, tenant, {"selector": "a=b", "rules": []}, policy_id), 400, "invalid_parameter")
        for method in ("GET", "DELETE"):
            response = api.request(method, policy_path(tenant, policy_id), token=tenant.admin_token)
            assert_problem(response, 400, "invalid_parameter")
    assert api.table_items() == before


def test_unknown_policy_and_project_are_404(api: Api, tenant: Tenant) -> None:
    before = api.table_items()
    assert_problem(
        api.request("DELETE", policy_path(tenant, "nope"), token=tenant.admin_token), 404, "policy_not_found"
    )
    assert_problem(
        api.request(
            "PUT", "/v1/projects/nope/policies/p", json_body={"selector": "a=b", "rules": []}, token=tenant.admin_token
        ),
        404,
        "project_not_found",
    )
    assert api.table_items() == before
