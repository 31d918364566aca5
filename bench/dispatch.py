"""Dispatch at scale: wall time and DynamoDB requests of a dispatch and its fan-out.

What it measures
----------------
For each cohort size N (default 1, 100, 1,000 and 10,000 nodes) the script resets
its moto server, deploys the template's resources in it and seeds N active nodes
into a fresh Project (written directly to the table in the shape registration
writes: the bench is about dispatch, not registration), then:

1. **dispatch** - invokes ``DispatchExecutionFunction`` in-process with an API
   Gateway proxy event (``selector: env=bench``, builtin ``restart-agent``, no
   Idempotency-Key) and times the call.  This resolves the cohort (a GSI1 Query
   over every node of the Project), takes the capacity slot and writes the
   Execution in one transaction, writes N targets in ``TransactWriteItems`` of 99
   (each also checks the dispatch's admission marker, so a dispatch the admission
   sweep failed writes no more) and starts the Step Functions run.
2. **fan-out** - the run's first task, ``FanOutFunction``, reads the open targets
   and appends one ``action_request`` event per target, in batches.  Its wall
   time is from the dispatch call's return until the FanOut handler returns
   (Step Functions' scheduling of the task included); the handler's own time is
   shown too.  Completion is confirmed in the run's history (``FanOut`` exited)
   and the stored ``action_request`` events of the Execution are counted (N
   expected).  The run is then stopped.

DynamoDB requests are counted on the one client the library uses
(``orchestrator.aws.dynamodb()``) with a botocore ``before-call`` hook, and
attributed to the Lambda invocation running (the calling thread's, or the one running
when a batch-write pool thread calls) - the FanOut
task runs in a moto server thread but calls the handler in this process, through
the same client.  HTTP attempts are counted too (``before-send``): attempts above
calls are botocore retries.

The minimum for each phase is one write request per chunk of items: dispatch
``ceil(N / 99)`` transactions, fan-out ``ceil(N / 25)`` batch writes, plus a
constant: the fixed requests of the phase and the fewest Query pages that can
return the items it must read (DynamoDB returns at most 1 MB per page; the item
sizes are estimated with DynamoDB's size rules):

* dispatch: 4 fixed - ReBAC (``BatchGetItem`` project + membership, ``GetItem``
  domain grant), the slot + Execution ``TransactWriteItems``, the
  ``UpdateItem`` recording the workflow ARN - plus ``ceil(node bytes / 1 MB)``
  cohort Query pages;
* fan-out: 2 fixed - ``GetItem`` of the Execution, ``UpdateItem`` of its
  status - plus ``ceil(target bytes / 1 MB)`` target Query pages.

Anything else counts as overhead (a request the operation could do without).

ratio = requests / (minimum + constant); 1.00 means nothing beyond the floor.
The script prints figures, never asserts: a missed target is reported as missed.

Run it with ``make bench-dispatch``, or from the repository root::

    PYTHONPATH=layers/shared/python:tools .venv/bin/python bench/dispatch.py --sizes 1,100
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import httpx

from orchestrator import aws, secrets
from orchestrator.clock import Uuid7Generator
from orchestrator.domain.models import BuiltinAction, Capabilities, Node
from orchestrator.observability import logger
from orchestrator.services import tenancy
from orchestrator.services.context import context_for
from orchestrator.settings import get_settings
from orchestrator.store.nodes import _node_item
from orchestrator.store.table import Table, deserialize
from orchestrator_local import moto_patches
from orchestrator_local.resources import Stack, deploy
from orchestrator_local.runtime import InProcessRuntime, install_moto_lambda_router
from orchestrator_local.server import LOCAL_ENV, collect_cycles_on_a_timer, start_moto
from orchestrator_local.template import Template

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = (1, 100, 1_000, 10_000)
ADMIN = "bench@local"
DISPATCH_FUNCTION = "DispatchExecutionFunction"
FAN_OUT_FUNCTION = "FanOutFunction"
BATCH = 25
TARGETS_PER_TRANSACTION = 99  # dispatch: 99 targets + the admission marker's check
PAGE_BYTES = 1024 * 1024
DISPATCH_FIXED = 4  # BatchGetItem + GetItem (ReBAC), TransactWriteItems (slot + Execution), UpdateItem (workflow ARN)
FAN_OUT_FIXED = 2  # GetItem (Execution), UpdateItem (status, started_at)
TARGET_RATIO = 1.2
TARGET_DISPATCH_S = 10.0
FAN_OUT_TIMEOUT_S = 900.0
RUN_ENDED = frozenset({"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"})


# Counting ------------------------------------------------------------------------------
@dataclass
class Invocation:
    """One Lambda invocation and the DynamoDB requests made while it ran."""

    function: str
    event: Any
    started: float
    ended: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # per operation, inside the calls
    cpu_s: float | None = None  # CPU time of the handler's process during the call (worker only)


class Recorder:
    """Wraps the in-process runtime: serializes invocations (one "container"), times
    them, and attributes every DynamoDB request of the library client to the
    invocation running in the calling thread."""

    def __init__(self, runtime: InProcessRuntime) -> None:
        self.runtime = runtime
        self.invocations: list[Invocation] = []
        self._active: dict[int, Invocation] = {}
        self._call_started: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def invoke(self, function: str, event: Any) -> Any:
        with self._lock:
            record = Invocation(function, event, time.perf_counter())
            self.invocations.append(record)
            self._active[threading.get_ident()] = record
            try:
                return self.runtime.invoke(function, event)
            finally:
                record.ended = time.perf_counter()
                del self._active[threading.get_ident()]

    def idle(self) -> bool:
        return not self._active

    def _current(self) -> Invocation | None:
        """The invocation this thread works for: its own, or - for the library's batch-write
        pool threads - the one invocation running (invocations are serialized)."""
        record = self._active.get(threading.get_ident())
        if record is None and len(self._active) == 1:
            record = next(iter(self._active.values()), None)
        return record

    def on_call(self, model: Any, **_: Any) -> None:
        record = self._current()
        if record:  # the bench's own set-up calls are not counted
            record.calls[model.name] += 1
            self._call_started[threading.get_ident()] = (model.name, time.perf_counter())

    def after_call(self, **_: Any) -> None:
        """Time inside the call: botocore's serializing and parsing, HTTP, and moto's work."""
        started = self._call_started.pop(threading.get_ident(), None)
        record = self._current()
        if record and started is not None:
            operation, at = started
            record.seconds[operation] = record.seconds.get(operation, 0.0) + time.perf_counter() - at

    def on_send(self, **_: Any) -> None:
        record = self._current()
        if record:
            record.attempts += 1


def count_requests(recorder: Recorder) -> None:
    """Attribute the library client's DynamoDB requests to the recorder's invocations."""
    client = aws.dynamodb()
    client.meta.events.register("before-call.dynamodb", recorder.on_call)
    client.meta.events.register("before-send.dynamodb", recorder.on_send)
    client.meta.events.register("after-call.dynamodb", recorder.after_call)
    aws.stepfunctions()  # created outside the timed call, as in a warm container


# The dispatch call in a worker process, as `make serve` runs it ----------------------------
_worker_recorder: Recorder | None = None


def _worker_start(log_level: str) -> None:
    """A warm "container" (like ``orchestrator_local.workers``): the dispatch handler imported,
    its clients created; the environment is the stack's, inherited when the process spawned."""
    global _worker_recorder  # noqa: PLW0603 - one recorder per worker process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["POWERTOOLS_LOG_LEVEL"] = log_level
    runtime = InProcessRuntime()
    runtime.handler(DISPATCH_FUNCTION)
    _worker_recorder = Recorder(runtime)
    count_requests(_worker_recorder)


