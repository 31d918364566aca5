"""An Execution's targets (one per node) and every move of theirs.

Every move is one conditional write on the target that accepts each state the §8 machine
allows the move from, and carries the move's audit event as ``last_event`` for the table's
stream to fold (:mod:`orchestrator.store.counters`). Closings (timeout, cancel,
``max_errors``) move many targets in transactions of up to 100, each with its audit event.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from orchestrator.domain.audit import AuditEvent, Closing
from orchestrator.domain.executions import Assignment, Execution, Target, TargetStatus
from orchestrator.errors import DatastoreUnavailable, DispatchAbandoned
from orchestrator.store import keys
from orchestrator.store.execution_items import assignment_from_item, target_from_item, target_item
from orchestrator.store.table import ConditionFailed, Item, Table, TransactionCanceled

TRANSACT_LIMIT = 100
CLOSE_CHUNK = TRANSACT_LIMIT  # targets per closing transaction (their audit events ride on them)
TARGETS_PER_TRANSACTION = TRANSACT_LIMIT - 1  # with the check of the dispatch's admission marker
CLOSE_ATTEMPTS = 8
ABANDONED = (
    "The admission sweep ended this Execution (failed, slot released) while its dispatch was still"
    " running: nothing more was written. Dispatch again."
)


class TargetChanged(Exception):
    """The target was not in the expected state; ``target`` is how it is now (None: no such target)."""

    def __init__(self, target: Target | None) -> None:
        super().__init__("target changed")
        self.target = target


class TargetStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    # Writing and releasing -------------------------------------------------------------
    def put_targets(self, execution: Execution, targets: Sequence[Target], *, visible: int | None = None) -> int:
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

    # Reads -------------------------------------------------------------------------------
    def targets(self, execution_id: str, *, only_open: bool = False, consistent: bool = False) -> list[Target]:
        """The Execution's targets in node-id order (all pages), or only the open ones."""
        return [target_from_item(i) for i in self._items(execution_id, only_open=only_open, consistent=consistent)]

    def open_node_ids(self, execution_id: str) -> list[str]:
        """The nodes of the Execution's open targets, in node-id order (all pages; each item
        projected to its node id: a fan-out's read of 1,000 targets parses a fraction of it)."""
        return [str(i["node_id"]) for i in self._items(execution_id, only_open=True, attributes=("node_id",))]

    def first_targets(self, execution_id: str, limit: int) -> tuple[list[Target], bool]:
        """The first ``limit`` targets by node id (one query), and whether there are more."""
        condition, values = _targets_of(execution_id)
        items, last = self.table.query_page(index=None, key_condition=condition, values=values, limit=limit)
        return [target_from_item(i) for i in items], last is not None

    def statuses(self, execution_id: str) -> list[TargetStatus]:
        """Every target's status, read consistently and projected (the final count)."""
        items = self._items(execution_id, consistent=True, attributes=("status",))
        return [TargetStatus(i["status"]) for i in items]

    def count(self, execution_id: str) -> int:
        """How many targets were written."""
        return len(self._items(execution_id, attributes=("node_id",)))

    def get(self, execution_id: str, node_id: str) -> Target | None:
        item = self.table.get(keys.target(execution_id, node_id), consistent=True)
        return target_from_item(item) if item else None

    def node_assignments(self, node_id: str) -> list[Assignment]:
        """The node's open targets released to it, as it is shown them, by execution id."""
        items = self.table.query_all(
            index="GSI2", key_condition="GSI2PK = :pk", values={":pk": keys.node_open_targets_gsi2(node_id)}
        )
        return sorted((assignment_from_item(i) for i in items), key=lambda a: a.execution_id)

    def _items(
        self, execution_id: str, *, only_open: bool = False, consistent: bool = False, attributes: Sequence[str] = ()
    ) -> list[Item]:
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

    # Moves -------------------------------------------------------------------------------
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
            raise TargetChanged(target_from_item(exc.item) if exc.item else None) from exc
        return TargetStatus(old["status"]) if previous else None

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

    # Closings ----------------------------------------------------------------------------
    def close_open_targets(self, execution_id: str, to: TargetStatus, now: datetime, closing: Closing) -> int:
        """Move every still-open target to ``to`` (timeout, cancelled, failed); returns how many
        moved. Chunks of targets (each carrying its audit event) go in one transaction each; a
        chunk that races with a callback is retried target by target from its current state."""
        moved = 0
        # Consistent: a target written (or moved) just before the closing must not be missed.
        open_targets = self.targets(execution_id, only_open=True, consistent=True)
        for start in range(0, len(open_targets), CLOSE_CHUNK):
            chunk = open_targets[start : start + CLOSE_CHUNK]
            try:
                self.table.transact(self._close_ops(execution_id, chunk, to, now, closing))
                moved += len(chunk)
            except TransactionCanceled:
                moved += sum(self._close_one(execution_id, target, to, now, closing) for target in chunk)
        return moved

    def close_target(self, execution_id: str, node_id: str, to: TargetStatus, now: datetime, closing: Closing) -> bool:
        """Close one open target (with its audit event); False if it had ended."""
        return self._close_one(execution_id, self.get(execution_id, node_id), to, now, closing)

    def _close_one(
        self, execution_id: str, target: Target | None, to: TargetStatus, now: datetime, closing: Closing
    ) -> bool:
        # A failed condition means a report moved the target forward meanwhile, which it can do
        # at most three times (pending -> ack -> started -> terminal): bounded.
        for _ in range(CLOSE_ATTEMPTS):
            if target is None or target.status.is_terminal:
                return False
            old, node_id = target.status, target.node_id
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
                target = changed.target
                continue
            return True
        raise DatastoreUnavailable("A target kept changing while it was being closed.")

    def _close_ops(
        self, execution_id: str, targets: Sequence[Target], to: TargetStatus, now: datetime, closing: Closing
    ) -> list[Any]:
        ops: list[Any] = []
        for target in targets:
            old, node_id = target.status, target.node_id
            audit = closing.audit_event(node_id, old, to, now)
            ops.append(self.target_transition_op(execution_id, node_id, [old], to, audit=audit, error=closing.error))
        return ops


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
    ``updated_at`` (:func:`~orchestrator.store.execution_items.target_from_item`). Leaving the
    open states leaves the node's open-targets index (an item without ``GSI2PK`` is not in GSI2)."""
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
