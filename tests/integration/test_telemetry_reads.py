"""Operator reads of node telemetry (SPEC §19): GET /v1/projects/{p}/nodes/{id}/logs|metrics|
audit, newest first by arrival, over a bounded scan of the node's hour prefixes; the records
are posted through the real ingestion route, as the agent sends them."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from werkzeug.test import TestResponse

from orchestrator.clock import SystemClock, rfc3339
from orchestrator.domain.telemetry import Kind, Origin, stored_lines
from orchestrator.settings import get_settings
from orchestrator.store import keys
from tests.integration.conftest import Api, RegisteredNode, Tenant, assert_problem, operator_token, register_node
from tests.integration.test_telemetry_ingest import as_agent, audit, log_line, metric

Shift = Callable[[timedelta], None]


@pytest.fixture
def shift(monkeypatch: pytest.MonkeyPatch) -> Shift:
    """Move the control plane's clock (registration, ingestion, reads) by an offset."""
    offset = [timedelta(0)]
    real = SystemClock.now
    monkeypatch.setattr(SystemClock, "now", lambda self: real(self) + offset[0])
    return lambda delta: offset.__setitem__(0, delta)


@pytest.fixture
def node(api: Api, tenant: Tenant) -> RegisteredNode:
    return register_node(api, tenant, "web-01")


def send(api: Api, node: RegisteredNode, kind: str, records: list[dict[str, Any]]) -> str:
    body, headers = as_agent(records)
    response = api.request("POST", f"/v1/nodes/{node.id}/{kind}", data=body, headers=headers, token=node.nsk)
    assert response.status_code == 202, response.text
    return str(response.json["accepted_at"])


def read(
    api: Api, tenant: Tenant, node_id: str, kind: str = "logs", token: str | None = None, **query: Any
) -> TestResponse:
    return api.request(
        "GET",
        f"/v1/projects/{tenant.project_id}/nodes/{node_id}/{kind}",
        token=token or tenant.admin_token,
        query={k: v for k, v in query.items() if v is not None},
    )


def pages(api: Api, tenant: Tenant, node_id: str, **query: Any) -> Iterator[dict[str, Any]]:
    while True:
        response = read(api, tenant, node_id, **query)
        assert response.status_code == 200, response.text
        yield response.json
        cursor = response.json.get("next_cursor")
        if not cursor:
            return
        query["cursor"] = cursor


def messages(items: list[dict[str, Any]]) -> list[str]:
    return [item["record"]["message"] for item in items]


def batch(prefix: str, count: int) -> list[dict[str, Any]]:
    return [log_line(n, prefix) for n in range(count)]


