"""Reading a node's logs back: latency and S3 requests of a page, over a day of logs.

One node posts a log batch every 30 s for a day (the agent's cadence): 2,880 objects in local
mode, where each batch is one object (in AWS the delivery stream writes one per buffer
interval, ``TelemetryBufferSeconds`` 60 to 900 s: 96 to 1,440 a day, more when the 64 MB
size trigger flushes early, so fewer requests than here). They are put straight
into the telemetry bucket of an in-process moto, in the layout the stream writes
(``telemetry/logs/project=/date=/hour=/node=/<stream>-1-<time>-<uuid>.gz``, gzipped stored
lines), then read through the store and the scan the read route uses
(``orchestrator.domain.telemetry_reads.scan`` over ``TelemetryObjects``), counting the S3
requests (a botocore hook). Cases:

* **newest page** - the default window (the last 24 h), ``limit`` 50 and 200;
* **whole day** - every page of the day at ``limit`` 200, with its cursors;
* **empty week** - ``since`` 7 days, no records before the day and no registration floor:
  the first call stops at the request cap;
* **full buffer** - another node's one object of ``--buffer-mb`` (64, the stream's size
  trigger) inflated: the newest page, and the page after it, which inflates the object again
  from its start up to its cursor.

The script prints figures and never asserts; the last line is one JSON object.

Run: ``PYTHONPATH=layers/shared/python:tools .venv/bin/python bench/telemetry_reads.py``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from moto import mock_aws
from offline import Counting

from orchestrator import aws
from orchestrator.clock import rfc3339
from orchestrator.domain.telemetry import Kind, Origin, stored_lines
from orchestrator.domain.telemetry_reads import first_position, scan, window
from orchestrator.store import keys
from orchestrator.store.telemetry_objects import TelemetryObjects

BUCKET = "telemetry-bench"
PROJECT = "0190a8b8-a0c0-7a0a-8a0a-a0a0a0a0a0c0"
NODE = "0190a8b8-b1c1-7b1b-8b1b-b1b1b1b1b1b1"
BIG_NODE = "0190a8b8-c2c2-7c2c-8c2c-c2c2c2c2c2c2"
INTERVAL = timedelta(seconds=30)


def log_record(n: int, at: datetime) -> dict[str, Any]:
    return {
        "timestamp": rfc3339(at),
        "source": "journald",
        "unit": "plexd",
        "message": f"reconciliation completed in 12ms, 0 changes (#{n})",
        "severity": "info",
        "hostname": "web-01",
    }


def seed(now: datetime, batches: int, lines_per_batch: int) -> None:
    s3 = aws.s3()
    s3.create_bucket(Bucket=BUCKET)
    n = 0
    for index in range(batches):
        at = now - INTERVAL * (batches - index)
        records = [log_record(n + i, at) for i in range(lines_per_batch)]
        n += lines_per_batch
        body = b"".join(stored_lines(Origin(Kind.LOGS, PROJECT, NODE, at), records))
        prefix = keys.telemetry_node_prefix("logs", PROJECT, NODE, at.strftime("%Y-%m-%d"), at.hour)
        name = f"{prefix}TelemetryStream-1-{at.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid.uuid4()}.gz"
        s3.put_object(Bucket=BUCKET, Key=name, Body=gzip.compress(body, mtime=0))


def seed_buffer(now: datetime, megabytes: int) -> int:
    """One object of about ``megabytes`` MB of stored lines, batches of 20 lines 10 ms apart."""
    at = now - timedelta(minutes=10)
    lines: list[bytes] = []
    size = n = 0
    while size < megabytes * 1_000_000:
        batch_at = at + timedelta(milliseconds=10 * (n // 20))
        records = [log_record(n + i, batch_at) for i in range(20)]
        for line in stored_lines(Origin(Kind.LOGS, PROJECT, BIG_NODE, batch_at), records):
            lines.append(line)
            size += len(line)
        n += 20
    prefix = keys.telemetry_node_prefix("logs", PROJECT, BIG_NODE, at.strftime("%Y-%m-%d"), at.hour)
    name = f"{prefix}TelemetryStream-1-{at.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid.uuid4()}.gz"
    aws.s3().put_object(Bucket=BUCKET, Key=name, Body=gzip.compress(b"".join(lines), compresslevel=6, mtime=0))
    return size


def measure(counting: Counting, call: Any) -> tuple[Any, float, int]:
    counting.take()
    started = time.perf_counter()
    result = call()
    elapsed = time.perf_counter() - started
    return result, elapsed, sum(counting.take().values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2880, help="log batches (one every 30 s; 2,880 = a day)")
    parser.add_argument("--lines", type=int, default=20, help="log lines per batch")
    parser.add_argument("--buffer-mb", type=int, default=64, help="inflated MB of the full-buffer object")
    args = parser.parse_args()
    with mock_aws():
        now = datetime.now(UTC)
        started = time.perf_counter()
        seed(now, args.batches, args.lines)
        print(f"seeded {args.batches} objects of {args.lines} lines in {time.perf_counter() - started:.1f} s")
        counting = Counting(("s3",))
        objects = TelemetryObjects(BUCKET, Kind.LOGS, PROJECT, NODE)
        day = window(None, None, now)
        results: dict[str, Any] = {"objects": args.batches, "lines_per_object": args.lines}

        for limit in (50, 200):
            page, elapsed, requests = measure(
                counting, lambda limit=limit: scan(objects, first_position(day), limit=limit)
            )
            print(
                f"newest page, limit {limit}: {len(page.lines)} lines, {requests} S3 requests, {elapsed * 1000:.0f} ms"
            )
            results[f"newest_{limit}"] = {
                "lines": len(page.lines),
                "s3_requests": requests,
                "ms": round(elapsed * 1000),
            }

        pages = lines = total_requests = 0
        position: Any = first_position(day)
        started = time.perf_counter()
        slowest = 0.0
        while position is not None:
            page, elapsed, requests = measure(counting, lambda p=position: scan(objects, p, limit=200))
            pages += 1
            lines += len(page.lines)
            total_requests += requests
            slowest = max(slowest, elapsed)
            position = page.next
        total = time.perf_counter() - started
        print(
            f"whole day, limit 200: {lines} lines in {pages} pages, {total_requests / pages:.1f} S3 requests per page,"
            f" slowest page {slowest * 1000:.0f} ms, {total:.1f} s in all"
        )
        results["whole_day_200"] = {
            "lines": lines,
            "pages": pages,
            "s3_requests_per_page": round(total_requests / pages, 1),
            "slowest_page_ms": round(slowest * 1000),
        }

        week = window(rfc3339(now - timedelta(days=8)), rfc3339(now - timedelta(days=1, hours=1)), now)
        page, elapsed, requests = measure(counting, lambda: scan(objects, first_position(week), limit=50))
        print(f"empty week: {len(page.lines)} lines, {requests} S3 requests (the cap), cursor {page.next is not None}")
        results["empty_week_first_call"] = {"s3_requests": requests, "cursor": page.next is not None}

        size = seed_buffer(now, args.buffer_mb)
        big = TelemetryObjects(BUCKET, Kind.LOGS, PROJECT, BIG_NODE)
        first, elapsed, requests = measure(counting, lambda: scan(big, first_position(day), limit=200))
        second, resumed, _ = measure(counting, lambda: scan(big, first.next, limit=200))  # type: ignore[arg-type]
        print(
            f"full buffer ({size / 1e6:.0f} MB inflated): newest page {elapsed * 1000:.0f} ms,"
            f" {first.inflated / 1e6:.0f} MB inflated, {requests} S3 requests; next page {resumed * 1000:.0f} ms,"
            f" {second.inflated / 1e6:.0f} MB inflated"
        )
        results["full_buffer_200"] = {
            "inflated_mb": round(size / 1e6),
            "newest_ms": round(elapsed * 1000),
            "next_ms": round(resumed * 1000),
        }
    print(json.dumps(results, separators=(",", ":")))


if __name__ == "__main__":
    main()