def _worker_invoke(function: str, event: Any) -> tuple[Any, Invocation]:
    assert _worker_recorder is not None
    cpu = time.process_time()
    response = _worker_recorder.invoke(function, event)
    record = _worker_recorder.invocations[-1]
    record.cpu_s = time.process_time() - cpu
    return response, record


def _worker_ready() -> bool:
    return _worker_recorder is not None


class DispatchWorker:
    """One worker process for one cohort size (spawned after the stack is deployed, so it
    inherits that stack's environment)."""

    def __init__(self, log_level: str) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_start,
            initargs=(log_level,),
        )
        assert self._pool.submit(_worker_ready).result()

    def invoke(self, function: str, event: Any) -> tuple[Any, Invocation]:
        return self._pool.submit(_worker_invoke, function, event).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


# Item sizes (DynamoDB's rules) -----------------------------------------------------------
def value_size(value: Any) -> int:
    """Bytes DynamoDB counts for a value: UTF-8 strings, ~1 byte per 2 digits of a number,
    3 bytes plus 1 per element (and its name, in a map) for lists and maps."""
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | float | Decimal):
        digits = len(str(abs(value)).replace(".", "").lstrip("0")) or 1
        return min(21, math.ceil(digits / 2) + 1)
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, Mapping):
        return 3 + sum(1 + len(str(k).encode()) + value_size(v) for k, v in value.items() if v is not None)
    if isinstance(value, list | tuple | set):
        return 3 + sum(1 + value_size(v) for v in value)
    raise TypeError(f"no DynamoDB size for {type(value).__name__}")


