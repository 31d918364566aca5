"""Counters and the audit trail, folded from the table's stream (SPEC §8, §3).

A report is one conditional write on its target, which carries the move's audit
event; nothing on the hot path touches an Execution-wide item. The table's
stream delivers every target change at least once, in order per item, and this
fold applies each move's counter delta and audit event exactly once, in
batched transactions (:meth:`ExecutionStore.fold`). Counts read from the
counter shards are therefore as recent as the fold: never ahead of the targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.services.context import Context
from orchestrator.store.counters import Transition, transition_from_record


@dataclass
class StreamFold:
    """One batch of stream records: :meth:`collect` each record, then :meth:`apply` once."""

    ctx: Context
    transitions: list[Transition] = field(default_factory=list)

    def collect(self, change: Mapping[str, Any]) -> None:
        """A record's ``dynamodb`` part; anything but a target's status change is ignored."""
        transition = transition_from_record(change)
        if transition is not None:
            self.transitions.append(transition)

    def apply(self) -> int:
        """Fold what was collected; returns the moves applied now (redelivered ones are not)."""
        return self.ctx.counters.fold(self.transitions)
