"""Finalizing an Execution (SPEC §8, §9): the final aggregate, the slot released exactly
once, the outcome announced. Called by the workflow's last task and by an operator cancel."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orchestrator import aws
from orchestrator.domain.audit import AuditEvent, Closing
from orchestrator.domain.executions import Execution, TargetStatus, aggregate_from_counts
from orchestrator.observability import logger
from orchestrator.services.context import Context

EVENT_SOURCE = "plexsphere.orchestrator"


def finalize(ctx: Context, execution_id: str, *, failed_step: str | None = None) -> dict[str, Any]:
    """Close what is still open (only after a failed step), set the final aggregate,
    release the capacity slot exactly once, and announce the outcome."""
    found = ctx.executions.get(execution_id)
    if found is None:  # nothing was persisted (or it is gone): nothing to finalize
        logger.warning("finalize of an unknown execution", execution_id=execution_id)
        return {"status": None, "slot_released": False}
    execution = found
    now = ctx.clock.now()
    if failed_step is not None:
        closing = Closing(actor="workflow", new_id=ctx.ids.new_id, error=f"{failed_step}_failed")
        ctx.targets.close_open_targets(execution.id, TargetStatus.FAILED, now, closing)
    # The final count comes from the targets themselves: it must not wait for the stream.
    counts = ctx.counters.counts_from_targets(execution.id)
    status = aggregate_from_counts(counts, cancelled_by_operator=execution.cancel_requested)
    if not status.is_terminal:  # defensive: never leave an Execution that never ends
        closing = Closing(actor="workflow", new_id=ctx.ids.new_id)
        ctx.targets.close_open_targets(execution.id, TargetStatus.TIMEOUT, now, closing)
        counts = ctx.counters.counts_from_targets(execution.id)
        status = aggregate_from_counts(counts, cancelled_by_operator=execution.cancel_requested)
    released = ctx.executions.finish(execution, status, now)
    if released:
        final = AuditEvent.new(ctx.ids.new_id(), now, status=status, actor="workflow", detail={"counts": counts})
        ctx.audit.record(execution.id, final)
        _announce(ctx, execution, status, counts)
    return {"status": status.value, "slot_released": released}


def _announce(ctx: Context, execution: Execution, status: TargetStatus, counts: dict[str, int]) -> None:
    bus = ctx.settings.event_bus_name
    if not bus:
        return
    detail_type = "execution.completed" if status is TargetStatus.SUCCEEDED else "execution.failed"
    detail = {
        "execution_id": execution.id,
        "project_id": execution.project_id,
        "action": execution.action,
        "type": execution.type,
        "status": status.value,
        "counts": counts,
    }
    try:
        aws.events().put_events(
            Entries=[
                {"Source": EVENT_SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": bus}
            ]
        )
    except (ClientError, BotoCoreError):
        # The outcome is already recorded; the announcement is best effort and logged.
        logger.warning("execution event not published", execution_id=execution.id)
