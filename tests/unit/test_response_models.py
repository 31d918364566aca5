"""The projections build exactly the bodies the response models (and so api/openapi.yaml)
describe: every field, no other, in the documented order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator.domain.executions import Execution, OutputRef, RateControl, Target, TargetStatus
from orchestrator.domain.models import (
    ActionParameter,
    BinaryInfo,
    BuiltinAction,
    Capabilities,
    Domain,
    Hook,
    Membership,
    Node,
    Project,
    Relation,
)
from orchestrator.http.execution_schemas import InlineBudget, execution_view, output_ref_view, target_view
from orchestrator.http.responses import (
    CapabilitiesSummary,
    DomainView,
    ExecutionSummary,
    ExecutionView,
    MembershipView,
    NodeView,
    ProjectView,
    TargetView,
)
from orchestrator.http.responses import OutputRef as OutputRefBody
from orchestrator.http.schemas import capabilities_summary, domain_view, membership_view, node_view, project_view
from tests.response_shapes import assert_conforms

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)
ID = "0190b5e4-6f1a-7cc2-8d3e-2b9f3a1c4d5e"
CHECKSUM = "sha256:" + "a" * 64


def execution(**overrides: Any) -> Execution:
    fields: dict[str, Any] = {
        "id": ID,
        "project_id": ID,
        "domain_id": ID,
        "action": "restart-service",
        "type": "builtin",
        "parameters": {"service": "nginx"},
        "timeout_seconds": 300,
        "status": TargetStatus.STARTED,
        "created_at": NOW,
        "updated_at": NOW,
        "expires_at": NOW + timedelta(minutes=5),
        "triggered_by": {"type": "operator", "subject": "alice"},
        "target_count": 2,
    }
    return Execution(**(fields | overrides))


def target(node_id: str, **overrides: Any) -> Target:
    fields: dict[str, Any] = {
        "execution_id": ID,
        "node_id": node_id,
        "hostname": f"host-{node_id}",
        "status": TargetStatus.PENDING,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Target(**(fields | overrides))


INLINE = OutputRef(kind="inline", content=b"restarted ok", size=12)
STORED = OutputRef(kind="object_store", bucket="outputs", key="outputs/e/n", sha256="0" * 64, size=20_000)
EVERY_FIELD = target("n1", status=TargetStatus.FAILED, exit_code=2, error="boom", output_ref=INLINE, late_reports=3)


def node(**overrides: Any) -> Node:
    capabilities = Capabilities(
        binary=BinaryInfo(version="1.2.3", checksum=CHECKSUM),
        builtin_actions=(BuiltinAction(name="restart", parameters=(ActionParameter(name="service"),)),),
        hooks=(Hook(name="rotate-logs", checksum=CHECKSUM),),
    )
    fields: dict[str, Any] = {
        "id": ID,
        "project_id": ID,
        "hostname": "web-01",
        "labels": {"env": "prod"},
        "capabilities": capabilities,
        "mesh_ip": "10.100.0.1",
        "registered_at": NOW,
        "updated_at": NOW,
        "domain_id": ID,
        "status": "active",
    }
    return Node.model_validate(fields | overrides)


def test_tenancy_views() -> None:
    assert_conforms(DomainView, domain_view(Domain(id=ID, name="acme", live_execution_ceiling=100, created_at=NOW)))
    assert_conforms(ProjectView, project_view(Project(id=ID, domain_id=ID, name="fleet", created_at=NOW)))
    grant = Membership(object_type="project", object_id=ID, subject="bob", relation=Relation.OPERATOR)
    assert_conforms(MembershipView, membership_view(grant))


@pytest.mark.parametrize("heard_from", [None, NOW])
def test_node_view(heard_from: datetime | None) -> None:
    assert_conforms(NodeView, node_view(node(last_heartbeat_at=heard_from), NOW))


def test_capabilities_summary_without_a_binary() -> None:
    assert_conforms(CapabilitiesSummary, capabilities_summary(Capabilities()))


@pytest.mark.parametrize("ref", [INLINE, STORED])
def test_output_refs(ref: OutputRef) -> None:
    assert_conforms(OutputRefBody, output_ref_view(ref, InlineBudget()))


def test_an_inline_output_past_the_budget_is_still_an_output_ref() -> None:
    assert_conforms(OutputRefBody, output_ref_view(INLINE, InlineBudget(0)))


def test_a_target_with_every_field_and_one_with_none() -> None:
    assert_conforms(TargetView, target_view(EVERY_FIELD, InlineBudget()))
    assert_conforms(TargetView, target_view(target("n2"), InlineBudget()))


def test_execution_views() -> None:
    # Given an Execution with every optional field, and one with none
    full = execution(selector="env=prod", node_id=None, rate=RateControl(max_concurrency=1), started_at=NOW)
    bare = execution(node_id=ID, status=TargetStatus.SUCCEEDED, completed_at=NOW)
    counts = {status.value: 0 for status in TargetStatus} | {"failed": 1, "pending": 1}
    targets = [EVERY_FIELD, target("n2", output_ref=STORED)]
    for subject in (full, bare):
        # Then the single-Execution view is an Execution, and a list item an ExecutionSummary
        assert_conforms(ExecutionView, execution_view(subject, counts=counts, targets=targets))
        assert_conforms(ExecutionSummary, execution_view(subject, targets=targets[:1], targets_truncated=True))
