"""The mesh through the gateway (SPEC §18): peers and pair keys at registration and in
``/state``, key rotation, endpoints, operator rotation requests, the peer snapshot."""

from __future__ import annotations

import base64
import gzip
import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from plexd_sim.verifier import EnvelopeVerifier, load_public_key
from plexd_sim.wire import SseParser

from orchestrator import aws
from orchestrator.services import mesh
from orchestrator.store import keys
from tests.integration.conftest import (
    Api,
    RegisteredNode,
    Tenant,
    assert_problem,
    mint_enrollment_token,
    operator_token,
)


def new_public_key() -> str:
    raw = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def join(api: Api, tenant: Tenant, hostname: str) -> tuple[RegisteredNode, dict[str, Any]]:
    """Register a node with a real Curve25519 key; the node and the 201 body."""
    body = {"token": mint_enrollment_token(api, tenant), "hostname": hostname, "public_key": new_public_key()}
    response = api.request("POST", "/v1/register", json_body=body)
    assert response.status_code == 201, response.text
    return RegisteredNode(response.json["node_id"], response.json["node_secret_key"], hostname), response.json


def state_peers(api: Api, node: RegisteredNode) -> dict[str, dict[str, Any]]:
    response = api.request("GET", f"/v1/nodes/{node.id}/state", token=node.nsk)
    assert response.status_code == 200, response.text
    return {peer["id"]: peer for peer in response.json["peers"]}


def events(api: Api, node: RegisteredNode, signing_key: str) -> list[tuple[str, dict[str, Any]]]:
    """The node's stream from the start, each envelope verified as the agent does."""
    response = api.request("GET", f"/v1/nodes/{node.id}/events", token=node.nsk, headers={"Last-Event-ID": "0"})
    assert response.status_code == 200, response.text
    verifier = EnvelopeVerifier([load_public_key(signing_key)])
    parser, received = SseParser(), []
    for line in response.text.split("\n"):
        message = parser.feed_line(line)
        if message is not None:
            verified = verifier.verify(message.data)
            assert verified.event_type == message.event
            received.append((verified.event_type, verified.payload))
    return received


def mesh_version(api: Api, tenant: Tenant) -> int:
    item = boto3.client("dynamodb").get_item(
        TableName=api.stack.refs["Table"], Key={k: {"S": v} for k, v in keys.project(tenant.project_id).items()}
    )["Item"]
    return int(item.get("mesh_version", {"N": "0"})["N"])


def rotate(api: Api, node: RegisteredNode, public_key: str, token: str | None = None) -> Any:
    body = {"node_id": node.id, "new_public_key": public_key}
    return api.request("POST", "/v1/keys/rotate", json_body=body, token=node.nsk if token is None else token)


def report_endpoint(api: Api, node: RegisteredNode, endpoint: str, nat_type: str = "full_cone") -> Any:
    body = {"public_endpoint": endpoint, "nat_type": nat_type}
    return api.request("PUT", f"/v1/nodes/{node.id}/endpoint", json_body=body, token=node.nsk)


# Peers --------------------------------------------------------------------------------------------
def test_registration_answers_the_other_active_nodes_as_peers(api: Api, tenant: Tenant) -> None:
    first, first_body = join(api, tenant, "web-01")
    second, _ = join(api, tenant, "web-02")
    third, third_body = join(api, tenant, "web-03")
    assert first_body["peers"] == []
    peers = {peer["id"]: peer for peer in third_body["peers"]}
    assert set(peers) == {first.id, second.id}
    assert peers[first.id]["mesh_ip"] == "10.100.0.1"
    assert peers[first.id]["allowed_ips"] == ["10.100.0.1/32"]
    assert peers[first.id]["endpoint"] == ""
    assert len(base64.b64decode(peers[first.id]["psk"])) == 32
    assert third.id not in peers


def test_pair_keys_are_symmetric_over_http_and_match_the_signed_peer_added_events(api: Api, tenant: Tenant) -> None:
    joined = [join(api, tenant, f"web-{index}") for index in range(4)]
    nodes = [node for node, _ in joined]
    signing_key = joined[0][1]["signing_public_key"]
    views = {node.id: state_peers(api, node) for node in nodes}
    for a in nodes:
        assert set(views[a.id]) == {n.id for n in nodes} - {a.id}
        for b in nodes:
            if a is not b:
                assert views[a.id][b.id]["psk"] == views[b.id][a.id]["psk"]
    # Each earlier node heard each later one join, with the same pair key its /state shows.
    for index, node in enumerate(nodes):
        added = {p["id"]: p for kind, p in events(api, node, signing_key) if kind == "peer_added"}
        # (replayed from the start, the stream also holds the joins before this node's own)
        assert {n.id for n in nodes[index + 1 :]} <= set(added) <= {n.id for n in nodes} - {node.id}
        for peer_id, payload in added.items():
            assert payload["psk"] == views[node.id][peer_id]["psk"]
            assert payload["public_key"] == views[node.id][peer_id]["public_key"]
            assert payload["allowed_ips"] == views[node.id][peer_id]["allowed_ips"]


