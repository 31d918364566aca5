"""Per-status counts of an Execution's targets, folded from the table's stream.

The stream's target moves are applied in batches (:meth:`CounterStore.fold`): each move's
audit event is put if absent, and its +1/-1 goes to one of ``COUNTER_SHARDS`` counter items
of its Execution, in the same transaction. The audit event is the marker that makes a
redelivered record count once. Shards hold deltas from the initial all-``pending`` state;
:meth:`CounterStore.counts` sums them (as far as the stream has been folded);
:meth:`CounterStore.counts_from_targets` counts the targets themselves.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.domain.audit import AuditEvent
from orchestrator.domain.executions import TargetStatus, status_counts
from orchestrator.errors import DatastoreUnavailable
from orchestrator.store import keys
from orchestrator.store.execution_items import audit_from_item, audit_item
from orchestrator.store.table import Table, TransactionCanceled, deserialize
from orchestrator.store.targets import TRANSACT_LIMIT, TargetStore

NOT_EXISTS = "attribute_not_exists(PK)"
FOLD_ATTEMPTS = 6


@dataclass(frozen=True)
class Transition:
    """A target's move, as the table's stream shows it, with the move's audit event."""

    execution_id: str
    node_id: str
    old: TargetStatus
    new: TargetStatus
    event: AuditEvent


class CounterStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def counts(self, execution_id: str, target_count: int) -> dict[str, int]:
        """Per-status counts as far as the stream has been folded: the sum of every shard's
        deltas. Never ahead of the targets: a target counted as terminal is terminal."""
        totals: Counter[str] = Counter()
        for shard in self.table.query_all(
            index=None,
            key_condition="PK = :pk AND begins_with(SK, :c)",
            values={":pk": keys.execution_partition(execution_id), ":c": keys.COUNTER_PREFIX},
            consistent=True,
        ):
            for status in TargetStatus:
                totals[status.value] += int(shard.get(status.value, 0))
        totals[TargetStatus.PENDING.value] += target_count
        return {status.value: totals[status.value] for status in TargetStatus}

    def counts_from_targets(self, execution_id: str) -> dict[str, int]:
        """Exact per-status counts, read from the targets themselves (one query of their
        statuses): for the moments that must not wait for the stream, e.g. the final count."""
        return status_counts(status.value for status in TargetStore(self.table).statuses(execution_id))

    def fold(self, transitions: Sequence[Transition]) -> int:
        """Apply target moves read from the table's stream: each one's audit event (put only if
        absent) and counter delta, atomically, in transactions of up to 100 items. A move whose
        audit event already exists was folded before (a redelivered record) and is skipped, so
        each move counts exactly once. Returns how many were applied by this call."""
        pending = list({t.event.id: t for t in transitions}.values())
        applied = conflicts = 0
        while pending:
            chunk = _fold_chunk(pending)
            try:
                self.table.transact(self._fold_ops(chunk))
            except TransactionCanceled as exc:
                folded = {i for i, reason in enumerate(exc.reasons[: len(chunk)]) if reason == "ConditionalCheckFailed"}
                if folded:  # already counted: fold the rest of the chunk without them
                    pending = [t for i, t in enumerate(chunk) if i not in folded] + pending[len(chunk) :]
                    continue
                conflicts += 1  # a concurrent fold wrote the same counter shard
                if conflicts >= FOLD_ATTEMPTS:
                    raise DatastoreUnavailable("Counter shards kept conflicting while folding.") from exc
                time.sleep(min(0.02 * 2**conflicts, 0.5))
                continue
            applied += len(chunk)
            pending = pending[len(chunk) :]
        return applied

    def shard_op(self, execution_id: str, shard: int, delta: Counter[str]) -> Any:
        names = {f"#c{i}": status for i, status in enumerate(delta)}
        values = {f":c{i}": amount for i, amount in enumerate(delta.values())}
        update = "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(delta)))
        return self.table.update_op(keys.counter_shard(execution_id, shard), update=update, names=names, values=values)

    def _fold_ops(self, chunk: Sequence[Transition]) -> list[Any]:
        ops: list[Any] = [
            self.table.put_op(audit_item(t.execution_id, t.event.as_item()), condition=NOT_EXISTS) for t in chunk
        ]
        deltas: dict[tuple[str, int], Counter[str]] = {}
        for t in chunk:
            delta = deltas.setdefault((t.execution_id, keys.shard_of(t.node_id)), Counter())
            delta[t.old.value] -= 1
            delta[t.new.value] += 1
        for (execution_id, shard), delta in deltas.items():
            nonzero = Counter({status: amount for status, amount in delta.items() if amount})
            if nonzero:
                ops.append(self.shard_op(execution_id, shard, nonzero))
        return ops


def transition_from_record(change: Mapping[str, Any]) -> Transition | None:
    """The target move in a stream record's ``dynamodb`` part (None: not a target, or its
    status did not change: inserts, removals, releases, other attributes)."""
    old_image, new_image = change.get("OldImage"), change.get("NewImage")
    if not old_image or not new_image:
        return None
    old, new = deserialize(old_image), deserialize(new_image)
    if new.get("type") != "target" or old.get("status") == new.get("status"):
        return None
    event = new.get("last_event")
    if not event:  # every move carries its event (store.targets._transition); a bare one would go uncounted
        raise ValueError(f"target {new.get('SK')} of {new.get('PK')} changed status without an audit event")
    return Transition(
        execution_id=new["execution_id"],
        node_id=new["node_id"],
        old=TargetStatus(old["status"]),
        new=TargetStatus(new["status"]),
        event=audit_from_item(event),
    )


def _fold_chunk(pending: Sequence[Transition]) -> Sequence[Transition]:
    """The longest head of ``pending`` whose audit events and counter shards fit in one transaction."""
    shards: set[tuple[str, int]] = set()
    size = 0
    for taken, transition in enumerate(pending):
        shard = (transition.execution_id, keys.shard_of(transition.node_id))
        needed = 1 + (shard not in shards)
        if size + needed > TRANSACT_LIMIT:
            return pending[:taken]
        shards.add(shard)
        size += needed
    return pending
