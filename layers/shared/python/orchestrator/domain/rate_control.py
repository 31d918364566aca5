"""Rate control (SPEC §9, like SSM Run Command): how many held-back targets to release next.

Targets are released in node-id order; the first ``released`` of them have been sent their
action_request. ``max_concurrency`` bounds the released targets still open; ``max_errors``
is how many failures are tolerated (0: stop at the first): past it, no target is released
any more and the held-back ones are cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.domain.executions import OPEN, RateControl, TargetStatus


@dataclass(frozen=True)
class RateStep:
    """What the next progress check does: cancel the held-back targets (``stop``), or release
    the ``release`` ones (node ids, in order; may be none)."""

    stop: bool
    release: tuple[str, ...]
    held: tuple[str, ...]  # every held-back pending target, in order


def next_step(rate: RateControl, targets: Sequence[tuple[str, TargetStatus]], released: int) -> RateStep:
    """``targets``: (node id, status) of every target in node-id order; ``released``: how many
    of them were sent their action_request."""
    held = tuple(node for node, status in targets[released:] if status is TargetStatus.PENDING)
    failed = sum(1 for _, status in targets if status is TargetStatus.FAILED)
    if rate.max_errors is not None and failed > rate.max_errors:
        return RateStep(stop=True, release=(), held=held)
    in_flight = sum(1 for _, status in targets[:released] if status in OPEN)
    room = max(0, (rate.max_concurrency or len(targets)) - in_flight)
    return RateStep(stop=False, release=held[:room], held=held)
