"""The closed per-target state machine (SPEC §8) and the node wire vocabularies (SPEC §5).

``pending → ack → started → {succeeded | failed | cancelled | timeout}``. A node
may skip forward (earlier callbacks can be lost) but never go backward or
repeat a state, and nothing leaves a terminal state.
"""

from __future__ import annotations

from orchestrator.domain.executions import TargetStatus
from orchestrator.errors import ExecutionAlreadyTerminal, InvalidStateTransition

# What a node may report on the unified callback (pending is never reported).
REPORTABLE = frozenset(TargetStatus) - {TargetStatus.PENDING}

ACK_STATUS = {"accepted": TargetStatus.ACK, "rejected": TargetStatus.FAILED}

RESULT_STATUS = {
    "success": TargetStatus.SUCCEEDED,
    "succeeded": TargetStatus.SUCCEEDED,
    "failure": TargetStatus.FAILED,
    "failed": TargetStatus.FAILED,
    "error": TargetStatus.FAILED,
    "timeout": TargetStatus.TIMEOUT,
    "cancelled": TargetStatus.CANCELLED,
}


def allowed(current: TargetStatus, new: TargetStatus) -> bool:
    return not current.is_terminal and new.rank > current.rank


def check_transition(current: TargetStatus, new: TargetStatus) -> None:
    """Raise the spec's 409 for an illegal move."""
    if current.is_terminal:
        raise ExecutionAlreadyTerminal(f"The target is already {current.value}; it cannot become {new.value}.")
    if new.rank <= current.rank:
        raise InvalidStateTransition(f"The target is {current.value}; {new.value} would go backward or repeat a state.")


def sources(new: TargetStatus) -> frozenset[TargetStatus]:
    """Every state a target may move to ``new`` from: the open states before it (a node may
    skip forward, earlier callbacks can be lost). One conditional write on all of them
    commits any legal report in one request, whatever the target's state."""
    return frozenset(s for s in TargetStatus if allowed(s, new))
