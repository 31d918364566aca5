"""Node telemetry (SPEC §19) against the local server, in the agent's own bytes
(tests/e2e/plexd_wire.py: Go JSON, gzip over 1 KiB, its headers): each batch lands in the
telemetry bucket through the local delivery stream, partitioned by kind, project, date, hour
and node; refused batches leave nothing."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import httpx
import pytest

from orchestrator.store import keys
from tests.e2e.conftest import local_aws
from tests.e2e.plexd_wire import GoAgent
from tests.e2e.test_agent_conformance import enrollment_token, register

pytestmark = pytest.mark.e2e

AT = "2026-12-02T10:30:00.123456789Z"


@pytest.fixture
def agent(local_server: dict[str, Any]) -> GoAgent:
    return GoAgent(local_server["server"])


@pytest.fixture
def project(local_server: dict[str, Any], http: httpx.Client) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {local_server['operator_token']}"}
    domain = http.post("/v1/domains", headers=admin, json={"name": f"telemetry-{time.monotonic_ns()}"}).json()
    made = http.post(f"/v1/domains/{domain['id']}/projects", headers=admin, json={"name": "telemetry"}).json()
    return {"id": made["id"], "admin": admin}


def node_objects(local_server: dict[str, Any], node_id: str) -> dict[str, list[dict[str, Any]]]:
    """The node's telemetry objects in the local bucket, and their lines."""
    s3 = local_aws(local_server, "s3")
    [bucket] = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].endswith("telemetrybucket")]
    found: dict[str, list[dict[str, Any]]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="telemetry/"):
        for item in page.get("Contents", []):
            if f"/node={node_id}/" in item["Key"]:
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                found[item["Key"]] = [json.loads(line) for line in gzip.decompress(body).splitlines()]
    return found


def test_the_agents_three_batches_land_partitioned_by_kind_and_node(
    agent: GoAgent, http: httpx.Client, project: dict[str, Any], local_server: dict[str, Any]
) -> None:
    node = register(agent, enrollment_token(http, project), "telemetry-01")
    node_id, nsk = node["node_id"], node["node_secret_key"]
    logs = [
        {
            "timestamp": AT,
            "source": "journald",
            "unit": "sshd",
            "message": f"Accepted publickey for admin from 10.0.0.{i}",
            "severity": "info",
            "hostname": "telemetry-01",
        }
        for i in range(40)
    ]
    metrics = [{"timestamp": AT, "group": "node_resources", "data": {"cpu_percent": 23.5}}]
    audit = [
        {
            "timestamp": AT,
            "source": "auditd",
            "event_type": "SYSCALL",
            "subject": {"uid": 1000, "pid": 4523, "comm": "sshd"},
            "object": {"path": "/etc/shadow"},
            "action": "open",
            "result": "denied",
            "hostname": "telemetry-01",
            "raw": "type=SYSCALL msg=audit(1700000000.000:1)",
        }
    ]

    # When the agent posts each kind (logs over 1 KiB: gzipped)
    answers = {}
    for kind, batch in (("logs", logs), ("metrics", metrics), ("audit", audit)):
        reply = agent.request("POST", f"/v1/nodes/{node_id}/{kind}", batch, token=nsk)
        assert reply.status == 202, reply.body
        answers[kind] = reply.json()
    assert agent.sent[-3].get("Content-Encoding") == "gzip"  # the logs batch
    assert {kind: answer["records"] for kind, answer in answers.items()} == {"logs": 40, "metrics": 1, "audit": 1}

    # Then each record is in the bucket, under its kind, project, arrival date/hour and node
    objects = node_objects(local_server, node_id)
    for kind, batch in (("logs", logs), ("metrics", metrics), ("audit", audit)):
        accepted_at = answers[kind]["accepted_at"]
        date, hour = accepted_at[:10], int(accepted_at[11:13])
        prefix = keys.telemetry_node_prefix(kind, project["id"], node_id, date, hour)
        lines = [line for key in sorted(objects) if key.startswith(prefix) for line in objects[key]]
        assert [line["record"] for line in lines] == batch
        assert {line["received_at"] for line in lines} == {accepted_at}


def test_refused_batches_store_nothing_and_the_agent_reads_their_problems_raw(
    agent: GoAgent, http: httpx.Client, project: dict[str, Any], local_server: dict[str, Any]
) -> None:
    node = register(agent, enrollment_token(http, project), "telemetry-02")
    node_id, nsk = node["node_id"], node["node_secret_key"]

    malformed = agent.request("POST", f"/v1/nodes/{node_id}/logs", [{"message": "no timestamp"}], token=nsk)
    assert malformed.status == 400
    assert malformed.json()["code"] == "ingest_batch_malformed"
    many = [{"timestamp": AT, "message": ""}] * 10_001
    too_many = agent.request("POST", f"/v1/nodes/{node_id}/logs", many, token=nsk)
    assert too_many.status == 413
    assert too_many.json()["code"] == "ingest_body_too_large"
    unauthenticated = agent.request("POST", f"/v1/nodes/{node_id}/logs", [{"timestamp": AT, "message": "x"}])
    assert unauthenticated.status == 401

    assert node_objects(local_server, node_id) == {}
