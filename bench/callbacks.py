"""Callbacks per second and DynamoDB requests per callback, against a raw baseline.

For an Execution of N targets (default 1,000 and 10,000), every target reports the
plexd way (``/ack`` then ``/result``) and, separately, the unified way
(``ack``, ``started``, ``succeeded``) and the unified way skipping ``started``,
through the real handlers (in-process, as local mode runs them) against moto
in-process. Each report is one Lambda invocation: body parsing, a read of the
node's credential (one strongly consistent GetItem of ``status`` and ``nsk_hash``,
constant-time comparison), the target's one conditional move (which carries the
move's audit event), the
response. After each step the table's stream is delivered to the fold
(FoldTransitionsFunction, batches of 100, as the event source mapping would),
timed apart: it runs after the nodes have their answers, so it is the background
cost of a move, not part of any callback's latency.

Baseline: on the same backend and client, raw conditional ``UpdateItem`` calls
(``SET #s = :new`` if ``#s = :old``) on N items shaped exactly like targets
(typed ``bench_raw`` so the fold's filter passes over their stream records), the
cheapest way to record a transition at all. The baseline runs interleaved with
the callbacks: for each block of ``--block`` targets (default 100), that many raw
updates, then that many callbacks, so both see the same table, heap and moment
of a noisy machine (run one after the other, the same raw loop varied by 1.5x
between runs here). The ratio is time per callback / time per raw update.
Targets from the issue: at most 2 DynamoDB requests per callback on the hot path,
and at most 2x the raw baseline's time per callback. Reported, never asserted.

Second baseline (``auth``): the same raw update plus a raw strongly consistent
``GetItem`` of the reporting node's ``status`` and ``nsk_hash``, the cheapest
transition that also knows its caller's key is still valid (what a callback
does since the per-target key copies went, docs/decisions.md). ``auth ratio``
is time per callback / that.
``all-in`` adds the fold's time per move to the callback's, for the whole cost.

Run: ``make bench-callbacks`` (or ``PYTHONPATH=layers/shared/python:tools
.venv/bin/python bench/callbacks.py --sizes 1000``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from moto import mock_aws
from offline import Counting

from orchestrator import aws, secrets
from orchestrator.domain.audit import AuditEvent
from orchestrator.domain.credentials import mint_node_secret_key, secret_hash
from orchestrator.domain.executions import Execution, Target, TargetStatus
from orchestrator.domain.models import Domain, Node
from orchestrator.services.context import context_for
from orchestrator.settings import get_settings
from orchestrator.store import keys
from orchestrator.store.execution_items import target_item
from orchestrator.store.nodes import _node_item
from orchestrator_local import moto_patches
from orchestrator_local.resources import deploy
from orchestrator_local.runtime import InProcessRuntime
from orchestrator_local.streams import StreamPump
from orchestrator_local.template import Template


def event(node_id: str, execution_id: str, nsk: str, suffix: str, body: dict[str, Any]) -> dict[str, Any]:
    path = f"/v1/nodes/{node_id}/executions/{execution_id}{suffix}"
    headers = {"Authorization": f"Bearer {nsk}", "Content-Type": "application/json"}
    return {
        "resource": "/v1/nodes/{node_id}/executions/{execution_id}" + suffix,
        "path": path,
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"node_id": node_id, "execution_id": execution_id},
        "stageVariables": None,
        "requestContext": {
            "requestId": "bench",
            "stage": "dev",
            "path": "/dev" + path,
            "httpMethod": "POST",
            "resourcePath": "/v1/nodes/{node_id}/executions/{execution_id}" + suffix,
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def pending_execution(execution_id: str, domain_id: str, size: int, now: datetime) -> Execution:
    return Execution(
        id=execution_id,
        project_id="p",
        domain_id=domain_id,
        action="a",
        type="builtin",
        timeout_seconds=600,
        status=TargetStatus.PENDING,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(minutes=10),
        target_count=size,
    )


def seed(size: int, tag: str) -> tuple[str, list[tuple[str, str]]]:
    """An Execution of ``size`` pending targets on ``size`` registered nodes."""
    ctx = context_for("bench")
    now = datetime.now(UTC)
    ctx.tenancy.create_domain(
        Domain(id=f"d-{tag}", name="bench", live_execution_ceiling=10**6, created_at=now), admin_subject="bench"
    )
    nodes, items = [], []
    for index in range(size):
        nsk = mint_node_secret_key()
        node = Node(
            id=f"n-{tag}-{index:05d}",
            project_id="p",
            domain_id=f"d-{tag}",
            hostname=f"h{index}",
            mesh_ip="10.100.0.1",
            registered_at=now,
            updated_at=now,
        )
        items += [
            {**_node_item(node), "nsk_hash": secret_hash(nsk)},
            {**keys.nsk_index(secret_hash(nsk)), "node_id": node.id},
        ]
        nodes.append((node.id, nsk))
    ctx.table.batch_put(items)
    execution = pending_execution(f"e-{tag}", f"d-{tag}", size, now)
    ctx.executions.create(execution, AuditEvent.new(f"a-{tag}", now, status=TargetStatus.PENDING, actor="bench"))
    ctx.targets.put_targets(
        execution,
        [
            Target(execution_id=execution.id, node_id=n, status=TargetStatus.PENDING, created_at=now, updated_at=now)
            for n, _ in nodes
        ],
    )
    return execution.id, nodes


RAW_PATHS = {
    "plexd": ["pending", "ack", "succeeded"],
    "unified": ["pending", "ack", "started", "succeeded"],
    "skipping": ["pending", "ack", "succeeded"],
}
STEPS = {
    "plexd": [("/ack", {"status": "accepted"}), ("/result", {"status": "success", "exit_code": 0, "stdout": "ok"})],
    "unified": [
        ("", {"status": "ack"}),
        ("", {"status": "started"}),
        ("", {"status": "succeeded", "exit_code": 0}),
    ],
    "skipping": [("", {"status": "ack"}), ("", {"status": "succeeded", "exit_code": 0})],
}


def seed_raw(size: int, tag: str) -> tuple[str, list[str]]:
    """``size`` pending items shaped exactly like targets, but typed ``bench_raw``: their
    stream records are written as any target's are, and the fold's filter passes over them."""
    execution_id, node_ids, now = f"e-{tag}", [f"n-{tag}-{index:05d}" for index in range(size)], datetime.now(UTC)
    execution = pending_execution(execution_id, "d", size, now)
    items = [
        target_item(
            execution,
            Target(execution_id=execution_id, node_id=n, status=TargetStatus.PENDING, created_at=now, updated_at=now),
        )
        | {"type": "bench_raw"}
        for n in node_ids
    ]
    context_for("bench").table.batch_put(items)
    return execution_id, node_ids


def raw_update(client: Any, table: str, execution_id: str, node_id: str, *, old: str, new: str) -> None:
    """The baseline: the cheapest way to record a transition at all."""
    client.update_item(
        TableName=table,
        Key={"PK": {"S": f"EXEC#{execution_id}"}, "SK": {"S": f"TARGET#{node_id}"}},
        UpdateExpression="SET #s = :new",
        ConditionExpression="#s = :old",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":new": {"S": new}, ":old": {"S": old}},
    )


def raw_credential_read(client: Any, table: str, node_id: str) -> None:
    """The second baseline's read: the node's credential, strongly consistent."""
    client.get_item(
        TableName=table,
        Key={"PK": {"S": f"NODE#{node_id}"}, "SK": {"S": "NODE"}},
        ConsistentRead=True,
        ProjectionExpression="#s, nsk_hash",
        ExpressionAttributeNames={"#s": "status"},
    )


def run_style(
    runtime: InProcessRuntime, pump: StreamPump, counting: Counting, size: int, style: str, *, block: int
) -> dict[str, Any]:
    """Every target reports each step of ``style``; in blocks of ``block`` targets, the same
    number of raw updates runs right before each block of callbacks, so the baseline and the
    callbacks share the table's size, the interpreter's heap and the machine's moment."""
    execution_id, nodes = seed(size, f"{style}-{size}")
    raw_execution, raw_nodes = seed_raw(size, f"raw-{style}-{size}")
    client, table = aws.dynamodb(), get_settings().table_name or ""
    pump.pump()  # the seeds' own records (inserts): nothing to fold, but not this step's work
    path = RAW_PATHS[style]
    per_step: list[dict[str, Any]] = []
    for index, (suffix, body) in enumerate(STEPS[style]):
        function = {"/ack": "AckExecutionFunction", "/result": "ExecutionResultFunction"}.get(
            suffix, "ExecutionCallbackFunction"
        )
        seconds = raw_seconds = read_seconds = 0.0
        calls: Counter[str] = Counter()
        raw_requests = 0
        for start in range(0, size, block):
            counting.take()
            began = time.perf_counter()
            for node_id in raw_nodes[start : start + block]:
                raw_update(client, table, raw_execution, node_id, old=path[index], new=path[index + 1])
            raw_seconds += time.perf_counter() - began
            raw_requests += sum(counting.take().values())
            began = time.perf_counter()
            for node_id, _ in nodes[start : start + block]:
                raw_credential_read(client, table, node_id)
            read_seconds += time.perf_counter() - began
            counting.take()
            began = time.perf_counter()
            for node_id, nsk in nodes[start : start + block]:
                response = runtime.invoke(function, event(node_id, execution_id, nsk, suffix, body))
                if response["statusCode"] != 200:
                    raise SystemExit(f"callback failed: {response}")
            seconds += time.perf_counter() - began
            calls += counting.take()
        if raw_requests != size:
            raise SystemExit(f"the baseline made {raw_requests} requests for {size} updates")
        began = time.perf_counter()
        moves = pump.pump()
        fold_seconds = time.perf_counter() - began
        fold_calls = counting.take()
        if moves != size:
            raise SystemExit(f"the fold saw {moves} moves for {size} callbacks")
        per_step.append(
            {
                "step": body["status"],
                "seconds": seconds,
                "raw_seconds": raw_seconds,
                "read_seconds": read_seconds,
                "requests": sum(calls.values()),
                "calls": dict(calls),
                "fold_seconds": fold_seconds,
                "fold_requests": sum(fold_calls.values()),
            }
        )
    counts = context_for("bench").counters.counts(execution_id, size)
    if counts["succeeded"] != size:
        raise SystemExit(f"folded counts are wrong: {counts}")
    callbacks = size * len(per_step)
    seconds = sum(s["seconds"] for s in per_step)
    raw_seconds = sum(s["raw_seconds"] for s in per_step)
    read_seconds = sum(s["read_seconds"] for s in per_step)
    fold_seconds = sum(s["fold_seconds"] for s in per_step)
    return {
        "style": style,
        "size": size,
        "callbacks": callbacks,
        "seconds": seconds,
        "per_second": callbacks / seconds,
        "ms_per_callback": 1000 * seconds / callbacks,
        "baseline_ms": 1000 * raw_seconds / callbacks,
        "ratio": seconds / raw_seconds,
        "auth_baseline_ms": 1000 * (raw_seconds + read_seconds) / callbacks,
        "auth_ratio": seconds / (raw_seconds + read_seconds),
        "requests_per_callback": sum(s["requests"] for s in per_step) / callbacks,
        "fold_ms_per_move": 1000 * fold_seconds / callbacks,
        "fold_requests_per_move": sum(s["fold_requests"] for s in per_step) / callbacks,
        "all_in_ratio": (seconds + fold_seconds) / raw_seconds,
        "steps": per_step,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--block", type=int, default=100, help="targets per alternation of baseline and callbacks")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results: list[dict[str, Any]] = []
    moto_patches.install()
    for size in sizes:
        with mock_aws():
            os.environ.update(deploy(prefix="bench").environment())
            get_settings.cache_clear()
            aws.reset_clients()
            secrets.clear_cache()
            runtime, counting = InProcessRuntime(), Counting()
            template = Template()
            pump_tables = {"Table": get_settings().table_name or ""}
            pump = StreamPump(runtime.invoke, template.stream_sources, pump_tables)
            for style in ("plexd", "unified", "skipping"):
                results.append(run_style(runtime, pump, counting, size, style, block=args.block))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"Callbacks through the handlers vs raw conditional UpdateItem (moto in-process; python "
        f"{sys.version.split()[0]})\n"
    )
    print(
        f"{'targets':>8} {'style':8} {'callbacks':>9} {'cb/s':>8} {'ms/cb':>7} {'raw ms':>7} {'ratio':>6} "
        f"{'auth ms':>7} {'auth ratio':>10} "
        f"{'req/cb':>7} {'fold ms':>7} {'fold req':>8} {'all-in':>6}  requests per step"
    )
    for r in results:
        steps = "  ".join(
            f"{s['step']}={s['requests'] / r['size']:.2f} ({','.join(f'{k}:{v}' for k, v in s['calls'].items())})"
            for s in r["steps"]
        )
        print(
            f"{r['size']:>8,} {r['style']:8} {r['callbacks']:>9,} {r['per_second']:>8.0f} {r['ms_per_callback']:>7.2f} "
            f"{r['baseline_ms']:>7.2f} {r['ratio']:>6.2f} {r['auth_baseline_ms']:>7.2f} {r['auth_ratio']:>10.2f}"
            f" {r['requests_per_callback']:>7.2f} {r['fold_ms_per_move']:>7.2f} {r['fold_requests_per_move']:>8.3f}"
            f" {r['all_in_ratio']:>6.2f}  {steps}"
        )
    print("\nratio = time per callback (whole handler) / time per raw conditional UpdateItem on the same backend;")
    print("auth ratio = the same / (raw strongly consistent GetItem of the node's credential + that UpdateItem).")
    print("fold ms / fold req = the stream fold's time and DynamoDB requests per move (batches of 100, after the")
    print("callbacks answered); all-in = (ms/cb + fold ms) / raw ms.")
    print("Targets (reported, not asserted): <= 2 requests per callback on the hot path; ratio <= 2.")
    for r in results:
        hot = max(s["requests"] / r["size"] for s in r["steps"])
        print(
            f"  {r['size']:,} {r['style']}: max {hot:.2f} requests per callback "
            f"({'met' if hot <= 2 else 'MISSED'}), ratio {r['ratio']:.2f} ({'met' if r['ratio'] <= 2 else 'MISSED'}), "
            f"auth ratio {r['auth_ratio']:.2f}"
        )
    print("A callback is 2 requests: a strongly consistent GetItem of the node's credential (a revoked key")
    print("is refused at once), then one conditional UpdateItem that accepts every state the move may come")
    print("from. Counters and audit events are folded from the stream.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
