"""Project secrets (SPEC §18): operator writes, grants, node fetches, events, /state."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestrator.store import keys
from tests.integration.conftest import (
    ADMIN,
    Api,
    RegisteredNode,
    Tenant,
    assert_problem,
    operator_token,
    register_node,
)
from tests.integration.test_dispatch import stream


def secrets_path(tenant: Tenant, key: str = "") -> str:
    return f"/v1/projects/{tenant.project_id}/secrets" + (f"/{key}" if key else "")


def put(api: Api, tenant: Tenant, key: str, value: str, token: str | None = None, **grants: object):
    body = {"value": value, "grants": grants}
    return api.request("PUT", secrets_path(tenant, key), json_body=body, token=token or tenant.admin_token)


def fetch(api: Api, node: RegisteredNode, key: str):
    return api.request("GET", f"/v1/nodes/{node.id}/secrets/{key}", token=node.nsk)


def decrypt(node: RegisteredNode, answer: dict) -> str:
    """What plexd's DecryptSecret does: AES-256-GCM under the decoded NSK, no AAD."""
    nonce = base64.b64decode(answer["nonce"])
    assert len(nonce) == 12
    return AESGCM(base64.b64decode(node.nsk)).decrypt(nonce, base64.b64decode(answer["ciphertext"]), None).decode()


def grant_role(api: Api, tenant: Tenant, subject: str, relation: str) -> str:
    response = api.request(
        "PUT",
        f"/v1/projects/{tenant.project_id}/members/{subject}",
        json_body={"relation": relation},
        token=tenant.admin_token,
    )
    assert response.status_code in (200, 201), response.text
    return operator_token(subject)


@pytest.fixture
def web(api: Api, tenant: Tenant) -> RegisteredNode:
    return register_node(api, tenant, "web-01", metadata={"env": "prod", "role": "web"})


@pytest.fixture
def db(api: Api, tenant: Tenant) -> RegisteredNode:
    return register_node(api, tenant, "db-01", metadata={"env": "prod", "role": "db"})


# Operator API ---------------------------------------------------------------------------
def test_first_write_is_201_version_1_and_rewrite_is_200_version_2(api: Api, tenant: Tenant, web) -> None:
    first = put(api, tenant, "db-password", "hunter2", node_ids=[web.id])
    assert first.status_code == 201, first.text
    assert first.json == {"key": "db-password", "version": 1, "grants": {"node_ids": [web.id], "selector": None}}
    second = put(api, tenant, "db-password", "hunter3", selector="role=web")
    assert second.status_code == 200, second.text
    assert second.json == {"key": "db-password", "version": 2, "grants": {"node_ids": [], "selector": "role=web"}}


def test_list_names_versions_and_grants_never_values(api: Api, tenant: Tenant, web) -> None:
    put(api, tenant, "b-key", "value-b", node_ids=[web.id])
    put(api, tenant, "a-key", "value-a", selector="env=prod")
    put(api, tenant, "a-key", "value-a2", selector="env=prod")
    listed = api.request("GET", secrets_path(tenant), token=tenant.admin_token)
    assert listed.status_code == 200, listed.text
    assert [(s["key"], s["version"]) for s in listed.json["items"]] == [("a-key", 2), ("b-key", 1)]
    assert "next_cursor" not in listed.json
    assert set(listed.json["items"][0]) == {"key", "version", "grants", "updated_at"}
    assert "value-a" not in listed.text and "value-b" not in listed.text


def test_list_pages_with_a_signed_cursor_and_refuses_bad_limits(api: Api, tenant: Tenant) -> None:
    for name in ("k1", "k2", "k3"):
        put(api, tenant, name, "v")
    page = api.request("GET", secrets_path(tenant), token=tenant.admin_token, query={"limit": 2})
    assert [s["key"] for s in page.json["items"]] == ["k1", "k2"]
    rest = api.request(
        "GET", secrets_path(tenant), token=tenant.admin_token, query={"limit": 2, "cursor": page.json["next_cursor"]}
    )
    assert [s["key"] for s in rest.json["items"]] == ["k3"] and "next_cursor" not in rest.json
    zero = api.request("GET", secrets_path(tenant), token=tenant.admin_token, query={"limit": 0})
    assert_problem(zero, 400, "invalid_limit")
    tampered = page.json["next_cursor"][:-2] + "xx"
    assert_problem(
        api.request("GET", secrets_path(tenant), token=tenant.admin_token, query={"cursor": tampered}),
        400,
        "invalid_cursor",
    )


