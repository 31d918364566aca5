"""A dispatch that dies between taking its Domain slot and starting its workflow (a Lambda
timeout, a lost container: no exception handler runs) is settled by the scheduled sweep."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from orchestrator.domain.executions import Execution, Target
from orchestrator.domain.selectors import parse_selector
from orchestrator.services.admissions import ADMISSION_GRACE, sweep_stalled_admissions
from orchestrator.services.context import Context, context_for
from orchestrator.services.dispatch import DispatchCommand, dispatch_authorized
from orchestrator.services.workflow_port import StepFunctionsStarter
from orchestrator.store import keys
from orchestrator_local.runtime import InProcessRuntime
from orchestrator_local.template import Template
from tests.integration.conftest import ADMIN, Api, Tenant, assert_problem, register_node
from tests.integration.test_dispatch import caps, live_executions, wait_terminal


class LambdaDied(BaseException):
    """Not an Exception: the dispatch's own clean-up never runs, as when the function dies."""


class DiesBeforeStarting:
    def start(self, execution: Execution) -> str:
        raise LambdaDied

    def existing(self, execution_id: str) -> str | None:
        return None


@dataclass(frozen=True)
class LaterClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


def command() -> DispatchCommand:
    return DispatchCommand(
        action="restart-agent",
        type="builtin",
        parameters={},
        timeout_seconds=300,
        node_id=None,
        selector=parse_selector("env=prod"),
        confirmation=False,
    )


@pytest.fixture
def ctx(api: Api, tenant: Tenant) -> Context:
    for name in ("web-1", "web-2"):
        register_node(api, tenant, name, metadata={"env": "prod"}, capabilities=caps("restart-agent"))
    return context_for("test")


def project(ctx: Context, tenant: Tenant):  # type: ignore[no-untyped-def]
    found = ctx.tenancy.get_project(tenant.project_id)
    assert found is not None
    return found


def later(ctx: Context, by: timedelta) -> Context:
    return replace(ctx, clock=LaterClock(ctx.clock.now() + by))


def died_while_dispatching(ctx: Context, tenant: Tenant) -> str:
    """Dispatch through the use case and let the function die at the workflow start."""
    with pytest.raises(LambdaDied):
        dispatch_authorized(ctx, ADMIN, project(ctx, tenant), command(), DiesBeforeStarting())
    (marker,) = admission_markers(ctx)
    return str(marker["execution_id"])


def admission_markers(ctx: Context) -> list[dict]:
    return [
        item
        for partition in keys.admission_partitions()
        for item in ctx.table.query_all(index=None, key_condition="PK = :pk", values={":pk": partition})
    ]


def starter() -> StepFunctionsStarter:
    settings = context_for("test").settings
    assert settings.state_machine_arn
    return StepFunctionsStarter(settings.state_machine_arn)


def test_a_dispatch_that_died_holds_its_slot_until_the_sweep_fails_it(api: Api, tenant: Tenant, ctx: Context) -> None:
    execution_id = died_while_dispatching(ctx, tenant)
    assert live_executions(api, tenant) == 1  # the slot is taken and nothing would ever give it back

    result = sweep_stalled_admissions(later(ctx, ADMISSION_GRACE + timedelta(seconds=1)), starter())

    assert (result.resumed, result.abandoned) == (0, 1)
    assert live_executions(api, tenant) == 0
    body = api.request(
        "GET", f"/v1/projects/{tenant.project_id}/executions/{execution_id}", token=tenant.admin_token
    ).json
    assert body["status"] == "failed" and body["completed_at"] is not None
    assert {t["status"] for t in body["targets"]} == {"failed"}
    assert {t["error"] for t in body["targets"]} == {"dispatch_failed"}
    assert body["counts"]["failed"] == 2 and body["counts"]["pending"] == 0
    assert admission_markers(ctx) == []
    trail = api.request(
        "GET", f"/v1/projects/{tenant.project_id}/executions/{execution_id}/events", token=tenant.admin_token
    ).json["items"]
    assert trail[-1]["actor"] == "admission_sweep" and trail[-1]["status"] == "failed"
    # A second sweep finds nothing and releases nothing twice.
    again = sweep_stalled_admissions(later(ctx, ADMISSION_GRACE * 2), starter())
    assert (again.resumed, again.abandoned) == (0, 0)
    assert live_executions(api, tenant) == 0


