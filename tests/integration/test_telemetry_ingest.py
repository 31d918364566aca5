"""Node telemetry ingestion (SPEC §19): POST /v1/nodes/{id}/metrics|logs|audit, as the agent
sends it (a JSON array, gzipped over 1 KiB) and as the seed documents it (NDJSON), landing in
the telemetry bucket through the delivery stream, partitioned by kind/project/date/hour/node;
every refusal leaves nothing stored."""

from __future__ import annotations

import gzip
import json
import os
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from orchestrator.settings import get_settings
from orchestrator.store import keys
from tests.e2e.plexd_wire import go_marshal
from tests.integration.conftest import Api, RegisteredNode, Tenant, assert_problem, register_node

NOW = "2025-01-15T10:30:00.123456789Z"


@pytest.fixture
def node(api: Api, tenant: Tenant) -> RegisteredNode:
    return register_node(api, tenant, "web-01")


def log_line(n: int, message: str = "reconciliation completed") -> dict[str, Any]:
    return {
        "timestamp": NOW,
        "source": "journald",
        "unit": "plexd",
        "message": f"{message} #{n}",
        "severity": "info",
        "hostname": "web-01",
    }


def metric(n: int) -> dict[str, Any]:
    return {"timestamp": NOW, "group": "node_resources", "data": {"cpu_percent": 23.5, "n": n}}


def audit(n: int) -> dict[str, Any]:
    return {
        "timestamp": NOW,
        "source": "auditd",
        "event_type": "SYSCALL",
        "subject": {"uid": 1000, "pid": 4523 + n, "comm": "sshd"},
        "object": {"path": "/etc/shadow"},
        "action": "open",
        "result": "denied",
        "hostname": "web-01",
        "raw": "...",
    }


def as_agent(records: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    """The bytes and headers plexd sends: Go's JSON, gzipped when over 1 KiB."""
    body = go_marshal(records)
    headers = {"Content-Type": "application/json"}
    if len(body) > 1024:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return body, headers


def post(
    api: Api, node: RegisteredNode, kind: str, body: bytes, headers: dict[str, str], token: str | None = None
) -> Any:
    return api.request("POST", f"/v1/nodes/{node.id}/{kind}", data=body, headers=headers, token=token or node.nsk)


def stored(api: Api) -> dict[str, list[dict[str, Any]]]:
    """Every telemetry object in the bucket and its lines."""
    s3 = boto3.client("s3")
    bucket = api.stack.refs["TelemetryBucket"]
    objects: dict[str, list[dict[str, Any]]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            objects[item["Key"]] = [json.loads(line) for line in gzip.decompress(body).splitlines()]
    return objects


def budget_items(api: Api) -> list[dict[str, Any]]:
    return [i for i in api.table_items() if i["SK"]["S"].startswith("TELEMETRY#")]


def assert_nothing_stored(api: Api) -> None:
    assert stored(api) == {}
    assert budget_items(api) == []


# Accepted ------------------------------------------------------------------------------
def test_the_agents_gzipped_log_batch_lands_under_its_nodes_partition(
    api: Api, tenant: Tenant, node: RegisteredNode
) -> None:
    records = [log_line(n) for n in range(50)]
    body, headers = as_agent(records)
    assert headers.get("Content-Encoding") == "gzip"

    response = post(api, node, "logs", body, headers)

    assert response.status_code == 202, response.text
    answer = response.json
    assert answer["records"] == 50
    date, hour = answer["accepted_at"][:10], int(answer["accepted_at"][11:13])
    objects = stored(api)
    prefix = keys.telemetry_node_prefix("logs", tenant.project_id, node.id, date, hour)
    assert list(objects) and all(key.startswith(prefix) and key.endswith(".gz") for key in objects)
    lines = [line for key in sorted(objects) for line in objects[key]]
    assert [line["record"] for line in lines] == records
    assert {(line["kind"], line["project"], line["node"], line["received_at"]) for line in lines} == {
        ("logs", tenant.project_id, node.id, answer["accepted_at"])
    }


def test_a_small_batch_is_sent_plain_and_kept_as_sent(api: Api, node: RegisteredNode) -> None:
    record = {**metric(1), "peer_id": "n_peer456", "future_field": [1, 2]}
    body, headers = as_agent([record])
    assert "Content-Encoding" not in headers

    response = post(api, node, "metrics", body, headers)

    assert response.status_code == 202, response.text
    assert response.json["records"] == 1
    [lines] = stored(api).values()
    assert lines[0]["record"] == record


def test_ndjson_as_the_seed_documents_it_is_accepted(api: Api, node: RegisteredNode) -> None:
    records = [audit(n) for n in range(3)]
    body = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records))
    headers = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}

    response = post(api, node, "audit", body, headers)

    assert response.status_code == 202, response.text
    assert response.json["records"] == 3
    [(key, lines)] = stored(api).items()
    assert key.startswith("telemetry/audit/")
    assert [line["record"] for line in lines] == records


