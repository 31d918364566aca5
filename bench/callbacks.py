"""Callbacks per second and DynamoDB requests per callback, against a raw baseline.

For an Execution of N targets (default 1,000 and 10,000), every target reports the
plexd way (``/ack`` then ``/result``) and, separately, the unified way
(``ack``, ``started``, ``succeeded``) and the unified way skipping ``started``, through the real handlers
(in-process, as local mode runs them) against moto in-process. Each report is one
Lambda invocation: NSK check, body parsing, the target's conditional move (which
carries its audit event), the response. After each step the table's stream is
delivered to the fold (FoldTransitionsFunction, batches of 100, as the event
source mapping would), timed apart: it runs after the nodes have their answers,
so it is the background cost of a move, not part of any callback's latency.

Baseline: on the same backend and client, a loop of raw conditional ``UpdateItem``
calls (``SET #s = :new`` if ``#s = :old``) on N target items, the cheapest way to
record a transition at all. The ratio is time per callback / time per raw update.
Targets from the issue: at most 2 DynamoDB requests per callback on the hot path,
and at most 2x the raw baseline's time per callback. Reported, never asserted.
``all-in`` adds the fold's time per move to the callback's, for the whole cost.

Diagnostic, not a target: the *floor* of an ``ack`` - the two operations any NSK
callback needs, with the library's own requests: the node's credential read
(``NodeStore.get_node_credential``) and the target's conditional move with its
audit event as a plain ``UpdateItem`` (``ExecutionStore.target_transition_op``,
pending -> ack). ``x floor`` is time per callback / that floor: what the handler
(routing, parsing, validation, the response) adds to the datastore work.

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

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
)
for _name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
    del os.environ[_name]

import warnings  # noqa: E402

from moto import mock_aws  # noqa: E402

from orchestrator import aws, secrets  # noqa: E402
from orchestrator.domain.credentials import mint_node_secret_key, secret_hash  # noqa: E402
from orchestrator.domain.executions import Execution, Target, TargetStatus  # noqa: E402
from orchestrator.domain.models import Domain, Node  # noqa: E402
from orchestrator.services.context import context_for  # noqa: E402
from orchestrator.settings import get_settings  # noqa: E402
from orchestrator.store import keys  # noqa: E402
from orchestrator.store.nodes import _node_item  # noqa: E402
from orchestrator_local import moto_patches  # noqa: E402
from orchestrator_local.resources import deploy  # noqa: E402
from orchestrator_local.runtime import InProcessRuntime  # noqa: E402
from orchestrator_local.streams import StreamPump  # noqa: E402
from orchestrator_local.template import Template  # noqa: E402

warnings.filterwarnings("ignore", message="No application metrics to publish")


class Counting:
    """Counts requests made on the library's DynamoDB client."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        aws.dynamodb().meta.events.register("before-call.dynamodb", self.on_call)

    def on_call(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def take(self) -> Counter[str]:
        taken, self.calls = self.calls, Counter()
        return taken


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
    execution = Execution(
        id=f"e-{tag}",
        project_id="p",
        domain_id=f"d-{tag}",
        action="a",
        type="builtin",
        timeout_seconds=600,
        status=TargetStatus.PENDING,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(minutes=10),
        target_count=size,
    )
    ctx.executions.create(execution, {"id": f"a-{tag}", "status": "pending", "occurred_at": "now", "actor": "bench"})
    ctx.executions.put_targets(
        execution,
        [
            Target(execution_id=execution.id, node_id=n, status=TargetStatus.PENDING, created_at=now, updated_at=now)
            for n, _ in nodes
        ],
    )
    return execution.id, nodes


def run_callbacks(
    runtime: InProcessRuntime, pump: StreamPump, counting: Counting, size: int, style: str
) -> dict[str, Any]:
    execution_id, nodes = seed(size, f"{style}-{size}")
    pump.pump()  # the seed's own records (inserts): nothing to fold, but not this step's work
    steps = {
        "plexd": [("/ack", {"status": "accepted"}), ("/result", {"status": "success", "exit_code": 0, "stdout": "ok"})],
        "unified": [
            ("", {"status": "ack"}),
            ("", {"status": "started"}),
            ("", {"status": "succeeded", "exit_code": 0}),
        ],
        "skipping": [("", {"status": "ack"}), ("", {"status": "succeeded", "exit_code": 0})],
    }[style]
    per_step: list[dict[str, Any]] = []
    for suffix, body in steps:
        function = {"/ack": "AckExecutionFunction", "/result": "ExecutionResultFunction"}.get(
            suffix, "ExecutionCallbackFunction"
        )
        counting.take()
        started = time.perf_counter()
        for node_id, nsk in nodes:
            response = runtime.invoke(function, event(node_id, execution_id, nsk, suffix, body))
            if response["statusCode"] != 200:
                raise SystemExit(f"callback failed: {response}")
        elapsed = time.perf_counter() - started
        calls = counting.take()
        started = time.perf_counter()
        moves = pump.pump()
        fold_seconds = time.perf_counter() - started
        fold_calls = counting.take()
        if moves != size:
            raise SystemExit(f"the fold saw {moves} moves for {size} callbacks")
        per_step.append(
            {
                "step": body["status"],
                "seconds": elapsed,
                "requests": sum(calls.values()),
                "calls": dict(calls),
                "fold_seconds": fold_seconds,
                "fold_requests": sum(fold_calls.values()),
            }
        )
    counts = context_for("bench").executions.counts(execution_id, size)
    if counts["succeeded"] != size:
        raise SystemExit(f"folded counts are wrong: {counts}")
    total_seconds = sum(s["seconds"] for s in per_step)
    total_requests = sum(s["requests"] for s in per_step)
    callbacks = size * len(steps)
    fold_seconds = sum(s["fold_seconds"] for s in per_step)
    return {
        "fold_ms_per_move": 1000 * fold_seconds / callbacks,
        "fold_requests_per_move": sum(s["fold_requests"] for s in per_step) / callbacks,
        "style": style,
        "size": size,
        "callbacks": callbacks,
        "seconds": total_seconds,
        "per_second": callbacks / total_seconds,
        "ms_per_callback": 1000 * total_seconds / callbacks,
        "requests_per_callback": total_requests / callbacks,
        "steps": per_step,
    }


def run_baseline(counting: Counting, size: int) -> dict[str, Any]:
    """Raw conditional UpdateItems on N target items, same client and backend."""
    execution_id, nodes = seed(size, f"raw-{size}")
    client, table = aws.dynamodb(), get_settings().table_name
    counting.take()
    started = time.perf_counter()
    for node_id, _ in nodes:
        client.update_item(
            TableName=table or "",
            Key={"PK": {"S": f"EXEC#{execution_id}"}, "SK": {"S": f"TARGET#{node_id}"}},
            UpdateExpression="SET #s = :new",
            ConditionExpression="#s = :old",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":new": {"S": "ack"}, ":old": {"S": "pending"}},
        )
    elapsed = time.perf_counter() - started
    return {
        "size": size,
        "seconds": elapsed,
        "ms_per_update": 1000 * elapsed / size,
        "requests": sum(counting.take().values()),
    }