def test_delete_is_204_then_404_secret_not_found(api: Api, tenant: Tenant) -> None:
    put(api, tenant, "gone", "v")
    assert api.request("DELETE", secrets_path(tenant, "gone"), token=tenant.admin_token).status_code == 204
    before = api.table_items()
    again = api.request("DELETE", secrets_path(tenant, "gone"), token=tenant.admin_token)
    assert_problem(again, 404, "secret_not_found")
    assert api.table_items() == before


@pytest.mark.parametrize("relation", ["viewer", "operator"])
def test_only_admins_write_and_refusals_write_nothing(api: Api, tenant: Tenant, relation: str) -> None:
    put(api, tenant, "kept", "v")
    token = grant_role(api, tenant, f"{relation}@example.com", relation)
    before = api.table_items()
    assert_problem(put(api, tenant, "kept", "new", token=token), 403, "rebac_denied")
    assert_problem(put(api, tenant, "other", "new", token=token), 403, "rebac_denied")
    assert_problem(api.request("DELETE", secrets_path(tenant, "kept"), token=token), 403, "rebac_denied")
    assert api.table_items() == before
    listed = api.request("GET", secrets_path(tenant), token=token)
    assert listed.status_code == 200 and [s["key"] for s in listed.json["items"]] == ["kept"]


def test_non_member_cannot_list_and_unknown_project_is_404(api: Api, tenant: Tenant) -> None:
    assert_problem(api.request("GET", secrets_path(tenant), token=operator_token("stranger@x")), 403, "rebac_denied")
    unknown = "/v1/projects/0190a8b8-a0c0-7a0a-8a0a-a0a0a0a0a0c0/secrets/k"
    before = api.table_items()
    answer = api.request("PUT", unknown, json_body={"value": "v"}, token=tenant.admin_token)
    assert_problem(answer, 404, "project_not_found")
    assert api.table_items() == before


def test_malformed_selector_is_400_with_its_position_and_writes_nothing(api: Api, tenant: Tenant) -> None:
    before = api.table_items()
    problem = assert_problem(put(api, tenant, "k", "v", selector="env=prod,,x"), 400, "malformed_selector")
    assert problem["position"] == 9
    assert api.table_items() == before


@pytest.mark.parametrize(
    ("path_key", "body", "code"),
    [
        ("bad%20name", {"value": "v"}, "invalid_parameter"),
        ("-leading", {"value": "v"}, "invalid_parameter"),
        ("k", {"value": ""}, "invalid_body"),
        ("k", {"value": "x" * (64 * 1024 + 1)}, "invalid_body"),
        ("k", {"value": "é" * (40 * 1024)}, "invalid_parameter"),  # under the char bound, over 64 KiB of UTF-8
        ("k", {"value": "v", "unknown": 1}, "invalid_body"),
        ("k", {"value": "v", "grants": {"node_ids": ["not-a-uuid"]}}, "invalid_body"),
        ("k", {"value": 5}, "invalid_body"),
    ],
)
def test_bad_requests_are_400_and_write_nothing(api: Api, tenant: Tenant, path_key: str, body: dict, code: str) -> None:
    before = api.table_items()
    response = api.request("PUT", f"{secrets_path(tenant)}/{path_key}", json_body=body, token=tenant.admin_token)
    assert_problem(response, 400, code)
    assert api.table_items() == before


def test_concurrent_writers_never_share_a_version(api: Api, tenant: Tenant) -> None:
    writers = 8
    with ThreadPoolExecutor(writers) as pool:
        answers = list(pool.map(lambda i: put(api, tenant, "contended", f"value-{i}"), range(writers)))
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    assert sorted(a.json["version"] for a in answers) == list(range(1, writers + 1))
    assert [a.status_code for a in answers].count(201) == 1