def test_each_kind_lands_under_its_own_prefix(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    for kind, record in (("metrics", metric(0)), ("logs", log_line(0)), ("audit", audit(0))):
        body, headers = as_agent([record])
        assert post(api, node, kind, body, headers).status_code == 202
    kinds = sorted(key.split("/")[1] for key in stored(api))
    assert kinds == ["audit", "logs", "metrics"]
    assert all(f"/project={tenant.project_id}/" in key and f"/node={node.id}/" in key for key in stored(api))


@pytest.mark.parametrize("body", [b"[]", b"null", b""])
def test_an_empty_batch_is_accepted_and_stores_nothing(api: Api, node: RegisteredNode, body: bytes) -> None:
    response = post(api, node, "logs", body, {"Content-Type": "application/json"})
    assert response.status_code == 202, response.text
    assert response.json["records"] == 0
    assert_nothing_stored(api)


def test_a_batch_is_counted_against_its_nodes_minute(api: Api, node: RegisteredNode) -> None:
    body, headers = as_agent([log_line(n) for n in range(10)])
    assert post(api, node, "logs", body, headers).status_code == 202
    [item] = budget_items(api)
    inflated = gzip.decompress(body) if headers.get("Content-Encoding") == "gzip" else body
    assert int(item["bytes"]["N"]) == len(inflated)
    assert "ttl" in item


# Refused, nothing stored ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "records", "field"),
    [
        ("logs", [log_line(0), {"source": "journald", "message": "no timestamp"}], "1.timestamp"),
        ("logs", [log_line(0), "not an object"], "1"),
        ("logs", [{**log_line(0), "timestamp": "yesterday"}], "0.timestamp"),
        ("logs", [{**log_line(0), "message": 42}], "0.message"),
        ("metrics", [{"timestamp": NOW, "data": {}}], "0.group"),
        ("audit", [{**audit(0), "hostname": ["web-01"]}], "0.hostname"),
    ],
)
def test_one_malformed_record_refuses_the_whole_batch(
    api: Api, node: RegisteredNode, kind: str, records: list[Any], field: str
) -> None:
    body, headers = as_agent(records)
    problem = assert_problem(post(api, node, kind, body, headers), 400, "ingest_batch_malformed")
    assert problem["errors"][0]["field"] == field
    assert_nothing_stored(api)


