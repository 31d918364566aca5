"""The Execution workflow's tasks: fan-out, progress, timeouts, finalize (the last is a
use case of its own, :mod:`orchestrator.services.finalize`, which an operator cancel runs too).

Each task takes only the Execution id (the state stays far below Step
Functions' 256 KB payload limit whatever the cohort size) and is idempotent,
so the state machine can retry any of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from orchestrator import secrets
from orchestrator.domain import callback_tokens
from orchestrator.domain.audit import Closing
from orchestrator.domain.executions import Execution, TargetStatus, aggregate_from_counts, go_duration
from orchestrator.domain.node_events import NodeEvent
from orchestrator.domain.rate_control import next_step
from orchestrator.errors import ExecutionNotFound
from orchestrator.observability import logger
from orchestrator.services.context import Context
from orchestrator.services.finalize import finalize

CALLBACK_TOKEN_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class FanOutResult:
    targets: int
    events: int
    requests: int


def _execution(ctx: Context, execution_id: str, *, consistent: bool = False) -> Execution:
    execution = ctx.executions.get(execution_id, consistent=consistent)
    if execution is None:
        raise ExecutionNotFound(f"Execution {execution_id} does not exist.")
    return execution


def callback_url(base_url: str, node_id: str, execution_id: str) -> str:
    return f"{base_url.rstrip('/')}/v1/nodes/{node_id}/executions/{execution_id}"


def action_request_events(
    ctx: Context, execution: Execution, node_ids: list[str], base_url: str, checksum: str | None
) -> Iterator[NodeEvent]:
    """One ``action_request`` per target node; ``checksum`` is the hook's pinned baseline (hooks only)."""
    callback_key = secrets.callback_key()
    token_expiry = execution.expires_at + CALLBACK_TOKEN_GRACE
    for node_id in node_ids:
        fields: dict[str, Any] = {
            "execution_id": execution.id,
            "node_id": node_id,
            "action": execution.action,
            "type": execution.type,
            "parameters": execution.parameters,
            "timeout_seconds": execution.timeout_seconds,
            "timeout": go_duration(execution.timeout_seconds),
            "callback_url": callback_url(base_url, node_id, execution.id),
            # For a reporter that is not the node (e.g. an external workflow); bound to this target.
            "callback_token": callback_tokens.mint(execution.id, node_id, token_expiry, callback_key),
            "triggered_by": execution.triggered_by,
        }
        if checksum is not None:
            fields["checksum"] = checksum
        yield NodeEvent.new(
            ctx.ids.new_id(), "action_request", node_id, ctx.clock.now(), fields, execution_id=execution.id
        )


def fan_out(ctx: Context, execution_id: str) -> FanOutResult:
    """Append one ``action_request`` to each open target's node stream, in batches (none for
    an Execution that already ended, e.g. one the admission sweep failed)."""
    execution = _execution(ctx, execution_id, consistent=True)
    if execution.completed_at is not None:
        return FanOutResult(targets=0, events=0, requests=0)
    node_ids = ctx.targets.open_node_ids(execution.id)
    wave = execution.rate.max_concurrency if execution.rate and execution.rate.max_concurrency else len(node_ids)
    requests = _send(ctx, execution, node_ids[:wave])
    ctx.executions.mark_fanned_out(execution.id, min(wave, execution.target_count), ctx.clock.now())
    sent = min(wave, len(node_ids))
    logger.info("fan-out done", execution_id=execution.id, targets=len(node_ids), sent=sent, requests=requests)
    return FanOutResult(targets=len(node_ids), events=sent, requests=requests)


def _send(ctx: Context, execution: Execution, node_ids: list[str]) -> int:
    """Append the action_request events of the targets of ``node_ids``; returns the datastore
    requests made.

    A node reads its stream in event-id order, and ids are minted from the clock: an id minted
    long before its write could land behind a later event the node has already read past, and be
    skipped. So each event is made, its id minted, as the batch write that carries it is sent
    (the store consumes the events lazily)."""
    if not node_ids:
        return 0
    base_url = ctx.settings.public_base_url or ""
    checksum = ctx.hook_baselines.get(execution.project_id, execution.action) if execution.type == "hook" else None
    return ctx.node_events.append(action_request_events(ctx, execution, node_ids, base_url, checksum), ctx.clock.now())


def _rate_controlled_step(ctx: Context, execution: Execution) -> None:
    """SPEC §9 rate control: keep at most ``max_concurrency`` released targets in flight; once
    more than ``max_errors`` targets failed, the targets not yet released become cancelled."""
    rate, released = execution.rate, execution.released or 0
    if rate is None or released >= execution.target_count:
        return
    targets = ctx.targets.targets(execution.id)  # node-id order, as released
    step = next_step(rate, [(t.node_id, t.status) for t in targets], released)
    if step.stop:
        now = ctx.clock.now()
        closing = Closing(actor="workflow", new_id=ctx.ids.new_id, error="max_errors_reached")
        for node_id in step.held:
            ctx.targets.close_target(execution.id, node_id, TargetStatus.CANCELLED, now, closing)
        ctx.executions.set_released(execution.id, execution.target_count)
        return
    if not step.release:
        return
    released_ids = set(ctx.targets.release_targets(execution.id, list(step.release)))
    _send(ctx, execution, [t.node_id for t in targets if t.node_id in released_ids])
    ctx.executions.set_released(execution.id, released + len(step.release))


def check_progress(ctx: Context, execution_id: str) -> dict[str, Any]:
    """The counters as far as the stream has been folded (never ahead of the targets: all
    terminal there means all terminal); records the aggregate when it changed (it feeds the
    status index)."""
    execution = _execution(ctx, execution_id)
    if execution.rate is not None:
        _rate_controlled_step(ctx, execution)
    counts = ctx.counters.counts(execution.id, execution.target_count)
    status = aggregate_from_counts(counts, cancelled_by_operator=execution.cancel_requested)
    open_count = sum(counts[s.value] for s in TargetStatus if not s.is_terminal)
    if status is not execution.status and not status.is_terminal:
        ctx.executions.set_status(execution, status, ctx.clock.now())
    return {"all_terminal": open_count == 0, "open": open_count, "status": status.value}


def sweep_timeouts(ctx: Context, execution_id: str) -> dict[str, int]:
    """At the deadline: every target still open becomes ``timeout``."""
    closing = Closing(actor="workflow", new_id=ctx.ids.new_id)
    moved = ctx.targets.close_open_targets(execution_id, TargetStatus.TIMEOUT, ctx.clock.now(), closing)
    return {"timed_out": moved}


__all__ = ["check_progress", "fan_out", "finalize", "sweep_timeouts"]