def item_size(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode()) + value_size(v) for name, v in item.items() if v is not None)


def min_pages(total_bytes: int) -> int:
    return max(1, math.ceil(total_bytes / PAGE_BYTES))


# Results -------------------------------------------------------------------------------
@dataclass
class Phase:
    """The requests of one phase, and its minimum."""

    wall_s: float
    calls: dict[str, int]
    attempts: int
    seconds: dict[str, float]
    batches_min: int
    constant: int
    query_pages_min: int

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def dynamodb_s(self) -> float:
        return sum(self.seconds.values())

    @property
    def floor(self) -> int:
        return self.batches_min + self.constant

    @property
    def ratio(self) -> float:
        return self.total / self.floor

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 4),
            "in_dynamodb_calls_s": round(self.dynamodb_s, 4),
            "requests": self.total,
            "by_operation": dict(sorted(self.calls.items())),
            "seconds_by_operation": {k: round(v, 4) for k, v in sorted(self.seconds.items())},
            "http_attempts": self.attempts,
            "query_pages": self.calls.get("Query", 0),
            "query_pages_min": self.query_pages_min,
            "minimum_batches": self.batches_min,
            "constant": self.constant,
            "ratio": round(self.ratio, 4),
        }


@dataclass
class SizeResult:
    size: int
    seed_s: float
    node_bytes: int
    response_bytes: int
    dispatch: Phase
    fan_out: Phase | None
    fan_out_handler_s: float | None
    events_stored: int | None
    workflow: str
    status: int = 201
    notes: list[str] = field(default_factory=list)
    handler_cpu_s: float | None = None  # the dispatch call's CPU time: the handler's worker process
    moto_cpu_s: float | None = None  # ... and moto server's process

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "dispatch_status": self.status,
            "dispatch_cpu_s": {"handler": self.handler_cpu_s, "moto": self.moto_cpu_s},
            "seed_s": round(self.seed_s, 3),
            "node_bytes": self.node_bytes,
            "dispatch_response_bytes": self.response_bytes,
            "dispatch": self.dispatch.as_dict(),
            "fan_out": self.fan_out.as_dict() if self.fan_out else None,
            "fan_out_handler_s": None if self.fan_out_handler_s is None else round(self.fan_out_handler_s, 4),
            "events_stored": self.events_stored,
            "workflow": self.workflow,
            "notes": self.notes,
        }


@dataclass
class DispatchCall:
    response: Any
    record: Invocation  # its DynamoDB requests (and, from a worker, the handler's CPU time)
    started: float
    returned: float
    moto_cpu_s: float | None = None  # CPU time of this process (moto server) during the call, worker mode only


# The local stack -------------------------------------------------------------------------
PARAMETERS = {"PublicBaseUrl": "http://bench.local", "EventStreamHoldSeconds": "0"}


