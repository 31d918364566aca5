"""Rules that live in domain/: rate control's next step, an enrollment token's validity."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.domain.credentials import enrollment_token_usable
from orchestrator.domain.executions import RateControl, TargetStatus
from orchestrator.domain.rate_control import next_step

P, A, S, OK, F, C = (
    TargetStatus.PENDING,
    TargetStatus.ACK,
    TargetStatus.STARTED,
    TargetStatus.SUCCEEDED,
    TargetStatus.FAILED,
    TargetStatus.CANCELLED,
)


def fleet(*statuses: TargetStatus) -> list[tuple[str, TargetStatus]]:
    return [(f"n{i}", status) for i, status in enumerate(statuses)]


@pytest.mark.parametrize(
    ("rate", "targets", "released", "stop", "release"),
    [
        # max_concurrency 2: two in flight, nothing more until one ends
        (RateControl(max_concurrency=2), fleet(A, S, P, P), 2, False, ()),
        (RateControl(max_concurrency=2), fleet(OK, S, P, P), 2, False, ("n2",)),
        (RateControl(max_concurrency=2), fleet(OK, OK, P, P), 2, False, ("n2", "n3")),
        # a held target that moved on meanwhile (cancelled) is not released
        (RateControl(max_concurrency=2), fleet(OK, OK, C, P), 2, False, ("n3",)),
        # everything released: nothing to do
        (RateControl(max_concurrency=2), fleet(OK, S), 2, False, ()),
        # max_errors 0: the first failure stops the rollout
        (RateControl(max_concurrency=1, max_errors=0), fleet(F, P, P), 1, True, ()),
        # max_errors 1 tolerates one failure, not two
        (RateControl(max_concurrency=1, max_errors=1), fleet(F, P, P), 1, False, ("n1",)),
        (RateControl(max_concurrency=1, max_errors=1), fleet(F, F, P), 2, True, ()),
        # max_errors alone: no concurrency bound
        (RateControl(max_errors=5), fleet(P, P, P), 0, False, ("n0", "n1", "n2")),
    ],
)
def test_rate_control_next_step(
    rate: RateControl, targets: list, released: int, stop: bool, release: tuple[str, ...]
) -> None:
    step = next_step(rate, targets, released)
    assert (step.stop, step.release) == (stop, release)
    assert step.held == tuple(node for node, status in targets[released:] if status is P)


NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("used", "expires_epoch", "usable"),
    [
        (False, int(NOW.timestamp()) + 60, True),
        (False, int(NOW.timestamp()) + 1, True),
        (False, int(NOW.timestamp()), False),  # the second it expires at is too late
        (False, int(NOW.timestamp()) - 60, False),
        (True, int(NOW.timestamp()) + 60, False),
    ],
)
def test_enrollment_token_validity(used: bool, expires_epoch: int, usable: bool) -> None:
    assert enrollment_token_usable(used=used, expires_epoch=expires_epoch, now=NOW) is usable
