"""How Executions and targets are stored and read back: the stores hand out models only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.domain.audit import AuditEvent
from orchestrator.domain.executions import Execution, RateControl, Target, TargetStatus
from orchestrator.store.execution_items import (
    assignment_from_item,
    audit_from_item,
    audit_item,
    execution_from_item,
    execution_item,
    target_from_item,
    target_item,
)

NOW = datetime(2026, 12, 2, 12, 0, 0, 123000, tzinfo=UTC)


def execution(**overrides: object) -> Execution:
    fields: dict[str, object] = {
        "id": "0193a0c0-0000-7000-8000-000000000001",
        "project_id": "p",
        "domain_id": "d",
        "action": "restart-agent",
        "type": "builtin",
        "parameters": {"grace": "5s"},
        "timeout_seconds": 300,
        "status": TargetStatus.PENDING,
        "created_at": NOW,
        "updated_at": NOW,
        "expires_at": NOW + timedelta(seconds=300),
        "target_count": 2,
        "selector": "env=prod",
        "rate": RateControl(max_concurrency=1),
    }
    return Execution.model_validate(fields | overrides)


def target(status: TargetStatus = TargetStatus.PENDING) -> Target:
    return Target(
        execution_id=execution().id, node_id="n1", hostname="web-1", status=status, created_at=NOW, updated_at=NOW
    )


def test_an_execution_reads_back_as_it_was_written() -> None:
    written = execution()
    assert execution_from_item(execution_item(written)) == written


def test_the_recorded_workflow_run_is_part_of_the_execution() -> None:
    item = execution_item(execution()) | {"workflow_arn": "arn:aws:states:us-east-1:1:execution:wf:x"}
    assert execution_from_item(item).workflow_arn == "arn:aws:states:us-east-1:1:execution:wf:x"


@pytest.mark.parametrize(
    ("status", "released", "listed"),
    [
        (TargetStatus.PENDING, True, True),
        (TargetStatus.PENDING, False, False),  # held back by rate control: its node is not shown it
        (TargetStatus.ACK, True, True),
        (TargetStatus.SUCCEEDED, True, True),  # an ended target left the index but was released
    ],
)
def test_a_target_knows_whether_its_node_was_sent_it(status: TargetStatus, released: bool, listed: bool) -> None:
    item = target_item(execution(), target(status), listed=released)
    if status.is_terminal:
        item.pop("GSI2PK", None)  # what the terminal move does
    read = target_from_item(item)
    assert (read.status, read.listed) == (status, listed)
    assert ("GSI2PK" in item) == (released and not status.is_terminal)


def test_an_open_target_is_shown_to_its_node_as_an_assignment() -> None:
    assignment = assignment_from_item(target_item(execution(), target(TargetStatus.ACK)))
    assert assignment.model_dump() == {
        "execution_id": execution().id,
        "action": "restart-agent",
        "type": "builtin",
        "parameters": {"grace": "5s"},
        "status": TargetStatus.ACK,
        "requested_at": NOW,
        "expires_at": NOW + timedelta(seconds=300),
    }


def test_an_audit_event_reads_back_as_it_was_recorded() -> None:
    event = AuditEvent.new(
        "0193a0c0-0000-7000-8000-000000000002",
        NOW,
        status=TargetStatus.FAILED,
        actor="node:n1",
        node_id="n1",
        detail={"reason": "late_report"},
    )
    stored = audit_item(execution().id, event.as_item())
    assert stored["SK"] == f"AUDIT#{event.id}"
    assert audit_from_item(stored) == event