@dataclass
class Bench:
    endpoint: str
    template: Template
    recorder: Recorder
    observer: Any  # a DynamoDB client that is not the counted one (seeding, verification)
    sfn: Any  # a Step Functions client for the bench's own polling
    log_level: str
    in_process: bool  # the dispatch call in this process (else in a worker process)
    stack: Stack | None = None

    @property
    def table_name(self) -> str:
        assert self.stack is not None
        return self.stack.refs["Table"]

    @property
    def state_machine_arn(self) -> str:
        assert self.stack is not None
        return self.stack.refs["ExecutionWorkflow"]

    def fresh_stack(self) -> None:
        """Reset moto and deploy the template's resources again: moto's costs that grow with
        the table (Query pages, transactions) then depend on this size only."""
        httpx.post(f"{self.endpoint}/moto-api/reset", timeout=30).raise_for_status()
        httpx.post(
            f"{self.endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=5
        ).raise_for_status()
        self.stack = deploy(self.template, prefix="bench", parameters=PARAMETERS)
        os.environ.update(self.stack.environment())
        get_settings.cache_clear()
        aws.reset_clients()
        secrets.clear_cache()
        count_requests(self.recorder)

    def dispatch(self, event: dict[str, Any]) -> DispatchCall:
        if self.in_process:
            started = time.perf_counter()
            response = self.recorder.invoke(DISPATCH_FUNCTION, event)
            return DispatchCall(response, self.recorder.invocations[-1], started, time.perf_counter())
        worker = DispatchWorker(self.log_level)
        try:
            started, cpu = time.perf_counter(), time.process_time()
            response, record = worker.invoke(DISPATCH_FUNCTION, event)
            returned = time.perf_counter()
            return DispatchCall(response, record, started, returned, moto_cpu_s=time.process_time() - cpu)
        finally:
            worker.close()


def start(log_level: str, *, in_process: bool = False) -> tuple[Any, Bench]:
    """A moto server whose Lambda invocations (the workflow's tasks) run the handlers here."""
    os.environ.update(LOCAL_ENV)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto server's access log
    os.environ["POWERTOOLS_LOG_LEVEL"] = log_level
    logger.setLevel(log_level)
    moto_patches.install()  # local mode's DynamoDB fidelity fixes (atomic, copy-free transactions)
    collect_cycles_on_a_timer()  # as the local server does in moto's process
    moto, endpoint = start_moto()
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    template = Template()
    runtime = InProcessRuntime(template)
    for function in (DISPATCH_FUNCTION, FAN_OUT_FUNCTION):
        runtime.handler(function)  # import now: cold starts are bench/coldstart.py's business
    recorder = Recorder(runtime)
    install_moto_lambda_router(recorder.invoke, set(runtime.functions))
    bench = Bench(
        endpoint, template, recorder, boto3.client("dynamodb"), boto3.client("stepfunctions"), log_level, in_process
    )
    return moto, bench


# One cohort size ---------------------------------------------------------------------------
def seed(bench: Bench, size: int) -> tuple[str, int, float]:
    """A fresh Domain and Project with ``size`` active nodes; (project id, node bytes, seconds)."""
    ctx = context_for("bench")
    domain = tenancy.create_domain(ctx, ADMIN, name=f"bench-{size}", live_execution_ceiling=10_000)
    project = tenancy.create_project(ctx, ADMIN, domain.id, name=f"bench-{size}")
    now = datetime.now(UTC)
    ids = Uuid7Generator()
    capabilities = Capabilities(builtin_actions=(BuiltinAction(name="restart-agent", description="Restart plexd"),))
    items = []
    for index in range(size):
        node = Node(
            id=ids.new_id(),
            project_id=project.id,
            domain_id=domain.id,
            hostname=f"bench-node-{index:05d}",
            metadata={"os": "linux", "arch": "arm64", "agent_version": "1.4.2"},
            labels={"env": "bench"},
            capabilities=capabilities,
            mesh_ip=f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}",
            public_key="A" * 43 + "=",
            registered_at=now,
            updated_at=now,
        )
        items.append({**_node_item(node), "nsk_hash": "0" * 64})
    started = time.perf_counter()
    Table(bench.table_name, client=bench.observer).batch_put(items)
    return project.id, sum(item_size(i) for i in items), time.perf_counter() - started


def dispatch_event(project_id: str) -> dict[str, Any]:
    """An API Gateway proxy event like ``events/dispatch_execution.json`` (no Idempotency-Key)."""
    event: dict[str, Any] = json.loads((ROOT / "events" / "dispatch_execution.json").read_text())
    path = f"/v1/projects/{project_id}/executions:dispatch"
    headers = {"Content-Type": "application/json", "Host": "bench.local", "X-Correlation-Id": f"bench-{project_id}"}
    event.update(
        path=path,
        pathParameters={"project_id": project_id},
        headers=headers,
        multiValueHeaders={k: [v] for k, v in headers.items()},
        body=json.dumps({"action": "restart-agent", "selector": "env=bench", "timeout_seconds": 600}),
    )
    event["requestContext"].update(path=f"/dev{path}", authorizer={"principalId": ADMIN, "subject": ADMIN})
    return event


