"""Enrollment tokens and POST /v1/register (SPEC §5)."""

from __future__ import annotations

import base64

import boto3
import pytest

from orchestrator.domain.credentials import secret_hash
from orchestrator.store import keys
from tests.integration.conftest import (
    Api,
    Tenant,
    assert_problem,
    mint_enrollment_token,
    operator_token,
    register_node,
)

CAPABILITIES = {
    "binary": {"version": "1.4.2", "checksum": "sha256:" + "a" * 64},
    "builtin_actions": [{"name": "restart-agent", "description": "Restart", "parameters": []}],
    "hooks": [{"name": "rotate-keys", "checksum": "sha256:" + "b" * 64, "parameters": [{"name": "force"}]}],
}


def node_items(api: Api) -> list[dict]:
    return [i for i in api.table_items() if i["SK"]["S"] == "NODE"]


def test_admin_mints_one_time_enrollment_token(api: Api, tenant: Tenant) -> None:
    response = api.request("POST", f"/v1/projects/{tenant.project_id}/enrollment-tokens", token=tenant.admin_token)
    assert response.status_code == 201
    assert response.json["token"].startswith("plx_enroll_")
    assert response.json["expires_at"].endswith("Z")


def test_enrollment_token_is_stored_only_as_hash(api: Api, tenant: Tenant) -> None:
    token = mint_enrollment_token(api, tenant)
    dump = str(api.table_items())
    assert token not in dump
    assert secret_hash(token) in dump


