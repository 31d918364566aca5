"""Who may report (SPEC §5, §12): every report reads its node's credential, then writes once.

The credential read is strongly consistent and comes before anything of the report is looked
at, for an NSK and for a callback token alike: a key revoked by a deregistration that
completed before the report is refused on every target of the node, including those a
dispatch racing the deregistration writes after it (docs/decisions.md).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from orchestrator import aws, secrets
from orchestrator.domain import callback_tokens
from orchestrator.domain.credentials import mint_node_secret_key, secret_hash
from orchestrator_local.runtime import InProcessRuntime
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


def deregister_now(ctx: Any, node_id: str) -> None:
    """The node's deregistration, as its own request would make it."""
    from orchestrator.services.nodes import deregister

    found = ctx.nodes.get_node_and_credential(node_id)
    assert found is not None
    deregister(ctx, *found)


@contextmanager
def dynamodb_requests(runtime: InProcessRuntime) -> Iterator[list[str]]:
    """The DynamoDB operations this thread's requests make inside the block (the workflow's
    tasks run on moto's threads; the stream fold that follows each invocation waits until
    the block ends). A strongly consistent read is named ``GetItem(consistent)``."""
    made: list[str] = []
    thread = threading.get_ident()

    def count(model: object, params: dict[str, Any], **_: object) -> None:
        if threading.get_ident() == thread:
            name = getattr(model, "name", "?")
            made.append(f"{name}(consistent)" if params.get("ConsistentRead") else name)

    events = aws.dynamodb().meta.events
    with runtime.streams_held():
        events.register("before-parameter-build.dynamodb", count)
        try:
            yield made
        finally:
            events.unregister("before-parameter-build.dynamodb", count)


@pytest.mark.parametrize(
    "steps",
    [
        [("", {"status": "ack"}), ("", {"status": "started"}), ("", {"status": "succeeded", "exit_code": 0})],
        [("", {"status": "ack"}), ("", {"status": "succeeded", "exit_code": 0, "output": {"inline": "b2s="}})],
        [("/ack", {"status": "accepted"}), ("/result", {"status": "success", "exit_code": 0, "stdout": "ok"})],
    ],
    ids=["unified", "skipping-started", "agent"],
)
def test_every_report_reads_its_nodes_credential_consistently_then_writes_once(
    api: Api, runtime: InProcessRuntime, nodes: list, execution: str, steps: list
) -> None:
    node = nodes[0]
    with dynamodb_requests(runtime) as made:
        for suffix, body in steps:
            extra = {"execution_id": execution} if suffix else {}
            response = report(api, node, execution, suffix, **body, **extra)
            assert response.status_code == 200, response.text
    assert made == ["GetItem(consistent)", "UpdateItem"] * len(steps)


def test_a_callback_tokens_report_reads_its_nodes_credential_then_writes_once(
    api: Api, runtime: InProcessRuntime, nodes: list, execution: str
) -> None:
    node = nodes[0]
    token = callback_tokens.mint(execution, node.id, datetime.now(UTC) + timedelta(minutes=5), secrets.callback_key())
    with dynamodb_requests(runtime) as made:
        assert report(api, node, execution, token=token, status="ack").status_code == 200
    assert made == ["GetItem(consistent)", "UpdateItem"]


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
    # The node's credential, then the key's owner (to tell 403 from 401) were read; nothing written.
    assert made == ["GetItem(consistent)", "GetItem"]
    assert target_item(api, execution, node) == before


def test_deregistration_revokes_the_key_on_every_open_target(
    api: Api, tenant: Tenant, nodes: list, execution: str
) -> None:
    node = nodes[2]  # last in release order: held back under rate control
    held_back = dispatch(api, tenant, rate={"max_concurrency": 1})
    assert "GSI2PK" not in target_item(api, held_back, node)  # not shown to its node yet
    assert report(api, node, execution, status="ack").status_code == 200
    token = callback_tokens.mint(execution, node.id, datetime.now(UTC) + timedelta(minutes=5), secrets.callback_key())
    response = api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk)
    assert response.status_code == 200, response.text
    for execution_id in (execution, held_back):
        before = target_item(api, execution_id, node)
        assert_problem(report(api, node, execution_id, status="started"), 401, "nsk_revoked")
        assert target_item(api, execution_id, node) == before
    assert_problem(report(api, node, execution, token=token, status="started"), 401, "invalid_callback_token")
    # A node still registered reports as before, held back or not.
    assert report(api, nodes[1], held_back, status="ack").status_code == 200