def test_pair_keys_never_reach_the_table_or_an_operator_read(api: Api, tenant: Tenant) -> None:
    a, _ = join(api, tenant, "web-01")
    b, b_body = join(api, tenant, "web-02")
    psk = b_body["peers"][0]["psk"]
    listing = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=tenant.admin_token)
    assert psk not in listing.text
    assert psk not in json.dumps(api.table_items(), default=str)
    assert state_peers(api, a)[b.id]["psk"] == psk


def test_deregistration_removes_the_peer_and_tells_the_others(api: Api, tenant: Tenant) -> None:
    a, a_body = join(api, tenant, "web-01")
    b, _ = join(api, tenant, "web-02")
    version = mesh_version(api, tenant)
    assert api.request("POST", f"/v1/nodes/{b.id}/deregister", token=b.nsk).status_code == 200
    assert mesh_version(api, tenant) == version + 1
    assert state_peers(api, a) == {}
    removed = [p for kind, p in events(api, a, a_body["signing_public_key"]) if kind == "peer_removed"]
    assert [p["peer_id"] for p in removed] == [b.id]


# Key rotation -------------------------------------------------------------------------------------
def test_key_rotation_changes_every_pair_key_and_tells_the_peers(api: Api, tenant: Tenant) -> None:
    a, a_body = join(api, tenant, "web-01")
    b, _ = join(api, tenant, "web-02")
    c, _ = join(api, tenant, "web-03")
    before = state_peers(api, a)
    version = mesh_version(api, tenant)
    key = new_public_key()

    response = rotate(api, a, key)

    assert response.status_code == 200, response.text
    updated = {peer["id"]: peer for peer in response.json["updated_peers"]}
    assert set(updated) == {b.id, c.id}
    assert mesh_version(api, tenant) == version + 1
    for peer in (b, c):
        assert updated[peer.id]["psk"] != before[peer.id]["psk"]
        # what the rotating node got is what each peer now computes
        assert state_peers(api, peer)[a.id]["psk"] == updated[peer.id]["psk"]
        assert state_peers(api, peer)[a.id]["public_key"] == key
        rotated = [p for kind, p in events(api, peer, a_body["signing_public_key"]) if kind == "peer_key_rotated"]
        assert [(p["peer_id"], p["id"], p["public_key"], p["psk"]) for p in rotated] == [
            (a.id, a.id, key, updated[peer.id]["psk"])
        ]
    assert state_peers(api, a) == updated


@pytest.mark.parametrize(
    "public_key",
    ["not base64!", base64.b64encode(b"x" * 31).decode(), base64.b64encode(b"x" * 33).decode(), "", "QUJD"],
)
def test_a_malformed_public_key_is_422_and_writes_nothing(api: Api, tenant: Tenant, public_key: str) -> None:
    a, _ = join(api, tenant, "web-01")
    before = api.table_items()
    assert_problem(rotate(api, a, public_key), 422, "public_key_invalid")
    assert api.table_items() == before


def test_key_rotation_refuses_a_missing_revoked_or_foreign_key_and_writes_nothing(api: Api, tenant: Tenant) -> None:
    a, _ = join(api, tenant, "web-01")
    b, _ = join(api, tenant, "web-02")
    gone, _ = join(api, tenant, "web-03")
    assert api.request("POST", f"/v1/nodes/{gone.id}/deregister", token=gone.nsk).status_code == 200
    before = api.table_items()
    body = {"node_id": a.id, "new_public_key": new_public_key()}
    assert_problem(api.request("POST", "/v1/keys/rotate", json_body=body), 401, "nsk_revoked")
    assert_problem(rotate(api, a, new_public_key(), token=b.nsk), 403, "nsk_node_mismatch")
    assert_problem(rotate(api, gone, new_public_key()), 401, "nsk_revoked")
    # the credential is checked before the body: a bad body with no key is still 401
    assert_problem(api.request("POST", "/v1/keys/rotate", json_body={"node_id": 5}), 401, "nsk_revoked")
    assert_problem(
        api.request("POST", "/v1/keys/rotate", json_body={"node_id": a.id}, token=a.nsk), 400, "invalid_body"
    )
    assert api.table_items() == before