@pytest.mark.parametrize(
    "body",
    [
        b"[{",
        b'{"timestamp": "x"}',
        b"[NaN]",
        b"[1e999]",
        b'[{"timestamp":"' + NOW.encode() + b'","message":"\\ud800"}]',
        b"\xff\xfe",
    ],
)
def test_a_batch_that_is_not_a_json_array_of_records_is_refused(api: Api, node: RegisteredNode, body: bytes) -> None:
    response = post(api, node, "logs", body, {"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json["code"] in ("ingest_batch_malformed", "invalid_body")
    assert_nothing_stored(api)


def test_a_bad_ndjson_line_refuses_the_batch_and_names_the_line(api: Api, node: RegisteredNode) -> None:
    body = json.dumps(log_line(0)).encode() + b"\n{oops\n"
    problem = assert_problem(
        post(api, node, "logs", body, {"Content-Type": "application/x-ndjson"}), 400, "ingest_batch_malformed"
    )
    assert problem["errors"][0]["field"] == "line 2"
    assert_nothing_stored(api)


def test_more_records_than_the_cap_is_413(api: Api, node: RegisteredNode) -> None:
    body, headers = as_agent([{"timestamp": NOW, "message": ""}] * 10_001)
    problem = assert_problem(post(api, node, "logs", body, headers), 413, "ingest_body_too_large")
    assert problem["dimension"] == "records"
    assert_nothing_stored(api)


def test_a_gzip_bomb_stops_at_the_inflated_cap(api: Api, node: RegisteredNode) -> None:
    bomb = gzip.compress(b"[" + b" " * (9 * 1_048_576) + b"]")
    assert len(bomb) < 64 * 1024
    problem = assert_problem(
        post(api, node, "logs", bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
        413,
        "ingest_body_too_large",
    )
    assert problem["dimension"] == "inflated_bytes"
    assert_nothing_stored(api)


def test_more_than_the_compressed_cap_on_the_wire_is_413(api: Api, node: RegisteredNode) -> None:
    noise = os.urandom(1_100_000)
    problem = assert_problem(
        post(api, node, "logs", noise, {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
        413,
        "ingest_body_too_large",
    )
    assert problem["dimension"] == "compressed_bytes"
    assert_nothing_stored(api)


def test_an_unsupported_content_encoding_is_415(api: Api, node: RegisteredNode) -> None:
    response = post(api, node, "logs", b"[]", {"Content-Type": "application/json", "Content-Encoding": "br"})
    assert_problem(response, 415, "unsupported_content_encoding")
    assert_nothing_stored(api)


def test_past_the_nodes_budget_a_batch_is_429_with_retry_after(
    api: Api, node: RegisteredNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEMETRY_NODE_BYTES_PER_MINUTE", str(8 * 1_048_576))
    get_settings.cache_clear()
    big = "x" * 700
    body, headers = as_agent([log_line(n, big) for n in range(7_000)])  # ~5.5 MB inflated
    # The budget is per minute: both batches must land in the same one (each takes over a
    # second on a slow host; one run sent them at :58.8 and :00.2).
    now = datetime.now(UTC)
    to_next_minute = 60 - now.second - now.microsecond / 1e6
    if to_next_minute < 20:
        time.sleep(to_next_minute + 0.1)
    assert post(api, node, "logs", body, headers).status_code == 202
    before = stored(api)

    response = post(api, node, "logs", body, headers)

    problem = assert_problem(response, 429, "per_node_rate_limited")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert problem["retry_after"] == retry_after
    assert stored(api) == before
    [item] = budget_items(api)
    assert int(item["bytes"]["N"]) == len(gzip.decompress(body))


# Who may send --------------------------------------------------------------------------
def test_without_the_nodes_key_nothing_is_stored(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    other = register_node(api, tenant, "web-02")
    body, headers = as_agent([log_line(0)])
    assert_problem(api.request("POST", f"/v1/nodes/{node.id}/logs", data=body, headers=headers), 401, "nsk_revoked")
    assert_problem(post(api, node, "logs", body, headers, token=other.nsk), 403, "nsk_node_mismatch")
    assert_problem(post(api, node, "logs", body, headers, token=tenant.admin_token), 401, "nsk_revoked")
    assert_nothing_stored(api)


def test_a_malformed_body_from_an_unauthenticated_caller_is_401_first(api: Api, node: RegisteredNode) -> None:
    response = api.request(
        "POST", f"/v1/nodes/{node.id}/logs", data=b"[{", headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 401, "nsk_revoked")


def test_without_the_stream_the_routes_are_501(api: Api, node: RegisteredNode, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEMETRY_STREAM_NAME")
    get_settings.cache_clear()
    body, headers = as_agent([log_line(0)])
    assert_problem(post(api, node, "logs", body, headers), 501, "node_telemetry_not_provisioned")
