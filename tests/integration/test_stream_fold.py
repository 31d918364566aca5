"""The stream fold (FoldTransitionsFunction): each target move counts once and gets its audit
event once, however often the stream delivers it, in whatever batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from itertools import count
from typing import Any

import pytest

from orchestrator.domain.audit import Closing
from orchestrator.domain.executions import TargetStatus
from orchestrator.domain.models import Domain
from orchestrator.services import callbacks
from orchestrator.services.context import Context, context_for
from orchestrator_local import moto_patches
from orchestrator_local.resources import Stack
from orchestrator_local.runtime import InProcessRuntime
from orchestrator_local.streams import StreamPump
from orchestrator_local.template import Template
from tests.integration.conftest import seed_pending_execution

FOLD = "FoldTransitionsFunction"
_serial = count()


@pytest.fixture
def held_stream(stack: Stack, runtime: InProcessRuntime) -> Iterator[None]:
    """Invocations no longer deliver the stream: the test delivers records itself."""
    runtime.follow_streams(None)
    yield


@pytest.fixture
def ctx(stack: Stack) -> Context:
    ctx = context_for("test")
    ctx.tenancy.create_domain(
        Domain(id="d", name="d", live_execution_ceiling=100, created_at=ctx.clock.now()), admin_subject="x"
    )
    return ctx


def seed(ctx: Context, size: int) -> tuple[str, list[str]]:
    run = next(_serial)
    execution_id, nodes = f"fold-{run}", [f"n{run}-{i:03d}" for i in range(size)]
    seed_pending_execution(ctx, execution_id, nodes)
    return execution_id, nodes


def taken_records(stack: Stack, template: Template) -> list[dict[str, Any]]:
    """Every record in the table's stream so far, as Lambda would deliver it (and empty it):
    unfiltered, so the fold also sees what the template's filter would keep from it."""
    taken: list[dict[str, Any]] = []

    def keep(function: str, event: Any) -> Any:
        taken.extend(event["Records"])
        return {"batchItemFailures": []}

    unfiltered = [replace(source, patterns=()) for source in template.stream_sources]
    StreamPump(keep, unfiltered, stack.refs, lock=moto_patches.write_lock()).pump()
    return taken


def node_events(ctx: Context, execution_id: str) -> list[dict[str, Any]]:
    events, _ = ctx.audit.page(execution_id, limit=1000, start_key=None)
    return [e.as_item() for e in events if e.node_id]


def report(ctx: Context, execution_id: str, node_id: str, status: TargetStatus) -> None:
    callbacks.report(ctx, node_id, execution_id, callbacks.Report(status=status), callbacks.Reporter(f"node:{node_id}"))


def test_a_redelivered_batch_counts_once(
    held_stream: None, ctx: Context, stack: Stack, runtime: InProcessRuntime, template: Template
) -> None:
    execution_id, nodes = seed(ctx, 3)
    taken_records(stack, template)  # creation and inserts: nothing to fold
    report(ctx, execution_id, nodes[0], TargetStatus.ACK)
    report(ctx, execution_id, nodes[0], TargetStatus.SUCCEEDED)
    report(ctx, execution_id, nodes[1], TargetStatus.FAILED)
    # Before the fold: the counters have not moved, and no report has its audit event yet.
    assert ctx.counters.counts(execution_id, 3)["pending"] == 3
    assert node_events(ctx, execution_id) == []
    records = taken_records(stack, template)
    assert len(records) == 3

    for _ in range(2):  # the stream delivers at least once: the second delivery changes nothing
        assert runtime.invoke(FOLD, {"Records": records}) == {"batchItemFailures": []}
        counts = ctx.counters.counts(execution_id, 3)
        assert {k: v for k, v in counts.items() if v} == {"pending": 1, "succeeded": 1, "failed": 1}
        events = node_events(ctx, execution_id)
        assert [(e["node_id"], e["status"]) for e in events] == [
            (nodes[0], "ack"),
            (nodes[0], "succeeded"),
            (nodes[1], "failed"),
        ]
        assert {e["actor"] for e in events} == {f"node:{nodes[0]}", f"node:{nodes[1]}"}


