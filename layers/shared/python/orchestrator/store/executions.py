"""Executions: creation under the Domain's live ceiling, reads, the aggregate status, the
Domain slot's release, and the admission marker a dispatch holds until its workflow runs.

The rest of an Execution lives beside it in its partition, each with its own store:
targets and their moves (:mod:`~orchestrator.store.targets`), the counters folded from
the stream (:mod:`~orchestrator.store.counters`), the audit trail
(:mod:`~orchestrator.store.audit`). How each is stored: :mod:`~orchestrator.store.execution_items`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.clock import parse_rfc3339, rfc3339
from orchestrator.domain.audit import AuditEvent
from orchestrator.domain.executions import Execution, TargetStatus
from orchestrator.errors import CapacityExceeded, DispatchAbandoned, DomainNotFound
from orchestrator.store import keys
from orchestrator.store.execution_items import admission_item, audit_item, execution_from_item, execution_item
from orchestrator.store.table import ConditionFailed, Table, TransactionCanceled
from orchestrator.store.targets import ABANDONED, TargetStore

NOT_EXISTS = "attribute_not_exists(PK)"


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
    def get(self, execution_id: str, *, consistent: bool = False) -> Execution | None:
        item = self.table.get(keys.execution(execution_id), consistent=consistent)
        return execution_from_item(item) if item else None

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

    def admissions_before(self, cutoff: datetime) -> list[str]:
        """The Executions whose admission marker is older than ``cutoff``: dispatches that took
        a slot and never recorded a workflow (live markers last milliseconds to seconds, so
        these reads are small)."""
        stalled = []
        for partition in keys.admission_partitions():
            for item in self.table.query_all(index=None, key_condition="PK = :pk", values={":pk": partition}):
                if parse_rfc3339(item["created_at"]) < cutoff:
                    stalled.append(str(item["execution_id"]))
        return stalled

    def settle_target_count(self, execution_id: str) -> int:
        """Make ``target_count`` the number of targets actually written (a dispatch that failed
        half-way wrote fewer), so counts and the aggregate cover only real targets."""
        written = TargetStore(self.table).count(execution_id)
        self.table.update(
            keys.execution(execution_id),
            update="SET target_count = :n",
            condition="attribute_exists(PK)",
            values={":n": written},
            returns="NONE",
        )
        return written

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
