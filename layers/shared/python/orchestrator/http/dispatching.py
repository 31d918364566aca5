"""Dispatch at the edge: body → command (400s), Idempotency-Key, Execution projection."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from orchestrator.domain.executions import RateControl, TargetStatus
from orchestrator.domain.models import Permission
from orchestrator.domain.selectors import parse_selector
from orchestrator.errors import InvalidParameter, InvalidTarget
from orchestrator.http.api import operator_subject
from orchestrator.http.execution_schemas import ACTION_NAME, DispatchRequest, PrepareRequest, execution_view
from orchestrator.services import executions as reads
from orchestrator.services.access import authorize_project
from orchestrator.services.context import Context, context_for
from orchestrator.services.dispatch import DispatchCommand, dispatch_authorized
from orchestrator.services.idempotency import run_once
from orchestrator.services.workflow_port import StepFunctionsStarter
from orchestrator.settings import require

OPERATION = "actions_dispatch"


def command_from(request: DispatchRequest) -> DispatchCommand:
    """Exactly one of node_id/selector (400 invalid_target); the selector parsed (400 malformed_selector)."""
    if (request.node_id is None) == (request.selector is None):
        raise InvalidTarget("Give exactly one of node_id or selector.")
    return DispatchCommand(
        action=request.action,
        type=request.type,
        parameters=request.parameters,
        timeout_seconds=request.timeout_seconds,
        node_id=request.node_id,
        selector=parse_selector(request.selector) if request.selector is not None else None,
        confirmation=request.confirmation,
        rate=RateControl(**request.rate.model_dump()) if request.rate else None,
    )


def dispatcher(app: APIGatewayRestResolver, **_: str) -> tuple[str, Context]:
    """What a dispatch checks before its body, in this order: the operator (401), then that
    the operation is provisioned (501)."""
    return operator_subject(app), context_for(OPERATION)


def dispatch_from_request(
    app: APIGatewayRestResolver, ctx: Context, subject: str, project_id: str, request: DispatchRequest
) -> dict[str, Any]:
    """Dispatch the request's body; with an Idempotency-Key, at most once per key."""
    command = command_from(request)
    workflow = StepFunctionsStarter(require(ctx.settings.state_machine_arn, f"{OPERATION}_not_provisioned"))
    key = app.current_event.headers.get("idempotency-key") or app.current_event.headers.get("Idempotency-Key")

    # ReBAC comes before anything else, replays included (SPEC §6 step 2).
    project = authorize_project(ctx.tenancy, subject, project_id, Permission.DISPATCH)

    def run() -> str:
        execution, _ = dispatch_authorized(ctx, subject, project, command, workflow)
        return execution.id

    if not key:
        execution, targets = dispatch_authorized(ctx, subject, project, command, workflow)
        counts = {s.value: 0 for s in TargetStatus} | {TargetStatus.PENDING.value: len(targets)}
        return execution_view(execution, counts=counts, targets=targets)
    scoped = hashlib.sha256(f"{project_id}\n{subject}\n{key}".encode()).hexdigest()
    execution_id, _ = run_once(ctx.table.name, scoped, request.model_dump(mode="json"), run, app.lambda_context)
    detail = reads.execution_detail(ctx, project_id, execution_id)
    return execution_view(detail.execution, status=detail.status, counts=detail.counts, targets=detail.targets)


def prepare_command(action: str, request: PrepareRequest) -> DispatchCommand:
    """A prepare body as the dispatch command it previews (same target rules, no parameters)."""
    if not re.fullmatch(ACTION_NAME, action):
        raise InvalidParameter("The action name in the path is not valid.")
    return command_from(
        DispatchRequest(action=action, type=request.type, node_id=request.node_id, selector=request.selector)
    )
