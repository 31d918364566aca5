"""POST .../executions:dispatch, SPEC §6 step by step, and what the workflow does with it."""

from __future__ import annotations

import base64
import itertools
import json
import time
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from orchestrator.events.envelope import verify_envelope
from orchestrator.store import keys
from tests.integration.conftest import (
    PUBLIC_BASE_URL,
    Api,
    RegisteredNode,
    Tenant,
    assert_problem,
    operator_token,
    register_node,
)

HOOK_SUM = "sha256:" + "1" * 64
OTHER_SUM = "sha256:" + "2" * 64


def caps(*builtins: str | dict, hooks: tuple[dict, ...] = ()) -> dict:
    actions = [b if isinstance(b, dict) else {"name": b} for b in builtins]
    return {"builtin_actions": actions, "hooks": list(hooks)}


@pytest.fixture
def fleet(api: Api, tenant: Tenant) -> dict[str, RegisteredNode]:
    """web-1, web-2 (prod, restart-agent), db-1 (prod, no restart-agent), dev-1 (dev, restart-agent)."""
    spec = {
        "web-1": (
            {"env": "prod", "tier": "web"},
            caps("restart-agent", hooks=({"name": "rotate", "checksum": HOOK_SUM},)),
        ),
        "web-2": (
            {"env": "prod", "tier": "web"},
            caps("restart-agent", hooks=({"name": "rotate", "checksum": HOOK_SUM},)),
        ),
        "db-1": ({"env": "prod", "tier": "db"}, caps("collect-logs")),
        "dev-1": ({"env": "dev", "tier": "web"}, caps("restart-agent")),
    }
    return {
        name: register_node(api, tenant, name, metadata=metadata, capabilities=capabilities)
        for name, (metadata, capabilities) in spec.items()
    }


def dispatch(api: Api, tenant: Tenant, token: str | None = None, headers: dict | None = None, **body: Any):  # type: ignore[no-untyped-def]
    return api.request(
        "POST",
        f"/v1/projects/{tenant.project_id}/executions:dispatch",
        json_body=body,
        token=token or tenant.admin_token,
        headers=headers,
    )


def execution_items(api: Api) -> list[dict]:
    return [i for i in api.table_items() if i["SK"]["S"] == "EXEC"]