def test_rotation_clears_an_operator_request(api: Api, tenant: Tenant) -> None:
    a, _ = join(api, tenant, "web-01")
    requested = api.request(
        "POST", f"/v1/projects/{tenant.project_id}/nodes/{a.id}/rotate-keys", token=tenant.admin_token
    )
    assert requested.status_code == 202, requested.text
    assert rotate(api, a, new_public_key()).status_code == 200
    heartbeat = api.request("POST", f"/v1/nodes/{a.id}/heartbeat", token=a.nsk)
    assert heartbeat.json == {"reconcile": False, "rotate_keys": False}


# Endpoints ----------------------------------------------------------------------------------------
def test_a_new_endpoint_is_announced_and_answered_from_the_snapshot(api: Api, tenant: Tenant) -> None:
    a, a_body = join(api, tenant, "web-01")
    b, _ = join(api, tenant, "web-02")
    assert report_endpoint(api, b, "198.51.100.5:51820").json == {"peer_endpoints": []}
    version = mesh_version(api, tenant)

    response = report_endpoint(api, a, "203.0.113.10:51820")

    assert response.status_code == 200, response.text
    assert response.json == {"peer_endpoints": [{"peer_id": b.id, "endpoint": "198.51.100.5:51820"}]}
    assert mesh_version(api, tenant) == version + 1
    assert state_peers(api, b)[a.id]["endpoint"] == "203.0.113.10:51820"
    changed = [p for kind, p in events(api, b, a_body["signing_public_key"]) if kind == "peer_endpoint_changed"]
    assert [(p["peer_id"], p["endpoint"]) for p in changed] == [(a.id, "203.0.113.10:51820")]
    # the agent re-adds the whole peer from this event: it carries the key and the pair key
    assert changed[0]["psk"] == state_peers(api, b)[a.id]["psk"]


def test_the_same_endpoint_again_writes_nothing(api: Api, tenant: Tenant) -> None:
    a, _ = join(api, tenant, "web-01")
    assert report_endpoint(api, a, "[2001:db8::1]:51820").status_code == 200
    before = api.table_items()
    # the same address spelled differently is the same endpoint
    response = report_endpoint(api, a, "[2001:0db8:0:0::1]:51820")
    assert response.status_code == 200, response.text
    assert api.table_items() == before


@pytest.mark.parametrize(
    "endpoint", ["203.0.113.10", "203.0.113.10:0", "203.0.113.10:65536", "::1:51820", "[nope]:1", "bad_host:1", ""]
)
def test_a_malformed_endpoint_is_400_and_writes_nothing(api: Api, tenant: Tenant, endpoint: str) -> None:
    a, _ = join(api, tenant, "web-01")
    before = api.table_items()
    assert_problem(report_endpoint(api, a, endpoint), 400, "invalid_endpoint")
    assert api.table_items() == before


def test_endpoint_refuses_a_revoked_or_foreign_key_before_the_body(api: Api, tenant: Tenant) -> None:
    a, _ = join(api, tenant, "web-01")
    b, _ = join(api, tenant, "web-02")
    before = api.table_items()
    path = f"/v1/nodes/{a.id}/endpoint"
    assert_problem(api.request("PUT", path, json_body={"public_endpoint": 1}, token=b.nsk), 403, "nsk_node_mismatch")
    assert_problem(api.request("PUT", path, json_body={"public_endpoint": "h:1"}), 401, "nsk_revoked")
    assert_problem(api.request("PUT", path, json_body={"public_endpoint": 1}, token=a.nsk), 400, "invalid_body")
    assert api.table_items() == before


# Operator rotation requests -----------------------------------------------------------------------
def test_an_operator_request_reaches_the_heartbeat_and_the_stream(api: Api, tenant: Tenant) -> None:
    a, a_body = join(api, tenant, "web-01")
    response = api.request(
        "POST", f"/v1/projects/{tenant.project_id}/nodes/{a.id}/rotate-keys", token=tenant.admin_token
    )
    assert response.status_code == 202, response.text
    assert response.json == {"node_id": a.id, "rotate_keys": True}
    heartbeat = api.request("POST", f"/v1/nodes/{a.id}/heartbeat", token=a.nsk)
    assert heartbeat.json["rotate_keys"] is True
    assert [p["node_id"] for kind, p in events(api, a, a_body["signing_public_key"]) if kind == "rotate_keys"] == [a.id]