def workflow_state(bench: Bench, run_arn: str) -> str:
    """``done`` once FanOut exited, ``failed`` if the run failed or went to FanOutFailed, else ``running``."""
    kwargs: dict[str, Any] = {"executionArn": run_arn, "maxResults": 1000}
    while True:
        page = bench.sfn.get_execution_history(**kwargs)
        for event in page["events"]:
            kind = event["type"]
            if kind == "TaskStateExited" and event["stateExitedEventDetails"]["name"] == "FanOut":
                return "done"
            entered = event.get("stateEnteredEventDetails", {}).get("name")
            if kind in RUN_ENDED or entered == "FanOutFailed":
                return "failed"
        if not page.get("nextToken"):
            return "running"
        kwargs["nextToken"] = page["nextToken"]


def wait_for_fan_out(bench: Bench, run_arn: str, execution_id: str) -> tuple[str, list[Invocation]]:
    """The run's state once FanOut exited (or failed), and the FanOut invocations. The history
    is read when a FanOut invocation ends, or every 2 s: polling moto takes CPU from the fan-out."""

    def ended() -> list[Invocation]:
        return [
            i
            for i in bench.recorder.invocations
            if i.function == FAN_OUT_FUNCTION and i.event.get("execution_id") == execution_id and i.ended
        ]

    deadline = time.monotonic() + FAN_OUT_TIMEOUT_S
    state, seen, checked = "running", -1, 0.0
    while state == "running" and time.monotonic() < deadline:
        if len(ended()) != seen or time.monotonic() - checked > 2:
            seen, checked = len(ended()), time.monotonic()
            state = workflow_state(bench, run_arn)
        if state == "running":
            time.sleep(0.02)
    return state, ended()


def stop_run(bench: Bench, run_arn: str) -> None:
    """Stop the run (its deadline is minutes away) once it waits between progress checks:
    moto's Step Functions logs internal errors when a run is stopped while it schedules a task."""
    for _ in range(200):
        events = bench.sfn.get_execution_history(executionArn=run_arn)["events"]  # moto: no paging, no reverse
        last = events[-1] if events else {}
        if last.get("type") in RUN_ENDED or last.get("stateEnteredEventDetails", {}).get("name") == "Pause":
            break
        time.sleep(0.05)
    for _ in range(40):
        try:
            bench.sfn.stop_execution(executionArn=run_arn)
            break
        except bench.sfn.exceptions.ClientError:
            time.sleep(0.05)
    for _ in range(200):
        if bench.recorder.idle() and bench.sfn.describe_execution(executionArn=run_arn)["status"] != "RUNNING":
            return
        time.sleep(0.05)