def test_overlapping_batches_and_more_than_one_transaction(
    held_stream: None, ctx: Context, stack: Stack, runtime: InProcessRuntime, template: Template
) -> None:
    """150 moves (more than one 100-item transaction, every counter shard) delivered as two
    overlapping batches, the second one retrying part of the first."""
    execution_id, nodes = seed(ctx, 75)
    taken_records(stack, template)
    for node_id in nodes:
        report(ctx, execution_id, node_id, TargetStatus.ACK)
        report(ctx, execution_id, node_id, TargetStatus.STARTED)
    records = taken_records(stack, template)
    assert len(records) == 150
    runtime.invoke(FOLD, {"Records": records[:100]})
    runtime.invoke(FOLD, {"Records": records[60:]})
    counts = ctx.counters.counts(execution_id, 75)
    assert {k: v for k, v in counts.items() if v} == {"started": 75}
    assert len(node_events(ctx, execution_id)) == 150


def test_closings_are_folded_like_reports(
    held_stream: None, ctx: Context, stack: Stack, runtime: InProcessRuntime, template: Template
) -> None:
    execution_id, nodes = seed(ctx, 4)
    report(ctx, execution_id, nodes[0], TargetStatus.SUCCEEDED)
    closing = Closing(actor="workflow", new_id=ctx.ids.new_id)
    assert ctx.targets.close_open_targets(execution_id, TargetStatus.TIMEOUT, ctx.clock.now(), closing) == 3
    runtime.invoke(FOLD, {"Records": taken_records(stack, template)})
    counts = ctx.counters.counts(execution_id, 4)
    assert {k: v for k, v in counts.items() if v} == {"succeeded": 1, "timeout": 3}
    closed = [e for e in node_events(ctx, execution_id) if e["status"] == "timeout"]
    assert sorted(e["node_id"] for e in closed) == nodes[1:]
    assert {e["actor"] for e in closed} == {"workflow"} and all(e["detail"]["from"] == "pending" for e in closed)


def test_an_unreadable_record_is_reported_and_the_rest_is_folded(
    held_stream: None, ctx: Context, stack: Stack, runtime: InProcessRuntime, template: Template
) -> None:
    execution_id, nodes = seed(ctx, 2)
    taken_records(stack, template)
    report(ctx, execution_id, nodes[0], TargetStatus.ACK)
    report(ctx, execution_id, nodes[1], TargetStatus.ACK)
    first, second = taken_records(stack, template)
    del first["dynamodb"]["NewImage"]["last_event"]  # a status change without its event
    response = runtime.invoke(FOLD, {"Records": [first, second]})
    assert response == {"batchItemFailures": [{"itemIdentifier": first["dynamodb"]["SequenceNumber"]}]}
    counts = ctx.counters.counts(execution_id, 2)
    assert {k: v for k, v in counts.items() if v} == {"pending": 1, "ack": 1}
    assert [e["node_id"] for e in node_events(ctx, execution_id)] == [nodes[1]]


def test_records_that_are_no_move_are_ignored(
    held_stream: None, ctx: Context, stack: Stack, runtime: InProcessRuntime, template: Template
) -> None:
    execution_id, nodes = seed(ctx, 2)
    ctx.targets.release_targets(execution_id, nodes)  # target updates that keep the status
    records = taken_records(stack, template)
    assert any(r["eventName"] == "MODIFY" for r in records)
    assert runtime.invoke(FOLD, {"Records": records}) == {"batchItemFailures": []}
    assert ctx.counters.counts(execution_id, 2)["pending"] == 2
    assert node_events(ctx, execution_id) == []


def test_the_local_pump_delivers_only_what_the_template_filter_selects(
    held_stream: None, ctx: Context, stack: Stack, template: Template
) -> None:
    delivered: list[list[dict[str, Any]]] = []

    def invoke(function: str, event: Any) -> Any:
        assert function == FOLD
        delivered.append(event["Records"])
        return {"batchItemFailures": []}

    pump = StreamPump(invoke, template.stream_sources, stack.refs, lock=moto_patches.write_lock())
    execution_id, nodes = seed(ctx, 3)  # inserts (filtered out)
    report(ctx, execution_id, nodes[0], TargetStatus.ACK)
    assert pump.pump() == 1
    ((record,),) = delivered
    assert record["eventName"] == "MODIFY" and record["dynamodb"]["NewImage"]["type"] == {"S": "target"}
    assert record["eventSourceARN"].endswith(f"/stream/{record['eventSourceARN'].rsplit('/', 1)[-1]}")
    assert pump.pump() == 0  # delivered records are gone from the local stream