def test_operator_rotation_requests_refused_write_nothing(api: Api, tenant: Tenant) -> None:
    a, _ = join(api, tenant, "web-01")
    gone, _ = join(api, tenant, "web-02")
    assert api.request("POST", f"/v1/nodes/{gone.id}/deregister", token=gone.nsk).status_code == 200
    other = api.request(
        "POST", f"/v1/domains/{tenant.domain_id}/projects", json_body={"name": "o"}, token=tenant.admin_token
    )
    before = api.table_items()

    def request(project_id: str, node_id: str, token: str) -> Any:
        return api.request("POST", f"/v1/projects/{project_id}/nodes/{node_id}/rotate-keys", token=token)

    problem = assert_problem(
        request(tenant.project_id, a.id, operator_token("viewer@example.com")), 403, "rebac_denied"
    )
    assert problem["relation_path"][-1] == f"project:{tenant.project_id}#operator"
    assert_problem(
        request(tenant.project_id, "01900000-0000-7000-8000-000000000000", tenant.admin_token), 404, "node_not_found"
    )
    assert_problem(request(other.json["id"], a.id, tenant.admin_token), 404, "node_not_found")
    assert_problem(request(tenant.project_id, gone.id, tenant.admin_token), 409, "node_deregistered")
    assert api.table_items() == before


# The peer snapshot --------------------------------------------------------------------------------
class Calls:
    """The AWS requests the library's clients make."""

    def __init__(self) -> None:
        self.made: Counter[str] = Counter()
        for client in (aws.dynamodb(), aws.s3()):
            client.meta.events.register("before-call", self.on_call)

    def on_call(self, model: Any, **_: Any) -> None:
        self.made[f"{model.service_model.service_name}:{model.name}"] += 1

    def take(self) -> Counter[str]:
        taken, self.made = self.made, Counter()
        return taken


@pytest.fixture
def calls() -> Iterator[Calls]:
    counting = Calls()
    yield counting
    for client in (aws.dynamodb(), aws.s3()):
        client.meta.events.unregister("before-call", counting.on_call)


def test_state_with_a_warm_snapshot_reads_the_mesh_version_only(api: Api, tenant: Tenant, calls: Calls) -> None:
    a, _ = join(api, tenant, "web-01")
    join(api, tenant, "web-02")
    state_peers(api, a)
    calls.take()

    peers = state_peers(api, a)

    assert len(peers) == 1
    # the node's credential and record, the signing key's rotation count, the project's mesh
    # version; its open invocations, the project's secrets and policies, the node's data entries
    assert calls.take() == Counter({"dynamodb:GetItem": 3, "dynamodb:Query": 4})


def test_a_cold_container_gets_the_snapshot_with_one_s3_get(api: Api, tenant: Tenant, calls: Calls) -> None:
    a, _ = join(api, tenant, "web-01")
    join(api, tenant, "web-02")
    warm = state_peers(api, a)
    mesh.CACHE.clear()
    calls.take()

    assert state_peers(api, a) == warm
    assert calls.take() == Counter({"dynamodb:GetItem": 3, "dynamodb:Query": 4, "s3:GetObject": 1})


def snapshot_object(api: Api, tenant: Tenant, version: int) -> bytes:
    body = boto3.client("s3").get_object(
        Bucket=api.stack.refs["OutputBucket"], Key=keys.mesh_snapshot_object(tenant.project_id, version)
    )["Body"]
    return bytes(body.read())


def test_two_builders_of_one_version_write_the_same_object(api: Api, tenant: Tenant) -> None:
    from orchestrator.services.context import context_for

    join(api, tenant, "web-01")
    join(api, tenant, "web-02")
    version = mesh_version(api, tenant)
    first = snapshot_object(api, tenant, version)
    boto3.client("s3").delete_object(
        Bucket=api.stack.refs["OutputBucket"], Key=keys.mesh_snapshot_object(tenant.project_id, version)
    )
    mesh.CACHE.clear()
    with ThreadPoolExecutor(max_workers=2) as pool:
        built = list(pool.map(lambda _: mesh.snapshot(context_for("test"), tenant.project_id), range(2)))
    assert snapshot_object(api, tenant, version) == first
    assert {b.mesh_version for b in built} == {version}
    assert len(json.loads(gzip.decompress(first))["peers"]) == 2


