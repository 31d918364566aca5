"""SPEC §8: the Execution's aggregate status from its targets' states."""

from __future__ import annotations

import pytest

from orchestrator.domain.executions import TargetStatus, aggregate_from_counts, aggregate_status

P, A, S = TargetStatus.PENDING, TargetStatus.ACK, TargetStatus.STARTED
OK, FAIL, CANCEL, TIMEOUT = TargetStatus.SUCCEEDED, TargetStatus.FAILED, TargetStatus.CANCELLED, TargetStatus.TIMEOUT


@pytest.mark.parametrize(
    ("states", "cancelled", "expected"),
    [
        ([P, P], False, P),  # nothing moved yet
        ([A, P], False, P),  # the least advanced open state
        ([A, S], False, A),
        ([S, OK], False, S),  # a finished target does not hold the others back
        ([OK, OK], False, OK),
        ([OK, CANCEL], True, CANCEL),  # cancelled beats everything but all-succeeded
        ([FAIL, CANCEL], True, CANCEL),
        ([OK, OK], True, OK),  # a cancel that came too late to stop anything
        ([FAIL, TIMEOUT], False, FAIL),  # failed beats timeout
        ([OK, FAIL], False, FAIL),
        ([OK, TIMEOUT], False, TIMEOUT),
        ([TIMEOUT, TIMEOUT], False, TIMEOUT),
    ],
)
def test_aggregate_follows_the_spec_precedence(
    states: list[TargetStatus], cancelled: bool, expected: TargetStatus
) -> None:
    assert aggregate_status(states, cancelled_by_operator=cancelled) is expected
    counts = {s.value: states.count(s) for s in TargetStatus}
    assert aggregate_from_counts(counts, cancelled_by_operator=cancelled) is expected


def test_an_execution_without_targets_is_pending() -> None:
    assert aggregate_status([]) is P
    assert aggregate_from_counts({}) is P