# Storage --------------------------------------------------------------------------------
def test_table_holds_ciphertext_and_wrapped_key_only(api: Api, tenant: Tenant, web) -> None:
    put(api, tenant, "k", "plain-value-123", node_ids=[web.id])
    key = {k: {"S": v} for k, v in keys.project_secret(tenant.project_id, "k").items()}
    item = boto3.client("dynamodb").get_item(TableName=api.stack.refs["Table"], Key=key)["Item"]
    assert {"ciphertext", "nonce", "wrapped_data_key"} <= set(item)
    assert all("B" in item[name] for name in ("ciphertext", "nonce", "wrapped_data_key"))
    dump = repr(api.table_items())
    assert "plain-value-123" not in dump
    assert base64.b64encode(b"plain-value-123").decode() not in dump


def test_registration_seals_the_nsk_beside_its_hash_and_deregistration_drops_it(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "sealed-01")
    item = boto3.client("dynamodb").get_item(
        TableName=api.stack.refs["Table"], Key={"PK": {"S": f"NODE#{node.id}"}, "SK": {"S": "NODE"}}
    )["Item"]
    sealed = item["nsk_sealed"]["B"]
    assert base64.b64decode(node.nsk) not in sealed and node.nsk.encode() not in sealed
    assert api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk).status_code == 200
    item = boto3.client("dynamodb").get_item(
        TableName=api.stack.refs["Table"], Key={"PK": {"S": f"NODE#{node.id}"}, "SK": {"S": "NODE"}}
    )["Item"]
    assert "nsk_sealed" not in item and "nsk_hash" not in item


# Node fetch -----------------------------------------------------------------------------
def test_node_granted_by_id_decrypts_the_value_with_its_nsk(api: Api, tenant: Tenant, web) -> None:
    put(api, tenant, "tls-cert", "-----BEGIN CERT-----", node_ids=[web.id])
    answer = fetch(api, web, "tls-cert")
    assert answer.status_code == 200, answer.text
    assert set(answer.json) == {"key", "ciphertext", "nonce", "version"}
    assert (answer.json["key"], answer.json["version"]) == ("tls-cert", 1)
    assert decrypt(web, answer.json) == "-----BEGIN CERT-----"
    assert fetch(api, web, "tls-cert").json["nonce"] != answer.json["nonce"]  # a fresh nonce per fetch


def test_a_node_id_granted_in_capitals_names_the_same_node(api: Api, tenant: Tenant, web) -> None:
    written = put(api, tenant, "upper", "granted-by-upper-case-id", node_ids=[web.id.upper()])
    assert written.json["grants"]["node_ids"] == [web.id]
    assert decrypt(web, fetch(api, web, "upper").json) == "granted-by-upper-case-id"


def test_node_granted_by_selector_fetches_and_others_are_403(api: Api, tenant: Tenant, web, db) -> None:
    put(api, tenant, "web-only", "w", selector="role=web")
    assert decrypt(web, fetch(api, web, "web-only").json) == "w"
    before = api.table_items()
    assert_problem(fetch(api, db, "web-only"), 403, "secret_access_denied")
    assert api.table_items() == before


def test_unknown_secret_is_404_and_credentials_are_checked_first(api: Api, tenant: Tenant, web, db) -> None:
    assert_problem(fetch(api, web, "nope"), 404, "secret_not_found")
    put(api, tenant, "k", "v", node_ids=[web.id])
    other = api.request("GET", f"/v1/nodes/{web.id}/secrets/k", token=db.nsk)
    assert_problem(other, 403, "nsk_node_mismatch")
    wrong = api.request("GET", f"/v1/nodes/{web.id}/secrets/k", token=base64.b64encode(b"x" * 32).decode())
    assert_problem(wrong, 401, "nsk_revoked")


