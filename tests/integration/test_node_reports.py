"""Node reports and drift (SPEC §18): POST /v1/nodes/{id}/report and /drift, and the operator
reads GET /v1/projects/{p}/nodes/{id}/reports and /drift."""

from __future__ import annotations

import gzip
import json
from typing import Any

import boto3
import pytest

from orchestrator.store import keys
from tests.e2e.plexd_wire import go_marshal
from tests.integration.conftest import Api, RegisteredNode, Tenant, assert_problem, operator_token, register_node

NOW = "2025-01-15T10:30:00.123456789Z"


@pytest.fixture
def node(api: Api, tenant: Tenant) -> RegisteredNode:
    return register_node(api, tenant, "web-01")


def entry(key: str, version: int, payload: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "content_type": "application/json",
        "payload": {"status": "healthy"} if payload is None else payload,
        "version": version,
        "updated_at": NOW,
        **extra,
    }


def report(api: Api, node: RegisteredNode, body: Any, token: str | None = None) -> Any:
    return api.request("POST", f"/v1/nodes/{node.id}/report", json_body=body, token=token or node.nsk)


def reports_read(api: Api, tenant: Tenant, node_id: str, token: str | None = None, **query: Any) -> Any:
    return api.request(
        "GET",
        f"/v1/projects/{tenant.project_id}/nodes/{node_id}/reports",
        token=token or tenant.admin_token,
        query=query or None,
    )


def drift_read(api: Api, tenant: Tenant, node_id: str, token: str | None = None, **query: Any) -> Any:
    return api.request(
        "GET",
        f"/v1/projects/{tenant.project_id}/nodes/{node_id}/drift",
        token=token or tenant.admin_token,
        query=query or None,
    )


def stored_reports(node_id: str, api: Api) -> dict[str, int]:
    """Each stored report key of the node and its version, straight from the table."""
    table = boto3.resource("dynamodb").Table(api.stack.refs["Table"])
    items = table.query(
        KeyConditionExpression="PK = :pk AND begins_with(SK, :r)",
        ExpressionAttributeValues={":pk": keys.node_partition(node_id), ":r": keys.REPORT_PREFIX},
    )["Items"]
    return {str(i["key"]): int(i["version"]) for i in items}


