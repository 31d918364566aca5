"""The node simulator's telemetry (SPEC §19) against the local server: a few nodes send
metrics, logs and audit batches at the agent's cadence, a minute in two seconds, and every
record a node had taken lands in the telemetry bucket under that node's partition."""

from __future__ import annotations

import gzip
import json
import re
import time
from collections import Counter, defaultdict
from typing import Any

import pytest
from plexd_sim import TelemetryOptions

from tests.e2e.conftest import local_aws, simulated_fleet

pytestmark = pytest.mark.e2e

PARTITION = re.compile(
    r"^telemetry/(?P<kind>metrics|logs|audit)/project=(?P<project>[^/]+)/date=\d{4}-\d{2}-\d{2}/hour=\d{2}"
    r"/node=(?P<node>[^/]+)/[^/]+\.gz$"
)


def telemetry_bucket(s3: Any) -> str:
    names = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].endswith("-telemetrybucket")]
    assert len(names) == 1, names
    return str(names[0])


def stored_lines(local_server: dict[str, Any], node_ids: set[str]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The stored lines of these nodes, by (kind, node) of the partition they are in."""
    s3 = local_aws(local_server, "s3")
    bucket = telemetry_bucket(s3)
    lines: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="telemetry/"):
        for item in page.get("Contents", []):
            match = PARTITION.match(item["Key"])
            assert match, item["Key"]
            if match["node"] not in node_ids:
                continue  # another test's nodes
            body = gzip.decompress(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            for line in body.splitlines():
                stored = json.loads(line)
                assert (stored["kind"], stored["project"], stored["node"]) == (
                    match["kind"],
                    match["project"],
                    match["node"],
                )
                lines[(match["kind"], match["node"])].append(stored)
    return lines


def test_simulated_nodes_telemetry_lands_in_the_bucket_partitioned_by_node(local_server: dict[str, Any]) -> None:
    project_id = local_server["project_id"]
    options = TelemetryOptions(speed=30, log_lines_per_second=2, audit_events_per_second=1, seed=16)
    with simulated_fleet(
        local_server, project_id, heartbeat_interval=30, stream_concurrency=1, telemetry=options
    ) as fleet:
        # Given three nodes sending telemetry at 30x the agent's cadence
        nodes = fleet.enroll(3, hostname_prefix=f"simtel-{time.time_ns()}")
        fleet.start()

        # When each has had a batch of each kind taken (metrics: the agent's first report at 60 s)
        def every_kind_taken() -> bool:
            taken = {(s.node_id, s.kind) for s in fleet.telemetry_sent() if s.accepted}
            return all((node.node_id, kind) in taken for node in nodes for kind in ("metrics", "logs", "audit"))

        assert fleet.wait_until(every_kind_taken, timeout=12), fleet.telemetry_counts()
        fleet.stop()  # the agent's last flush

        # Then nothing was refused, and every record taken is stored under its node's partition
        sent = fleet.telemetry_sent()
        assert [s for s in sent if not s.accepted] == []
        counts = fleet.telemetry_counts()
        assert all(counts[kind]["dropped"] == 0 and counts[kind]["buffered"] == 0 for kind in counts), counts
        taken: Counter[tuple[str, str]] = Counter()
        for batch in sent:
            taken[(batch.kind, batch.node_id)] += batch.records
        lines = stored_lines(local_server, {node.node_id for node in nodes})
        assert {key: len(stored) for key, stored in lines.items()} == dict(taken)
        assert {line["project"] for stored in lines.values() for line in stored} == {project_id}

        for node in nodes:
            metrics = [line["record"] for line in lines[("metrics", node.node_id)]]
            assert {point["group"] for point in metrics} <= {"node_resources", "tunnel_health"}
            assert any(point["group"] == "node_resources" for point in metrics)
            for kind in ("logs", "audit"):
                records = [line["record"] for line in lines[(kind, node.node_id)]]
                assert {record["hostname"] for record in records} == {node.hostname}
            assert {r["record"]["source"] for r in lines[("audit", node.node_id)]} == {"auditd"}
            assert {r["record"]["source"] for r in lines[("logs", node.node_id)]} == {"journald"}