def test_node_registered_before_sealing_is_409_node_key_not_sealed(api: Api, tenant: Tenant, web) -> None:
    boto3.client("dynamodb").update_item(
        TableName=api.stack.refs["Table"],
        Key={"PK": {"S": f"NODE#{web.id}"}, "SK": {"S": "NODE"}},
        UpdateExpression="REMOVE nsk_sealed",
    )
    put(api, tenant, "k", "v", node_ids=[web.id])
    assert_problem(fetch(api, web, "k"), 409, "node_key_not_sealed")


# Events and /state ----------------------------------------------------------------------
def secret_events(api: Api, node: RegisteredNode) -> list[dict]:
    return [json.loads(m["data"])["payload"] for m in stream(api, node) if m["event"] == "node_secrets_updated"]


def test_a_change_tells_the_nodes_granted_before_or_after_with_their_refs(api: Api, tenant: Tenant, web, db) -> None:
    other = register_node(api, tenant, "other-01", metadata={"role": "cache"})
    put(api, tenant, "shared", "s", selector="env=prod")
    put(api, tenant, "moving", "m1", node_ids=[web.id])
    for node in (web, db, other):
        stream(api, node)  # read what came so far
    # When the grant moves from web (by id) to the db role
    put(api, tenant, "moving", "m2", selector="role=db")
    # Then web, which lost it, learns, and its refs no longer list it; db gains it; other hears nothing
    (web_event,) = secret_events(api, web)
    assert (web_event["key"], web_event["version"], web_event["deleted"]) == ("moving", 2, False)
    assert web_event["secret_refs"] == [{"key": "shared", "version": 1}]
    (db_event,) = secret_events(api, db)
    assert db_event["secret_refs"] == [{"key": "moving", "version": 2}, {"key": "shared", "version": 1}]
    assert secret_events(api, other) == []
    # A deletion tells the nodes granted it
    api.request("DELETE", secrets_path(tenant, "moving"), token=tenant.admin_token)
    (deleted,) = secret_events(api, db)
    assert deleted["deleted"] is True and deleted["secret_refs"] == [{"key": "shared", "version": 1}]
    assert "m1" not in json.dumps(web_event) and "m2" not in json.dumps(db_event)


def test_state_lists_the_secrets_granted_to_the_node(api: Api, tenant: Tenant, web, db) -> None:
    put(api, tenant, "for-web", "a", node_ids=[web.id])
    put(api, tenant, "for-prod", "b", selector="env=prod")
    put(api, tenant, "for-prod", "c", selector="env=prod")
    put(api, tenant, "for-db", "d", selector="role=db")
    state = api.request("GET", f"/v1/nodes/{web.id}/state", token=web.nsk)
    assert state.status_code == 200, state.text
    assert state.json["secret_refs"] == [{"key": "for-prod", "version": 2}, {"key": "for-web", "version": 1}]


def test_a_change_and_its_event_are_one_write(api: Api, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret never changes without its node_secrets_updated: when the event's write fails,
    the new version is not stored either (and the other way round)."""
    from orchestrator.store.feeds import FeedStore
    from orchestrator.store.table import TransactionCanceled

    assert put(api, tenant, "atomic", "first-value-1").status_code == 201
    before = api.table_items()
    failing = FeedStore.append_op

    def append_op_that_fails(self: FeedStore, feed: str, event, now):  # type: ignore[no-untyped-def]
        op = failing(self, feed, event, now)
        op["Put"]["ConditionExpression"] = "attribute_exists(PK)"  # an event id that is not there
        return op

    monkeypatch.setattr(FeedStore, "append_op", append_op_that_fails)
    from orchestrator.domain.secrets import SecretGrants
    from orchestrator.services import secrets as secret_service
    from orchestrator.services.context import context_for

    with pytest.raises(TransactionCanceled):
        secret_service.put_secret(
            context_for("test"), ADMIN, tenant.project_id, "atomic", value=b"second-value", grants=SecretGrants()
        )
    with pytest.raises(TransactionCanceled):
        secret_service.delete_secret(context_for("test"), ADMIN, tenant.project_id, "atomic")
    assert api.table_items() == before