# Reads ----------------------------------------------------------------------------------------
def test_logs_are_read_newest_first_by_arrival(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    accepted = []
    for name in ("first", "second", "third"):
        accepted.append(send(api, node, "logs", batch(name, 3)))
        time.sleep(1.05)  # local objects are named to the second, as Firehose names them

    response = read(api, tenant, node.id)

    assert response.status_code == 200, response.text
    assert "next_cursor" not in response.json
    items = response.json["items"]
    assert messages(items) == [f"{name} #{n}" for name in ("third", "second", "first") for n in (2, 1, 0)]
    assert [item["received_at"] for item in items] == [at for at in reversed(accepted) for _ in range(3)]
    assert items[0]["record"] == log_line(2, "third")


def test_each_kind_reads_its_own_records(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    send(api, node, "metrics", [metric(1)])
    send(api, node, "audit", [audit(1)])
    send(api, node, "logs", [log_line(1)])
    for kind, record in (("metrics", metric(1)), ("audit", audit(1)), ("logs", log_line(1))):
        response = read(api, tenant, node.id, kind)
        assert response.status_code == 200, response.text
        assert [item["record"] for item in response.json["items"]] == [record]


def test_pages_through_objects_and_hours_lose_and_repeat_nothing(api: Api, tenant: Tenant, shift: Shift) -> None:
    shift(timedelta(hours=-4))
    node = register_node(api, tenant, "web-02")
    for hours_ago in (3, 2, 1):
        shift(timedelta(hours=-hours_ago))
        send(api, node, "logs", batch(f"h{hours_ago}a", 3))
        send(api, node, "logs", batch(f"h{hours_ago}b", 2))
    shift(timedelta(0))

    whole = list(pages(api, tenant, node.id, limit=200))
    paged = list(pages(api, tenant, node.id, limit=2))

    assert len(whole) == 1
    everything = messages(whole[0]["items"])
    assert len(everything) == 15 and len(set(everything)) == 15
    assert messages([item for page in paged for item in page["items"]]) == everything
    assert len(paged) >= 8
    # newest hour first; within an hour, each object's lines newest first
    hours = [m[:2] for m in everything]
    assert hours == ["h1"] * 5 + ["h2"] * 5 + ["h3"] * 5


def test_since_and_until_filter_on_arrival(api: Api, tenant: Tenant, shift: Shift) -> None:
    shift(timedelta(hours=-4))
    node = register_node(api, tenant, "web-03")
    accepted = {}
    for hours_ago in (3, 2, 1):
        shift(timedelta(hours=-hours_ago))
        accepted[hours_ago] = send(api, node, "logs", batch(f"h{hours_ago}", 1))
    shift(timedelta(0))

    between = read(api, tenant, node.id, since=accepted[2], until=accepted[1]).json
    since_only = read(api, tenant, node.id, since=accepted[2]).json
    until_only = read(api, tenant, node.id, until=accepted[2]).json

    assert messages(between["items"]) == ["h2 #0"]  # since inclusive, until exclusive
    assert messages(since_only["items"]) == ["h1 #0", "h2 #0"]
    assert messages(until_only["items"]) == ["h3 #0"]


def test_the_default_window_is_the_last_24_hours(api: Api, tenant: Tenant, shift: Shift) -> None:
    shift(timedelta(hours=-30))
    node = register_node(api, tenant, "web-04")
    send(api, node, "logs", batch("old", 1))
    shift(timedelta(0))
    send(api, node, "logs", batch("new", 1))

    assert messages(read(api, tenant, node.id).json["items"]) == ["new #0"]
    since = rfc3339(datetime.now(UTC) - timedelta(hours=31))
    assert messages(read(api, tenant, node.id, since=since).json["items"]) == ["new #0", "old #0"]


def test_limit_cuts_the_page_and_the_cursor_continues_inside_the_object(
    api: Api, tenant: Tenant, node: RegisteredNode
) -> None:
    send(api, node, "logs", batch("x", 5))
    first = read(api, tenant, node.id, limit=2).json
    assert messages(first["items"]) == ["x #4", "x #3"]
    second = read(api, tenant, node.id, limit=2, cursor=first["next_cursor"]).json
    assert messages(second["items"]) == ["x #2", "x #1"]


def test_a_node_without_telemetry_reads_an_empty_page(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    for kind in ("logs", "metrics", "audit"):
        response = read(api, tenant, node.id, kind)
        assert response.status_code == 200, response.text
        assert response.json == {"items": []}


def test_another_nodes_records_are_not_read(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    other = register_node(api, tenant, "web-09")
    send(api, other, "logs", batch("other", 2))
    assert read(api, tenant, node.id).json == {"items": []}
    assert messages(read(api, tenant, other.id).json["items"]) == ["other #1", "other #0"]


def test_the_scan_is_bounded_and_its_cursor_finds_old_data(api: Api, tenant: Tenant, shift: Shift) -> None:
    shift(timedelta(days=-8))
    node = register_node(api, tenant, "web-05")
    shift(timedelta(days=-3))
    send(api, node, "logs", batch("old", 2))
    shift(timedelta(0))
    since = rfc3339(datetime.now(UTC) - timedelta(days=7))

    first = read(api, tenant, node.id, since=since).json

    assert first["items"] == [] and first["next_cursor"]  # 64 empty hours listed, then stopped
    found = [
        item for page in pages(api, tenant, node.id, since=since, cursor=first["next_cursor"]) for item in page["items"]
    ]
    assert messages(found) == ["old #1", "old #0"]


def test_a_deregistered_nodes_records_stay_readable(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    send(api, node, "logs", batch("last words", 1))
    assert api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk).status_code == 200
    assert messages(read(api, tenant, node.id).json["items"]) == ["last words #0"]


def put_object(api: Api, tenant: Tenant, node: RegisteredNode, at: datetime, body: bytes, suffix: str) -> str:
    """An object as the delivery stream names it, straight into the node's hour prefix."""
    prefix = keys.telemetry_node_prefix("logs", tenant.project_id, node.id, at.strftime("%Y-%m-%d"), at.hour)
    key = f"{prefix}plex-telemetry-1-{at:%Y-%m-%d-%H-%M-%S}-{suffix}.gz"
    boto3.client("s3").put_object(Bucket=api.stack.refs["TelemetryBucket"], Key=key, Body=body)
    return key


def test_an_until_far_in_the_future_reads_from_now_down(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    send(api, node, "logs", batch("now", 1))
    since = rfc3339(datetime.now(UTC) - timedelta(hours=1))

    response = read(api, tenant, node.id, since=since, until="2100-01-01T00:00:00Z")

    assert response.status_code == 200, response.text
    assert messages(response.json["items"]) == ["now #0"]
    assert "next_cursor" not in response.json


def test_a_corrupt_object_is_skipped_and_the_others_are_read(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    send(api, node, "logs", batch("kept", 2))
    damaged = bytearray(gzip.compress(b'{"a":1}\n' * 1000))
    damaged[20:40] = b"\xff" * 20
    put_object(api, tenant, node, datetime.now(UTC), bytes(damaged), "damaged")
    put_object(api, tenant, node, datetime.now(UTC), gzip.compress(b'{"a":1}\n')[:-6], "truncated")

    response = read(api, tenant, node.id)

    assert response.status_code == 200, response.text
    assert messages(response.json["items"]) == ["kept #1", "kept #0"]


def test_a_page_of_non_ascii_records_stays_under_lambdas_response_limit(
    api: Api, tenant: Tenant, node: RegisteredNode
) -> None:
    """Emoji are 4 bytes stored and 12 answered (the answer is ASCII JSON)."""
    at = datetime.now(UTC) - timedelta(minutes=1)
    big = "\U0001f600" * 5000
    records = [{"message": f"{n} {big}", "severity": "info"} for n in range(200)]
    put_object(
        api,
        tenant,
        node,
        at,
        gzip.compress(b"".join(stored_lines(Origin(Kind.LOGS, tenant.project_id, node.id, at), records))),
        "u",
    )

    first = read(api, tenant, node.id, limit=200)

    assert first.status_code == 200, first.text
    assert len(first.get_data()) < 6_000_000
    everything = [item for page in pages(api, tenant, node.id, limit=200) for item in page["items"]]
    assert [int(m.split()[0]) for m in messages(everything)] == list(range(199, -1, -1))
    assert json.loads(first.get_data())["next_cursor"]


# Refusals -------------------------------------------------------------------------------------
def test_without_a_token_it_is_401(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    response = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes/{node.id}/logs")
    assert_problem(response, 401, "unauthenticated")


def test_a_viewer_reads_and_a_non_member_is_403(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    api.request(
        "PUT",
        f"/v1/projects/{tenant.project_id}/members/vera",
        json_body={"relation": "viewer"},
        token=tenant.admin_token,
    )
    send(api, node, "logs", batch("x", 1))
    assert messages(read(api, tenant, node.id, token=operator_token("vera")).json["items"]) == ["x #0"]
    for kind in ("logs", "metrics", "audit"):
        assert_problem(read(api, tenant, node.id, kind, token=operator_token("mallory")), 403, "rebac_denied")


def test_a_node_of_another_project_or_none_is_404(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    project = api.request(
        "POST", f"/v1/domains/{tenant.domain_id}/projects", json_body={"name": "other"}, token=tenant.admin_token
    ).json
    elsewhere = Tenant(tenant.domain_id, project["id"], tenant.admin_token)
    send(api, node, "logs", batch("x", 1))
    assert_problem(read(api, elsewhere, node.id), 404, "node_not_found")
    assert_problem(read(api, tenant, "0190a8b8-a0c0-7a0a-8a0a-a0a0a0a0a0c0"), 404, "node_not_found")
    assert_problem(read(api, tenant, "n" * 200), 404, "node_not_found")
    missing = Tenant(tenant.domain_id, "0190a8b8-a0c0-7a0a-8a0a-a0a0a0a0a0c0", tenant.admin_token)
    assert_problem(read(api, missing, node.id), 404, "project_not_found")


@pytest.mark.parametrize(
    "query",
    [
        {"since": "1h"},
        {"since": "2025-01-15"},
        {"until": "yesterday"},
        {"since": "2025-01-15T10:00:00Z", "until": "2025-01-15T09:00:00Z"},
        {"since": "2025-01-15T10:00:00Z", "until": "2025-01-15T10:00:00Z"},
        {"since": "x" * 2000},
    ],
)
def test_a_bad_since_or_until_is_400_invalid_parameter(
    api: Api, tenant: Tenant, node: RegisteredNode, query: dict[str, str]
) -> None:
    assert_problem(read(api, tenant, node.id, **query), 400, "invalid_parameter")


@pytest.mark.parametrize("limit", ["0", "201", "abc", ""])
def test_an_out_of_range_limit_is_400(api: Api, tenant: Tenant, node: RegisteredNode, limit: str) -> None:
    assert_problem(read(api, tenant, node.id, limit=limit), 400, "invalid_limit")


def test_a_tampered_or_foreign_cursor_is_refused(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    other = register_node(api, tenant, "web-10")
    send(api, node, "logs", batch("x", 3))
    cursor = read(api, tenant, node.id, limit=1).json["next_cursor"]
    payload, signature = cursor.split(".")
    for bad in (cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"), "garbage", f"{payload}x.{signature}"):
        assert_problem(read(api, tenant, node.id, limit=1, cursor=bad), 400, "invalid_cursor")
    assert_problem(read(api, tenant, other.id, cursor=cursor), 403, "cursor_binding_mismatch")
    assert_problem(read(api, tenant, node.id, "metrics", cursor=cursor), 403, "cursor_binding_mismatch")
    assert_problem(
        read(api, tenant, node.id, cursor=cursor, since="2025-01-15T10:00:00Z"), 403, "cursor_binding_mismatch"
    )
    api.request(
        "PUT",
        f"/v1/projects/{tenant.project_id}/members/vera",
        json_body={"relation": "viewer"},
        token=tenant.admin_token,
    )
    assert_problem(
        read(api, tenant, node.id, cursor=cursor, token=operator_token("vera")), 403, "cursor_binding_mismatch"
    )


def test_without_the_bucket_the_routes_are_501(
    api: Api, tenant: Tenant, node: RegisteredNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TELEMETRY_BUCKET")
    get_settings.cache_clear()
    for kind in ("logs", "metrics", "audit"):
        assert_problem(read(api, tenant, node.id, kind), 501, "node_telemetry_listing_not_provisioned")
