"""Executions and their targets (invocations): statuses, the §8 state machine, aggregates."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TargetStatus(StrEnum):
    PENDING = "pending"
    ACK = "ack"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def rank(self) -> int:
        """Progress order of the non-terminal states (terminal states share the top rank)."""
        return _PROGRESS.index(self) if self in _PROGRESS else len(_PROGRESS)


_PROGRESS = [TargetStatus.PENDING, TargetStatus.ACK, TargetStatus.STARTED]
TERMINAL = frozenset({TargetStatus.SUCCEEDED, TargetStatus.FAILED, TargetStatus.CANCELLED, TargetStatus.TIMEOUT})
OPEN = frozenset(_PROGRESS)

ActionType = Literal["builtin", "hook"]


class RateControl(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_concurrency: int | None = None
    max_errors: int | None = None


class Execution(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    project_id: str
    domain_id: str
    action: str
    type: ActionType
    parameters: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: int
    status: TargetStatus
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime
    triggered_by: dict[str, Any] = Field(default_factory=dict)
    target_count: int
    counts: dict[str, int] = Field(default_factory=dict)
    selector: str | None = None
    node_id: str | None = None
    rate: RateControl | None = None
    cancel_requested: bool = False
    released: int | None = None  # targets sent their action_request so far (rate control)
    workflow_arn: str | None = None  # the Step Functions run, once the admission completed


class OutputRef(BaseModel):
    """Where a target's output is: inline (``content``, at most 16 KiB) or in the object
    store (``bucket``, ``key``, ``sha256``); ``size`` in bytes either way."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["inline", "object_store"]
    content: bytes | None = None
    bucket: str | None = None
    key: str | None = None
    sha256: str | None = None
    size: int | None = None


class Target(BaseModel):
    model_config = ConfigDict(frozen=True)

    execution_id: str
    node_id: str
    hostname: str = ""
    status: TargetStatus
    created_at: datetime
    updated_at: datetime
    exit_code: int | None = None
    error: str | None = None
    output_ref: OutputRef | None = None
    late_reports: int = 0  # reports refused after the target ended
    listed: bool = True  # released to its node (False: held back by rate control)


class Assignment(BaseModel):
    """An open target as its node is shown it (SPEC §11 ``/state``)."""

    model_config = ConfigDict(frozen=True)

    execution_id: str
    action: str
    type: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    status: TargetStatus
    requested_at: datetime
    expires_at: datetime


def aggregate_status(statuses: Iterable[TargetStatus], *, cancelled_by_operator: bool = False) -> TargetStatus:
    """SPEC §8: ``pending`` until any target moves; then the least advanced open state;
    once all are terminal: succeeded if all succeeded, cancelled if the operator
    cancelled, failed if any failed, else timeout."""
    values = list(statuses)
    open_states = [s for s in values if not s.is_terminal]
    if not values or open_states:
        # The least advanced open state; "pending" also while nothing moved.
        return min(open_states, key=lambda s: s.rank, default=TargetStatus.PENDING)
    if all(s is TargetStatus.SUCCEEDED for s in values):
        return TargetStatus.SUCCEEDED
    if cancelled_by_operator:
        return TargetStatus.CANCELLED
    if any(s is TargetStatus.FAILED for s in values):
        return TargetStatus.FAILED
    return TargetStatus.TIMEOUT


def status_counts(statuses: Iterable[str]) -> dict[str, int]:
    """Per-status counts of target statuses, every status present (zero when none)."""
    tally = Counter(statuses)
    return {status.value: tally[status.value] for status in TargetStatus}


def aggregate_from_counts(counts: Mapping[str, int], *, cancelled_by_operator: bool = False) -> TargetStatus:
    """The same rule over per-status counters (as kept on the Execution item)."""
    expanded: list[TargetStatus] = []
    for status in TargetStatus:
        if counts.get(status.value, 0) > 0:
            expanded.append(status)
    if not expanded:
        return TargetStatus.PENDING
    return aggregate_status(expanded, cancelled_by_operator=cancelled_by_operator)


def go_duration(seconds: int) -> str:
    """A Go ``time.Duration`` string for whole seconds, as plexd parses it (``"300s"``)."""
    return f"{seconds}s"