def scan_count(bench: Bench, execution_id: str, kind: str) -> tuple[int, int]:
    """(count, estimated bytes) of this Execution's items of one ``type`` (uncounted client)."""
    count, size = 0, 0
    kwargs: dict[str, Any] = {
        "TableName": bench.table_name,
        "FilterExpression": "#t = :t AND execution_id = :e",
        "ExpressionAttributeNames": {"#t": "type"},
        "ExpressionAttributeValues": {":t": {"S": kind}, ":e": {"S": execution_id}},
    }
    while True:
        page = bench.observer.scan(**kwargs)
        for raw in page["Items"]:
            count += 1
            size += item_size(deserialize(raw))  # the observer hands items over raw (aws.raw_items)
        if "LastEvaluatedKey" not in page:
            return count, size
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def run_size(bench: Bench, size: int) -> SizeResult:
    bench.fresh_stack()
    project_id, node_bytes, seed_s = seed(bench, size)
    call = bench.dispatch(dispatch_event(project_id))
    response, record, started, returned = call.response, call.record, call.started, call.returned
    node_pages = min_pages(node_bytes)
    dispatch = Phase(
        wall_s=returned - started,
        calls=dict(record.calls),
        attempts=record.attempts,
        seconds=dict(record.seconds),
        batches_min=math.ceil(size / TARGETS_PER_TRANSACTION),
        constant=DISPATCH_FIXED + node_pages,
        query_pages_min=node_pages,
    )
    body = json.loads(response.get("body") or "{}")
    result = SizeResult(size, seed_s, node_bytes, len(response.get("body") or ""), dispatch, None, None, None, "")
    result.handler_cpu_s, result.moto_cpu_s = record.cpu_s, call.moto_cpu_s
    result.status = int(response.get("statusCode", 0))
    if result.status != 201:
        result.workflow = "not started"
        result.notes.append(f"dispatch answered {result.status} {body.get('code', '')}: {body.get('detail', '')}")
        return result
    execution_id = body["id"]
    run_arn = f"{bench.state_machine_arn.replace(':stateMachine:', ':execution:')}:{execution_id}"
    state, fan_outs = wait_for_fan_out(bench, run_arn, execution_id)
    stop_run(bench, run_arn)
    result.workflow = state
    if state != "done" or not fan_outs:
        result.notes.append(f"fan-out did not complete (workflow: {state}, invocations: {len(fan_outs)})")
        return result
    calls: Counter[str] = Counter()
    seconds: dict[str, float] = {}
    for invocation in fan_outs:
        calls.update(invocation.calls)
        for operation, spent in invocation.seconds.items():
            seconds[operation] = seconds.get(operation, 0.0) + spent
    if len(fan_outs) > 1:
        result.notes.append(f"FanOut ran {len(fan_outs)} times (retried by the workflow)")
    target_count, target_bytes = scan_count(bench, execution_id, "target")
    result.events_stored, _ = scan_count(bench, execution_id, "node_event")
    target_pages = min_pages(target_bytes)
    result.fan_out = Phase(
        wall_s=fan_outs[-1].ended - returned,
        calls=dict(calls),
        attempts=sum(i.attempts for i in fan_outs),
        seconds=seconds,
        batches_min=math.ceil(size / BATCH),
        constant=FAN_OUT_FIXED + target_pages,
        query_pages_min=target_pages,
    )
    result.fan_out_handler_s = sum(i.ended - i.started for i in fan_outs)
    if target_count != size or result.events_stored != size:
        result.notes.append(f"expected {size} targets and events, found {target_count} and {result.events_stored}")
    return result


# Report ------------------------------------------------------------------------------------
OPS = {
    "BatchGetItem": "BG",
    "BatchWriteItem": "BW",
    "GetItem": "G",
    "Query": "Q",
    "TransactWriteItems": "TW",
    "UpdateItem": "U",
    "PutItem": "P",
}


def operations(phase: Phase) -> str:
    """``op=requests/seconds`` for each operation."""
    return " ".join(
        f"{OPS.get(name, name)}={count}/{phase.seconds.get(name, 0.0):.2f}s"
        for name, count in sorted(phase.calls.items())
    )