def test_a_dispatch_that_died_before_writing_its_targets_ends_with_no_phantom_pending(
    api: Api, tenant: Tenant, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.store.targets import TargetStore

    def die(self: TargetStore, execution: Execution, targets: list[Target], **_: object) -> int:
        raise LambdaDied

    monkeypatch.setattr(TargetStore, "put_targets", die)
    execution_id = died_while_dispatching(ctx, tenant)
    monkeypatch.undo()

    sweep_stalled_admissions(later(ctx, ADMISSION_GRACE + timedelta(seconds=1)), starter())

    body = api.request(
        "GET", f"/v1/projects/{tenant.project_id}/executions/{execution_id}", token=tenant.admin_token
    ).json
    assert body["status"] == "failed"
    assert body["targets"] == [] and body["counts"]["pending"] == 0
    assert live_executions(api, tenant) == 0


def test_a_recent_admission_is_left_to_its_dispatch(api: Api, tenant: Tenant, ctx: Context) -> None:
    died_while_dispatching(ctx, tenant)
    result = sweep_stalled_admissions(later(ctx, ADMISSION_GRACE - timedelta(seconds=5)), starter())
    assert (result.resumed, result.abandoned) == (0, 0)
    assert live_executions(api, tenant) == 1
    assert len(admission_markers(ctx)) == 1


def test_a_workflow_that_started_but_was_not_recorded_is_kept_and_recorded(
    api: Api, tenant: Tenant, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.store.executions import ExecutionStore

    def die(self: ExecutionStore, execution_id: str, workflow_arn: str) -> None:
        raise LambdaDied

    real_record = ExecutionStore.mark_workflow_started
    monkeypatch.setattr(ExecutionStore, "mark_workflow_started", die)
    short = replace(command(), timeout_seconds=1)
    with pytest.raises(LambdaDied):
        dispatch_authorized(ctx, ADMIN, project(ctx, tenant), short, starter())
    monkeypatch.setattr(ExecutionStore, "mark_workflow_started", real_record)
    (marker,) = admission_markers(ctx)

    result = sweep_stalled_admissions(later(ctx, ADMISSION_GRACE + timedelta(seconds=1)), starter())

    assert (result.resumed, result.abandoned) == (1, 0)
    assert admission_markers(ctx) == []
    recorded = ctx.executions.get(str(marker["execution_id"]))
    assert recorded is not None and (recorded.workflow_arn or "").endswith(str(marker["execution_id"]))
    # The run it started owns the Execution: it times out and gives the slot back once.
    body = wait_terminal(api, tenant, str(marker["execution_id"]))
    assert body["status"] == "timeout"
    assert live_executions(api, tenant) == 0


def test_a_completed_dispatch_leaves_no_admission_marker(api: Api, tenant: Tenant, ctx: Context) -> None:
    dispatch_authorized(ctx, ADMIN, project(ctx, tenant), command(), starter())
    assert admission_markers(ctx) == []


def test_the_template_schedules_the_sweep_and_its_handler_settles_nothing_fresh(
    api: Api, tenant: Tenant, ctx: Context, runtime: InProcessRuntime, template: Template
) -> None:
    assert ("SweepAdmissionsFunction", 60) in [(s.function, s.every_seconds) for s in template.schedules]
    died_while_dispatching(ctx, tenant)
    assert runtime.invoke("SweepAdmissionsFunction", {"source": "aws.events"}) == {"resumed": 0, "abandoned": 0}
    assert live_executions(api, tenant) == 1


# A dispatch that outlives the sweep's grace (paused, not dead) -----------------------------------------


def dispatch_over_http(api: Api, tenant: Tenant) -> Any:
    return api.request(
        "POST",
        f"/v1/projects/{tenant.project_id}/executions:dispatch",
        token=tenant.admin_token,
        json_body={"action": "restart-agent", "selector": "env=prod", "timeout_seconds": 300},
    )


def sweep_now(ctx: Context) -> Any:
    return sweep_stalled_admissions(later(ctx, ADMISSION_GRACE + timedelta(seconds=1)), starter())


def the_only_execution(api: Api, tenant: Tenant) -> dict:
    (item,) = api.request("GET", f"/v1/projects/{tenant.project_id}/executions", token=tenant.admin_token).json["items"]
    return dict(
        api.request("GET", f"/v1/projects/{tenant.project_id}/executions/{item['id']}", token=tenant.admin_token).json
    )


def action_requests_sent(api: Api, tenant: Tenant) -> list[dict]:
    """Every action_request in the streams of the project's nodes."""
    import boto3

    sent = []
    for node in api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=tenant.admin_token).json["items"]:
        partition = keys.node_event(node["id"], "")["PK"]
        sent += boto3.client("dynamodb").query(
            TableName=api.stack.refs["Table"],
            KeyConditionExpression="PK = :pk AND begins_with(SK, :e)",
            FilterExpression="event_type = :t",
            ExpressionAttributeValues={":pk": {"S": partition}, ":e": {"S": "EVENT#"}, ":t": {"S": "action_request"}},
        )["Items"]
    return sent


def test_a_dispatch_paused_after_its_slot_writes_no_target_once_the_sweep_failed_it(
    api: Api, tenant: Tenant, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.store.targets import TargetStore

    # Given a dispatch that pauses right after taking its slot, past the sweep's grace
    write_targets, swept = TargetStore.put_targets, []

    def paused(self: TargetStore, *args: Any, **kwargs: Any) -> int:
        swept.append(sweep_now(ctx))
        return write_targets(self, *args, **kwargs)

    monkeypatch.setattr(TargetStore, "put_targets", paused)
    # When it resumes
    response = dispatch_over_http(api, tenant)
    monkeypatch.undo()
    # Then it answers an error and wrote nothing more: no target, no event; the Execution stays failed
    assert_problem(response, 503, "dispatch_abandoned")
    assert (swept[0].resumed, swept[0].abandoned) == (0, 1)
    body = the_only_execution(api, tenant)
    assert body["status"] == "failed" and body["targets"] == []
    assert live_executions(api, tenant) == 0
    assert action_requests_sent(api, tenant) == []


def test_a_dispatch_paused_before_its_workflow_starts_sends_nothing_once_the_sweep_failed_it(
    api: Api, tenant: Tenant, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a dispatch that wrote its targets, then pauses past the grace before starting its workflow
    start, swept = StepFunctionsStarter.start, []

    def paused(self: StepFunctionsStarter, execution: Execution) -> str:
        swept.append(sweep_now(ctx))
        return start(self, execution)

    monkeypatch.setattr(StepFunctionsStarter, "start", paused)
    response = dispatch_over_http(api, tenant)
    monkeypatch.undo()
    # Then it answers an error; the sweep failed every target and no node is sent the action
    assert_problem(response, 503, "dispatch_abandoned")
    assert (swept[0].resumed, swept[0].abandoned) == (0, 1)
    body = the_only_execution(api, tenant)
    assert body["status"] == "failed"
    assert {t["status"] for t in body["targets"]} == {"failed"} and len(body["targets"]) == 2
    # And the run it started ends without changing the ended Execution
    time.sleep(1.5)
    assert the_only_execution(api, tenant)["status"] == "failed"
    assert action_requests_sent(api, tenant) == []
    assert live_executions(api, tenant) == 0


def test_a_dispatch_paused_after_its_workflow_started_is_resumed_by_the_sweep(
    api: Api, tenant: Tenant, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.store.executions import ExecutionStore

    # Given a dispatch that started its workflow, then pauses past the grace before recording it
    record, swept, calls = ExecutionStore.mark_workflow_started, [], []

    def paused(self: ExecutionStore, execution_id: str, run_arn: str) -> None:
        calls.append(execution_id)
        if len(calls) == 1:  # the dispatch's own record: the sweep runs first, finds the run and records it
            swept.append(sweep_now(ctx))
        record(self, execution_id, run_arn)

    monkeypatch.setattr(ExecutionStore, "mark_workflow_started", paused)
    response = dispatch_over_http(api, tenant)
    monkeypatch.undo()
    # Then the dispatch succeeds: its run was recorded by the sweep
    assert response.status_code == 201, response.text
    assert (swept[0].resumed, swept[0].abandoned) == (1, 0)
    assert admission_markers(ctx) == []
    assert {t["status"] for t in the_only_execution(api, tenant)["targets"]} == {"pending"}