# POST /report ------------------------------------------------------------------------
def test_a_batch_is_stored_and_answered_with_its_versions(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    response = report(api, node, {"entries": [entry("app-health", 12), entry("disk", 3)], "deleted": None})
    assert response.status_code == 200, response.text
    assert response.json == {"accepted": 2, "deleted": 0, "versions": {"app-health": 12, "disk": 3}}
    assert stored_reports(node.id, api) == {"app-health": 12, "disk": 3}


def test_go_nulls_for_both_lists_are_an_empty_batch_that_writes_nothing(api: Api, node: RegisteredNode) -> None:
    before = api.table_items()
    response = report(api, node, {"entries": None, "deleted": None})
    assert response.status_code == 200, response.text
    assert response.json == {"accepted": 0, "deleted": 0, "versions": {}}
    assert api.table_items() == before


def test_a_greater_version_replaces_the_entry(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    report(api, node, {"entries": [entry("app-health", 1, {"status": "starting"})]})
    response = report(api, node, {"entries": [entry("app-health", 2, {"status": "healthy", "score": 0.5})]})
    assert response.status_code == 200, response.text
    items = reports_read(api, tenant, node.id).json["items"]
    assert [(i["key"], i["version"], i["payload"]) for i in items] == [
        ("app-health", 2, {"status": "healthy", "score": 0.5})
    ]


@pytest.mark.parametrize("stale_version", [5, 4])
def test_a_version_not_greater_is_409_naming_the_keys_and_nothing_of_the_batch_is_written(
    api: Api, node: RegisteredNode, stale_version: int
) -> None:
    # Given two stored entries at version 5
    report(api, node, {"entries": [entry("a", 5), entry("b", 5)]})
    before = api.table_items()
    # When a batch carries a new entry, a stale "a", a good "b", a stale... and a delete
    body = {"entries": [entry("new", 1), entry("a", stale_version), entry("b", 6)], "deleted": ["old"]}
    response = report(api, node, body)
    # Then 409 names only "a", and neither "new" nor "b" at 6 was written
    problem = assert_problem(response, 409, "report_version_conflict")
    assert problem["keys"] == ["a"]
    assert api.table_items() == before


def test_every_conflicting_key_is_named(api: Api, node: RegisteredNode) -> None:
    report(api, node, {"entries": [entry("a", 2), entry("b", 2), entry("c", 2)]})
    response = report(api, node, {"entries": [entry("a", 1), entry("b", 3), entry("c", 2)]})
    assert assert_problem(response, 409, "report_version_conflict")["keys"] == ["a", "c"]


def test_deleted_keys_are_removed_in_the_same_transaction(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    report(api, node, {"entries": [entry("a", 1), entry("b", 1)]})
    response = report(api, node, {"entries": [entry("c", 1)], "deleted": ["a", "never-stored"]})
    assert response.status_code == 200, response.text
    assert response.json["deleted"] == 2
    assert stored_reports(node.id, api) == {"b": 1, "c": 1}
    assert {i["key"] for i in reports_read(api, tenant, node.id).json["items"]} == {"b", "c"}


def test_a_deleted_key_can_be_stored_again_from_any_version(api: Api, node: RegisteredNode) -> None:
    report(api, node, {"entries": [entry("a", 9)]})
    report(api, node, {"deleted": ["a"]})
    assert report(api, node, {"entries": [entry("a", 1)]}).status_code == 200
    assert stored_reports(node.id, api) == {"a": 1}


def test_a_gzipped_agent_batch_over_1kib_is_accepted(api: Api, node: RegisteredNode) -> None:
    body = {"entries": [entry(f"check-{i}", 1, {"detail": "x" * 100, "ok": True}) for i in range(20)], "deleted": None}
    data = gzip.compress(go_marshal(body))
    response = api.request(
        "POST",
        f"/v1/nodes/{node.id}/report",
        data=data,
        token=node.nsk,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert response.json["accepted"] == 20


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-key", "Basic abc"])
def test_missing_or_wrong_nsk_is_401_and_writes_nothing(
    api: Api, node: RegisteredNode, authorization: str | None
) -> None:
    before = api.table_items()
    headers = {"Authorization": authorization} if authorization else {}
    for path, body in (("report", {"entries": [entry("a", 1)]}), ("drift", {"timestamp": NOW, "corrections": None})):
        response = api.request("POST", f"/v1/nodes/{node.id}/{path}", json_body=body, headers=headers)
        assert_problem(response, 401, "nsk_revoked")
    assert api.table_items() == before


def test_another_nodes_nsk_is_403_even_with_a_bad_body(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    other = register_node(api, tenant, "web-02")
    before = api.table_items()
    for path in ("report", "drift"):
        for body in ({"entries": [entry("a", 1)]}, {"entries": "nope", "timestamp": 1}):
            response = api.request("POST", f"/v1/nodes/{node.id}/{path}", json_body=body, token=other.nsk)
            assert_problem(response, 403, "nsk_node_mismatch")
    assert api.table_items() == before


def test_a_deregistered_nodes_key_is_401(api: Api, node: RegisteredNode) -> None:
    assert api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk).status_code == 200
    assert_problem(report(api, node, {"entries": [entry("a", 1)]}), 401, "nsk_revoked")


@pytest.mark.parametrize(
    "body",
    [
        {"entries": [entry("", 1)]},
        {"entries": [entry("bad key", 1)]},
        {"entries": [entry("k" * 257, 1)]},
        {"entries": [entry("a", "1")]},  # strict ints
        {"entries": [entry("a", 1.0)]},
        {"entries": [entry("a", -1)]},
        {"entries": [entry("a", 1, updated_at="yesterday")]},
        {"entries": [{"key": "a", "payload": {}, "updated_at": NOW}]},  # no version
        {"entries": [entry("a", 1, content_type="x" * 256)]},
        {"entries": {"a": 1}},
        {"deleted": ["ok", 7]},
        {"deleted": ["/leading-slash"]},
    ],
)
def test_a_malformed_batch_is_400_invalid_body_and_writes_nothing(api: Api, node: RegisteredNode, body: Any) -> None:
    before = api.table_items()
    assert_problem(report(api, node, body), 400, "invalid_body")
    assert api.table_items() == before


@pytest.mark.parametrize(
    "body",
    [
        {"entries": [entry("a", 1), entry("a", 2)]},
        {"entries": [entry("a", 1)], "deleted": ["a"]},
        {"deleted": ["a", "a"]},
    ],
)
def test_a_key_twice_in_one_batch_is_400_naming_it(api: Api, node: RegisteredNode, body: Any) -> None:
    before = api.table_items()
    assert assert_problem(report(api, node, body), 400, "invalid_body")["keys"] == ["a"]
    assert api.table_items() == before


def test_more_than_100_items_is_413_and_exactly_100_is_accepted(api: Api, node: RegisteredNode) -> None:
    before = api.table_items()
    too_many = {"entries": [entry(f"e{i}", 1, {}) for i in range(60)], "deleted": [f"d{i}" for i in range(41)]}
    problem = assert_problem(report(api, node, too_many), 413, "report_batch_too_large")
    assert problem["limit"] == 100
    assert api.table_items() == before
    exactly = {"entries": [entry(f"e{i}", 1, {}) for i in range(60)], "deleted": [f"d{i}" for i in range(40)]}
    assert report(api, node, exactly).status_code == 200
    assert len(stored_reports(node.id, api)) == 60


def test_a_payload_over_256_kib_is_413_naming_the_key(api: Api, node: RegisteredNode) -> None:
    before = api.table_items()
    body = {"entries": [entry("small", 1), entry("huge", 1, "x" * (256 * 1024))]}
    problem = assert_problem(report(api, node, body), 413, "report_payload_too_large")
    assert problem["keys"] == ["huge"]
    assert api.table_items() == before


# POST /drift -------------------------------------------------------------------------
def test_drift_is_kept_30_days_and_read_newest_first(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    first = {"timestamp": "2025-01-15T10:31:00Z", "corrections": [{"type": "peer_added", "detail": "n_peer789"}]}
    second = {"timestamp": "2025-01-15T10:32:00Z", "corrections": None}
    answers = [api.request("POST", f"/v1/nodes/{node.id}/drift", json_body=b, token=node.nsk) for b in (first, second)]
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    assert answers[0].json["corrections"] == 1 and answers[1].json["corrections"] == 0
    items = drift_read(api, tenant, node.id).json["items"]
    assert [i["id"] for i in items] == [answers[1].json["id"], answers[0].json["id"]]
    assert items[1]["corrections"] == [{"type": "peer_added", "detail": "n_peer789"}]
    assert items[1]["timestamp"] == "2025-01-15T10:31:00Z"
    stored = [i for i in api.table_items() if i["SK"]["S"].startswith(keys.DRIFT_PREFIX)]
    received = int(stored[0]["ttl"]["N"]) - 30 * 86_400
    assert abs(received - int(__import__("time").time())) < 120


@pytest.mark.parametrize(
    "body",
    [
        {"corrections": []},  # no timestamp
        {"timestamp": "soon", "corrections": []},
        {"timestamp": NOW, "corrections": [{"type": "", "detail": "x"}]},
        {"timestamp": NOW, "corrections": [{"type": "t" * 129}]},
        {"timestamp": NOW, "corrections": [{"type": "t", "detail": "d" * 1025}]},
        {"timestamp": NOW, "corrections": [{"type": "t"}] * 201},
    ],
)
def test_a_malformed_drift_report_is_400_and_writes_nothing(api: Api, node: RegisteredNode, body: Any) -> None:
    before = api.table_items()
    response = api.request("POST", f"/v1/nodes/{node.id}/drift", json_body=body, token=node.nsk)
    assert_problem(response, 400, "invalid_body")
    assert api.table_items() == before


# Operator reads ------------------------------------------------------------------------
def test_reports_are_read_most_recently_written_first_across_pages(
    api: Api, tenant: Tenant, node: RegisteredNode
) -> None:
    for key in ("a", "b", "c"):
        report(api, node, {"entries": [entry(key, 1)]})
    report(api, node, {"entries": [entry("a", 2)]})  # rewritten: now the newest
    seen, cursor = [], None
    for _ in range(5):
        page = reports_read(api, tenant, node.id, limit=1, **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        seen += [i["key"] for i in page.json["items"]]
        cursor = page.json.get("next_cursor")
        if cursor is None:
            break
    assert seen == ["a", "c", "b"]


def test_a_full_last_page_has_no_cursor(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    report(api, node, {"entries": [entry("a", 1), entry("b", 1)]})
    page = reports_read(api, tenant, node.id, limit=2)
    assert len(page.json["items"]) == 2 and "next_cursor" not in page.json


def test_drift_pages_follow_with_a_cursor(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    ids = [
        api.request("POST", f"/v1/nodes/{node.id}/drift", json_body={"timestamp": NOW}, token=node.nsk).json["id"]
        for _ in range(3)
    ]
    first = drift_read(api, tenant, node.id, limit=2)
    second = drift_read(api, tenant, node.id, limit=2, cursor=first.json["next_cursor"])
    assert [i["id"] for i in first.json["items"] + second.json["items"]] == ids[::-1]
    assert "next_cursor" not in second.json


def test_a_viewer_reads_and_a_non_member_is_403(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    api.request(
        "PUT",
        f"/v1/projects/{tenant.project_id}/members/vera",
        json_body={"relation": "viewer"},
        token=tenant.admin_token,
    )
    for read in (reports_read, drift_read):
        assert read(api, tenant, node.id, token=operator_token("vera")).status_code == 200
        assert_problem(read(api, tenant, node.id, token=operator_token("mallory")), 403, "rebac_denied")


def test_a_node_of_another_project_or_none_is_404(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    project = api.request(
        "POST", f"/v1/domains/{tenant.domain_id}/projects", json_body={"name": "other"}, token=tenant.admin_token
    ).json
    elsewhere = Tenant(tenant.domain_id, project["id"], tenant.admin_token)
    for read in (reports_read, drift_read):
        assert_problem(read(api, elsewhere, node.id), 404, "node_not_found")
        assert_problem(read(api, tenant, "0190a8b8-a0c0-7a0a-8a0a-a0a0a0a0a0c0"), 404, "node_not_found")
        assert_problem(read(api, tenant, "n" * 200), 404, "node_not_found")


def test_an_unknown_project_is_404(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    missing = Tenant(tenant.domain_id, "0190a8b8-a0c0-7a0a-8a0a-a0a0a0a0a0c0", tenant.admin_token)
    assert_problem(reports_read(api, missing, node.id), 404, "project_not_found")


@pytest.mark.parametrize("limit", ["0", "201", "abc", ""])
def test_an_out_of_range_limit_is_400(api: Api, tenant: Tenant, node: RegisteredNode, limit: str) -> None:
    for read in (reports_read, drift_read):
        assert_problem(read(api, tenant, node.id, limit=limit), 400, "invalid_limit")


def test_a_tampered_or_foreign_cursor_is_refused(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    other = register_node(api, tenant, "web-02")
    for n in (node, other):
        report(api, n, {"entries": [entry("a", 1), entry("b", 1)]})
    cursor = reports_read(api, tenant, node.id, limit=1).json["next_cursor"]
    payload, signature = cursor.split(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature
    for bad in (tampered, "garbage"):
        assert_problem(reports_read(api, tenant, node.id, cursor=bad), 400, "invalid_cursor")
    # bound to the node and the route: not valid for another node's reports, nor for drift
    assert_problem(reports_read(api, tenant, other.id, cursor=cursor), 403, "cursor_binding_mismatch")
    assert_problem(drift_read(api, tenant, node.id, cursor=cursor), 403, "cursor_binding_mismatch")


def test_a_deregistered_nodes_reports_stay_readable(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    report(api, node, {"entries": [entry("a", 1)]})
    api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk)
    assert [i["key"] for i in reports_read(api, tenant, node.id).json["items"]] == ["a"]


def test_report_reads_reveal_no_secret(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    report(api, node, {"entries": [entry("a", 1)]})
    text = reports_read(api, tenant, node.id).text + drift_read(api, tenant, node.id).text
    assert node.nsk not in text
    for forbidden in ("nsk", "hash", "GSI1", "PK"):
        assert forbidden not in text


def test_drift_text_over_256_kib_of_utf8_is_413_and_writes_nothing(api: Api, node: RegisteredNode) -> None:
    """200 corrections of 1,024 four-byte characters fit the schema (it counts characters) and
    a 1 MiB body, but not one item: refused before the write, not a 500."""
    corrections = [{"type": "policy_rule_removed", "detail": "\U0001f512" * 1024} for _ in range(200)]
    body = {"timestamp": "2026-12-02T10:31:00Z", "corrections": corrections}
    before = api.table_items()
    raw = json.dumps(body, ensure_ascii=False).encode()  # UTF-8 as Go sends it: ~820 KB
    headers = {"Content-Type": "application/json"}
    response = api.request("POST", f"/v1/nodes/{node.id}/drift", data=raw, headers=headers, token=node.nsk)
    assert_problem(response, 413, "drift_too_large")
    assert api.table_items() == before
