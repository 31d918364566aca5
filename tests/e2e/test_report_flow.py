"""Against the local server over HTTP: node reports through the closed state machine, the
aggregate, two-tier output and cancel (SPEC §5, §8-§10), and dispatch's refusals (§6)."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import bearer, problem, project_with_nodes

pytestmark = pytest.mark.e2e


@pytest.fixture
def fleet(local_server: dict[str, Any], http: httpx.Client) -> dict[str, Any]:
    """A fresh project with three env=prod nodes declaring restart-agent, and one that does not."""
    admin = bearer(local_server["operator_token"])
    specs = [(f"report-{index}", {"env": "prod"}, ["restart-agent"]) for index in range(3)]
    made = project_with_nodes(http, admin, [*specs, ("report-3", {"env": "prod"}, ["collect-logs"])])
    return made | {"admin": admin}


def dispatch(http: httpx.Client, fleet: dict[str, Any], **body: Any) -> httpx.Response:
    return http.post(f"/v1/projects/{fleet['project_id']}/executions:dispatch", headers=fleet["admin"], json=body)


def report(http: httpx.Client, node: dict[str, str], exec_id: str, suffix: str = "", **body: Any) -> httpx.Response:
    return http.post(f"/v1/nodes/{node['id']}/executions/{exec_id}{suffix}", headers=bearer(node["nsk"]), json=body)


def execution(http: httpx.Client, fleet: dict[str, Any], execution_id: str) -> dict[str, Any]:
    response = http.get(f"/v1/projects/{fleet['project_id']}/executions/{execution_id}", headers=fleet["admin"])
    assert response.status_code == 200, response.text
    return dict(response.json())


def until_ended(http: httpx.Client, fleet: dict[str, Any], execution_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while not (body := execution(http, fleet, execution_id))["completed_at"] and time.monotonic() < deadline:
        time.sleep(0.2)
    return body


def targets(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["node_id"]: t for t in body["targets"]}


def test_reports_move_targets_through_the_closed_machine(http: httpx.Client, fleet: dict[str, Any]) -> None:
    a, b, c, _ = fleet["nodes"]
    created = dispatch(http, fleet, action="restart-agent", selector="env=prod", timeout_seconds=60)
    assert created.status_code == 201, created.text
    execution_id = created.json()["id"]
    assert set(targets(created.json())) == {a["id"], b["id"], c["id"]}

    # a: unified ack -> started -> succeeded, with inline output.
    for status in ("ack", "started"):
        assert report(http, a, execution_id, status=status).json() == {"status": status}
    problem(report(http, a, execution_id, status="ack"), 409, "invalid_state_transition")  # backward
    output = base64.b64encode(b"restarted\n").decode()
    done = report(http, a, execution_id, status="succeeded", exit_code=0, output={"inline": output})
    assert done.status_code == 200, done.text
    problem(report(http, a, execution_id, status="succeeded"), 409, "execution_already_terminal")  # repeat
    problem(
        http.post(f"/v1/nodes/{a['id']}/executions/{execution_id}", headers=bearer(b["nsk"]), json={"status": "ack"}),
        403,
        "nsk_node_mismatch",
    )
    inline = targets(execution(http, fleet, execution_id))[a["id"]]["output_ref"]
    assert inline == {"kind": "inline", "inline_bytes": output, "size": 10}

    # b: the agent's pair, ack then result (no started).
    assert report(http, b, execution_id, "/ack", execution_id=execution_id, status="accepted").status_code == 200
    result = report(http, b, execution_id, "/result", execution_id=execution_id, status="success", exit_code=0)
    assert result.status_code == 200, result.text

    # c: a rejected ack fails the target with its reason, and so the Execution.
    rejected = report(http, c, execution_id, "/ack", execution_id=execution_id, status="rejected", reason="busy")
    assert rejected.status_code == 200, rejected.text
    body = until_ended(http, fleet, execution_id)
    assert {n: t["status"] for n, t in targets(body).items()} == {
        a["id"]: "succeeded",
        b["id"]: "succeeded",
        c["id"]: "failed",
    }
    assert targets(body)[c["id"]]["error"] == "busy"
    assert body["status"] == "failed"
    assert body["counts"]["succeeded"] == 2 and body["counts"]["failed"] == 1


def test_a_large_output_travels_through_the_presigned_url(http: httpx.Client, fleet: dict[str, Any]) -> None:
    node = fleet["nodes"][0]
    execution_id = dispatch(http, fleet, action="restart-agent", node_id=node["id"]).json()["id"]
    data = bytes(range(256)) * 156 + b"x" * 64  # 40,000 bytes
    first = report(http, node, execution_id, status="started", declared_output_bytes=len(data))
    assert first.status_code == 200, first.text
    url, key = first.json()["output_upload_url"], first.json()["output_object_key"]
    assert httpx.put(url, content=data, timeout=30).status_code == 200
    digest = hashlib.sha256(data).hexdigest()
    reference = {"object_key": key, "sha256": digest}
    done = report(http, node, execution_id, status="succeeded", exit_code=0, output=reference)
    assert done.status_code == 200, done.text
    ref = targets(until_ended(http, fleet, execution_id))[node["id"]]["output_ref"]
    assert ref["kind"] == "object_store" and ref["key"] == key and ref["sha256"] == digest and ref["size"] == 40_000
    fetched = http.get(
        f"/v1/projects/{fleet['project_id']}/executions/{execution_id}/targets/{node['id']}/output",
        headers=fleet["admin"],
    ).json()
    assert httpx.get(fetched["url"], timeout=30).content == data


def test_cancel_ends_open_targets_and_refuses_later_results(http: httpx.Client, fleet: dict[str, Any]) -> None:
    a, b, c, _ = fleet["nodes"]
    execution_id = dispatch(http, fleet, action="restart-agent", selector="env=prod", timeout_seconds=60).json()["id"]
    report(http, a, execution_id, status="succeeded", exit_code=0)
    report(http, b, execution_id, status="started")
    cancelled = http.post(
        f"/v1/projects/{fleet['project_id']}/executions/{execution_id}:cancel", headers=fleet["admin"]
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert {n: t["status"] for n, t in targets(cancelled.json()).items()} == {
        a["id"]: "succeeded",
        b["id"]: "cancelled",
        c["id"]: "cancelled",
    }
    problem(report(http, b, execution_id, status="succeeded", exit_code=0), 409, "execution_already_terminal")
    trail = http.get(
        f"/v1/projects/{fleet['project_id']}/executions/{execution_id}/events", headers=fleet["admin"]
    ).json()["items"]
    assert any(e.get("detail", {}).get("reason") == "late_report" for e in trail)


def test_dispatch_refusals_write_nothing(http: httpx.Client, fleet: dict[str, Any]) -> None:
    a, *_, other = fleet["nodes"]
    problem(dispatch(http, fleet, action="restart-agent", selector="env=staging"), 422, "selector_empty_cohort")
    problem(dispatch(http, fleet, action="restart-agent"), 400, "invalid_target")
    problem(dispatch(http, fleet, action="restart-agent", node_id=a["id"], selector="env=prod"), 400, "invalid_target")
    malformed = problem(dispatch(http, fleet, action="restart-agent", selector="env in (a"), 400, "malformed_selector")
    assert malformed["position"] == len("env in (a")
    problem(dispatch(http, fleet, action="restart-agent", node_id=other["id"]), 400, "action_not_declared")
    listed = http.get(f"/v1/projects/{fleet['project_id']}/executions", headers=fleet["admin"]).json()
    assert listed["items"] == []
    problem(
        http.get(
            f"/v1/projects/{fleet['project_id']}/executions", headers=fleet["admin"], params={"cursor": "tampered.x"}
        ),
        400,
        "invalid_cursor",
    )
