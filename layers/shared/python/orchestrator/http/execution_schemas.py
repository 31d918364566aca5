"""Dispatch request model and Execution/target projections (metadata only)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt

from orchestrator.clock import rfc3339
from orchestrator.domain.executions import Execution, Target, TargetStatus
from orchestrator.errors import InvalidParameter
from orchestrator.http.schemas import OperatorBody

ACTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class RateIn(OperatorBody):
    max_concurrency: Annotated[StrictInt, Field(ge=1, le=100_000)] | None = None
    max_errors: Annotated[StrictInt, Field(ge=0, le=100_000)] | None = None


class DispatchRequest(OperatorBody):
    action: Annotated[str, Field(min_length=1, max_length=128, pattern=ACTION_NAME)]
    type: Literal["builtin", "hook"] = "builtin"
    parameters: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: Annotated[StrictInt, Field(ge=1, le=86_400)] = 300
    node_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    selector: Annotated[str, Field(max_length=1024)] | None = None
    confirmation: StrictBool = False
    rate: RateIn | None = None


class PrepareRequest(OperatorBody):
    type: Literal["builtin", "hook"] = "builtin"
    node_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    selector: Annotated[str, Field(max_length=1024)] | None = None


class PinBaselineRequest(OperatorBody):
    checksum: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]


def target_view(target: Target) -> dict[str, Any]:
    view: dict[str, Any] = {
        "node_id": target.node_id,
        "hostname": target.hostname,
        "status": target.status.value,
        "created_at": rfc3339(target.created_at),
        "updated_at": rfc3339(target.updated_at),
    }
    if target.exit_code is not None:
        view["exit_code"] = target.exit_code
    if target.error is not None:
        view["error"] = target.error
    if target.output_ref is not None:
        view["output_ref"] = target.output_ref.model_dump(exclude_none=True)
    return view


def execution_view(
    execution: Execution,
    *,
    status: TargetStatus | None = None,
    counts: dict[str, int] | None = None,
    targets: list[Target] | None = None,
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": execution.id,
        "project_id": execution.project_id,
        "domain_id": execution.domain_id,
        "action": execution.action,
        "type": execution.type,
        "parameters": execution.parameters,
        "timeout_seconds": execution.timeout_seconds,
        "status": (status or execution.status).value,
        "created_at": rfc3339(execution.created_at),
        "updated_at": rfc3339(execution.updated_at),
        "started_at": rfc3339(execution.started_at) if execution.started_at else None,
        "completed_at": rfc3339(execution.completed_at) if execution.completed_at else None,
        "expires_at": rfc3339(execution.expires_at),
        "triggered_by": execution.triggered_by,
        "target_count": execution.target_count,
    }
    if execution.selector is not None:
        view["selector"] = execution.selector
    if execution.node_id is not None:
        view["node_id"] = execution.node_id
    if execution.rate is not None:
        view["rate"] = execution.rate.model_dump(exclude_none=True)
    if counts is not None:
        view["counts"] = counts
    if targets is not None:
        view["targets"] = [target_view(t) for t in targets]
    return view


def list_filters(status: str | None, action: str | None) -> tuple[str | None, str | None]:
    """Validated ``status`` and ``action_name`` query filters (400 invalid_parameter)."""
    if status is not None and status not in {s.value for s in TargetStatus}:
        raise InvalidParameter(f"status must be one of {', '.join(s.value for s in TargetStatus)}.")
    if action is not None and not re.match(ACTION_NAME, action):
        raise InvalidParameter("action_name is not a valid action name.")
    return status, action


def checked_action_name(name: str) -> str:
    """An action or hook name from the path (400 invalid_parameter)."""
    if not re.match(ACTION_NAME, name):
        raise InvalidParameter("The action or hook name in the path is not valid.")
    return name