def run_floor(counting: Counting, size: int) -> dict[str, Any]:
    """Per target: the credential read and the target's own conditional move, nothing else."""
    execution_id, nodes = seed(size, f"floor-{size}")
    ctx, client, now = context_for("bench"), aws.dynamodb(), datetime.now(UTC)
    counting.take()
    started = time.perf_counter()
    for node_id, _ in nodes:
        ctx.nodes.get_node_credential(node_id)
        audit = {"id": ctx.ids.new_id(), "status": "ack", "occurred_at": "now", "node_id": node_id, "actor": "bench"}
        move = ctx.executions.target_transition_op(
            execution_id, node_id, [TargetStatus.PENDING], TargetStatus.ACK, now, audit=audit
        )
        client.update_item(**move["Update"])
    elapsed = time.perf_counter() - started
    return {"size": size, "ms_per_floor": 1000 * elapsed / size, "requests": sum(counting.take().values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000")
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
            baseline = run_baseline(counting, size)
            floor = run_floor(counting, size)
            # The raw writes are not the product's moves (no audit event): drop their records.
            StreamPump(lambda *_: {"batchItemFailures": []}, template.stream_sources, pump_tables).pump()
            for style in ("plexd", "unified", "skipping"):
                result = run_callbacks(runtime, pump, counting, size, style)
                result["baseline_ms"] = baseline["ms_per_update"]
                result["ratio"] = result["ms_per_callback"] / baseline["ms_per_update"]
                result["floor_ms"] = floor["ms_per_floor"]
                result["x_floor"] = result["ms_per_callback"] / floor["ms_per_floor"]
                all_in = result["ms_per_callback"] + result["fold_ms_per_move"]
                result["all_in_ratio"] = all_in / baseline["ms_per_update"]
                results.append(result)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"Callbacks through the handlers vs raw conditional UpdateItem (moto in-process; python "
        f"{sys.version.split()[0]})\n"
    )
    print(
        f"{'targets':>8} {'style':8} {'callbacks':>9} {'cb/s':>8} {'ms/cb':>7} {'raw ms':>7} {'ratio':>6} "
        f"{'floor':>6} {'x floor':>7} {'req/cb':>7} {'fold ms':>7} {'fold req':>8} {'all-in':>6}  requests per step"
    )
    for r in results:
        steps = "  ".join(
            f"{s['step']}={s['requests'] / r['size']:.2f} ({','.join(f'{k}:{v}' for k, v in s['calls'].items())})"
            for s in r["steps"]
        )
        print(
            f"{r['size']:>8,} {r['style']:8} {r['callbacks']:>9,} {r['per_second']:>8.0f} {r['ms_per_callback']:>7.2f} "
            f"{r['baseline_ms']:>7.2f} {r['ratio']:>6.2f} {r['floor_ms']:>6.2f} {r['x_floor']:>7.2f}"
            f" {r['requests_per_callback']:>7.2f} {r['fold_ms_per_move']:>7.2f} {r['fold_requests_per_move']:>8.3f}"
            f" {r['all_in_ratio']:>6.2f}  {steps}"
        )
    print("\nratio = time per callback (whole handler) / time per raw conditional UpdateItem on the same backend.")
    print("floor = ms of an ack's credential read + the target's own conditional UpdateItem; x floor = ms/cb / floor.")
    print("fold ms / fold req = the stream fold's time and DynamoDB requests per move (batches of 100, after the")
    print("callbacks answered); all-in = (ms/cb + fold ms) / raw ms.")
    print("Targets (reported, not asserted): <= 2 requests per callback on the hot path; ratio <= 2.")
    for r in results:
        hot = max(s["requests"] / r["size"] for s in r["steps"])
        print(
            f"  {r['size']:,} {r['style']}: max {hot:.2f} requests per callback "
            f"({'met' if hot <= 2 else 'MISSED'}), ratio {r['ratio']:.2f} ({'met' if r['ratio'] <= 2 else 'MISSED'})"
        )
    print("A callback is 2 requests: the node's GetItem for its NSK and one conditional UpdateItem that")
    print("accepts every state the move may come from. Counters and audit events are folded from the stream.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