def print_table(results: list[SizeResult], *, in_process: bool) -> None:
    where = (
        "the dispatch call in the bench process, with moto server"
        if in_process
        else "the dispatch call in a worker process, as make serve runs it"
    )
    print(f"Dispatch and fan-out on local mode ({where}; FanOut in moto's process; python {sys.version.split()[0]})\n")
    header = (
        f"{'nodes':>6}  {'phase':<8}  {'wall s':>7}  {'in DDB s':>8}  {'requests':>8}  {'min':>4}  {'const':>5}"
        f"  {'ratio':>5}  {'Q pages':>7}  {'retries':>7}  requests/s in calls by operation"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        for name, phase in (("dispatch", result.dispatch), ("fan-out", result.fan_out)):
            if phase is None:
                print(f"{result.size:>6,}  {name:<8}  {'-':>7}  {'-':>8}  {'-':>8}  (not measured: see the note below)")
                continue
            pages = f"{phase.calls.get('Query', 0)}/{phase.query_pages_min}"
            print(
                f"{result.size:>6,}  {name:<8}  {phase.wall_s:>7.3f}  {phase.dynamodb_s:>8.3f}  {phase.total:>8}"
                f"  {phase.batches_min:>4}  {phase.constant:>5}  {phase.ratio:>5.2f}  {pages:>7}"
                f"  {phase.attempts - phase.total:>7}"
                f"  {operations(phase)}"
            )
        details = [
            f"seeded in {result.seed_s:.1f} s",
            f"node items {result.node_bytes / 1e6:.2f} MB",
            f"dispatch response {result.response_bytes / 1e3:.1f} kB",
        ]
        if result.handler_cpu_s is not None and result.moto_cpu_s is not None:
            details.append(f"dispatch CPU s: handler {result.handler_cpu_s:.1f}, moto {result.moto_cpu_s:.1f}")
        if result.fan_out_handler_s is not None:
            details.append(f"FanOut handler {result.fan_out_handler_s:.3f} s")
        if result.events_stored is not None:
            details.append(f"events stored {result.events_stored:,}")
        print(f"{'':>6}  ({', '.join(details + result.notes)})")
    print("-" * len(header))
    print(
        "min = ceil(N/99) target transactions (dispatch), ceil(N/25) batch writes (fan-out); const = fixed\n"
        "requests (dispatch 4: BatchGetItem + GetItem ReBAC,\n"
        "TransactWriteItems slot + Execution, UpdateItem workflow ARN; fan-out 2: GetItem Execution, UpdateItem\n"
        "status) + the fewest 1 MB Query pages that can hold the nodes (dispatch) or targets (fan-out);\n"
        "ratio = requests / (min + const); Q pages = observed/fewest; retries = HTTP attempts - requests.\n"
        f"Ops: {', '.join(f'{short}={name}' for name, short in OPS.items())}.\n"
        "fan-out wall s = from the dispatch call's return until FanOut's handler returned; in DDB s = time\n"
        "inside the phase's DynamoDB calls (botocore + HTTP + moto's work; FanOut, and with --in-process the\n"
        "dispatch call too, share moto's process, CPU and GIL).\n"
    )
    print(verdict(results))


def verdict(results: list[SizeResult]) -> str:
    """The closing lines: the issue's targets, reported (never asserted)."""
    lines = ["Targets (reported, not asserted):"]
    by_size = {r.size: r for r in results}
    big = by_size.get(10_000)
    if big is None:
        lines.append("  10,000-node dispatch < 10 s: not measured in this run (pass --sizes with 10000).")
    else:
        met = "met" if big.dispatch.wall_s < TARGET_DISPATCH_S and big.status == 201 else "MISSED"
        inside = f"{big.dispatch.dynamodb_s:.1f} s of it inside DynamoDB calls"
        if big.status != 201:
            inside += f"; it answered {big.status}"
        done = (
            f"fan-out completed in {big.fan_out.wall_s:.1f} s ({big.events_stored:,} events)"
            if big.fan_out is not None
            else "fan-out did NOT complete"
        )
        lines.append(
            f"  10,000-node dispatch call: {big.dispatch.wall_s:.2f} s ({inside}) vs < {TARGET_DISPATCH_S:.0f} s:"
            f" {met}; {done}."
        )
    for size in (1_000, 10_000):
        result = by_size.get(size)
        if result is None:
            lines.append(f"  ratio <= {TARGET_RATIO} at {size:,}: not measured in this run.")
            continue
        for name, phase in (("dispatch", result.dispatch), ("fan-out", result.fan_out)):
            if phase is None:
                lines.append(f"  ratio at {size:,} {name}: not measured (fan-out did not complete).")
                continue
            met = "met" if phase.ratio <= TARGET_RATIO else "MISSED"
            lines.append(f"  ratio at {size:,} {name}: {phase.ratio:.2f} vs <= {TARGET_RATIO}: {met}.")
    return "\n".join(lines)


def as_json(results: list[SizeResult]) -> str:
    report = {
        "python": sys.version.split()[0],
        "page_bytes": PAGE_BYTES,
        "batch_size": BATCH,
        "constants": {"dispatch_fixed": DISPATCH_FIXED, "fan_out_fixed": FAN_OUT_FIXED},
        "targets": {"ratio_max": TARGET_RATIO, "dispatch_10000_max_s": TARGET_DISPATCH_S},
        "results": [r.as_dict() for r in results],
    }
    return json.dumps(report, indent=2)


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError("sizes are positive integers, comma-separated")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES),
        help="cohort sizes, e.g. 1,100 (default: 1,100,1000,10000)",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the dispatch call in this process, sharing moto server's CPU and GIL"
        " (default: in a worker process, as make serve runs it)",
    )
    parser.add_argument("--log-level", default="WARNING", help="the handlers' log level (default WARNING)")
    args = parser.parse_args(argv)

    moto, bench = start(args.log_level, in_process=args.in_process)
    results = []
    try:
        for size in args.sizes:
            if not args.json:
                print(f"... {size:,} nodes", file=sys.stderr, flush=True)
            results.append(run_size(bench, size))
    finally:
        moto.stop()
    if args.json:
        print(as_json(results))
    else:
        print_table(results, in_process=args.in_process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
