"""Operator cancel (SPEC §9): open targets become cancelled, nodes get action_cancel."""

from __future__ import annotations

from orchestrator.domain.audit import AuditEvent, Closing
from orchestrator.domain.executions import Execution, TargetStatus
from orchestrator.domain.models import Permission
from orchestrator.domain.node_events import NodeEvent
from orchestrator.errors import ExecutionAlreadyTerminal
from orchestrator.services.access import authorize_project
from orchestrator.services.context import Context
from orchestrator.services.executions import ExecutionDetail, get_execution, load_execution
from orchestrator.services.finalize import finalize


def cancel(ctx: Context, subject: str, project_id: str, execution_id: str) -> ExecutionDetail:
    """Cancel a live Execution; 409 ``execution_already_terminal`` when it already ended."""
    authorize_project(ctx.tenancy, subject, project_id, Permission.CANCEL)
    execution = load_execution(ctx, project_id, execution_id)
    now = ctx.clock.now()
    open_targets = ctx.targets.targets(execution.id, only_open=True)
    # Every target already ended (even if the workflow has not finalized yet): nothing to cancel.
    if not open_targets or not ctx.executions.request_cancel(execution.id, now):
        raise ExecutionAlreadyTerminal(f"Execution {execution.id} already ended ({execution.status.value}).")
    closing = Closing(actor=f"user:{subject}", new_id=ctx.ids.new_id, error="cancelled by operator")
    # What this cancel moved: a concurrent cancel or a last report may have ended some first.
    moved = ctx.targets.close_open_targets(execution.id, TargetStatus.CANCELLED, now, closing)
    # Only nodes that were sent the request (rate control may have held some back) hear of it.
    _notify_nodes(ctx, execution, [t.node_id for t in open_targets if t.listed])
    cancelled = AuditEvent.new(
        ctx.ids.new_id(),
        now,
        status=TargetStatus.CANCELLED,
        actor=f"user:{subject}",
        detail={"cancelled_targets": moved},
    )
    ctx.audit.record(execution.id, cancelled)
    # Release the slot now rather than at the workflow's next progress check (exactly once either way).
    finalize(ctx, execution.id)
    return get_execution(ctx, subject, project_id, execution.id)


def _notify_nodes(ctx: Context, execution: Execution, node_ids: list[str]) -> None:
    """One ``action_cancel`` per node, each minted as the batch write that carries it is sent
    (as fan-out does): an id minted long before its write could show in a node's stream, or in
    the event index, behind events already read past."""
    now = ctx.clock.now()
    events = (
        NodeEvent.new(
            ctx.ids.new_id(),
            "action_cancel",
            node_id,
            ctx.clock.now(),
            {
                "execution_id": execution.id,
                "node_id": node_id,
                "action": execution.action,
                "reason": "cancelled by operator",
            },
            execution_id=execution.id,
        )
        for node_id in node_ids
    )
    ctx.node_events.append(events, now)
