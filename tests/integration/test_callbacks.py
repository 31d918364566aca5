"""Node reports: the closed state machine, two-tier output, cancel, callback tokens, audit (SPEC §5, §8-§10)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
import requests

from orchestrator import secrets
from orchestrator.domain import callback_tokens
from tests.integration.conftest import (
    ADMIN,
    Api,
    RegisteredNode,
    Tenant,
    assert_problem,
    register_node,
    stop_workflows,
)


@pytest.fixture
def nodes(api: Api, tenant: Tenant) -> list[RegisteredNode]:
    caps = {"builtin_actions": [{"name": "restart-agent"}]}
    return [register_node(api, tenant, f"web-{i}", metadata={"env": "prod"}, capabilities=caps) for i in range(3)]


@pytest.fixture
def execution(api: Api, tenant: Tenant, nodes: list[RegisteredNode]) -> str:
    response = api.request(
        "POST",
        f"/v1/projects/{tenant.project_id}/executions:dispatch",
        token=tenant.admin_token,
        json_body={"action": "restart-agent", "selector": "env=prod", "timeout_seconds": 30},
    )
    assert response.status_code == 201, response.text
    return str(response.json["id"])


def callback(api: Api, node: RegisteredNode, exec_ref: str, suffix: str = "", token: str | None = None, **body: object):  # type: ignore[no-untyped-def]
    return api.request(
        "POST", f"/v1/nodes/{node.id}/executions/{exec_ref}{suffix}", json_body=body, token=token or node.nsk
    )


def get(api: Api, tenant: Tenant, execution_id: str) -> dict:
    return dict(
        api.request("GET", f"/v1/projects/{tenant.project_id}/executions/{execution_id}", token=tenant.admin_token).json
    )


def target(body: dict, node: RegisteredNode) -> dict:
    return next(t for t in body["targets"] if t["node_id"] == node.id)


def reports_of(api: Api, execution_id: str) -> list[dict]:
    """What reports change: the Execution's targets, counter shards and audit trail (the workflow
    updates the Execution item and node streams on its own schedule, so those are left out)."""
    items = boto3.client("dynamodb").query(
        TableName=api.stack.refs["Table"],
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"EXEC#{execution_id}"}},
        ConsistentRead=True,
    )["Items"]
    return [i for i in items if i["SK"]["S"] != "EXEC"]


def late_reports(api: Api, execution_id: str) -> list[dict]:
    return [
        i
        for i in reports_of(api, execution_id)
        if i["SK"]["S"].startswith("AUDIT#") and "late_report" in json.dumps(i.get("detail", {}))
    ]


def wait_terminal(api: Api, tenant: Tenant, execution_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = get(api, tenant, execution_id)
        if body["completed_at"] or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_ack_started_succeeded_with_inline_output(api: Api, tenant: Tenant, nodes: list, execution: str) -> None:
    node = nodes[0]
    assert callback(api, node, execution, status="ack").json == {"status": "ack"}
    assert callback(api, node, execution, status="started").json == {"status": "started"}
    output = base64.b64encode(b"restarted ok\n").decode()
    done = callback(api, node, execution, status="succeeded", exit_code=0, output={"inline": output})
    assert done.status_code == 200, done.text
    state = target(get(api, tenant, execution), node)
    assert state["status"] == "succeeded" and state["exit_code"] == 0
    assert state["output_ref"] == {"kind": "inline", "inline_bytes": output, "size": 13}
    fetched = api.request(
        "GET",
        f"/v1/projects/{tenant.project_id}/executions/{execution}/targets/{node.id}/output",
        token=tenant.admin_token,
    )
    assert fetched.json == {"kind": "inline", "size": 13, "content_base64": output}


def test_aggregate_is_the_least_advanced_open_state(api: Api, tenant: Tenant, nodes: list, execution: str) -> None:
    callback(api, nodes[0], execution, status="started")
    callback(api, nodes[1], execution, status="ack")
    body = get(api, tenant, execution)
    assert body["status"] == "pending"  # nodes[2] has not moved
    assert body["counts"] == {
        "pending": 1,
        "ack": 1,
        "started": 1,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
        "timeout": 0,
    }
    callback(api, nodes[2], execution, status="started")
    assert get(api, tenant, execution)["status"] == "ack"


def test_backward_move_is_409_invalid_state_transition(api: Api, nodes: list, execution: str) -> None:
    callback(api, nodes[0], execution, status="started")
    before = reports_of(api, execution)
    assert_problem(callback(api, nodes[0], execution, status="ack"), 409, "invalid_state_transition")
    assert_problem(callback(api, nodes[0], execution, status="started"), 409, "invalid_state_transition")
    assert reports_of(api, execution) == before


def test_repeated_terminal_callback_is_409(api: Api, tenant: Tenant, nodes: list, execution: str) -> None:
    callback(api, nodes[0], execution, status="failed", exit_code=3)
    before = reports_of(api, execution)
    assert_problem(callback(api, nodes[0], execution, status="failed"), 409, "execution_already_terminal")
    assert_problem(callback(api, nodes[0], execution, status="succeeded"), 409, "execution_already_terminal")
    # Nothing moved; the two refusals are recorded in the audit trail and counted on the target, and only that.
    after = reports_of(api, execution)
    changed = [i for i in after if i not in before]
    assert [i for i in changed if i["SK"]["S"].startswith("AUDIT#")] == late_reports(api, execution)
    assert len(late_reports(api, execution)) == 2
    assert [i["SK"]["S"] for i in changed if not i["SK"]["S"].startswith("AUDIT#")] == [f"TARGET#{nodes[0].id}"]
    assert target(get(api, tenant, execution), nodes[0])["late_reports"] == 2


def test_late_reports_are_audited_up_to_a_cap_and_counted_beyond(
    api: Api, tenant: Tenant, nodes: list, execution: str
) -> None:
    from orchestrator.services.callbacks import LATE_REPORTS_AUDITED

    callback(api, nodes[0], execution, status="succeeded", exit_code=0)
    for _ in range(LATE_REPORTS_AUDITED + 5):  # a node retrying its report forever
        assert_problem(callback(api, nodes[0], execution, status="failed"), 409, "execution_already_terminal")
    audited = late_reports(api, execution)
    assert len(audited) == LATE_REPORTS_AUDITED
    assert target(get(api, tenant, execution), nodes[0])["late_reports"] == LATE_REPORTS_AUDITED + 5


def test_forward_skips_are_allowed(api: Api, nodes: list, execution: str) -> None:
    assert callback(api, nodes[0], execution, status="succeeded", exit_code=0).status_code == 200


def test_pending_is_not_reportable(api: Api, nodes: list, execution: str) -> None:
    before = reports_of(api, execution)
    assert_problem(callback(api, nodes[0], execution, status="pending"), 400, "invalid_body")
    assert reports_of(api, execution) == before


def test_another_nodes_nsk_is_403(api: Api, nodes: list, execution: str) -> None:
    before = reports_of(api, execution)
    response = callback(api, nodes[0], execution, token=nodes[1].nsk, status="ack")
    assert_problem(response, 403, "nsk_node_mismatch")
    assert reports_of(api, execution) == before


def test_unknown_node_execution_pair_is_404(api: Api, tenant: Tenant, nodes: list, execution: str) -> None:
    assert_problem(callback(api, nodes[0], "no-such-execution", status="ack"), 404, "execution_not_found")
    outsider = register_node(
        api, tenant, "outsider", capabilities={"builtin_actions": [{"name": "restart-agent"}]}, metadata={"env": "dev"}
    )
    before = reports_of(api, execution)
    assert_problem(callback(api, outsider, execution, status="ack"), 404, "execution_not_found")
    assert reports_of(api, execution) == before


def test_agent_style_ack_then_result_succeeds(api: Api, tenant: Tenant, nodes: list, execution: str) -> None:
    node = nodes[0]
    ack = callback(api, node, execution, "/ack", execution_id=execution, status="accepted", reason="")
    assert ack.json == {"status": "ack"}
    result = callback(
        api,
        node,
        execution,
        "/result",
        execution_id=execution,
        status="success",
        exit_code=0,
        stdout="done\n",
        stderr="",
        duration="2.34s",
        finished_at="2026-11-23T10:30:02Z",
        triggered_by={"type": "control_plane"},
    )
    assert result.json == {"status": "succeeded"}
    state = target(get(api, tenant, execution), node)
    assert state["status"] == "succeeded" and state["output_ref"]["kind"] == "inline"
    fetched = api.request(
        "GET",
        f"/v1/projects/{tenant.project_id}/executions/{execution}/targets/{node.id}/output",
        token=tenant.admin_token,
    ).json
    assert json.loads(base64.b64decode(fetched["content_base64"])) == {"stdout": "done\n", "stderr": ""}


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ("failure", "failed"),
        ("failed", "failed"),
        ("error", "failed"),
        ("timeout", "timeout"),
        ("cancelled", "cancelled"),
    ],
)
def test_result_statuses_map_to_target_states(
    api: Api, nodes: list, execution: str, reported: str, expected: str
) -> None:
    response = callback(api, nodes[0], execution, "/result", status=reported, exit_code=1)
    assert response.json == {"status": expected}


def test_rejected_ack_fails_the_target_with_the_reason(api: Api, tenant: Tenant, nodes: list, execution: str) -> None:
    response = callback(api, nodes[0], execution, "/ack", status="rejected", reason="maintenance window")
    assert response.json == {"status": "failed"}
    assert target(get(api, tenant, execution), nodes[0])["error"] == "maintenance window"


def test_body_execution_id_must_match_the_path(api: Api, nodes: list, execution: str) -> None:
    before = reports_of(api, execution)
    response = callback(api, nodes[0], execution, "/ack", execution_id="another", status="accepted")
    assert_problem(response, 400, "invalid_body")
    assert reports_of(api, execution) == before


def test_one_failed_target_fails_the_execution_and_frees_the_slot(
    api: Api, tenant: Tenant, nodes: list, execution: str
) -> None:
    callback(api, nodes[0], execution, status="succeeded", exit_code=0)
    callback(api, nodes[1], execution, status="failed", exit_code=1)
    callback(api, nodes[2], execution, status="succeeded", exit_code=0)
    body = wait_terminal(api, tenant, execution)
    assert body["status"] == "failed"
    assert body["counts"]["succeeded"] == 2 and body["counts"]["failed"] == 1
    domain = boto3.client("dynamodb").get_item(
        TableName=api.stack.refs["Table"], Key={"PK": {"S": f"DOMAIN#{tenant.domain_id}"}, "SK": {"S": "DOMAIN"}}
    )
    assert domain["Item"]["live_executions"]["N"] == "0"


def test_all_succeeded_finishes_early(api: Api, tenant: Tenant, nodes: list, execution: str) -> None:
    started = time.monotonic()
    for node in nodes:
        callback(api, node, execution, status="succeeded", exit_code=0)
    body = wait_terminal(api, tenant, execution)
    assert body["status"] == "succeeded"
    assert time.monotonic() - started < 15  # well before the 30 s deadline


def test_inline_output_over_16_kib_is_413_and_changes_nothing(
    api: Api, tenant: Tenant, nodes: list, execution: str
) -> None:
    big = base64.b64encode(b"x" * (16 * 1024 + 1)).decode()
    response = callback(api, nodes[0], execution, status="succeeded", output={"inline": big})
    assert_problem(response, 413, "inline_output_too_large")
    assert target(get(api, tenant, execution), nodes[0])["status"] == "pending"


def test_large_output_travels_through_the_presigned_url(api: Api, tenant: Tenant, nodes: list, execution: str) -> None:
    node, data = nodes[0], bytes(range(256)) * 157  # 40,192 bytes
    first = callback(api, node, execution, status="started", declared_output_bytes=len(data))
    assert first.status_code == 200
    url, key = first.json["output_upload_url"], first.json["output_object_key"]
    assert key == f"outputs/{execution}/{node.id}"
    # The URL is signed with SigV4 and its Content-Length: an upload of another size is refused.
    query = parse_qs(urlparse(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "content-length" in query["X-Amz-SignedHeaders"][0].split(";")
    # Only the first callback gets a URL, even when a later one declares a size again.
    again = callback(api, node, execution, status="started", declared_output_bytes=len(data))
    assert_problem(again, 409, "invalid_state_transition")
    later = callback(api, nodes[1], execution, status="ack")
    second = callback(api, nodes[1], execution, status="started", declared_output_bytes=len(data))
    assert later.status_code == second.status_code == 200
    assert "output_upload_url" not in second.json and "output_object_key" not in second.json
    uploaded = requests.put(url, data=data, timeout=10)
    assert uploaded.status_code == 200
    digest = hashlib.sha256(data).hexdigest()
    done = callback(api, node, execution, status="succeeded", exit_code=0, output={"object_key": key, "sha256": digest})
    assert done.status_code == 200, done.text
    ref = target(get(api, tenant, execution), node)["output_ref"]
    assert ref == {
        "kind": "object_store",
        "bucket": api.stack.refs["OutputBucket"],
        "key": key,
        "sha256": digest,
        "size": len(data),
    }
    fetched = api.request(
        "GET",
        f"/v1/projects/{tenant.project_id}/executions/{execution}/targets/{node.id}/output",
        token=tenant.admin_token,
    ).json
    assert fetched["kind"] == "object_store" and fetched["sha256"] == digest
    assert requests.get(fetched["url"], timeout=10).content == data


def test_object_reference_is_checked(api: Api, tenant: Tenant, nodes: list, execution: str) -> None:
    node = nodes[0]
    key = callback(api, node, execution, status="started", declared_output_bytes=20_000).json["output_object_key"]
    wrong_key = callback(api, node, execution, status="succeeded", output={"object_key": "other", "sha256": "0" * 64})
    assert_problem(wrong_key, 422, "invalid_output_reference")
    missing = callback(api, node, execution, status="succeeded", output={"object_key": key, "sha256": "0" * 64})
    assert_problem(missing, 422, "invalid_output_reference")
    boto3.client("s3").put_object(Bucket=api.stack.refs["OutputBucket"], Key=key, Body=b"y" * 20_000)
    mismatch = callback(api, node, execution, status="succeeded", output={"object_key": key, "sha256": "0" * 64})
    assert_problem(mismatch, 422, "invalid_output_reference")
    assert target(get(api, tenant, execution), node)["status"] == "started"


def test_result_streams_over_64_kib_are_413(api: Api, nodes: list, execution: str) -> None:
    before = reports_of(api, execution)
    response = callback(api, nodes[0], execution, "/result", status="success", stdout="x" * (64 * 1024 + 1))
    assert_problem(response, 413, "result_output_too_large")
    assert reports_of(api, execution) == before
    # no output object (the mesh's peer snapshots live beside them, under mesh/)
    listed = boto3.client("s3").list_objects_v2(Bucket=api.stack.refs["OutputBucket"], Prefix="outputs/")
    assert "Contents" not in listed


def test_large_result_streams_are_stored_by_the_control_plane(
    api: Api, tenant: Tenant, nodes: list, execution: str
) -> None:
    node = nodes[0]
    response = callback(
        api, node, execution, "/result", status="success", exit_code=0, stdout="o" * 10_000, stderr="e" * 10_000
    )
    assert response.status_code == 200, response.text
    ref = target(get(api, tenant, execution), node)["output_ref"]
    assert ref["kind"] == "object_store" and ref["key"].startswith(f"outputs/{execution}/{node.id}.result-")
    stored = boto3.client("s3").get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == ref["sha256"]
    assert json.loads(stored) == {"stdout": "o" * 10_000, "stderr": "e" * 10_000}

    # A late, refused result leaves the accepted output as it was and stores nothing of its own.
    late = callback(api, node, execution, "/result", status="failure", exit_code=1, stdout="x" * 20_000)
    assert_problem(late, 409, "execution_already_terminal")
    assert target(get(api, tenant, execution), node)["output_ref"] == ref
    again = boto3.client("s3").get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read()
    assert hashlib.sha256(again).hexdigest() == ref["sha256"]
    listed = boto3.client("s3").list_objects_v2(Bucket=ref["bucket"], Prefix=f"outputs/{execution}/")
    assert [o["Key"] for o in listed.get("Contents", [])] == [ref["key"]]


def test_cancel_ends_open_targets_notifies_nodes_and_refuses_late_results(
    api: Api, tenant: Tenant, nodes: list, execution: str
) -> None:
    callback(api, nodes[0], execution, status="succeeded", exit_code=0)
    callback(api, nodes[1], execution, status="started")
    cancelled = api.request(
        "POST", f"/v1/projects/{tenant.project_id}/executions/{execution}:cancel", token=tenant.admin_token
    )
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json
    assert body["status"] == "cancelled"
    assert {t["node_id"]: t["status"] for t in body["targets"]} == {
        nodes[0].id: "succeeded",
        nodes[1].id: "cancelled",
        nodes[2].id: "cancelled",
    }
    # The node that had started finishes anyway: refused, and recorded.
    late = callback(api, nodes[1], execution, status="succeeded", exit_code=0)
    assert_problem(late, 409, "execution_already_terminal")
    trail = api.request(
        "GET", f"/v1/projects/{tenant.project_id}/executions/{execution}/events", token=tenant.admin_token
    ).json["items"]
    assert any(e.get("detail", {}).get("reason") == "late_report" and e["node_id"] == nodes[1].id for e in trail)
    # Each target the cancel closed has its own event, from where it was, by whom.
    closed = {
        e["node_id"]: e
        for e in trail
        if e["status"] == "cancelled" and e.get("node_id") and "refused" not in e.get("detail", {})
    }
    assert set(closed) == {nodes[1].id, nodes[2].id}
    assert closed[nodes[1].id]["detail"] == {"from": "started", "reason": "cancelled by operator"}
    assert closed[nodes[2].id]["detail"]["from"] == "pending"
    assert {e["actor"] for e in closed.values()} == {f"user:{ADMIN}"}
    # Nodes with open targets got action_cancel.
    events = api.request(
        "GET", f"/v1/nodes/{nodes[1].id}/events", token=nodes[1].nsk, headers={"Last-Event-ID": "0"}
    ).text
    assert "event: action_cancel" in events
    assert_problem(
        api.request("DELETE", f"/v1/projects/{tenant.project_id}/executions/{execution}", token=tenant.admin_token),
        409,
        "execution_already_terminal",
    )
    domain = boto3.client("dynamodb").get_item(
        TableName=api.stack.refs["Table"], Key={"PK": {"S": f"DOMAIN#{tenant.domain_id}"}, "SK": {"S": "DOMAIN"}}
    )
    assert domain["Item"]["live_executions"]["N"] == "0"


def test_unknown_custom_method_is_404(api: Api, tenant: Tenant, execution: str) -> None:
    response = api.request(
        "POST", f"/v1/projects/{tenant.project_id}/executions/{execution}:explode", token=tenant.admin_token
    )
    assert_problem(response, 404, "route_not_found")


def test_audit_trail_records_every_transition_in_order(api: Api, tenant: Tenant, nodes: list, execution: str) -> None:
    callback(api, nodes[0], execution, status="ack")
    callback(api, nodes[0], execution, status="succeeded", exit_code=0)
    trail = api.request(
        "GET", f"/v1/projects/{tenant.project_id}/executions/{execution}/events", token=tenant.admin_token
    ).json["items"]
    assert [e["status"] for e in trail][:3] == ["pending", "ack", "succeeded"]
    assert trail[1]["node_id"] == nodes[0].id and trail[1]["actor"] == f"node:{nodes[0].id}"
    assert all({"id", "status", "occurred_at", "actor"} <= set(e) for e in trail)


def test_callback_token_reports_for_its_target_only(api: Api, tenant: Tenant, nodes: list, execution: str) -> None:
    now = datetime.now(UTC)
    token = callback_tokens.mint(execution, nodes[0].id, now + timedelta(minutes=5), secrets.callback_key())
    assert callback(api, nodes[0], execution, token=token, status="ack").json == {"status": "ack"}
    before = reports_of(api, execution)
    assert_problem(callback(api, nodes[1], execution, token=token, status="ack"), 401, "invalid_callback_token")
    expired = callback_tokens.mint(execution, nodes[0].id, now - timedelta(seconds=1), secrets.callback_key())
    assert_problem(callback(api, nodes[0], execution, token=expired, status="started"), 401, "invalid_callback_token")
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert_problem(callback(api, nodes[0], execution, token=tampered, status="started"), 401, "invalid_callback_token")
    assert reports_of(api, execution) == before  # the refused ones moved nothing
    trail = api.request(
        "GET", f"/v1/projects/{tenant.project_id}/executions/{execution}/events", token=tenant.admin_token
    ).json["items"]
    assert trail[-1]["actor"] == "callback_token"


def test_a_deregistered_nodes_callback_token_moves_nothing(
    api: Api, tenant: Tenant, nodes: list, execution: str
) -> None:
    # Given a valid callback token for a node's open target
    token = callback_tokens.mint(
        execution, nodes[0].id, datetime.now(UTC) + timedelta(minutes=5), secrets.callback_key()
    )
    assert callback(api, nodes[0], execution, token=token, status="ack").json == {"status": "ack"}
    # When the node deregisters
    gone = api.request("POST", f"/v1/nodes/{nodes[0].id}/deregister", token=nodes[0].nsk)
    assert gone.status_code == 200, gone.text
    before = reports_of(api, execution)
    # Then its token is refused and moves nothing
    assert_problem(callback(api, nodes[0], execution, token=token, status="started"), 401, "invalid_callback_token")
    assert reports_of(api, execution) == before


def test_action_request_carries_a_working_callback_token(api: Api, nodes: list, execution: str) -> None:
    deadline, messages = time.monotonic() + 10, ""
    while "action_request" not in messages and time.monotonic() < deadline:
        messages = api.request(
            "GET", f"/v1/nodes/{nodes[0].id}/events", token=nodes[0].nsk, headers={"Last-Event-ID": "0"}
        ).text
        time.sleep(0.1)
    data = next(line[6:] for line in messages.splitlines() if line.startswith('data: {"event_type":"action_request"'))
    token = json.loads(data)["payload"]["callback_token"]
    assert callback(api, nodes[0], execution, token=token, status="ack").status_code == 200


def test_cancel_after_every_target_ended_is_409_and_keeps_the_outcome(
    api: Api, tenant: Tenant, nodes: list, execution: str
) -> None:
    for node in nodes:
        callback(api, node, execution, status="failed", exit_code=1)
    response = api.request(
        "POST", f"/v1/projects/{tenant.project_id}/executions/{execution}:cancel", token=tenant.admin_token
    )
    assert_problem(response, 409, "execution_already_terminal")
    assert wait_terminal(api, tenant, execution)["status"] == "failed"


def test_result_duration_may_be_seconds(api: Api, nodes: list, execution: str) -> None:
    response = callback(api, nodes[0], execution, "/result", status="success", exit_code=0, duration=2.5)
    assert response.json == {"status": "succeeded"}


def test_delete_cancels_a_live_execution(api: Api, tenant: Tenant, nodes: list, execution: str) -> None:
    response = api.request(
        "DELETE", f"/v1/projects/{tenant.project_id}/executions/{execution}", token=tenant.admin_token
    )
    assert response.status_code == 200, response.text
    assert response.json["status"] == "cancelled"
    assert {t["status"] for t in response.json["targets"]} == {"cancelled"}
    # The workflow notices at its next progress check and finalizes too: the slot came back once.
    sfn = boto3.client("stepfunctions")
    arn = sfn.list_executions(stateMachineArn=api.stack.refs["ExecutionWorkflow"])["executions"][0]["executionArn"]
    deadline = time.monotonic() + 20
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
    domain = boto3.client("dynamodb").get_item(
        TableName=api.stack.refs["Table"], Key={"PK": {"S": f"DOMAIN#{tenant.domain_id}"}, "SK": {"S": "DOMAIN"}}
    )
    assert domain["Item"]["live_executions"]["N"] == "0"


def test_cancel_closes_a_target_that_moved_while_it_was_being_closed(
    api: Api, tenant: Tenant, nodes: list, execution: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.store.targets import TargetStore

    # The closing reads the open targets while all are pending; a node acks before it writes.
    stale, reads = TargetStore.targets, []

    def read_then_ack(self: TargetStore, execution_id: str, *, only_open: bool = False, **reads_of: Any) -> list:
        items = stale(self, execution_id, only_open=only_open, **reads_of)
        reads.append(only_open)
        if only_open and reads.count(True) == 2:  # the cancel's own read, then close_open_targets'
            assert callback(api, nodes[0], execution, status="ack").status_code == 200
        return items

    monkeypatch.setattr(TargetStore, "targets", read_then_ack)
    cancelled = api.request(
        "POST", f"/v1/projects/{tenant.project_id}/executions/{execution}:cancel", token=tenant.admin_token
    )
    monkeypatch.undo()
    assert cancelled.status_code == 200, cancelled.text
    assert {t["node_id"]: t["status"] for t in cancelled.json["targets"]} == {n.id: "cancelled" for n in nodes}
    assert cancelled.json["counts"]["cancelled"] == 3 and cancelled.json["counts"]["ack"] == 0


def cancel_audit_counts(api: Api, tenant: Tenant, execution_id: str) -> list[int]:
    trail = api.request(
        "GET", f"/v1/projects/{tenant.project_id}/executions/{execution_id}/events", token=tenant.admin_token
    ).json["items"]
    return [e["detail"]["cancelled_targets"] for e in trail if "cancelled_targets" in (e.get("detail") or {})]


def cancel_while_reading(
    api: Api, tenant: Tenant, execution_id: str, monkeypatch: pytest.MonkeyPatch, meanwhile: Any, *, read: int = 1
) -> Any:
    """Cancel, running ``meanwhile`` right after the cancel's ``read``-th read of the open
    targets (1: its own check; 2: the closing's, after the cancel was recorded)."""
    from orchestrator.store.targets import TargetStore

    stale, reads = TargetStore.targets, []

    def read_then(self: TargetStore, exec_id: str, *, only_open: bool = False, **reads_of: Any) -> list:
        items = stale(self, exec_id, only_open=only_open, **reads_of)
        if only_open:
            reads.append(True)
            if len(reads) == read:
                meanwhile()
        return items

    monkeypatch.setattr(TargetStore, "targets", read_then)
    try:
        return api.request(
            "POST", f"/v1/projects/{tenant.project_id}/executions/{execution_id}:cancel", token=tenant.admin_token
        )
    finally:
        monkeypatch.undo()


def test_a_cancel_that_lost_the_race_to_the_last_report_counts_no_target(
    api: Api, tenant: Tenant, nodes: list, execution: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race is between the cancel and the last report alone: the workflow's own progress
    # check must not finalize the Execution in between (it did under load: 409, not 200)
    stop_workflows(api.stack)
    for node in nodes[1:]:
        assert callback(api, node, execution, status="succeeded", exit_code=0).status_code == 200
    # The cancel sees nodes[0] open; its last report lands before the cancel writes
    last = lambda: callback(api, nodes[0], execution, status="succeeded", exit_code=0)  # noqa: E731
    cancelled = cancel_while_reading(api, tenant, execution, monkeypatch, last)
    assert cancelled.status_code == 200, cancelled.text
    assert [t["status"] for t in cancelled.json["targets"]] == ["succeeded"] * 3
    assert cancel_audit_counts(api, tenant, execution) == [0]


def test_concurrent_cancels_each_count_what_they_moved(
    api: Api, tenant: Tenant, nodes: list, execution: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another cancel runs whole after this one was recorded and read the open targets, before it writes
    other: list[Any] = []

    def another_cancel() -> None:
        other.append(
            api.request(
                "POST", f"/v1/projects/{tenant.project_id}/executions/{execution}:cancel", token=tenant.admin_token
            )
        )

    first = cancel_while_reading(api, tenant, execution, monkeypatch, another_cancel, read=2)
    assert first.status_code == 200 and other[0].status_code == 200, (first.text, other[0].text)
    # Three targets were cancelled once: the counts say so between the two cancels
    assert sorted(cancel_audit_counts(api, tenant, execution)) == [0, 3]


def test_audit_times_follow_the_trail_order_whatever_the_clocks_say(
    api: Api, tenant: Tenant, nodes: list, execution: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.clock import SystemClock

    # Given clocks that disagree by up to a few seconds (one per Lambda, say)
    skews = iter([timedelta(seconds=s) for s in (3, -2, 5, -4, 1, -3, 4, -1, 2, -5)] * 3)
    monkeypatch.setattr(SystemClock, "now", lambda self: datetime.now(UTC) + next(skews))
    # When the nodes report
    for node in nodes:
        for status in ("ack", "succeeded"):
            assert callback(api, node, execution, status=status, exit_code=0).status_code == 200
    monkeypatch.undo()
    # Then the trail's times never go back
    trail = api.request(
        "GET", f"/v1/projects/{tenant.project_id}/executions/{execution}/events", token=tenant.admin_token
    ).json["items"]
    times = [e["occurred_at"] for e in trail]
    assert len(times) >= 7 and times == sorted(times)


@pytest.fixture
def outcome_queue(api: Api) -> str:
    """An SQS queue subscribed to the Execution outcome events on the application's bus."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    queue_url = sqs.create_queue(QueueName="outcomes")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = api.stack.refs["ExecutionEventBus"]
    events.put_rule(Name="outcomes", EventBusName=bus, EventPattern=json.dumps({"source": ["plexsphere.orchestrator"]}))
    events.put_targets(Rule="outcomes", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    return str(queue_url)


def outcomes(queue_url: str) -> list[dict]:
    messages = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_terminal_executions_announce_their_outcome_on_the_event_bus(
    api: Api, tenant: Tenant, nodes: list, execution: str, outcome_queue: str
) -> None:
    for node in nodes:
        callback(api, node, execution, status="succeeded", exit_code=0)
    assert wait_terminal(api, tenant, execution)["status"] == "succeeded"
    failing = api.request(
        "POST",
        f"/v1/projects/{tenant.project_id}/executions:dispatch",
        token=tenant.admin_token,
        json_body={"action": "restart-agent", "node_id": nodes[0].id, "timeout_seconds": 30},
    ).json["id"]
    callback(api, nodes[0], failing, status="failed", exit_code=2)
    assert wait_terminal(api, tenant, failing)["status"] == "failed"

    deadline, seen = time.monotonic() + 10, []
    while len(seen) < 2 and time.monotonic() < deadline:
        seen += outcomes(outcome_queue)
    by_execution = {event["detail"]["execution_id"]: event for event in seen}
    assert set(by_execution) == {execution, failing}
    completed, failed = by_execution[execution], by_execution[failing]
    assert completed["detail-type"] == "execution.completed" and failed["detail-type"] == "execution.failed"
    assert completed["source"] == "plexsphere.orchestrator"
    assert completed["detail"]["action"] == "restart-agent" and completed["detail"]["status"] == "succeeded"
    assert completed["detail"]["counts"]["succeeded"] == 3
    assert failed["detail"]["counts"]["failed"] == 1 and failed["detail"]["status"] == "failed"
