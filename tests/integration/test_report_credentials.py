"""Who may report (SPEC §5, §12) when the report's one conditional write also checks the key.

Dispatch copies each node's NSK hash onto its target; a report's UpdateItem requires the
presented key's hash to equal that copy, so the hot path reads nothing. Everything else is
checked against the node item: a failed condition, an error in the report, the object store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest

from orchestrator import aws
from orchestrator.domain.credentials import mint_node_secret_key, secret_hash
from orchestrator_local.runtime import InProcessRuntime
from orchestrator_local.template import Template
from tests.integration.conftest import Api, RegisteredNode, Tenant, assert_problem, register_node

CAPS = {"builtin_actions": [{"name": "restart-agent"}]}


@pytest.fixture
def nodes(api: Api, tenant: Tenant) -> list[RegisteredNode]:
    nodes = [register_node(api, tenant, f"web-{i}", metadata={"env": "prod"}, capabilities=CAPS) for i in range(3)]
    return sorted(nodes, key=lambda n: n.id)  # release order under rate control


def dispatch(api: Api, tenant: Tenant, **extra: object) -> str:
    body = {"action": "restart-agent", "selector": "env=prod", "timeout_seconds": 30, **extra}
    response = api.request(
        "POST", f"/v1/projects/{tenant.project_id}/executions:dispatch", token=tenant.admin_token, json_body=body
    )
    assert response.status_code == 201, response.text
    return str(response.json["id"])


@pytest.fixture
def execution(api: Api, tenant: Tenant, nodes: list[RegisteredNode]) -> str:
    return dispatch(api, tenant)


def report(api: Api, node: RegisteredNode, execution: str, suffix: str = "", token: str | None = None, **body: object):  # type: ignore[no-untyped-def]
    return api.request(
        "POST", f"/v1/nodes/{node.id}/executions/{execution}{suffix}", json_body=body, token=token or node.nsk
    )


def target_item(api: Api, execution: str, node: RegisteredNode) -> dict:
    item = boto3.client("dynamodb").get_item(
        TableName=api.stack.refs["Table"],
        Key={"PK": {"S": f"EXEC#{execution}"}, "SK": {"S": f"TARGET#{node.id}"}},
        ConsistentRead=True,
    )["Item"]
    return dict(item)


@contextmanager
def dynamodb_requests(runtime: InProcessRuntime) -> Iterator[list[str]]:
    """The DynamoDB operations this thread's requests make inside the block (the workflow's
    tasks run on moto's threads; the stream fold that follows each invocation waits until
    the block ends)."""
    made: list[str] = []
    thread = threading.get_ident()

    def count(model: object, **_: object) -> None:
        if threading.get_ident() == thread:
            made.append(getattr(model, "name", "?"))

    events = aws.dynamodb().meta.events
    with runtime.streams_held():
        events.register("before-call.dynamodb", count)
        try:
            yield made
        finally:
            events.unregister("before-call.dynamodb", count)


def test_dispatch_copies_each_nodes_key_hash_onto_its_target(api: Api, nodes: list, execution: str) -> None:
    for node in nodes:
        assert target_item(api, execution, node)["nsk_hash"] == {"S": secret_hash(node.nsk)}


@pytest.mark.parametrize(
    "steps",
    [
        [("", {"status": "ack"}), ("", {"status": "started"}), ("", {"status": "succeeded", "exit_code": 0})],
        [("", {"status": "ack"}), ("", {"status": "succeeded", "exit_code": 0, "output": {"inline": "b2s="}})],
        [("/ack", {"status": "accepted"}), ("/result", {"status": "success", "exit_code": 0, "stdout": "ok"})],
    ],
    ids=["unified", "skipping-started", "agent"],
)
def test_every_report_is_one_conditional_write_and_reads_nothing(
    api: Api, runtime: InProcessRuntime, nodes: list, execution: str, steps: list
) -> None:
    node = nodes[0]
    with dynamodb_requests(runtime) as made:
        for suffix, body in steps:
            extra = {"execution_id": execution} if suffix else {}
            response = report(api, node, execution, suffix, **body, **extra)
            assert response.status_code == 200, response.text
    assert made == ["UpdateItem"] * len(steps)


def test_no_read_shows_the_key_hash(api: Api, tenant: Tenant, nodes: list, execution: str) -> None:
    node = nodes[0]
    assert report(api, node, execution, status="ack").status_code == 200
    base = f"/v1/projects/{tenant.project_id}/executions/{execution}"
    bodies = [
        api.request("GET", base, token=tenant.admin_token).text,
        api.request("GET", f"{base}/events", token=tenant.admin_token).text,
        api.request("GET", f"/v1/projects/{tenant.project_id}/executions", token=tenant.admin_token).text,
        api.request("GET", f"/v1/nodes/{node.id}/state", token=node.nsk).text,
        api.request("GET", f"/v1/nodes/{node.id}/events", token=node.nsk, headers={"Last-Event-ID": "0"}).text,
        api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=tenant.admin_token).text,
    ]
    for body in bodies:
        assert secret_hash(node.nsk) not in body
        assert "nsk_hash" not in body


def test_a_bad_key_is_refused_as_a_credential_whatever_the_target_or_the_body(
    api: Api, nodes: list, execution: str
) -> None:
    node, other = nodes[0], nodes[1]
    assert report(api, node, execution, status="succeeded", exit_code=0).status_code == 200
    before = target_item(api, execution, node)
    stranger = mint_node_secret_key()
    # An ended target (a repeat would be 409) and a backward move: the key is judged first.
    assert_problem(report(api, node, execution, token=stranger, status="succeeded"), 401, "nsk_revoked")
    assert_problem(report(api, node, execution, token=other.nsk, status="ack"), 403, "nsk_node_mismatch")
    # An unknown execution (404 to its node) and a malformed body (400 to its node).
    assert_problem(report(api, node, "no-such-execution", token=stranger, status="ack"), 401, "nsk_revoked")
    assert_problem(report(api, node, execution, token=stranger, status="pending"), 401, "nsk_revoked")
    assert_problem(report(api, node, execution, "/ack", token=other.nsk, status="maybe"), 403, "nsk_node_mismatch")
    assert_problem(report(api, node, execution, "/result", token=stranger, stdout="x" * 70_000), 401, "nsk_revoked")
    assert target_item(api, execution, node) == before
    # The same errors, to the node itself, are the report's own.
    assert_problem(report(api, node, execution, status="pending"), 400, "invalid_body")
    assert_problem(report(api, node, execution, status="succeeded"), 409, "execution_already_terminal")


def test_another_nodes_key_on_an_open_target_writes_nothing(
    api: Api, runtime: InProcessRuntime, nodes: list, execution: str
) -> None:
    node, other = nodes[0], nodes[1]
    before = target_item(api, execution, node)
    with dynamodb_requests(runtime) as made:
        assert_problem(report(api, node, execution, token=other.nsk, status="ack"), 403, "nsk_node_mismatch")
    # The write's condition failed; then the node item and the key's owner were read.
    assert made == ["UpdateItem", "GetItem", "GetItem"]
    assert target_item(api, execution, node) == before


def test_deregistration_revokes_the_key_on_every_open_target(
    api: Api, tenant: Tenant, nodes: list, execution: str
) -> None:
    node = nodes[2]  # last in release order: held back under rate control
    held_back = dispatch(api, tenant, rate={"max_concurrency": 1})
    assert target_item(api, held_back, node)["GSI2PK"] == {"S": f"NODE#{node.id}#HELD"}
    assert report(api, node, execution, status="ack").status_code == 200
    response = api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk)
    assert response.status_code == 200, response.text
    for execution_id in (execution, held_back):
        before = target_item(api, execution_id, node)
        assert "nsk_hash" not in before
        assert_problem(report(api, node, execution_id, status="started"), 401, "nsk_revoked")
        assert target_item(api, execution_id, node) == before
    # A node still registered keeps its copies, held back or not.
    assert target_item(api, held_back, nodes[1])["nsk_hash"] == {"S": secret_hash(nodes[1].nsk)}
    assert report(api, nodes[1], held_back, status="ack").status_code == 200


def test_an_ended_targets_copy_lets_nothing_through(api: Api, nodes: list, execution: str) -> None:
    """No move leaves a terminal state, so the copy an ended target keeps is inert: a report
    for it fails the condition and is answered from the node item (401 once deregistered)."""
    node = nodes[0]
    assert report(api, node, execution, status="succeeded", exit_code=0).status_code == 200
    assert api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk).status_code == 200
    ended = target_item(api, execution, node)
    assert ended["nsk_hash"] == {"S": secret_hash(node.nsk)}
    assert_problem(report(api, node, execution, status="succeeded", exit_code=0), 401, "nsk_revoked")
    assert target_item(api, execution, node) == ended


def test_a_target_without_a_copy_is_checked_against_the_node_and_gets_one(
    api: Api, runtime: InProcessRuntime, nodes: list, execution: str
) -> None:
    """A target written before copies existed (or whose copy went stale) still takes its node's
    reports, at the cost of the node read, and carries the copy from then on."""
    node = nodes[0]
    boto3.client("dynamodb").update_item(
        TableName=api.stack.refs["Table"],
        Key={"PK": {"S": f"EXEC#{execution}"}, "SK": {"S": f"TARGET#{node.id}"}},
        UpdateExpression="REMOVE nsk_hash",
    )
    with dynamodb_requests(runtime) as made:
        assert report(api, node, execution, status="ack").status_code == 200
    assert made == ["UpdateItem", "GetItem", "UpdateItem"]
    assert target_item(api, execution, node)["nsk_hash"] == {"S": secret_hash(node.nsk)}
    with dynamodb_requests(runtime) as made:
        assert report(api, node, execution, status="started").status_code == 200
    assert made == ["UpdateItem"]


def test_a_copy_a_dispatch_wrote_after_the_deregistration_is_stripped_by_the_sweep(
    api: Api, runtime: InProcessRuntime, template: Template, nodes: list, execution: str
) -> None:
    """A dispatch that read the node just before its deregistration writes the target (with the
    key's hash) after the deregistration's own pass: the scheduled sweep revokes it."""
    node = nodes[0]
    dispatched = target_item(api, execution, node)
    assert api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk).status_code == 200
    table = boto3.client("dynamodb")
    table.put_item(TableName=api.stack.refs["Table"], Item=dispatched)  # the racing dispatch's write
    assert ("SweepRevocationsFunction", 60) in [(s.function, s.every_seconds) for s in template.schedules]
    assert runtime.invoke("SweepRevocationsFunction", {"source": "aws.events"}) == {"stripped": 1}
    swept = target_item(api, execution, node)
    assert "nsk_hash" not in swept
    assert_problem(report(api, node, execution, status="ack"), 401, "nsk_revoked")
    assert target_item(api, execution, node) == swept
    assert runtime.invoke("SweepRevocationsFunction", {"source": "aws.events"}) == {"stripped": 0}


def test_the_sweep_looks_back_only_as_far_as_a_racing_dispatch_can_write(api: Api, nodes: list) -> None:
    from datetime import timedelta

    from orchestrator.services.context import context_for
    from orchestrator.services.nodes import REVOCATION_WINDOW, deregister, sweep_revocations

    ctx = context_for("test")
    node = nodes[0]
    deregister(ctx, ctx.nodes.get_node_item(node.id) or {})
    assert ctx.nodes.revoked_since(ctx.clock.now() - REVOCATION_WINDOW) == [node.id]
    assert ctx.nodes.revoked_since(ctx.clock.now() + timedelta(seconds=1)) == []
    assert sweep_revocations(ctx) == 0  # the deregistration's own pass found every copy
