"""Operator reads of Executions, and hook baselines."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from orchestrator.domain.audit import AuditEvent
from orchestrator.domain.executions import Execution, Target, TargetStatus, aggregate_from_counts, status_counts
from orchestrator.domain.models import Permission
from orchestrator.errors import ExecutionNotFound, OutputNotFound
from orchestrator.services import outputs
from orchestrator.services.access import authorize_project
from orchestrator.services.context import Context


@dataclass(frozen=True)
class ExecutionDetail:
    execution: Execution
    status: TargetStatus
    counts: dict[str, int]
    targets: list[Target]


def live_status(execution: Execution, counts: dict[str, int]) -> TargetStatus:
    """The stored status once final; before that, the aggregate of the exact counters."""
    if execution.status.is_terminal:
        return execution.status
    return aggregate_from_counts(counts, cancelled_by_operator=execution.cancel_requested)


def load_execution(ctx: Context, project_id: str, execution_id: str) -> Execution:
    execution = ctx.executions.get(execution_id)
    if execution is None or execution.project_id != project_id:
        raise ExecutionNotFound(f"Execution {execution_id} does not exist in this project.")
    return execution


def get_execution(ctx: Context, subject: str, project_id: str, execution_id: str) -> ExecutionDetail:
    authorize_project(ctx.tenancy, subject, project_id, Permission.READ)
    return execution_detail(ctx, project_id, execution_id)


def execution_detail(ctx: Context, project_id: str, execution_id: str) -> ExecutionDetail:
    """The Execution with its targets and their exact counts, for a caller already authorized
    (counted from the targets read for the answer, so the two always agree)."""
    execution = load_execution(ctx, project_id, execution_id)
    targets = ctx.targets.targets(execution.id)
    counts = status_counts(t.status.value for t in targets)
    return ExecutionDetail(execution, live_status(execution, counts), counts, targets)


@dataclass(frozen=True)
class ExecutionSummary:
    """A list page's Execution with its first targets by node id (SPEC §17: the SDK's
    ``Execution`` requires ``targets`` on every item)."""

    execution: Execution
    targets: list[Target]
    targets_truncated: bool


LISTED_TARGETS = 100  # targets per listed Execution; GET .../executions/{id} has them all
_TARGET_READERS = 8  # one query per listed Execution, this many at a time


def list_executions(
    ctx: Context,
    subject: str,
    project_id: str,
    *,
    status: str | None,
    action: str | None,
    limit: int,
    start_key: dict[str, Any] | None,
) -> tuple[list[ExecutionSummary], dict[str, Any] | None]:
    authorize_project(ctx.tenancy, subject, project_id, Permission.READ)
    found, last = ctx.executions.list_page(project_id, status=status, action=action, limit=limit, start_key=start_key)

    def summary(execution: Execution) -> ExecutionSummary:
        targets, truncated = ctx.targets.first_targets(execution.id, LISTED_TARGETS)
        return ExecutionSummary(execution, targets, truncated)

    if len(found) <= 1:
        return [summary(e) for e in found], last
    with ThreadPoolExecutor(max_workers=min(_TARGET_READERS, len(found))) as pool:
        return list(pool.map(summary, found)), last


def pin_baseline(ctx: Context, subject: str, project_id: str, hook: str, checksum: str) -> dict[str, str]:
    """An operator re-pins a hook's known-good checksum (admin)."""
    authorize_project(ctx.tenancy, subject, project_id, Permission.ADMIN)
    now = ctx.clock.now()
    ctx.hook_baselines.pin(project_id, hook, checksum, by=f"user:{subject}", now=now)
    return {"hook": hook, "checksum": checksum, "pinned_by": f"user:{subject}"}


def target_output(ctx: Context, subject: str, project_id: str, execution_id: str, node_id: str) -> dict[str, Any]:
    """Inline output bytes (base64) or a short-lived presigned GET for stored ones."""
    authorize_project(ctx.tenancy, subject, project_id, Permission.READ)
    execution = load_execution(ctx, project_id, execution_id)
    target = ctx.targets.get(execution.id, node_id)
    if target is None:
        raise ExecutionNotFound(f"Node {node_id} is not a target of execution {execution_id}.")
    ref = target.output_ref
    if ref is None:
        raise OutputNotFound(f"Node {node_id} has reported no output for execution {execution_id}.")
    if ref.kind == "inline":
        data = ref.content or b""
        return {"kind": "inline", "size": len(data), "content_base64": base64.b64encode(data).decode()}
    return {
        "kind": "object_store",
        "size": ref.size,
        "sha256": ref.sha256,
        "url": outputs.presign_get(ref.bucket or "", ref.key or ""),
        "expires_in": outputs.URL_EXPIRY_SECONDS,
    }


def audit_trail(
    ctx: Context, subject: str, project_id: str, execution_id: str, *, limit: int, start_key: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    authorize_project(ctx.tenancy, subject, project_id, Permission.READ)
    execution = load_execution(ctx, project_id, execution_id)
    events, last = ctx.audit.page(execution.id, limit=limit, start_key=start_key)
    return [audit_event_view(e) for e in events], last


def audit_event_view(event: AuditEvent) -> dict[str, Any]:
    """``id, status, occurred_at, node_id?, detail?, actor`` (absent fields left out)."""
    view: dict[str, Any] = {"id": event.id, "status": event.status.value, "occurred_at": event.occurred_at}
    if event.node_id is not None:
        view["node_id"] = event.node_id
    if event.detail is not None:
        view["detail"] = event.detail
    view["actor"] = event.actor
    return view
