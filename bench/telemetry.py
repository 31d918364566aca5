"""Telemetry ingestion at fleet size: records per second, AWS requests and bytes per record.

The script deploys the template's resources in moto (in-process, with local mode's Firehose
dynamic partitioning), seeds N active nodes straight into the table (node item with its NSK
hash, as registration writes it), and has each node send ONE batch of each kind, full at the
agent's batch size (``--kinds`` to choose): 100 metric points (``node_resources`` and
``tunnel_health`` for 24 peers, four 15 s collections), 200 journald lines, 500 auditd
records, made by the node simulator's sources (:mod:`plexd_sim.telemetry`) and sent as the
agent sends them: Go's JSON array, gzipped (over 1 KiB), ``Content-Encoding: gzip``. Each
goes through the local API Gateway (binary media types: base64 body) to the real
``IngestTelemetryFunction`` handler in this process. It measures:

* **records/s** - records over the wall time of the requests (handler, moto, local
  partitioning and gzip included; one process, one request at a time, the handler
  imported beforehand);
* **AWS requests per 1,000 records** by service, counted on the library's clients (a
  botocore ``before-call`` hook, as the other benches count): DynamoDB (the node's
  credential read and the byte-budget update) and Firehose ``PutRecordBatch``. The floor
  is one ``PutRecordBatch`` per agent batch - a stateless Lambda cannot hold records across
  requests - and two DynamoDB requests (authenticate, spend the budget); ratio = requests /
  floor;
* **bytes per record**: the record's compact JSON as the agent sends it, the stored line
  (record plus where it belongs), and the stored gzip object bytes over records. Local
  mode writes one object per ``PutRecordBatch`` and partition (here: one per agent batch);
  AWS buffers a partition for ``TelemetryBufferSeconds`` (300 s), so a node's 60 s metrics
  batches share an object there and compress a little better.

The last line printed is one JSON object. Measured, never asserted.

Run: ``PYTHONPATH=layers/shared/python:tools .venv/bin/python bench/telemetry.py --nodes 1000``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import boto3
from moto import mock_aws
from offline import Counting
from plexd_sim import wire
from plexd_sim.telemetry import AGENT_CADENCE, KINDS, Kind, NodeSource, TelemetryOptions
from werkzeug.test import Client

from orchestrator import aws, secrets
from orchestrator.domain.credentials import mint_node_secret_key, secret_hash
from orchestrator.domain.models import Domain, Node, Project
from orchestrator.services.context import context_for
from orchestrator.settings import get_settings
from orchestrator.store.nodes import _node_item
from orchestrator_local import moto_patches
from orchestrator_local.gateway import Gateway
from orchestrator_local.resources import deploy
from orchestrator_local.runtime import InProcessRuntime
from orchestrator_local.template import Template

PEERS = [f"n-peer{index:02d}" for index in range(24)]  # 4 collections x (1 + 24 peers) = 100 points
COLLECTIONS = 4
FLOOR_DYNAMODB = 2  # the credential read, the budget update
FLOOR_FIREHOSE = 1  # one PutRecordBatch per agent batch
START_NS = time.time_ns()


def seed(size: int) -> list[tuple[str, str]]:
    """``size`` active nodes of one project: (node id, NSK)."""
    ctx = context_for("bench")
    now = datetime.now(UTC)
    ctx.tenancy.create_domain(
        Domain(id="d", name="bench", live_execution_ceiling=10, created_at=now), admin_subject="bench"
    )
    ctx.tenancy.create_project(Project(id="p", domain_id="d", name="bench", created_at=now))
    nodes: list[tuple[str, str]] = []
    items: list[dict[str, Any]] = []
    for index in range(size):
        node = Node(
            id=f"n-{index:05d}",
            project_id="p",
            domain_id="d",
            hostname=f"web-{index:05d}",
            mesh_ip="10.100.0.1",
            registered_at=now,
            updated_at=now,
        )
        nsk = mint_node_secret_key()
        items.append({**_node_item(node), "nsk_hash": secret_hash(nsk)})
        nodes.append((node.id, nsk))
    ctx.table.batch_put(items)
    return nodes


def batch(kind: Kind, hostname: str, seed_value: int) -> list[dict[str, Any]]:
    """One full batch of ``kind`` at the agent's batch size, from the simulator's sources."""
    size = AGENT_CADENCE[kind].batch_size
    source = NodeSource(hostname, TelemetryOptions(), lambda: PEERS, seed=seed_value)
    if kind == "metrics":
        step = 15_000_000_000
        points = [p for i in range(COLLECTIONS) for p in source.metrics(START_NS + i * step)]
        return points[:size]
    window = int(AGENT_CADENCE[kind].report * 1_000_000_000)
    make = source.logs if kind == "logs" else source.audit
    return make(START_NS + window, START_NS, size)


def request(client: Client, node_id: str, nsk: str, kind: Kind, records: list[dict[str, Any]]) -> tuple[int, int]:
    """POST the batch as plexd does; (inflated JSON bytes, bytes on the wire)."""
    sent = wire.agent_body(records, {"Authorization": f"Bearer {nsk}", "User-Agent": f"plexd/{wire.SIM_VERSION}"})
    raw = len(wire.go_json(records))
    response = client.post(f"/v1/nodes/{node_id}/{kind}", data=sent["content"], headers=sent["headers"])
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.json is not None and response.json["records"] == len(records)
    return raw, len(sent["content"])


def stored(bucket: str) -> dict[str, dict[str, int]]:
    """Per kind: objects, gzip bytes, inflated bytes and lines stored."""
    s3 = boto3.client("s3")
    totals: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="telemetry/"):
        for item in page.get("Contents", []):
            kind = item["Key"].split("/")[1]
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            lines = gzip.decompress(body)
            totals[kind].update(objects=1, gzip_bytes=len(body), line_bytes=len(lines), lines=lines.count(b"\n"))
    return {kind: dict(counter) for kind, counter in totals.items()}


def measure(size: int, kinds: tuple[Kind, ...]) -> dict[str, Any]:
    nodes = seed(size)
    template = Template()
    runtime = InProcessRuntime(template)
    runtime.handler("IngestTelemetryFunction")  # imported before the clock starts (a warm container)
    client = Client(Gateway(runtime.invoke, template))
    counting = Counting(("dynamodb", "firehose"))
    results: dict[str, Any] = {}
    for kind in kinds:
        batches = [batch(kind, f"web-{index:05d}", index) for index in range(size)]
        counting.take()
        raw = wire_bytes = records = 0
        started = time.perf_counter()
        for (node_id, nsk), records_of_node in zip(nodes, batches, strict=True):
            inflated, on_wire = request(client, node_id, nsk, kind, records_of_node)
            raw += inflated
            wire_bytes += on_wire
            records += len(records_of_node)
        elapsed = time.perf_counter() - started
        calls = counting.take()
        by_service: Counter[str] = Counter()
        for name, count in calls.items():
            by_service[name.split(":", 1)[0]] += count
        results[kind] = {
            "batches": size,
            "batch_records": AGENT_CADENCE[kind].batch_size,
            "records": records,
            "seconds": round(elapsed, 2),
            "records_per_second": round(records / elapsed),
            "batches_per_second": round(size / elapsed, 1),
            "requests": dict(sorted(calls.items())),
            "per_1000_records": {s: round(n * 1000 / records, 2) for s, n in sorted(by_service.items())},
            "floor_per_1000_records": {
                "dynamodb": round(FLOOR_DYNAMODB * size * 1000 / records, 2),
                "firehose": round(FLOOR_FIREHOSE * size * 1000 / records, 2),
            },
            "ratio": {
                "dynamodb": round(by_service["dynamodb"] / (FLOOR_DYNAMODB * size), 2),
                "firehose": round(by_service["firehose"] / (FLOOR_FIREHOSE * size), 2),
            },
            "json_bytes_per_record": round(raw / records, 1),
            "wire_bytes_per_record": round(wire_bytes / records, 1),
        }
    bucket = os.environ["TELEMETRY_BUCKET"]
    for stored_kind, totals in stored(bucket).items():
        if stored_kind not in results:
            continue
        result = results[stored_kind]
        assert totals["lines"] == result["records"], (stored_kind, totals, result["records"])
        result["objects"] = totals["objects"]
        result["stored_line_bytes_per_record"] = round(totals["line_bytes"] / totals["lines"], 1)
        result["stored_gzip_bytes_per_record"] = round(totals["gzip_bytes"] / totals["lines"], 1)
        result["gzip_vs_json"] = round(totals["gzip_bytes"] / (result["json_bytes_per_record"] * totals["lines"]), 3)
    return {"nodes": size, "kinds": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--kinds", default=",".join(KINDS), help="which kinds each node sends (%(default)s)")
    args = parser.parse_args(argv)
    kinds: tuple[Kind, ...] = tuple(k for k in KINDS if k in args.kinds.split(","))
    moto_patches.install()
    with mock_aws():
        os.environ.update(deploy(prefix="bench").environment())
        get_settings.cache_clear()
        aws.reset_clients()
        secrets.clear_cache()
        result = measure(args.nodes, kinds)
    print(f"Telemetry ingestion, {args.nodes} nodes x one full agent batch per kind (moto in-process, gateway path)")
    print(
        f"{'kind':<8} {'rec/batch':>9} {'records':>8} {'rec/s':>7} {'batch/s':>7}  "
        f"{'DDB/1k':>6} {'floor':>5} {'FH/1k':>6} {'floor':>5} {'ratio':>5}  "
        f"{'json B/rec':>10} {'line B/rec':>10} {'gzip B/rec':>10} {'gzip/json':>9}"
    )
    for kind, row in result["kinds"].items():
        per, floor = row["per_1000_records"], row["floor_per_1000_records"]
        print(
            f"{kind:<8} {row['batch_records']:>9} {row['records']:>8} {row['records_per_second']:>7} "
            f"{row['batches_per_second']:>7}  {per.get('dynamodb', 0):>6} {floor['dynamodb']:>5} "
            f"{per.get('firehose', 0):>6} {floor['firehose']:>5} {row['ratio']['firehose']:>5}  "
            f"{row['json_bytes_per_record']:>10} {row['stored_line_bytes_per_record']:>10} "
            f"{row['stored_gzip_bytes_per_record']:>10} {row['gzip_vs_json']:>9}"
        )
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
