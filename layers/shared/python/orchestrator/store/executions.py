"""Executions, targets, counter shards, node events and hook baselines.

Transitions: every target move is one conditional write on the target, which
carries its audit event as ``last_event``. The table's stream folds them, in
batches (:meth:`ExecutionStore.fold`): each transition's audit event is put if
absent, and its +1/-1 goes to one of ``COUNTER_SHARDS`` counter items of its
Execution, in the same transaction. The audit event is the marker that makes a
redelivered record count once. Shards hold deltas from the initial
all-``pending`` state; :meth:`ExecutionStore.counts` sums them (as far as the
stream has been folded); :meth:`ExecutionStore.counts_from_targets` counts the
targets themselves.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.clock import parse_rfc3339, rfc3339
from orchestrator.domain.audit import AuditEvent
from orchestrator.domain.executions import (
    OPEN,
    Execution,
    OutputRef,
    RateControl,
    Target,
    TargetStatus,
    status_counts,
)
from orchestrator.domain.node_events import NodeEvent
from orchestrator.errors import CapacityExceeded, DatastoreUnavailable, DispatchAbandoned, DomainNotFound
from orchestrator.store import keys
from orchestrator.store.table import ConditionFailed, Item, Table, TransactionCanceled, deserialize

NOT_EXISTS = "attribute_not_exists(PK)"
EVENT_RETENTION_SECONDS = 48 * 3600
TRANSACT_LIMIT = 100
CLOSE_CHUNK = TRANSACT_LIMIT  # targets per closing transaction (their audit events ride on them)
TARGETS_PER_TRANSACTION = TRANSACT_LIMIT - 1  # with the check of the dispatch's admission marker
ABANDONED = (
    "The admission sweep ended this Execution (failed, slot released) while its dispatch was still"
    " running: nothing more was written. Dispatch again."
)
CLOSE_ATTEMPTS = 8
FOLD_ATTEMPTS = 6


def _ts(value: datetime | None) -> str | None:
    return rfc3339(value) if value else None


@dataclass(frozen=True)
class Closing:
    """Why and by whom open targets are closed (timeout, cancel, max_errors, a failed dispatch):
    each closed target gets an audit event saying so."""

    actor: str
    new_id: Callable[[], str]
    error: str | None = None

    def audit_event(self, node_id: str, old: TargetStatus, to: TargetStatus, now: datetime) -> AuditEvent:
        detail: dict[str, Any] = {"from": old.value}
        if self.error is not None:
            detail["reason"] = self.error
        return AuditEvent.new(self.new_id(), now, status=to, actor=self.actor, node_id=node_id, detail=detail)


class ExecutionStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    # Creation ------------------------------------------------------------------------
    def create(self, execution: Execution, audit: AuditEvent) -> None:
        """Take a slot under the Domain's live ceiling, write the Execution and its first audit
        event, atomically."""
        try:
            self.table.transact(
                [
                    self.table.update_op(
                        keys.domain(execution.domain_id),
                        update="ADD live_executions :one",
                        condition="attribute_exists(PK) AND live_executions < live_execution_ceiling",
                        values={":one": 1},
                        old_on_failure=True,
                    ),
                    self.table.put_op(execution_item(execution), condition=NOT_EXISTS),
                    self.table.put_op(audit_item(execution.id, audit.as_item())),
                    self.table.put_op(admission_item(execution)),
                ]
            )
        except TransactionCanceled as exc:
            if exc.reasons[0] == "ConditionalCheckFailed":
                domain = exc.items[0]
                if domain is None:
                    raise DomainNotFound(f"Domain {execution.domain_id} does not exist.") from exc
                ceiling = int(domain.get("live_execution_ceiling", 0))
                raise CapacityExceeded(
                    f"The domain already has {domain.get('live_executions', 0)} live executions (ceiling {ceiling}).",
                    dimension="action_executions",
                    limit=ceiling,
                ) from exc
            raise

    def put_targets(
        self,
        execution: Execution,
        targets: Sequence[Target],
        *,
        visible: int | None = None,
    ) -> int:
        """Write the pending targets; returns the number of requests. Only the first ``visible``
        (all when None) appear in their node's state until released.

        Each chunk of targets is one transaction that also checks the Execution's admission
        marker is still there: once the admission sweep has taken it (this dispatch outlived
        the sweep's grace, and its Execution is being failed), not one more target is written
        (:class:`DispatchAbandoned`)."""
        limit = len(targets) if visible is None else visible
        items = [target_item(execution, t, listed=i < limit) for i, t in enumerate(targets)]
        admitted = self.table.condition_check_op(keys.admission(execution.id), condition="attribute_exists(PK)")
        requests = 0
        for start in range(0, len(items), TARGETS_PER_TRANSACTION):
            chunk = items[start : start + TARGETS_PER_TRANSACTION]
            try:
                self.table.transact([admitted, *(self.table.put_op(item) for item in chunk)])
            except TransactionCanceled as exc:
                if exc.reasons[0] == "ConditionalCheckFailed":
                    raise DispatchAbandoned(ABANDONED) from exc
                raise
            requests += 1
        return requests

    def release_targets(self, execution_id: str, node_ids: Sequence[str]) -> list[str]:
        """Make held-back pending targets visible to their nodes; returns those released
        (a target that moved on meanwhile is skipped)."""
        released = []
        for node_id in node_ids:
            try:
                self.table.update(
                    keys.target(execution_id, node_id),
                    update="SET GSI2PK = :pk, GSI2SK = :sk",
                    condition="#s = :pending",
                    names={"#s": "status"},
                    values={":pk": keys.node_open_targets_gsi2(node_id), ":sk": execution_id, ":pending": "pending"},
                    returns="NONE",
                )
            except ConditionFailed:
                continue
            released.append(node_id)
        return released

    def mark_fanned_out(self, execution_id: str, released: int, now: datetime) -> None:
        """After the first fan-out wave: started_at, and how many targets were sent."""
        self.table.update(
            keys.execution(execution_id),
            update="SET started_at = if_not_exists(started_at, :now), updated_at = :now, released = :r",
            values={":now": rfc3339(now), ":r": released},
            returns="NONE",
        )

    def set_released(self, execution_id: str, released: int) -> None:
        """How many targets (in node-id order) have been sent their action_request."""
        self.table.update(
            keys.execution(execution_id), update="SET released = :r", values={":r": released}, returns="NONE"
        )

    # Reads ----------------------------------------------------------------------------
    def get_item(self, execution_id: str, *, consistent: bool = False) -> Item | None:
        return self.table.get(keys.execution(execution_id), consistent=consistent)

    def get(self, execution_id: str, *, consistent: bool = False) -> Execution | None:
        item = self.get_item(execution_id, consistent=consistent)
        return execution_from_item(item) if item else None

    def targets(self, execution_id: str) -> list[Target]:
        return [target_from_item(i) for i in self.target_items(execution_id)]

    def first_targets(self, execution_id: str, limit: int) -> tuple[list[Target], bool]:
        """The first ``limit`` targets by node id (one query), and whether there are more."""
        condition, values = _targets_of(execution_id)
        items, last = self.table.query_page(index=None, key_condition=condition, values=values, limit=limit)
        return [target_from_item(i) for i in items], last is not None

    def target_items(
        self, execution_id: str, *, only_open: bool = False, consistent: bool = False, attributes: Sequence[str] = ()
    ) -> list[Item]:
        """The Execution's target items (all pages), or only ``attributes`` of each."""
        filter_expression = "#s IN (:p, :a, :st)" if only_open else None
        key_condition, values = _targets_of(execution_id)
        names = None
        if only_open:
            values |= {":p": "pending", ":a": "ack", ":st": "started"}
            names = {"#s": "status"}
        return list(
            self.table.query_all(
                index=None,
                key_condition=key_condition,
                values=values,
                names=names,
                filter_expression=filter_expression,
                consistent=consistent,
                attributes=attributes,
            )
        )

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
        items = self.target_items(execution_id, consistent=True, attributes=("status",))
        return status_counts(item["status"] for item in items)

    def list_page(
        self,
        project_id: str,
        *,
        status: str | None,
        action: str | None,
        limit: int,
        start_key: dict[str, Any] | None,
    ) -> tuple[list[Execution], dict[str, Any] | None]:
        """Creation order. ``action`` uses GSI3, ``status`` GSI2, both GSI4: always an index."""
        if action is not None and status is not None:
            index, partition = "GSI4", keys.project_action_status_gsi4(project_id, action, status)
        elif action is not None:
            index, partition = "GSI3", keys.project_action_gsi3(project_id, action)
        elif status is not None:
            index, partition = "GSI2", keys.project_status_gsi2(project_id, status)
        else:
            index, partition = "GSI1", keys.project_executions_gsi1(project_id)
        items, last = self.table.query_page(
            index=index, key_condition=f"{index}PK = :pk", values={":pk": partition}, limit=limit, start_key=start_key
        )
        return [execution_from_item(i) for i in items], last

    def node_open_targets(self, node_id: str) -> list[Item]:
        return self._indexed_targets(keys.node_open_targets_gsi2(node_id))

    def _indexed_targets(self, partition: str) -> list[Item]:
        """A node's targets under one of its GSI2 partitions (open or held back)."""
        return list(self.table.query_all(index="GSI2", key_condition="GSI2PK = :pk", values={":pk": partition}))

    # Status, slot ------------------------------------------------------------------------
    def set_status(
        self,
        execution: Execution,
        status: TargetStatus,
        now: datetime,
        *,
        terminal: bool = False,
        started: bool = False,
        error: str | None = None,
    ) -> None:
        """Record the aggregate status of a live Execution (and move it in the status indexes);
        an ended one keeps its final status."""
        update, names, values = _status_update(execution, status, now, terminal=terminal, started=started, error=error)
        try:
            self.table.update(
                keys.execution(execution.id),
                update=update,
                condition="attribute_exists(PK) AND attribute_not_exists(completed_at)",
                names=names,
                values=values,
                returns="NONE",
            )
        except ConditionFailed:
            return

    def finish(self, execution: Execution, status: TargetStatus, now: datetime, *, error: str | None = None) -> bool:
        """Record the terminal status and give the Domain slot back, in one transaction, exactly
        once: a reader never sees an ended Execution whose slot is still taken. False when the
        slot was already released, with the status recorded then: an ended Execution never
        changes status."""
        update, names, values = _status_update(execution, status, now, terminal=True, error=error)
        try:
            self.table.transact(
                [
                    self.table.update_op(
                        keys.execution(execution.id),
                        update=update + ", slot_released_at = :now",
                        condition="attribute_exists(PK) AND attribute_not_exists(slot_released_at)",
                        names=names,
                        values=values,
                    ),
                    self.table.update_op(
                        keys.domain(execution.domain_id), update="ADD live_executions :minus", values={":minus": -1}
                    ),
                ]
            )
        except TransactionCanceled as exc:
            if exc.reasons[0] != "ConditionalCheckFailed":
                raise
            return False
        return True

    def mark_workflow_started(self, execution_id: str, workflow_arn: str) -> None:
        """Record the workflow run; the Execution's admission is complete (its marker goes).
        Only while the marker is there and the Execution has not ended: otherwise the sweep
        took the admission (:class:`DispatchAbandoned`)."""
        try:
            self.table.transact(
                [
                    self.table.update_op(
                        keys.execution(execution_id),
                        update="SET workflow_arn = :w",
                        condition="attribute_exists(PK) AND attribute_not_exists(completed_at)",
                        values={":w": workflow_arn},
                    ),
                    self.table.delete_op(keys.admission(execution_id), condition="attribute_exists(PK)"),
                ]
            )
        except TransactionCanceled as exc:
            if "ConditionalCheckFailed" in exc.reasons:
                raise DispatchAbandoned(ABANDONED) from exc
            raise

    def take_admission(self, execution_id: str) -> bool:
        """Remove the admission marker; True for the one caller that removed it (the one that
        then settles an abandoned dispatch: a second sweep, or the dispatch itself, finds it
        gone and leaves the Execution alone)."""
        try:
            self.table.delete(keys.admission(execution_id), condition="attribute_exists(PK)")
        except ConditionFailed:
            return False
        return True

    def admissions_before(self, cutoff: datetime) -> list[Item]:
        """Admission markers older than ``cutoff``: dispatches that took a slot and never
        recorded a workflow (live markers last milliseconds to seconds, so these reads are small)."""
        stalled = []
        for partition in keys.admission_partitions():
            for item in self.table.query_all(index=None, key_condition="PK = :pk", values={":pk": partition}):
                if parse_rfc3339(item["created_at"]) < cutoff:
                    stalled.append(item)
        return stalled

    def settle_target_count(self, execution_id: str) -> int:
        """Make ``target_count`` the number of targets actually written (a dispatch that failed
        half-way wrote fewer), so counts and the aggregate cover only real targets."""
        written = len(self.target_items(execution_id))
        self.table.update(
            keys.execution(execution_id),
            update="SET target_count = :n",
            condition="attribute_exists(PK)",
            values={":n": written},
            returns="NONE",
        )
        return written

    # Target transitions ----------------------------------------------------------------
    def close_open_targets(self, execution_id: str, to: TargetStatus, now: datetime, closing: Closing) -> int:
        """Move every still-open target to ``to`` (timeout, cancelled, failed); returns how many
        moved. Chunks of targets (each carrying its audit event) go in one transaction each; a
        chunk that races with a callback is retried target by target from its current state."""
        moved = 0
        # Consistent: a target written (or moved) just before the closing must not be missed.
        open_items = self.target_items(execution_id, only_open=True, consistent=True)
        for start in range(0, len(open_items), CLOSE_CHUNK):
            chunk = open_items[start : start + CLOSE_CHUNK]
            try:
                self.table.transact(self._close_ops(execution_id, chunk, to, now, closing))
                moved += len(chunk)
            except TransactionCanceled:
                moved += sum(self._close_one(execution_id, item, to, now, closing) for item in chunk)
        return moved

    def close_target(self, execution_id: str, node_id: str, to: TargetStatus, now: datetime, closing: Closing) -> bool:
        """Close one open target (with its audit event); False if it had ended."""
        return self._close_one(execution_id, self.get_target_item(execution_id, node_id), to, now, closing)

    def _close_one(
        self, execution_id: str, item: Item | None, to: TargetStatus, now: datetime, closing: Closing
    ) -> bool:
        # A failed condition means a report moved the target forward meanwhile, which it can do
        # at most three times (pending -> ack -> started -> terminal): bounded.
        for _ in range(CLOSE_ATTEMPTS):
            if item is None or TargetStatus(item["status"]).is_terminal:
                return False
            old, node_id = TargetStatus(item["status"]), item["node_id"]
            try:
                self.transition_target(
                    execution_id,
                    node_id,
                    [old],
                    to,
                    audit=closing.audit_event(node_id, old, to, now),
                    error=closing.error,
                )
            except TargetChanged as changed:
                item = changed.item
                continue
            return True
        raise DatastoreUnavailable("A target kept changing while it was being closed.")

    def _close_ops(
        self, execution_id: str, items: Sequence[Item], to: TargetStatus, now: datetime, closing: Closing
    ) -> list[Any]:
        ops: list[Any] = []
        for item in items:
            old, node_id = TargetStatus(item["status"]), item["node_id"]
            audit = closing.audit_event(node_id, old, to, now)
            ops.append(self.target_transition_op(execution_id, node_id, [old], to, audit=audit, error=closing.error))
        return ops

    def target_transition_op(
        self,
        execution_id: str,
        node_id: str,
        sources: Collection[TargetStatus],
        new: TargetStatus,
        *,
        audit: AuditEvent,
        error: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Any:
        """Conditional move of one target from any of ``sources`` to ``new`` (as a transaction
        item), carrying its audit event for the stream to fold."""
        update, condition, names, values = _transition(sources, new, audit=audit, error=error, extra=extra)
        return self.table.update_op(
            keys.target(execution_id, node_id), update=update, condition=condition, names=names, values=values
        )

    def transition_target(
        self,
        execution_id: str,
        node_id: str,
        sources: Collection[TargetStatus],
        new: TargetStatus,
        *,
        audit: AuditEvent,
        error: str | None = None,
        extra: dict[str, Any] | None = None,
        previous: bool = False,
    ) -> TargetStatus | None:
        """One target's move from any of ``sources``, with its audit event: one conditional
        ``UpdateItem``. Returns the state it moved from when ``previous`` asks for it (None
        otherwise); raises :class:`TargetChanged` with the target as it is when the condition
        failed (None: no such target)."""
        update, condition, names, values = _transition(sources, new, audit=audit, error=error, extra=extra)
        try:
            old = self.table.update(
                keys.target(execution_id, node_id),
                update=update,
                condition=condition,
                names=names,
                values=values,
                returns="UPDATED_OLD" if previous else "NONE",
            )
        except ConditionFailed as exc:
            raise TargetChanged(exc.item) from exc
        return TargetStatus(old["status"]) if previous else None

    def get_target_item(self, execution_id: str, node_id: str) -> Item | None:
        return self.table.get(keys.target(execution_id, node_id), consistent=True)

    # Audit trail ------------------------------------------------------------------------
    def record(self, execution_id: str, event: AuditEvent) -> None:
        self.table.put(audit_item(execution_id, event.as_item()))

    def count_late_report(self, execution_id: str, node_id: str) -> int:
        """One more report refused after the target ended: its count, kept on the target."""
        new = self.table.update(
            keys.target(execution_id, node_id),
            update="ADD late_reports :one",
            condition="attribute_exists(PK)",
            values={":one": 1},
            returns="UPDATED_NEW",
        )
        return int(new["late_reports"])

    # Folding the table's stream ---------------------------------------------------------------
    def fold(self, transitions: Sequence[Transition]) -> int:
        """Apply target moves read from the table's stream: each one's audit event (put only if
        absent) and counter delta, atomically, in transactions of up to 100 items. A move whose
        audit event already exists was folded before (a redelivered record) and is skipped, so
        each move counts exactly once. Returns how many were applied by this call."""
        pending = list({t.event["id"]: t for t in transitions}.values())
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

    def _fold_ops(self, chunk: Sequence[Transition]) -> list[Any]:
        ops: list[Any] = [self.table.put_op(audit_item(t.execution_id, t.event), condition=NOT_EXISTS) for t in chunk]
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

    def audit_page(
        self, execution_id: str, *, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Item], dict[str, Any] | None]:
        return self.table.query_page(
            index=None,
            key_condition="PK = :pk AND begins_with(SK, :a)",
            values={":pk": keys.execution_partition(execution_id), ":a": keys.AUDIT_PREFIX},
            limit=limit,
            start_key=start_key,
        )

    def request_cancel(self, execution_id: str, now: datetime) -> bool:
        """Flag the Execution cancelled by an operator, unless it already ended. False if it had."""
        try:
            self.table.update(
                keys.execution(execution_id),
                update="SET cancel_requested_at = if_not_exists(cancel_requested_at, :now)",
                condition="attribute_exists(PK) AND attribute_not_exists(completed_at)",
                values={":now": rfc3339(now)},
                returns="NONE",
            )
        except ConditionFailed:
            return False
        return True

    def shard_op(self, execution_id: str, shard: int, delta: Counter[str]) -> Any:
        names = {f"#c{i}": status for i, status in enumerate(delta)}
        values = {f":c{i}": amount for i, amount in enumerate(delta.values())}
        update = "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(delta)))
        return self.table.update_op(keys.counter_shard(execution_id, shard), update=update, names=names, values=values)

    # Node events ----------------------------------------------------------------------
    def append_events(self, events: Iterable[NodeEvent], now: datetime) -> int:
        """Append events to nodes' streams (batched); returns the number of requests."""
        ttl = int(now.timestamp()) + EVENT_RETENTION_SECONDS
        return self.table.batch_put(
            [
                {**keys.node_event(e.node_id, e.event_id), "type": "node_event", "ttl": ttl, **e.as_item()}
                for e in events
            ]
        )

    def events_after(self, node_id: str, after_event_id: str | None, limit: int) -> list[NodeEvent]:
        """The node's events after ``after_event_id`` (all retained ones when None), oldest first."""
        values = {
            ":pk": keys.node_partition(node_id),
            ":after": keys.EVENT_PREFIX + (after_event_id or ""),
            ":end": keys.EVENTS_END,
        }
        condition = "PK = :pk AND SK BETWEEN :after AND :end"  # "$" sorts right after "#"
        items, _ = self.table.query_page(index=None, key_condition=condition, values=values, limit=limit + 1)
        # BETWEEN is inclusive: drop the event the node already has.
        seen = keys.node_event(node_id, after_event_id or "")["SK"]
        return [NodeEvent.model_validate(i) for i in items if i["SK"] != seen][:limit]

    # Hook baselines -----------------------------------------------------------------------
    def baseline(self, project_id: str, hook: str) -> str | None:
        item = self.table.get(keys.hook_baseline(project_id, hook), consistent=True)
        return str(item["checksum"]) if item else None

    def pin_baseline(
        self, project_id: str, hook: str, checksum: str, *, by: str, now: datetime, only_if_absent: bool = False
    ) -> bool:
        """Pin (or, trust on first use, pin only if none is pinned yet). True if written."""
        try:
            self.table.put(
                {
                    **keys.hook_baseline(project_id, hook),
                    "type": "hook_baseline",
                    "hook": hook,
                    "checksum": checksum,
                    "pinned_by": by,
                    "pinned_at": rfc3339(now),
                },
                condition=NOT_EXISTS if only_if_absent else None,
            )
        except ConditionFailed:
            return False
        return True


class TargetChanged(Exception):
    """The target was not in the expected state; ``item`` is how it is now (None: no such target)."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("target changed")
        self.item = item


@dataclass(frozen=True)
class Transition:
    """A target's move, as the table's stream shows it."""

    execution_id: str
    node_id: str
    old: TargetStatus
    new: TargetStatus
    event: Item


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
    if not event:  # every move carries its event (_transition); a bare one would go uncounted
        raise ValueError(f"target {new.get('SK')} of {new.get('PK')} changed status without an audit event")
    return Transition(
        execution_id=new["execution_id"],
        node_id=new["node_id"],
        old=TargetStatus(old["status"]),
        new=TargetStatus(new["status"]),
        event=event,
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


def _targets_of(execution_id: str) -> tuple[str, dict[str, Any]]:
    """The key condition (and its values) of a query of an Execution's targets, node-id order."""
    return "PK = :pk AND begins_with(SK, :t)", {":pk": keys.execution_partition(execution_id), ":t": keys.TARGET_PREFIX}


def _transition(
    sources: Collection[TargetStatus],
    new: TargetStatus,
    *,
    audit: AuditEvent,
    error: str | None,
    extra: dict[str, Any] | None,
) -> tuple[str, str, dict[str, str], dict[str, Any]]:
    """A target's move to ``new`` if it is in one of ``sources``: update, condition, names,
    values. The move's audit event is its record: its ``occurred_at`` is the target's
    ``updated_at`` (:func:`target_from_item`). Leaving the open states leaves the node's
    open-targets index (an item without ``GSI2PK`` is not in GSI2)."""
    sets = ["#s = :new", "last_event = :ev"]
    values: dict[str, Any] = {":new": new.value, ":ev": audit.as_item()}
    names = {"#s": "status"}
    if error is not None:
        sets.append("#e = :e")
        values[":e"] = error
        names["#e"] = "error"
    for index, (name, value) in enumerate((extra or {}).items()):
        sets.append(f"{name} = :x{index}")
        values[f":x{index}"] = value
    update = "SET " + ", ".join(sets)
    if new.is_terminal:
        update += " REMOVE GSI2PK"
    ordered = sorted(sources, key=list(TargetStatus).index)
    if not ordered:
        raise ValueError("a transition needs at least one source state")
    placeholders = [f":o{index}" for index in range(len(ordered))]
    values |= dict(zip(placeholders, (status.value for status in ordered), strict=True))
    condition = f"#s = {placeholders[0]}" if len(ordered) == 1 else f"#s IN ({', '.join(placeholders)})"
    return update, condition, names, values


def _status_update(
    execution: Execution,
    status: TargetStatus,
    now: datetime,
    *,
    terminal: bool = False,
    started: bool = False,
    error: str | None = None,
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The update of an Execution's aggregate status: its status indexes move with it."""
    sets = ["#s = :s", "updated_at = :now", "GSI2PK = :g", "GSI4PK = :g4"]
    values: dict[str, Any] = {
        ":s": status.value,
        ":now": rfc3339(now),
        ":g": keys.project_status_gsi2(execution.project_id, status.value),
        ":g4": keys.project_action_status_gsi4(execution.project_id, execution.action, status.value),
    }
    names = {"#s": "status"}
    if terminal:
        sets.append("completed_at = if_not_exists(completed_at, :now)")
    if started:
        sets.append("started_at = if_not_exists(started_at, :now)")
    if error:
        sets.append("#e = :e")
        values[":e"] = error
        names["#e"] = "error"
    return "SET " + ", ".join(sets), names, values


def audit_item(execution_id: str, event: Item) -> Item:
    return {**keys.audit_event(execution_id, event["id"]), "type": "audit", "execution_id": execution_id, **event}


def admission_item(execution: Execution) -> Item:
    return {
        **keys.admission(execution.id),
        "type": "admission",
        "execution_id": execution.id,
        "domain_id": execution.domain_id,
        "created_at": rfc3339(execution.created_at),
    }


def execution_item(execution: Execution) -> Item:
    return {
        **keys.execution(execution.id),
        "type": "execution",
        "id": execution.id,
        "project_id": execution.project_id,
        "domain_id": execution.domain_id,
        "action": execution.action,
        "action_type": execution.type,
        "parameters": execution.parameters,
        "timeout_seconds": execution.timeout_seconds,
        "status": execution.status.value,
        "created_at": rfc3339(execution.created_at),
        "updated_at": rfc3339(execution.updated_at),
        "expires_at": rfc3339(execution.expires_at),
        "triggered_by": execution.triggered_by,
        "target_count": execution.target_count,
        "selector": execution.selector,
        "node_id": execution.node_id,
        "rate": execution.rate.model_dump(exclude_none=True) if execution.rate else None,
        "GSI1PK": keys.project_executions_gsi1(execution.project_id),
        "GSI1SK": execution.id,
        "GSI2PK": keys.project_status_gsi2(execution.project_id, execution.status.value),
        "GSI2SK": execution.id,
        "GSI3PK": keys.project_action_gsi3(execution.project_id, execution.action),
        "GSI3SK": execution.id,
        "GSI4PK": keys.project_action_status_gsi4(execution.project_id, execution.action, execution.status.value),
        "GSI4SK": execution.id,
    }


def execution_from_item(item: Item) -> Execution:
    return Execution(
        id=item["id"],
        project_id=item["project_id"],
        domain_id=item["domain_id"],
        action=item["action"],
        type=item["action_type"],
        parameters=item.get("parameters", {}),
        timeout_seconds=item["timeout_seconds"],
        status=TargetStatus(item["status"]),
        created_at=parse_rfc3339(item["created_at"]),
        updated_at=parse_rfc3339(item["updated_at"]),
        started_at=parse_rfc3339(item["started_at"]) if item.get("started_at") else None,
        completed_at=parse_rfc3339(item["completed_at"]) if item.get("completed_at") else None,
        expires_at=parse_rfc3339(item["expires_at"]),
        triggered_by=item.get("triggered_by", {}),
        target_count=item["target_count"],
        selector=item.get("selector"),
        node_id=item.get("node_id"),
        rate=RateControl.model_validate(item["rate"]) if item.get("rate") else None,
        cancel_requested=bool(item.get("cancel_requested_at")),
        released=item.get("released"),
    )


def target_item(execution: Execution, target: Target, *, listed: bool = True) -> Item:
    """A target as stored."""
    item: Item = {
        **keys.target(execution.id, target.node_id),
        "type": "target",
        "execution_id": execution.id,
        "project_id": execution.project_id,
        "node_id": target.node_id,
        "hostname": target.hostname,
        "status": target.status.value,
        "created_at": rfc3339(target.created_at),
        "updated_at": rfc3339(target.updated_at),
        # Denormalized so a node's state needs no Execution reads.
        "action": execution.action,
        "action_type": execution.type,
        "parameters": execution.parameters,
        "timeout_seconds": execution.timeout_seconds,
        "expires_at": rfc3339(execution.expires_at),
    }
    if target.status in OPEN and listed:
        item["GSI2PK"] = keys.node_open_targets_gsi2(target.node_id)
        item["GSI2SK"] = execution.id
    return item


def is_listed(item: Item) -> bool:
    """Whether an open target has been released to its node (its node sees it)."""
    return bool(item.get("GSI2PK")) and item["GSI2PK"] == keys.node_open_targets_gsi2(item["node_id"])


def target_from_item(item: Item) -> Target:
    ref = output_ref(item)
    if ref and ref["kind"] == "inline":
        content = inline_output(item)
        ref = {"kind": "inline", "content": content, "size": len(content)}
    return Target(
        execution_id=item["execution_id"],
        node_id=item["node_id"],
        hostname=item.get("hostname", ""),
        status=TargetStatus(item["status"]),
        created_at=parse_rfc3339(item["created_at"]),
        updated_at=parse_rfc3339(item.get("last_event", {}).get("occurred_at") or item["updated_at"]),
        exit_code=item.get("exit_code"),
        error=item.get("error"),
        output_ref=OutputRef.model_validate(ref) if ref else None,
        late_reports=int(item.get("late_reports", 0)),
    )


def output_ref(item: Item) -> dict[str, Any] | None:
    """Where a target's output is, without the bytes an inline reference carries (a stored
    inline reference holds its size as ``size``; targets written before held it as
    ``inline_bytes``)."""
    ref = item.get("output_ref")
    if not ref:
        return None
    plain = {k: v for k, v in ref.items() if k not in {"content", "inline_bytes"}}
    if ref.get("kind") == "inline" and "size" not in plain and isinstance(ref.get("inline_bytes"), int):
        plain["size"] = ref["inline_bytes"]
    return plain


def inline_output(item: Item) -> bytes:
    """The bytes of an inline output: in its reference (``content``), or beside it
    (``output_inline``, as targets stored them before the reference carried them)."""
    ref: dict[str, Any] = item.get("output_ref") or {}
    content = ref["content"] if "content" in ref else item.get("output_inline", b"")
    return bytes(content)