def test_a_reader_never_serves_an_older_version_than_it_read(api: Api, tenant: Tenant) -> None:
    a, _ = join(api, tenant, "web-01")
    b, _ = join(api, tenant, "web-02")
    assert set(state_peers(api, a)) == {b.id}
    stale = mesh.CACHE.get(tenant.project_id, 0)
    assert stale is not None
    c, _ = join(api, tenant, "web-03")
    # a container that still holds the older version in memory
    mesh.CACHE.clear()
    mesh.CACHE.put(tenant.project_id, stale)
    assert set(state_peers(api, a)) == {b.id, c.id}


# Addresses and peers under concurrency ------------------------------------------------------------
def test_parallel_registrations_rotations_and_departures_keep_addresses_unique(api: Api, tenant: Tenant) -> None:
    tokens = [mint_enrollment_token(api, tenant) for _ in range(10)]

    def register(indexed: tuple[int, str]) -> RegisteredNode:
        index, token = indexed
        body = {"token": token, "hostname": f"web-{index:02d}", "public_key": new_public_key()}
        response = api.request("POST", "/v1/register", json_body=body)
        assert response.status_code == 201, response.text
        return RegisteredNode(response.json["node_id"], response.json["node_secret_key"], f"web-{index:02d}")

    with ThreadPoolExecutor(max_workers=5) as pool:
        nodes = list(pool.map(register, enumerate(tokens)))
        leaving, staying = nodes[:3], nodes[3:]
        moves = [pool.submit(api.request, "POST", f"/v1/nodes/{n.id}/deregister", token=n.nsk) for n in leaving]
        moves += [pool.submit(rotate, api, n, new_public_key()) for n in staying[:4]]
        assert all(move.result().status_code == 200 for move in moves)

    claims = [
        item
        for item in api.table_items()
        if item["PK"]["S"] == f"PROJECT#{tenant.project_id}" and item["SK"]["S"].startswith("MESHIP#")
    ]
    holders = [claim["node_id"]["S"] for claim in claims]
    assert sorted(holders) == sorted(n.id for n in staying)
    addresses = {n.id: state_peers(api, n) for n in staying}
    for node in staying:
        ips = [peer["mesh_ip"] for peer in addresses[node.id].values()]
        assert len(ips) == len(set(ips)) == len(staying) - 1
        for peer_id, peer in addresses[node.id].items():
            assert addresses[peer_id][node.id]["psk"] == peer["psk"]


@pytest.mark.parametrize(
    "public_key",
    [base64.b64encode(bytes(31)).decode(), "not base64!", base64.b64encode(bytes(33)).decode()],
)
def test_a_malformed_public_key_at_registration_is_400_and_writes_nothing(
    api: Api, tenant: Tenant, public_key: str
) -> None:
    body = {"token": mint_enrollment_token(api, tenant), "hostname": "bad-key", "public_key": public_key}
    before = api.table_items()
    problem = assert_problem(api.request("POST", "/v1/register", json_body=body), 400, "invalid_body")
    assert any("public_key" in str(error) for error in problem["errors"]), problem
    assert api.table_items() == before


def test_a_node_registered_without_a_mesh_key_is_nobodys_peer(api: Api, tenant: Tenant) -> None:
    keyed, _ = join(api, tenant, "keyed-01")
    body = {"token": mint_enrollment_token(api, tenant), "hostname": "keyless-01"}
    keyless = api.request("POST", "/v1/register", json_body=body)
    assert keyless.status_code == 201, keyless.text
    # It gets the others as peers, but nobody gets it: no peer_added, not in their /state.
    assert [peer["id"] for peer in keyless.json["peers"]] == [keyed.id]
    assert keyless.json["node_id"] not in state_peers(api, keyed)
    stream = api.request("GET", f"/v1/nodes/{keyed.id}/events", token=keyed.nsk, headers={"Last-Event-ID": "0"})
    assert "peer_added" not in stream.text


def test_a_snapshot_outage_after_the_registration_committed_still_hands_out_the_nsk(
    api: Api, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 201 is the only answer with the node's key: the peers are left out, not the key."""
    from orchestrator.errors import DependencyUnavailable

    join(api, tenant, "web-01")

    def unavailable(*_: Any, **__: Any) -> Any:
        raise DependencyUnavailable("The object store is unavailable.")

    monkeypatch.setattr(mesh, "peers_for", unavailable)
    node, body = join(api, tenant, "web-02")
    assert body["peers"] == []
    monkeypatch.undo()
    # The key works, and the first /state brings the peers.
    assert len(state_peers(api, node)) == 1
