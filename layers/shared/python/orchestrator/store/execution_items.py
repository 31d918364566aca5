"""How Executions, their targets, audit events and admission markers are stored: the
item of each model and the model of each item (older item shapes included). Only the
stores use these; nothing above ``store/`` sees a table item."""

from __future__ import annotations

from typing import Any

from orchestrator.clock import parse_rfc3339, rfc3339
from orchestrator.domain.audit import AuditEvent
from orchestrator.domain.executions import (
    OPEN,
    Assignment,
    Execution,
    OutputRef,
    RateControl,
    Target,
    TargetStatus,
)
from orchestrator.store import keys
from orchestrator.store.table import Item


def audit_item(execution_id: str, event: Item) -> Item:
    """An audit event as stored (``event`` as :meth:`AuditEvent.as_item` gives it, or as a
    target's ``last_event`` holds it)."""
    return {**keys.audit_event(execution_id, event["id"]), "type": "audit", "execution_id": execution_id, **event}


def audit_from_item(item: Item) -> AuditEvent:
    return AuditEvent.model_validate(item)


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
        workflow_arn=item.get("workflow_arn"),
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


def _is_listed(item: Item) -> bool:
    """Whether a target has been released to its node: an open one is indexed for its node,
    an ended one was (only a released target can have moved on from pending), and a pending
    one without the index entry is held back by rate control."""
    if TargetStatus(item["status"]) is not TargetStatus.PENDING:
        return True
    return item.get("GSI2PK") == keys.node_open_targets_gsi2(item["node_id"])


def target_from_item(item: Item) -> Target:
    ref = _output_ref(item)
    if ref and ref["kind"] == "inline":
        content = _inline_output(item)
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
        listed=_is_listed(item),
    )


def assignment_from_item(item: Item) -> Assignment:
    """An open target as its node is shown it, from the fields denormalized onto the target."""
    return Assignment(
        execution_id=item["execution_id"],
        action=item["action"],
        type=item["action_type"],
        parameters=item.get("parameters", {}),
        status=TargetStatus(item["status"]),
        requested_at=parse_rfc3339(item["created_at"]),
        expires_at=parse_rfc3339(item["expires_at"]),
    )


def _output_ref(item: Item) -> dict[str, Any] | None:
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


def _inline_output(item: Item) -> bytes:
    """The bytes of an inline output: in its reference (``content``), or beside it
    (``output_inline``, as targets stored them before the reference carried them)."""
    ref: dict[str, Any] = item.get("output_ref") or {}
    content = ref["content"] if "content" in ref else item.get("output_inline", b"")
    return bytes(content)