def wait_terminal(api: Api, tenant: Tenant, execution_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = api.request(
            "GET", f"/v1/projects/{tenant.project_id}/executions/{execution_id}", token=tenant.admin_token
        ).json
        if body["completed_at"] or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def live_executions(api: Api, tenant: Tenant) -> int:
    item = boto3.client("dynamodb").get_item(
        TableName=api.stack.refs["Table"], Key={k: {"S": v} for k, v in keys.domain(tenant.domain_id).items()}
    )["Item"]
    return int(item["live_executions"]["N"])


def stream(api: Api, node: RegisteredNode, last_event_id: str | None = None) -> list[dict]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    response = api.request("GET", f"/v1/nodes/{node.id}/events", token=node.nsk, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.text.endswith("retry: 1000\n\n")
    messages = []
    for block in response.text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        # The fleet's own registrations reach each node as peer_* events of the mesh: not dispatch's.
        if "data" in fields and not fields["event"].startswith("peer_"):
            messages.append({"id": fields["id"], "event": fields["event"], "data": fields["data"]})
    return messages


# Step 1: the body ---------------------------------------------------------------------------
def test_both_or_neither_target_is_400_invalid_target_and_writes_nothing(api: Api, tenant: Tenant, fleet: dict) -> None:
    before = api.table_items()
    for body in (
        {"action": "restart-agent"},
        {"action": "restart-agent", "node_id": fleet["web-1"].id, "selector": "env=prod"},
    ):
        assert_problem(dispatch(api, tenant, **body), 400, "invalid_target")
    assert execution_items(api) == []
    assert api.table_items() == before  # nothing written


def test_malformed_selector_is_400_with_position(api: Api, tenant: Tenant, fleet: dict) -> None:
    before = api.table_items()
    problem = assert_problem(
        dispatch(api, tenant, action="restart-agent", selector="env=prod,tier in (a"), 400, "malformed_selector"
    )
    assert problem["position"] == len("env=prod,tier in (a")
    assert execution_items(api) == []
    assert api.table_items() == before  # nothing written


@pytest.mark.parametrize(
    "body",
    [
        {"selector": "env=prod"},
        {"action": "restart-agent", "selector": "env=prod", "timeout_seconds": 0},
        {"action": "restart-agent", "selector": "env=prod", "timeout_seconds": 86_401},
        {"action": "restart-agent", "selector": "env=prod", "timeout_seconds": "300"},
        {"action": "restart-agent", "selector": "env=prod", "type": "script"},
        {"action": "restart-agent", "selector": "env=prod", "parameters": []},
        {"action": "restart-agent", "selector": "env=prod", "surprise": 1},
    ],
)
def test_invalid_body_is_400(api: Api, tenant: Tenant, fleet: dict, body: dict) -> None:
    before = api.table_items()
    assert_problem(dispatch(api, tenant, **body), 400, "invalid_body")
    assert api.table_items() == before  # nothing written


# Step 2: ReBAC before any write -----------------------------------------------------------------
def test_viewer_cannot_dispatch_and_nothing_is_written(api: Api, tenant: Tenant, fleet: dict) -> None:
    api.request(
        "PUT",
        f"/v1/projects/{tenant.project_id}/members/val",
        json_body={"relation": "viewer"},
        token=tenant.admin_token,
    )
    before = api.table_items()
    response = dispatch(api, tenant, token=operator_token("val"), action="restart-agent", selector="env=prod")
    assert_problem(response, 403, "rebac_denied")
    assert api.table_items() == before


def test_operator_can_dispatch(api: Api, tenant: Tenant, fleet: dict) -> None:
    api.request(
        "PUT",
        f"/v1/projects/{tenant.project_id}/members/oscar",
        json_body={"relation": "operator"},
        token=tenant.admin_token,
    )
    response = dispatch(api, tenant, token=operator_token("oscar"), action="restart-agent", selector="env=prod")
    assert response.status_code == 201
    assert response.json["triggered_by"] == {"type": "operator", "subject": "oscar"}


# Step 3: the cohort ---------------------------------------------------------------------------
def test_selector_reaches_exactly_matching_nodes_that_declare_the_action(api: Api, tenant: Tenant, fleet: dict) -> None:
    response = dispatch(api, tenant, action="restart-agent", selector="env=prod")
    assert response.status_code == 201, response.text
    body = response.json
    assert {t["node_id"] for t in body["targets"]} == {fleet["web-1"].id, fleet["web-2"].id}
    assert {t["status"] for t in body["targets"]} == {"pending"}
    assert body["status"] == "pending"
    assert body["target_count"] == 2
    assert body["counts"]["pending"] == 2
    assert body["selector"] == "env=prod"


def test_deregistered_nodes_leave_every_cohort(api: Api, tenant: Tenant, fleet: dict) -> None:
    api.request("POST", f"/v1/nodes/{fleet['web-2'].id}/deregister", token=fleet["web-2"].nsk)
    response = dispatch(api, tenant, action="restart-agent", selector="tier=web")
    assert {t["node_id"] for t in response.json["targets"]} == {fleet["web-1"].id, fleet["dev-1"].id}


def test_empty_cohort_is_422(api: Api, tenant: Tenant, fleet: dict) -> None:
    before = api.table_items()
    assert_problem(dispatch(api, tenant, action="restart-agent", selector="tier=db"), 422, "selector_empty_cohort")
    assert_problem(dispatch(api, tenant, action="restart-agent", selector="env=staging"), 422, "selector_empty_cohort")
    assert execution_items(api) == []
    assert api.table_items() == before  # nothing written


def test_single_node_without_the_action_is_400(api: Api, tenant: Tenant, fleet: dict) -> None:
    before = api.table_items()
    response = dispatch(api, tenant, action="restart-agent", node_id=fleet["db-1"].id)
    assert_problem(response, 400, "action_not_declared")
    builtin_as_hook = dispatch(api, tenant, action="restart-agent", type="hook", node_id=fleet["web-1"].id)
    assert_problem(builtin_as_hook, 400, "action_not_declared")
    assert api.table_items() == before  # nothing written


def test_unknown_node_is_404(api: Api, tenant: Tenant, fleet: dict) -> None:
    before = api.table_items()
    assert_problem(dispatch(api, tenant, action="restart-agent", node_id="nope"), 404, "node_not_found")
    assert api.table_items() == before  # nothing written


def test_single_node_dispatch(api: Api, tenant: Tenant, fleet: dict) -> None:
    response = dispatch(api, tenant, action="restart-agent", node_id=fleet["dev-1"].id)
    assert response.status_code == 201
    assert [t["node_id"] for t in response.json["targets"]] == [fleet["dev-1"].id]
    assert response.json["node_id"] == fleet["dev-1"].id


# Step 4: hook integrity --------------------------------------------------------------------------
def test_hook_dispatch_with_the_trusted_checksum_succeeds(api: Api, tenant: Tenant, fleet: dict) -> None:
    response = dispatch(api, tenant, action="rotate", type="hook", selector="tier=web")
    assert response.status_code == 201, response.text
    assert len(response.json["targets"]) == 2
    # The action_request tells the node which checksum it must run (the pinned baseline).
    deadline = time.monotonic() + 10
    while not (messages := stream(api, fleet["web-1"])) and time.monotonic() < deadline:
        time.sleep(0.1)
    (message,) = messages
    payload = json.loads(message["data"])["payload"]
    assert (payload["type"], payload["action"], payload["checksum"]) == ("hook", "rotate", HOOK_SUM)


def test_drifting_hook_checksum_is_409_naming_the_nodes(api: Api, tenant: Tenant, fleet: dict) -> None:
    drifting = fleet["web-2"]
    api.request(
        "PUT",
        f"/v1/nodes/{drifting.id}/capabilities",
        token=drifting.nsk,
        json_body=caps("restart-agent", hooks=({"name": "rotate", "checksum": OTHER_SUM},)),
    )
    before = api.table_items()
    problem = assert_problem(
        dispatch(api, tenant, action="rotate", type="hook", selector="tier=web"), 409, "hook_integrity_violation"
    )
    assert [n["node_id"] for n in problem["drifting_nodes"]] == [drifting.id]
    assert problem["baseline"] == HOOK_SUM
    assert execution_items(api) == []
    assert api.table_items() == before  # nothing written


def test_operator_repins_the_baseline(api: Api, tenant: Tenant, fleet: dict) -> None:
    for node in (fleet["web-1"], fleet["web-2"]):
        api.request(
            "PUT",
            f"/v1/nodes/{node.id}/capabilities",
            token=node.nsk,
            json_body=caps("restart-agent", hooks=({"name": "rotate", "checksum": OTHER_SUM},)),
        )
    assert dispatch(api, tenant, action="rotate", type="hook", selector="tier=web").status_code == 409
    pinned = api.request(
        "PUT",
        f"/v1/projects/{tenant.project_id}/hooks/rotate/baseline",
        json_body={"checksum": OTHER_SUM},
        token=tenant.admin_token,
    )
    assert pinned.status_code == 200
    assert dispatch(api, tenant, action="rotate", type="hook", selector="tier=web").status_code == 201


def test_missing_baseline_fails_closed(api: Api, tenant: Tenant, fleet: dict) -> None:
    boto3.client("dynamodb").delete_item(
        TableName=api.stack.refs["Table"],
        Key={k: {"S": v} for k, v in keys.hook_baseline(tenant.project_id, "rotate").items()},
    )
    before = api.table_items()
    problem = assert_problem(
        dispatch(api, tenant, action="rotate", type="hook", selector="tier=web"), 409, "hook_integrity_violation"
    )
    assert problem["baseline"] is None
    assert api.table_items() == before  # nothing written


def test_only_admins_pin_baselines_and_checksums_are_validated(api: Api, tenant: Tenant, fleet: dict) -> None:
    path = f"/v1/projects/{tenant.project_id}/hooks/rotate/baseline"
    api.request(
        "PUT",
        f"/v1/projects/{tenant.project_id}/members/oscar",
        json_body={"relation": "operator"},
        token=tenant.admin_token,
    )
    assert_problem(
        api.request("PUT", path, json_body={"checksum": OTHER_SUM}, token=operator_token("oscar")), 403, "rebac_denied"
    )
    assert_problem(
        api.request("PUT", path, json_body={"checksum": "md5:x"}, token=tenant.admin_token), 400, "invalid_body"
    )


# Step 5: parameters and confirmation -------------------------------------------------------------
@pytest.fixture
def configurable(api: Api, tenant: Tenant) -> RegisteredNode:
    action = {
        "name": "set-level",
        "parameters": [{"name": "level", "type": "integer", "required": True}, {"name": "reason", "type": "string"}],
    }
    wipe = {"name": "wipe-cache", "dangerous": True}
    return register_node(api, tenant, "cfg-1", capabilities=caps(action, wipe))


@pytest.mark.parametrize(
    ("parameters", "fragment"),
    [
        ({}, "missing required parameter 'level'"),
        ({"level": 1, "extra": True}, "unknown parameter 'extra'"),
        ({"level": "high"}, "parameter 'level' must be of type integer"),
        ({"level": True}, "parameter 'level' must be of type integer"),
    ],
)
def test_invalid_parameters_are_422(
    api: Api, tenant: Tenant, configurable: RegisteredNode, parameters: dict, fragment: str
) -> None:
    before = api.table_items()
    problem = assert_problem(
        dispatch(api, tenant, action="set-level", node_id=configurable.id, parameters=parameters),
        422,
        "invalid_parameters",
    )
    assert fragment in problem["detail"]
    assert api.table_items() == before  # nothing written


def test_valid_parameters_are_dispatched(api: Api, tenant: Tenant, configurable: RegisteredNode) -> None:
    response = dispatch(
        api, tenant, action="set-level", node_id=configurable.id, parameters={"level": 3, "reason": "debug"}
    )
    assert response.status_code == 201
    assert response.json["parameters"] == {"level": 3, "reason": "debug"}


def test_dangerous_action_requires_confirmation(api: Api, tenant: Tenant, configurable: RegisteredNode) -> None:
    before = api.table_items()
    assert_problem(dispatch(api, tenant, action="wipe-cache", node_id=configurable.id), 422, "confirmation_required")
    assert api.table_items() == before  # nothing written
    confirmed = dispatch(api, tenant, action="wipe-cache", node_id=configurable.id, confirmation=True)
    assert confirmed.status_code == 201


# Step 6: capacity ---------------------------------------------------------------------------------
def test_domain_ceiling_is_429_with_dimension_and_a_finished_execution_frees_its_slot(
    api: Api, tenant: Tenant, fleet: dict
) -> None:
    api.request(
        "PATCH", f"/v1/domains/{tenant.domain_id}", json_body={"live_execution_ceiling": 2}, token=tenant.admin_token
    )
    first = dispatch(api, tenant, action="restart-agent", node_id=fleet["web-1"].id, timeout_seconds=1)
    second = dispatch(api, tenant, action="restart-agent", node_id=fleet["web-2"].id, timeout_seconds=300)
    assert (first.status_code, second.status_code) == (201, 201)
    problem = assert_problem(
        dispatch(api, tenant, action="restart-agent", node_id=fleet["dev-1"].id), 429, "capacity_exceeded"
    )
    assert problem["dimension"] == "action_executions"
    assert live_executions(api, tenant) == 2
    assert len(execution_items(api)) == 2  # the refused one wrote nothing
    assert not [i for i in api.table_items() if i["PK"]["S"].startswith("ADMISSION#")]

    finished = wait_terminal(api, tenant, first.json["id"])
    assert finished["status"] == "timeout"
    assert live_executions(api, tenant) == 1
    assert dispatch(api, tenant, action="restart-agent", node_id=fleet["dev-1"].id).status_code == 201


# Step 7 and the workflow ------------------------------------------------------------------------
def test_silent_targets_time_out_and_the_slot_is_released(api: Api, tenant: Tenant, fleet: dict) -> None:
    response = dispatch(api, tenant, action="restart-agent", selector="env=prod", timeout_seconds=2)
    assert live_executions(api, tenant) == 1
    body = wait_terminal(api, tenant, response.json["id"])
    assert body["status"] == "timeout"
    assert {t["status"] for t in body["targets"]} == {"timeout"}
    assert body["counts"]["timeout"] == 2 and body["counts"]["pending"] == 0
    assert body["completed_at"] is not None and body["started_at"] is not None
    assert live_executions(api, tenant) == 0


def test_workflow_start_failure_releases_the_slot_and_ends_the_execution(api: Api, tenant: Tenant, fleet: dict) -> None:
    import os

    from orchestrator.settings import get_settings

    os.environ["STATE_MACHINE_ARN"] = os.environ["STATE_MACHINE_ARN"] + "-gone"
    get_settings.cache_clear()
    response = dispatch(api, tenant, action="restart-agent", selector="env=prod")
    assert_problem(response, 503, "dependency_unavailable")
    (item,) = execution_items(api)
    assert item["status"]["S"] == "failed"
    assert "completed_at" in item
    assert live_executions(api, tenant) == 0
    targets = [i for i in api.table_items() if i["SK"]["S"].startswith("TARGET#")]
    assert {t["status"]["S"] for t in targets} == {"failed"}
    assert all("GSI2PK" not in t for t in targets)  # no node sees them as open


def test_each_target_node_gets_one_verifiable_action_request(api: Api, tenant: Tenant, fleet: dict) -> None:
    response = dispatch(api, tenant, action="restart-agent", selector="env=prod", parameters={}, timeout_seconds=60)
    execution_id = response.json["id"]
    public_key = Ed25519PublicKey.from_public_bytes(
        base64.b64decode(
            api.request("GET", f"/v1/nodes/{fleet['web-1'].id}/state", token=fleet["web-1"].nsk).json["signing_keys"][
                "current"
            ]
        )
    )
    deadline = time.monotonic() + 10
    while not stream(api, fleet["web-1"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for name in ("web-1", "web-2"):
        node = fleet[name]
        messages = stream(api, node, last_event_id="0")  # from the start of the stream
        assert [m["event"] for m in messages] == ["action_request"], name
        envelope = json.loads(messages[0]["data"])
        assert verify_envelope(public_key, messages[0]["data"])
        assert envelope["event_id"] == messages[0]["id"]
        payload = envelope["payload"]
        assert payload["execution_id"] == execution_id
        assert payload["node_id"] == node.id
        assert payload["callback_url"] == f"{PUBLIC_BASE_URL}/v1/nodes/{node.id}/executions/{execution_id}"
        assert payload["timeout"] == "60s" and payload["timeout_seconds"] == 60
        assert payload["action"] == "restart-agent" and payload["type"] == "builtin"
        # Replay after that id does not repeat it.
        assert stream(api, node, last_event_id=messages[0]["id"]) == []
    for outsider in ("db-1", "dev-1"):
        assert stream(api, fleet[outsider], last_event_id="0") == []


def test_stream_without_last_event_id_sends_undelivered_events_once(api: Api, tenant: Tenant, fleet: dict) -> None:
    dispatch(api, tenant, action="restart-agent", node_id=fleet["web-1"].id)
    deadline = time.monotonic() + 10
    first: list[dict] = []
    while not first and time.monotonic() < deadline:
        first = stream(api, fleet["web-1"])
        time.sleep(0.05)
    assert len(first) == 1
    assert stream(api, fleet["web-1"]) == []


def test_node_state_lists_open_invocations_with_expiry(api: Api, tenant: Tenant, fleet: dict) -> None:
    response = dispatch(api, tenant, action="restart-agent", node_id=fleet["web-1"].id, timeout_seconds=120)
    state = api.request("GET", f"/v1/nodes/{fleet['web-1'].id}/state", token=fleet["web-1"].nsk).json
    (entry,) = state["executions"]
    assert entry["execution_id"] == response.json["id"]
    assert entry["status"] == "pending"
    assert entry["expires_at"] == response.json["expires_at"]
    assert entry["action"] == "restart-agent" and entry["type"] == "builtin"
    other = api.request("GET", f"/v1/nodes/{fleet['web-2'].id}/state", token=fleet["web-2"].nsk).json
    assert other["executions"] == []
    assert_problem(
        api.request("GET", f"/v1/nodes/{fleet['web-1'].id}/state", token=fleet["web-2"].nsk), 403, "nsk_node_mismatch"
    )


# Idempotency-Key ---------------------------------------------------------------------------------------
def test_idempotent_retry_returns_the_first_execution(api: Api, tenant: Tenant, fleet: dict) -> None:
    body = {"action": "restart-agent", "selector": "env=prod"}
    first = dispatch(api, tenant, headers={"Idempotency-Key": "k-1"}, **body)
    again = dispatch(api, tenant, headers={"Idempotency-Key": "k-1"}, **body)
    assert first.status_code == again.status_code == 201
    assert first.json["id"] == again.json["id"]
    assert len(execution_items(api)) == 1


def test_same_key_with_another_body_is_422(api: Api, tenant: Tenant, fleet: dict) -> None:
    dispatch(api, tenant, headers={"Idempotency-Key": "k-2"}, action="restart-agent", selector="env=prod")
    first_targets = [i for i in api.table_items() if i["SK"]["S"].startswith("TARGET#")]
    other = dispatch(api, tenant, headers={"Idempotency-Key": "k-2"}, action="restart-agent", selector="tier=web")
    assert_problem(other, 422, "idempotency_key_reused")
    assert len(execution_items(api)) == 1
    assert [i for i in api.table_items() if i["SK"]["S"].startswith("TARGET#")] == first_targets


def test_the_same_key_from_another_caller_is_another_request(api: Api, tenant: Tenant, fleet: dict) -> None:
    api.request(
        "PUT",
        f"/v1/projects/{tenant.project_id}/members/oscar",
        json_body={"relation": "operator"},
        token=tenant.admin_token,
    )
    body = {"action": "restart-agent", "selector": "env=prod"}
    mine = dispatch(api, tenant, headers={"Idempotency-Key": "k-3"}, **body)
    theirs = dispatch(api, tenant, token=operator_token("oscar"), headers={"Idempotency-Key": "k-3"}, **body)
    assert mine.json["id"] != theirs.json["id"]


def test_spelling_with_slash_is_the_same_operation(api: Api, tenant: Tenant, fleet: dict) -> None:
    response = api.request(
        "POST",
        f"/v1/projects/{tenant.project_id}/executions/dispatch",
        json_body={"action": "restart-agent", "selector": "env=prod"},
        token=tenant.admin_token,
    )
    assert response.status_code == 201


def test_idempotent_replay_still_checks_access_first(api: Api, tenant: Tenant, fleet: dict) -> None:
    body = {"action": "restart-agent", "selector": "env=prod"}
    assert dispatch(api, tenant, headers={"Idempotency-Key": "k-9"}, **body).status_code == 201
    api.request(
        "PUT",
        f"/v1/projects/{tenant.project_id}/members/val",
        json_body={"relation": "viewer"},
        token=tenant.admin_token,
    )
    replay = dispatch(api, tenant, token=operator_token("val"), headers={"Idempotency-Key": "k-9"}, **body)
    assert_problem(replay, 403, "rebac_denied")


def test_fan_out_mints_each_event_id_right_before_the_write_that_carries_it(
    api: Api, tenant: Tenant, fleet: dict, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """A node reads its stream in event-id order: an id minted long before its write could fall
    behind an event the node already read past. With one item per batch and one writer, each
    event's id postdates the previous event's write."""
    from orchestrator.clock import Uuid7Generator
    from orchestrator.settings import get_settings
    from orchestrator.store import table as table_module

    monkeypatch.setattr(table_module, "BATCH_SIZE", 1)
    monkeypatch.setenv("BATCH_WRITES_IN_FLIGHT", "1")
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)  # after monkeypatch restores the environment
    real_write, writes = table_module.Table._write_chunk, []

    def recording_write(self: table_module.Table, chunk):  # type: ignore[no-untyped-def]
        requests = real_write(self, chunk)
        items = [put["PutRequest"]["Item"] for put in chunk]
        ids = [item["event_id"]["S"] for item in items if item["type"]["S"] == "node_event"]
        if ids:
            writes.append((ids, Uuid7Generator().new_id()))  # minted after the write
        return requests

    monkeypatch.setattr(table_module.Table, "_write_chunk", recording_write)
    response = dispatch(api, tenant, action="restart-agent", selector="tier=web", timeout_seconds=60)
    assert response.status_code == 201
    deadline = time.monotonic() + 10
    while len(writes) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [len(ids) for ids, _ in writes] == [1, 1, 1]  # web-1, web-2, dev-1: one write each
    for (_, written_after), (next_ids, _) in itertools.pairwise(writes):
        assert all(event_id > written_after for event_id in next_ids)
