"""GET /v1/projects/{project_id}/nodes: creation order, limits and bound cursors (SPEC §14)."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Api, Tenant, assert_problem, operator_token, register_node


@pytest.fixture
def three_nodes(api: Api, tenant: Tenant) -> list[str]:
    return [register_node(api, tenant, f"web-0{i}").id for i in range(1, 4)]


def nodes_path(tenant: Tenant) -> str:
    return f"/v1/projects/{tenant.project_id}/nodes"


def test_pages_follow_creation_order_and_end_without_cursor(api: Api, tenant: Tenant, three_nodes: list[str]) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        query = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = api.request("GET", nodes_path(tenant), token=tenant.admin_token, query=query)
        assert page.status_code == 200, page.text
        seen.extend(n["id"] for n in page.json["items"])
        cursor = page.json.get("next_cursor")
        if cursor is None:
            break
    assert seen == three_nodes


def test_full_last_page_has_no_next_cursor(api: Api, tenant: Tenant, three_nodes: list[str]) -> None:
    page = api.request("GET", nodes_path(tenant), token=tenant.admin_token, query={"limit": 3})
    assert [n["id"] for n in page.json["items"]] == three_nodes
    assert "next_cursor" not in page.json


def test_default_page_holds_everything_under_fifty(api: Api, tenant: Tenant, three_nodes: list[str]) -> None:
    page = api.request("GET", nodes_path(tenant), token=tenant.admin_token)
    assert len(page.json["items"]) == 3


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "1.5", ""])
def test_out_of_range_limit_is_400_never_clamped(api: Api, tenant: Tenant, limit: str) -> None:
    response = api.request("GET", nodes_path(tenant), token=tenant.admin_token, query={"limit": limit})
    assert_problem(response, 400, "invalid_limit")


def test_limit_bounds_are_accepted(api: Api, tenant: Tenant) -> None:
    for limit in ("1", "200"):
        assert (
            api.request("GET", nodes_path(tenant), token=tenant.admin_token, query={"limit": limit}).status_code == 200
        )


def test_tampered_cursor_is_400(api: Api, tenant: Tenant, three_nodes: list[str]) -> None:
    cursor = api.request("GET", nodes_path(tenant), token=tenant.admin_token, query={"limit": 1}).json["next_cursor"]
    payload, signature = cursor.split(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature
    for bad in (tampered, "garbage", cursor + "x", "a.b.c"):
        response = api.request("GET", nodes_path(tenant), token=tenant.admin_token, query={"cursor": bad})
        assert_problem(response, 400, "invalid_cursor")


def test_cursor_of_another_caller_is_403(api: Api, tenant: Tenant, three_nodes: list[str]) -> None:
    api.request(
        "PUT",
        f"/v1/projects/{tenant.project_id}/members/bob",
        json_body={"relation": "viewer"},
        token=tenant.admin_token,
    )
    cursor = api.request("GET", nodes_path(tenant), token=tenant.admin_token, query={"limit": 1}).json["next_cursor"]
    response = api.request("GET", nodes_path(tenant), token=operator_token("bob"), query={"cursor": cursor})
    assert_problem(response, 403, "cursor_binding_mismatch")


def test_listing_reveals_no_secret(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01")
    text = api.request("GET", nodes_path(tenant), token=tenant.admin_token).text
    assert node.nsk not in text
    for forbidden in ("nsk", "hash", "secret", "token"):
        assert forbidden not in text.lower()


def test_non_member_cannot_list(api: Api, tenant: Tenant) -> None:
    response = api.request("GET", nodes_path(tenant), token=operator_token("mallory"))
    assert_problem(response, 403, "rebac_denied")


def test_unknown_project_is_404(api: Api, tenant: Tenant) -> None:
    response = api.request("GET", "/v1/projects/0190a8b8-a0c0-7a0a-8a0a-a0a0a0a0a0c0/nodes", token=tenant.admin_token)
    assert_problem(response, 404, "project_not_found")