def test_no_target_item_carries_a_key_hash(api: Api, nodes: list, execution: str) -> None:
    for node in nodes:
        item = target_item(api, execution, node)
        assert "nsk_hash" not in item
        assert {"S": secret_hash(node.nsk)} not in item.values()


# The race the per-target key copy had: a dispatch that read the node before its deregistration
# writes the node's target after it. With the credential read per report, the revoked key is
# refused on that target from the deregistration on, not a sweep later.
def test_a_target_a_dispatch_writes_after_the_deregistration_refuses_the_revoked_key_at_once(
    api: Api, tenant: Tenant, nodes: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.services.context import context_for
    from orchestrator.store.targets import TargetStore

    node = nodes[0]
    ctx = context_for("test")
    write_targets = TargetStore.put_targets

    # Given a dispatch that resolved its cohort (the node was active), then pauses while the
    # node deregisters, then writes the node's target
    def racing(self: TargetStore, *args: Any, **kwargs: Any) -> int:
        deregister_now(ctx, node.id)
        return write_targets(self, *args, **kwargs)

    monkeypatch.setattr(TargetStore, "put_targets", racing)
    execution = dispatch(api, tenant)
    monkeypatch.undo()
    written = target_item(api, execution, node)
    assert written["status"] == {"S": "pending"}
    # Then neither the revoked key nor a callback token of the node moves it
    token = callback_tokens.mint(execution, node.id, datetime.now(UTC) + timedelta(minutes=5), secrets.callback_key())
    assert_problem(report(api, node, execution, status="ack"), 401, "nsk_revoked")
    assert_problem(report(api, node, execution, "/ack", execution_id=execution, status="accepted"), 401, "nsk_revoked")
    assert_problem(report(api, node, execution, token=token, status="ack"), 401, "invalid_callback_token")
    assert target_item(api, execution, node) == written
    # While the other nodes of the same dispatch report as usual
    assert report(api, nodes[1], execution, status="ack").status_code == 200


def test_a_report_whose_credential_read_preceded_the_deregistration_is_the_last_one_accepted(
    api: Api, nodes: list, execution: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one interleaving left: the report read the credential while it was valid, and the
    deregistration commits before the report's write. The report is ordered before the
    deregistration (it was authenticated while the key was good): the window is one request's
    own duration, never a later request."""
    from orchestrator.services.context import context_for
    from orchestrator.store.targets import TargetStore

    node = nodes[0]
    ctx = context_for("test")
    move = TargetStore.transition_target

    def deregistered_meanwhile(self: TargetStore, *args: Any, **kwargs: Any) -> Any:
        deregister_now(ctx, node.id)
        return move(self, *args, **kwargs)

    monkeypatch.setattr(TargetStore, "transition_target", deregistered_meanwhile)
    assert report(api, node, execution, status="ack").status_code == 200
    monkeypatch.undo()
    assert_problem(report(api, node, execution, status="started"), 401, "nsk_revoked")
    assert target_item(api, execution, node)["status"] == {"S": "ack"}


def test_the_state_read_authenticates_and_loads_the_node_in_one_read(
    api: Api, runtime: InProcessRuntime, nodes: list, execution: str
) -> None:
    node = nodes[0]
    with dynamodb_requests(runtime) as made:
        response = api.request("GET", f"/v1/nodes/{node.id}/state", token=node.nsk)
    assert response.status_code == 200, response.text
    assert [e["execution_id"] for e in response.json["executions"]] == [execution]
    # the node (credential and record), its open targets, the signing key's rotation count, the
    # project's mesh version (peers), its secrets (secret_refs) and policies, the node's data
    assert made == [
        "GetItem(consistent)",
        "Query",
        "GetItem",
        "GetItem(consistent)",
        "Query",
        "Query(consistent)",
        "Query",
    ]