def test_register_returns_node_identity_and_signing_key(api: Api, tenant: Tenant) -> None:
    token = mint_enrollment_token(api, tenant)
    response = api.request(
        "POST",
        "/v1/register",
        json_body={
            "token": token,
            "hostname": "web-01",
            "public_key": base64.b64encode(bytes(range(32))).decode(),
            "metadata": {"env": "prod"},
            "capabilities": CAPABILITIES,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json
    assert set(body) == {"node_id", "mesh_ip", "signing_public_key", "node_secret_key", "peers"}
    assert body["peers"] == []
    assert body["mesh_ip"] == "10.100.0.1"
    assert len(body["node_secret_key"]) == 44  # base64 of a 32-byte key
    assert len(body["signing_public_key"]) == 44  # base64 of a raw Ed25519 public key


def test_node_secret_key_is_stored_only_as_hash(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01")
    dump = str(api.table_items())
    assert node.nsk not in dump
    assert secret_hash(node.nsk) in dump


def test_second_use_of_enrollment_token_is_401(api: Api, tenant: Tenant) -> None:
    token = mint_enrollment_token(api, tenant)
    first = api.request("POST", "/v1/register", json_body={"token": token, "hostname": "web-01"})
    assert first.status_code == 201
    second = api.request("POST", "/v1/register", json_body={"token": token, "hostname": "web-02"})
    assert_problem(second, 401, "enrollment_token_invalid")
    assert len(node_items(api)) == 1


def test_unknown_enrollment_token_is_401_and_writes_nothing(api: Api, tenant: Tenant) -> None:
    before = len(api.table_items())
    response = api.request("POST", "/v1/register", json_body={"token": "plx_enroll_nope", "hostname": "web-01"})
    assert_problem(response, 401, "enrollment_token_invalid")
    assert len(api.table_items()) == before


def test_expired_enrollment_token_is_401(api: Api, tenant: Tenant) -> None:
    token = mint_enrollment_token(api, tenant)
    boto3.client("dynamodb").update_item(
        TableName=api.stack.refs["Table"],
        Key={k: {"S": v} for k, v in keys.enrollment_token(secret_hash(token)).items()},
        UpdateExpression="SET expires_epoch = :past",
        ExpressionAttributeValues={":past": {"N": "1000"}},
    )
    response = api.request("POST", "/v1/register", json_body={"token": token, "hostname": "web-01"})
    assert_problem(response, 401, "enrollment_token_invalid")
    assert node_items(api) == []


def test_second_registration_of_hostname_is_409_and_keeps_token_usable(api: Api, tenant: Tenant) -> None:
    register_node(api, tenant, "web-01")
    token = mint_enrollment_token(api, tenant)
    conflict = api.request("POST", "/v1/register", json_body={"token": token, "hostname": "web-01"})
    assert_problem(conflict, 409, "hostname_already_registered")
    assert len(node_items(api)) == 1
    retry = api.request("POST", "/v1/register", json_body={"token": token, "hostname": "web-02"})
    assert retry.status_code == 201


def test_hostname_conflict_is_case_insensitive(api: Api, tenant: Tenant) -> None:
    register_node(api, tenant, "web-01")
    token = mint_enrollment_token(api, tenant)
    conflict = api.request("POST", "/v1/register", json_body={"token": token, "hostname": "WEB-01"})
    assert_problem(conflict, 409, "hostname_already_registered")


def test_same_hostname_in_another_project_is_allowed(api: Api, tenant: Tenant) -> None:
    register_node(api, tenant, "web-01")
    other = api.request(
        "POST", f"/v1/domains/{tenant.domain_id}/projects", json_body={"name": "other"}, token=tenant.admin_token
    )
    token = api.request("POST", f"/v1/projects/{other.json['id']}/enrollment-tokens", token=tenant.admin_token).json[
        "token"
    ]
    response = api.request("POST", "/v1/register", json_body={"token": token, "hostname": "web-01"})
    assert response.status_code == 201


def test_register_with_malformed_json_is_400(api: Api) -> None:
    response = api.request("POST", "/v1/register", data="{not json", headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "invalid_body")


def test_register_without_hostname_is_400_naming_the_field(api: Api, tenant: Tenant) -> None:
    response = api.request("POST", "/v1/register", json_body={"token": mint_enrollment_token(api, tenant)})
    problem = assert_problem(response, 400, "invalid_body")
    assert {"field": "hostname", "message": "Field required"} in problem["errors"]


def test_register_with_invalid_hostname_is_400(api: Api, tenant: Tenant) -> None:
    response = api.request(
        "POST", "/v1/register", json_body={"token": mint_enrollment_token(api, tenant), "hostname": "bad host!"}
    )
    assert_problem(response, 400, "invalid_body")


def test_register_with_empty_builtin_name_is_422_and_token_survives(api: Api, tenant: Tenant) -> None:
    token = mint_enrollment_token(api, tenant)
    response = api.request(
        "POST",
        "/v1/register",
        json_body={"token": token, "hostname": "web-01", "capabilities": {"builtin_actions": [{"name": ""}]}},
    )
    assert_problem(response, 422, "builtin_action_invalid")
    assert node_items(api) == []
    assert api.request("POST", "/v1/register", json_body={"token": token, "hostname": "web-01"}).status_code == 201


def test_metadata_becomes_selectable_labels(api: Api, tenant: Tenant) -> None:
    register_node(
        api, tenant, "web-01", metadata={"env": "prod", "kernel": "6.1.0", "nested": {"a": 1}, "bad value": "x"}
    )
    listed = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=tenant.admin_token)
    assert listed.json["items"][0]["labels"] == {"env": "prod", "kernel": "6.1.0"}


def test_mesh_ips_are_allocated_sequentially_per_project(api: Api, tenant: Tenant) -> None:
    first = register_node(api, tenant, "web-01")
    second = register_node(api, tenant, "web-02")
    listed = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=tenant.admin_token).json["items"]
    by_id = {n["id"]: n["mesh_ip"] for n in listed}
    assert by_id == {first.id: "10.100.0.1", second.id: "10.100.0.2"}


def test_viewer_cannot_mint_enrollment_tokens(api: Api, tenant: Tenant) -> None:
    api.request(
        "PUT",
        f"/v1/projects/{tenant.project_id}/members/viewer@example.com",
        json_body={"relation": "viewer"},
        token=tenant.admin_token,
    )
    before = api.table_items()
    response = api.request(
        "POST", f"/v1/projects/{tenant.project_id}/enrollment-tokens", token=operator_token("viewer@example.com")
    )
    problem = assert_problem(response, 403, "rebac_denied")
    assert problem["relation_path"] == ["user:viewer@example.com", f"project:{tenant.project_id}#admin"]
    assert "reason" in problem
    assert api.table_items() == before  # no token was minted


# Mesh addresses: each one is claimed by a conditional write (SPEC §18) -------------------------------
def mesh_claims(api: Api, tenant: Tenant) -> dict[str, str]:
    """The project's address claims: address → node id."""
    return {
        item["SK"]["S"].removeprefix("MESHIP#"): item["node_id"]["S"]
        for item in api.table_items()
        if item["PK"]["S"] == f"PROJECT#{tenant.project_id}" and item["SK"]["S"].startswith("MESHIP#")
    }


def test_parallel_registrations_get_distinct_mesh_addresses(api: Api, tenant: Tenant) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from orchestrator.domain.models import Capabilities
    from orchestrator.services import nodes
    from orchestrator.services.context import context_for

    ctx = context_for("test")
    tokens = [mint_enrollment_token(api, tenant) for _ in range(12)]

    def register(indexed: tuple[int, str]) -> tuple[str, str]:
        index, token = indexed
        registration = nodes.register(
            ctx, token=token, hostname=f"web-{index:02d}", public_key="", metadata={}, capabilities=Capabilities()
        )
        return registration.node.id, registration.node.mesh_ip

    with ThreadPoolExecutor(max_workers=6) as pool:
        registered = dict(pool.map(register, enumerate(tokens)))
    assert len(set(registered.values())) == 12
    assert mesh_claims(api, tenant) == {ip: node_id for node_id, ip in registered.items()}


def test_a_claimed_address_is_never_handed_out_again(api: Api, tenant: Tenant) -> None:
    # Given two nodes, then the project's address sequence starting over (reset, or wrapped)
    first = register_node(api, tenant, "web-01")
    second = register_node(api, tenant, "web-02")
    boto3.client("dynamodb").delete_item(
        TableName=api.stack.refs["Table"],
        Key={"PK": {"S": f"PROJECT#{tenant.project_id}"}, "SK": {"S": "COUNTER#MESH"}},
    )
    # When a third registers, its first two candidates are claimed: it gets the next free one
    third = register_node(api, tenant, "web-03")
    assert mesh_claims(api, tenant) == {"10.100.0.1": first.id, "10.100.0.2": second.id, "10.100.0.3": third.id}


def test_deregistration_frees_the_nodes_mesh_address(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01")
    assert mesh_claims(api, tenant) == {"10.100.0.1": node.id}
    assert api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk).status_code == 200
    assert mesh_claims(api, tenant) == {}


def test_a_node_registered_before_addresses_were_claimed_deregisters(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01")
    boto3.client("dynamodb").delete_item(
        TableName=api.stack.refs["Table"],
        Key={"PK": {"S": f"PROJECT#{tenant.project_id}"}, "SK": {"S": "MESHIP#10.100.0.1"}},
    )
    assert api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk).status_code == 200


def test_no_free_mesh_address_is_429_and_writes_nothing(
    api: Api, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.store.nodes import NodeStore

    # Given a project whose every candidate address is taken (the sequence stuck on a claimed one)
    register_node(api, tenant, "web-01")
    monkeypatch.setattr(NodeStore, "next_mesh_sequence", lambda self, project_id: 1)
    token = mint_enrollment_token(api, tenant)
    before = api.table_items()
    # When another node registers
    response = api.request("POST", "/v1/register", json_body={"token": token, "hostname": "web-02"})
    # Then it is refused as out of capacity, and the token, hostname and address stay unused
    problem = assert_problem(response, 429, "capacity_exceeded")
    assert problem["dimension"] == "mesh_addresses"
    assert api.table_items() == before
