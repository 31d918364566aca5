"""Dispatch request model and Execution/target projections (metadata only)."""

from __future__ import annotations

import base64
import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StrictBool, StrictInt, field_validator

from orchestrator.clock import rfc3339
from orchestrator.domain.executions import Execution, OutputRef, Target, TargetStatus
from orchestrator.errors import InvalidParameter
from orchestrator.http.request_body import encoded_size
from orchestrator.http.schemas import OperatorBody

ACTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
EXAMPLE_ID = "0190b5e4-6f1a-7cc2-8d3e-2b9f3a1c4d5e"


class RateIn(OperatorBody):
    """Rate controls (SPEC §9)."""

    model_config = ConfigDict(title="RateControl")

    max_concurrency: Annotated[StrictInt, Field(ge=1, le=100_000)] | None = Field(
        None,
        description="At most this many released targets in flight (`pending`, `ack`, `started`); the others are"
        " held back and released, in node-id order, as earlier ones end.",
    )
    max_errors: Annotated[StrictInt, Field(ge=0, le=100_000)] | None = Field(
        None,
        description="Once this many targets failed, the targets not yet released become `cancelled` (`error:"
        " max_errors_reached`).",
    )


# The node agent reads its event stream line by line with a 64 KiB line buffer: a longer
# `data:` line ends its stream. Parameters this size keep a signed action_request well
# inside it (and inside DynamoDB's item size on every target).
MAX_PARAMETERS_BYTES = 32 * 1024


class DispatchRequest(OperatorBody):
    """Exactly one of `node_id` and `selector` (else 400 `invalid_target`). Unknown fields
    are refused (400 `invalid_body`). With an `Idempotency-Key`, a retry is "the same
    body" when its fields, after these defaults are applied, are equal."""

    action: Annotated[str, Field(min_length=1, max_length=128, pattern=ACTION_NAME)] = Field(
        description="The builtin action's or hook's name."
    )
    type: Literal["builtin", "hook"] = "builtin"
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        json_schema_extra={"default": {}},
        description="Checked against every distinct declaration of the action in the cohort: required ones"
        " present, unknown ones refused, declared JSON types respected (else 422 `invalid_parameters`). Defaults"
        " are not filled in; the agent applies its own. At most 32 KiB as compact JSON (else 400 `invalid_body`):"
        " the agent reads its event stream in lines of at most 64 KiB. The agent takes parameters as strings"
        " (`map[string]string`).",
    )
    timeout_seconds: Annotated[StrictInt, Field(ge=1, le=86_400)] = 300
    node_id: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="One node of the project (else 404 `node_not_found`).", examples=[EXAMPLE_ID]
    )
    selector: Annotated[str, Field(max_length=1024)] | None = Field(
        None,
        description="Label selector (SPEC §7): comma means AND; terms `k=v`, `k==v`, `k!=v`, `k in (a,b)`,"
        " `k notin (a,b)`, `k` (exists), `!k` (absent); whitespace around tokens is ignored; keys and values"
        " `[A-Za-z0-9._/-]{1,63}`; at most 256 characters and 64 terms; not empty. Anything else → 400"
        " `malformed_selector` with the 0-based `position` of the offending character (the length of the"
        " selector for an unexpected end).",
        examples=["env=prod,role in (web,api),!draining"],
    )
    confirmation: StrictBool = Field(
        False,
        description="Must be `true` for an action declared `dangerous` or `requires_confirmation` by any target"
        " (else 422 `confirmation_required`).",
    )
    rate: RateIn | None = None

    @field_validator("parameters")
    @classmethod
    def _bounded(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        size = encoded_size(parameters)
        if size > MAX_PARAMETERS_BYTES:
            raise ValueError(f"parameters encode to {size} bytes of JSON; at most {MAX_PARAMETERS_BYTES}")
        return parameters


class PrepareRequest(OperatorBody):
    """The target of the dispatch to preview: `type` and exactly one of `node_id` and
    `selector`, with the dispatch's rules (unknown fields are refused). An empty body is
    `{}`."""

    type: Literal["builtin", "hook"] = "builtin"
    node_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    selector: Annotated[str, Field(max_length=1024)] | None = None


class PinBaselineRequest(OperatorBody):
    """The sha256 to pin as the hook's known-good checksum (unknown fields are refused)."""

    model_config = ConfigDict(title="HookBaselineRequest")

    checksum: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] = Field(
        description="`sha256:` followed by 64 lowercase hex digits, as nodes declare hook checksums.",
        examples=["sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    )


# Inline outputs one response carries at most (raw bytes; base64 is 4/3 of it): an answer
# stays far below Lambda's 6 MB response limit whatever the targets reported.
INLINE_BYTES_PER_RESPONSE = 1024 * 1024


class InlineBudget:
    """How many inline output bytes a response still has room for."""

    def __init__(self, remaining: int = INLINE_BYTES_PER_RESPONSE) -> None:
        self.remaining = remaining

    def take(self, size: int) -> bool:
        if size > self.remaining:
            self.remaining = 0  # first come, first served: no later, smaller output jumps the queue
            return False
        self.remaining -= size
        return True


def output_ref_view(ref: OutputRef, budget: InlineBudget) -> dict[str, Any]:
    """SPEC §3/§17: ``{kind: inline, inline_bytes: <base64>}`` or ``{kind: object_store,
    bucket, key, sha256}``, with ``size`` beside. Inline bytes past the response's budget are
    left out (``inline_bytes_omitted: true``); ``.../output`` serves them."""
    if ref.kind == "object_store":
        return {"kind": ref.kind, "bucket": ref.bucket, "key": ref.key, "sha256": ref.sha256, "size": ref.size}
    content = ref.content or b""
    view: dict[str, Any] = {"kind": ref.kind, "size": len(content)}
    if budget.take(len(content)):
        view["inline_bytes"] = base64.b64encode(content).decode()
    else:
        view["inline_bytes_omitted"] = True
    return view


def target_view(target: Target, budget: InlineBudget) -> dict[str, Any]:
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
        view["output_ref"] = output_ref_view(target.output_ref, budget)
    if target.late_reports:
        view["late_reports"] = target.late_reports
    return view


def execution_view(
    execution: Execution,
    *,
    status: TargetStatus | None = None,
    counts: dict[str, int] | None = None,
    targets: list[Target] | None = None,
    targets_truncated: bool = False,
    budget: InlineBudget | None = None,
) -> dict[str, Any]:
    """An Execution as operators read it. ``budget``: inline output bytes left for the whole
    response (a list page shares one between its items)."""
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
        budget = budget or InlineBudget()
        view["targets"] = [target_view(t, budget) for t in targets]
        view["targets_truncated"] = targets_truncated
    return view


def list_filters(status: str | None, action: str | None) -> tuple[str | None, str | None]:
    """Validated ``status`` and ``action_name`` query filters (400 invalid_parameter)."""
    if status is not None and status not in {s.value for s in TargetStatus}:
        raise InvalidParameter(f"status must be one of {', '.join(s.value for s in TargetStatus)}.")
    if action is not None and not re.fullmatch(ACTION_NAME, action):
        raise InvalidParameter("action_name is not a valid action name.")
    return status, action


def checked_action_name(name: str) -> str:
    """An action or hook name from the path (400 invalid_parameter)."""
    if not re.fullmatch(ACTION_NAME, name):
        raise InvalidParameter("The action or hook name in the path is not valid.")
    return name
