"""Dispatch (SPEC §6), step by step and in that order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from orchestrator.domain.audit import AuditEvent, Closing
from orchestrator.domain.dispatch import (
    CohortMember,
    check_confirmation,
    check_hook_integrity,
    declaration,
    declaring_members,
    validate_parameters,
)
from orchestrator.domain.executions import ActionType, Execution, RateControl, Target, TargetStatus
from orchestrator.domain.models import CohortNode, Project
from orchestrator.domain.selectors import Selector
from orchestrator.errors import (
    ActionNotDeclared,
    DispatchAbandoned,
    NodeNotFound,
    SelectorEmptyCohort,
)
from orchestrator.observability import logger
from orchestrator.services.context import Context
from orchestrator.services.workflow_port import WorkflowStarter


@dataclass(frozen=True)
class DispatchCommand:
    """A validated dispatch body (exactly one of ``node_id``/``selector``)."""

    action: str
    type: ActionType
    parameters: dict[str, Any]
    timeout_seconds: int
    node_id: str | None
    selector: Selector | None
    confirmation: bool
    rate: RateControl | None = None
    triggered_by: dict[str, Any] = field(default_factory=dict)


def dispatch_authorized(
    ctx: Context, subject: str, project: Project, command: DispatchCommand, workflow: WorkflowStarter
) -> tuple[Execution, list[Target]]:
    """SPEC §6 steps 3-7 for a caller already authorized to dispatch in ``project`` (step 2,
    done first by the caller, before any write and before an idempotent replay)."""
    members = resolve_cohort(ctx, project, command)  # step 3
    if command.type == "hook":  # step 4
        check_hook_integrity(command.action, members, ctx.hook_baselines.get(project.id, command.action))
    declarations = [m.declaration for m in members]  # step 5
    validate_parameters(command.parameters, declarations)
    check_confirmation(declarations, command.confirmation)

    now = ctx.clock.now()
    execution = Execution(
        id=ctx.ids.new_id(),
        project_id=project.id,
        domain_id=project.domain_id,
        action=command.action,
        type=command.type,
        parameters=command.parameters,
        timeout_seconds=command.timeout_seconds,
        status=TargetStatus.PENDING,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(seconds=command.timeout_seconds),
        triggered_by={"type": "operator", "subject": subject, **command.triggered_by},
        target_count=len(members),
        selector=str(command.selector) if command.selector else None,
        node_id=command.node_id,
        rate=command.rate,
    )
    audit = AuditEvent.new(
        ctx.ids.new_id(),
        now,
        status=TargetStatus.PENDING,
        actor=f"user:{subject}",
        detail={"dispatched_to": len(members)},
    )
    ctx.executions.create(execution, audit)  # step 6: slot, Execution and audit event, atomically
    targets = [
        Target(
            execution_id=execution.id,
            node_id=m.node.id,
            hostname=m.node.hostname,
            status=TargetStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
        for m in sorted(members, key=lambda m: m.node.id)  # the order targets are released in
    ]
    first_wave = command.rate.max_concurrency if command.rate else None
    try:  # step 7, each write re-checking the admission (the sweep may have ended it meanwhile)
        ctx.targets.put_targets(execution, targets, visible=first_wave)
        record_run(ctx, execution, workflow)
    except DispatchAbandoned:
        raise  # the sweep failed the Execution and released the slot: nothing left to undo
    except Exception:
        abandon(ctx, execution, actor="dispatch")
        raise
    return execution, targets


def record_run(ctx: Context, execution: Execution, workflow: WorkflowStarter) -> None:
    """Start the workflow and record its run, which completes the admission. When the sweep
    took the admission meanwhile: if it found our run, it recorded it for us; otherwise it
    failed the Execution, and the run we started ends at once (finding no open target, it
    sends nothing; its finalize cannot change an ended Execution)."""
    run_arn = workflow.start(execution)
    try:
        ctx.executions.mark_workflow_started(execution.id, run_arn)
    except DispatchAbandoned:
        recorded = ctx.executions.get(execution.id, consistent=True)
        if recorded is not None and recorded.workflow_arn == run_arn:
            return
        workflow.stop(run_arn, "dispatch abandoned by the admission sweep")
        raise


def abandon(ctx: Context, execution: Execution, *, actor: str) -> bool:
    """End a dispatch that took its slot but could not start its workflow: the caller that
    takes the admission marker first (the dispatch itself, or the sweep) fails the targets
    written (``dispatch_failed``: none can be written after the marker is gone), fails the
    Execution and gives the slot back, exactly once. Returns whether this call released it."""
    if not ctx.executions.take_admission(execution.id):
        return False  # the dispatch recorded its run, or another sweep settles it
    logger.warning("dispatch abandoned", execution_id=execution.id, actor=actor)
    now = ctx.clock.now()
    ctx.executions.settle_target_count(execution.id)
    closing = Closing(actor=actor, new_id=ctx.ids.new_id, error="dispatch_failed")
    ctx.targets.close_open_targets(execution.id, TargetStatus.FAILED, now, closing)
    released = ctx.executions.finish(execution, TargetStatus.FAILED, now, error="dispatch_failed")
    if released:
        failed = AuditEvent.new(
            ctx.ids.new_id(), now, status=TargetStatus.FAILED, actor=actor, detail={"reason": "dispatch_failed"}
        )
        ctx.audit.record(execution.id, failed)
    return released


def resolve_cohort(ctx: Context, project: Project, command: DispatchCommand) -> list[CohortMember]:
    if command.node_id is not None:
        found_node = ctx.nodes.get_node(command.node_id)
        if found_node is None or found_node.project_id != project.id or not found_node.is_active:
            raise NodeNotFound(f"Node {command.node_id} is not a registered node of this project.")
        node = CohortNode.of(found_node)
        found = declaration(node, command.action, command.type)
        if found is None:
            raise ActionNotDeclared(f"Node {node.id} does not declare {command.type} action {command.action!r}.")
        return [CohortMember(node, found)]
    assert command.selector is not None
    selector = command.selector
    matching = (n for n in ctx.nodes.iter_cohort_candidates(project.id) if selector.matches(n.labels))
    members = declaring_members(matching, command.action, command.type)
    if not members:
        raise SelectorEmptyCohort(
            f"No active node matching {str(selector)!r} declares {command.type} action {command.action!r}."
        )
    return members
