"""Against the local server, speaking exactly as the real node agent (`plexd`) does
(tests/e2e/plexd_wire.py): its bytes, headers, encodings, nil slices as ``null``, its
ack/result bodies, its SSE reading and its Go-canonical signature check. Operator reads are
parsed with the published SDK's field types (tests/e2e/sdk_models.py)."""

from __future__ import annotations

import base64
import gzip
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.e2e.conftest import bearer, local_aws, local_services, operator_jwt
from tests.e2e.plexd_wire import GoAgent, GoVerifier, SseRead, agent_ack, agent_result, read_sse
from tests.e2e.sdk_models import Execution, ExecutionList, PermissionDenied, Problem

pytestmark = pytest.mark.e2e


@pytest.fixture
def agent(local_server: dict[str, Any]) -> GoAgent:
    return GoAgent(local_server["server"])


@pytest.fixture
def project(local_server: dict[str, Any], http: httpx.Client) -> dict[str, Any]:
    """A fresh Domain and Project administered by the demo operator."""
    admin = bearer(local_server["operator_token"])
    domain = http.post("/v1/domains", headers=admin, json={"name": f"agent-{time.monotonic_ns()}"}).json()
    made = http.post(f"/v1/domains/{domain['id']}/projects", headers=admin, json={"name": "agents"}).json()
    return {"id": made["id"], "domain_id": domain["id"], "admin": admin}


def enrollment_token(http: httpx.Client, project: dict[str, Any]) -> str:
    response = http.post(f"/v1/projects/{project['id']}/enrollment-tokens", headers=project["admin"], json={})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def agent_capabilities() -> dict[str, Any]:
    """``CapabilitiesPayload`` as Go marshals it: nil slices are ``null``, no omitempty on them."""
    restart = {"name": "service", "type": "string", "required": True, "description": "unit"}
    actions = [{"name": "restart-agent", "description": "Restart a service", "parameters": [restart]}]
    actions += [{"name": f"diag-{i}", "description": f"#{i} <safe> & quick", "parameters": None} for i in range(20)]
    return {"binary": {"version": "1.4.2", "checksum": "sha256:" + "b" * 64}, "builtin_actions": actions, "hooks": None}


def register(agent: GoAgent, token: str, hostname: str, **extra: Any) -> dict[str, Any]:
    public_key = base64.b64encode(uuid.uuid4().bytes * 2).decode()  # a 32-byte curve25519 key's shape
    body = {"token": token, "public_key": public_key, "hostname": hostname, "metadata": {"os": "linux"}, **extra}
    reply = agent.request("POST", "/v1/register", body)
    assert reply.status == 201, reply.body
    registered: dict[str, Any] = reply.json()
    return registered


def test_ping_answers_the_agents_health_check(agent: GoAgent) -> None:
    reply = agent.request("GET", "/v1/ping")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"status": "ok"}


def test_the_agents_registration_is_gzipped_and_its_answer_is_what_it_loads(
    agent: GoAgent, http: httpx.Client, project: dict[str, Any]
) -> None:
    # Given the agent's registration with its capabilities: over 1 KiB, so gzipped
    registered = register(agent, enrollment_token(http, project), "agent-01", capabilities=agent_capabilities())
    assert agent.sent[-1]["Content-Encoding"] == "gzip"
    # Then its RegisterResponse holds what up.go and LoadIdentity require
    assert uuid.UUID(registered["node_id"])
    assert registered["mesh_ip"]  # LoadIdentity refuses an empty mesh_ip
    assert len(base64.b64decode(registered["signing_public_key"], validate=True)) == 32
    assert len(base64.b64decode(registered["node_secret_key"], validate=True)) == 32
    assert isinstance(registered["peers"], list)
    # And the capabilities with Go's null slices were taken as empty lists
    listed = http.get(f"/v1/projects/{project['id']}/nodes", headers=project["admin"]).json()["items"]
    declared = set(listed[0]["capabilities"]["builtin_actions"])
    assert {"restart-agent", "diag-0", "diag-19"} <= declared


def test_an_agent_heartbeat_with_zero_values_and_a_capabilities_update_are_accepted(
    agent: GoAgent, http: httpx.Client, project: dict[str, Any]
) -> None:
    node = register(agent, enrollment_token(http, project), "agent-02")
    nsk = node["node_secret_key"]
    # The shipped agent never sets its heartbeat builder: every field is Go's zero value
    zero = {"node_id": "", "timestamp": "0001-01-01T00:00:00Z", "status": "", "uptime": "", "binary_checksum": ""}
    reply = agent.request("POST", f"/v1/nodes/{node['node_id']}/heartbeat", zero, token=nsk)
    assert reply.status == 200, reply.body
    flags = reply.json()
    assert isinstance(flags["reconcile"], bool) and isinstance(flags["rotate_keys"], bool)
    reply = agent.request("PUT", f"/v1/nodes/{node['node_id']}/capabilities", agent_capabilities(), token=nsk)
    assert reply.status == 200, reply.body
    assert agent.sent[-1]["Content-Encoding"] == "gzip"


def stream_until(agent: GoAgent, node: dict[str, Any], event_type: str, last_id: str = "") -> tuple[SseRead, Any]:
    """Read the stream as the agent does (reconnecting at once on a clean end) until an
    ``event_type`` event arrives."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        read = read_sse(agent, node["node_id"], node["node_secret_key"], last_id)
        assert read.status == 200
        last_id = read.last_event_id
        for event in read.events:
            if event.event == event_type:
                return read, event
    raise AssertionError(f"no {event_type} event")


def test_the_agent_receives_verifies_acks_and_reports_an_action(
    agent: GoAgent, http: httpx.Client, project: dict[str, Any]
) -> None:
    node = register(agent, enrollment_token(http, project), "agent-03", capabilities=agent_capabilities())
    nsk, node_id = node["node_secret_key"], node["node_id"]
    verifier = GoVerifier([node["signing_public_key"]])
    # Given an operator dispatch (the agent's ActionRequest takes string parameters only)
    dispatched = http.post(
        f"/v1/projects/{project['id']}/executions:dispatch",
        headers=project["admin"],
        json={"action": "restart-agent", "node_id": node_id, "parameters": {"service": "nginx <main> & co"}},
    )
    assert dispatched.status_code == 201, dispatched.text
    execution_id = dispatched.json()["id"]

    # When the agent reads its stream
    read, event = stream_until(agent, node, "action_request")
    assert read.headers["content-type"].startswith("text/event-stream")
    assert read.headers["cache-control"] == "no-cache"
    assert "content-encoding" not in read.headers
    assert "keep-alive" in read.comments
    assert event.id and event.id == json.loads(event.data)["event_id"]
    # Then the envelope verifies over Go's re-marshalled bytes, and the payload decodes into its ActionRequest
    payload = verifier.verify(event.data)
    assert payload["execution_id"] == execution_id
    assert payload["action"] == "restart-agent"
    assert all(isinstance(v, str) for v in payload["parameters"].values())  # map[string]string
    assert payload["parameters"] == {"service": "nginx <main> & co"}
    assert payload["timeout"] == "300s"
    assert all(isinstance(v, str) for v in payload["triggered_by"].values() if v is not None)
    # And a reconnect with Last-Event-ID does not send it again
    again = read_sse(agent, node_id, nsk, read.last_event_id)
    assert again.status == 200 and all(e.event != "action_request" for e in again.events)

    # When the agent acks and posts its result (stdout over 1 KiB: gzipped)
    reply = agent.request(
        "POST", f"/v1/nodes/{node_id}/executions/{execution_id}/ack", agent_ack(execution_id), token=nsk
    )
    assert reply.status == 200, reply.body
    stdout = "".join(f"nginx: worker {i} restarted <ok> & ready\n" for i in range(120))
    result = agent_result(execution_id, stdout)
    reply = agent.request("POST", f"/v1/nodes/{node_id}/executions/{execution_id}/result", result, token=nsk)
    assert reply.status == 200, reply.body
    assert agent.sent[-1]["Content-Encoding"] == "gzip"

    # Then the operator SDK reads the Execution and the list page, output bytes included
    got = http.get(f"/v1/projects/{project['id']}/executions/{execution_id}", headers=project["admin"])
    execution = Execution.from_dict(got.json())
    (target,) = execution.targets
    assert target.status.value == "succeeded" and target.output_ref is not None
    assert target.output_ref.kind == "inline" and isinstance(target.output_ref.inline_bytes, str)
    assert json.loads(base64.b64decode(target.output_ref.inline_bytes)) == {"stdout": stdout, "stderr": ""}
    page = http.get(f"/v1/projects/{project['id']}/executions", headers=project["admin"])
    listed = ExecutionList.from_dict(page.json())
    assert [e.targets[0].node_id for e in listed.items] == [uuid.UUID(node_id)]

    # And after a deregistration (no body at all) the agent's key stops working
    reply = agent.request("POST", f"/v1/nodes/{node_id}/deregister", token=nsk)
    assert reply.status == 200, reply.body
    assert "Content-Type" not in agent.sent[-1]
    assert read_sse(agent, node_id, nsk).status == 401


def test_answers_the_agent_accepts_gzip_for_are_gzipped_and_errors_are_plain(
    agent: GoAgent, http: httpx.Client, project: dict[str, Any]
) -> None:
    node = register(agent, enrollment_token(http, project), "agent-04", capabilities=agent_capabilities())
    # A large answer (the node's state with its open invocations) comes gzipped; the agent inflates it
    for _ in range(3):
        dispatched = http.post(
            f"/v1/projects/{project['id']}/executions:dispatch",
            headers=project["admin"],
            json={"action": "restart-agent", "node_id": node["node_id"], "parameters": {"service": "x" * 300}},
        )
        assert dispatched.status_code == 201, dispatched.text
    reply = agent.request("GET", f"/v1/nodes/{node['node_id']}/state", token=node["node_secret_key"])
    assert reply.status == 200
    assert reply.headers["content-encoding"] == "gzip" and reply.raw[:2] == b"\x1f\x8b"
    assert len(reply.json()["executions"]) == 3
    # An error is read raw by the agent: never gzipped
    reply = agent.request("GET", f"/v1/nodes/{node['node_id']}/state", token=base64.b64encode(bytes(32)).decode())
    assert reply.status == 401 and "content-encoding" not in reply.headers
    assert Problem.from_dict(json.loads(reply.body)).code == "nsk_revoked"


def test_refusals_of_encodings_leave_the_token_unused(
    agent: GoAgent, http: httpx.Client, project: dict[str, Any], local_server: dict[str, Any]
) -> None:
    token = enrollment_token(http, project)
    body = json.dumps({"token": token, "hostname": "agent-05"}).encode()
    for encoding, data, status, code in (
        ("br", body, 415, "unsupported_content_encoding"),
        ("gzip", gzip.compress(body)[:-8], 400, "invalid_body"),
    ):
        refused = httpx.post(
            f"{local_server['server']}/v1/register",
            content=data,
            headers={"Content-Type": "application/json", "Content-Encoding": encoding},
        )
        problem = Problem.from_dict(refused.json())
        assert (refused.status_code, problem.code) == (status, code)
        assert problem.instance == "/v1/register"
    assert http.get(f"/v1/projects/{project['id']}/nodes", headers=project["admin"]).json()["items"] == []
    register(agent, token, "agent-05")  # the token was not used up


def test_a_gzip_bomb_is_refused_and_the_server_keeps_answering(agent: GoAgent, local_server: dict[str, Any]) -> None:
    from tests.unit.test_request_body import gzip_bomb

    bomb = gzip_bomb(200 * 1024 * 1024)
    refused = httpx.post(
        f"{local_server['server']}/v1/register",
        content=bomb,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        timeout=60,
    )
    assert refused.status_code == 413
    assert Problem.from_dict(refused.json()).code == "request_body_too_large"
    assert agent.request("GET", "/v1/ping").json() == {"status": "ok"}


def test_a_denial_parses_as_the_sdks_permission_denied(
    http: httpx.Client, project: dict[str, Any], local_server: dict[str, Any]
) -> None:
    # Given a valid operator token of a subject with no relation on the project
    stranger = operator_jwt(local_server, "stranger@example.com")
    # When it lists the project's executions
    denied = http.get(f"/v1/projects/{project['id']}/executions", headers=bearer(stranger))
    # Then the 403 parses as the SDK's PermissionDenied
    assert denied.status_code == 403
    problem = PermissionDenied.from_dict(denied.json())
    assert problem.code == "rebac_denied" and problem.reason == "insufficient_relation"
    assert problem.relation_path and problem.relation_path[0] == "user:stranger@example.com"


def test_the_server_replaces_a_killed_worker_and_keeps_answering(
    agent: GoAgent, http: httpx.Client, project: dict[str, Any], local_server: dict[str, Any]
) -> None:
    import os
    import signal
    from pathlib import Path

    from tests.e2e.conftest import local_services

    # Given the local server's worker processes (its "Lambda containers")
    server = local_services(local_server)["pid"]
    workers = [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit()
        and (p / "stat").exists()
        and int((p / "stat").read_text().split(")")[-1].split()[1]) == server
        and b"spawn_main" in (p / "cmdline").read_bytes()
    ]
    assert workers, "the server has worker processes"
    # When one is killed
    os.kill(workers[0], signal.SIGKILL)
    # Then every request still gets an answer from a handler (no gateway 5xx), operator and node alike
    for _ in range(8):
        assert agent.request("GET", "/v1/ping").status == 200
        listed = http.get(f"/v1/projects/{project['id']}/nodes", headers=project["admin"])
        assert listed.status_code == 200, listed.text


def test_held_event_streams_never_make_other_requests_wait(
    agent: GoAgent, http: httpx.Client, project: dict[str, Any]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    node = register(agent, enrollment_token(http, project), "agent-held")

    def hold() -> float:
        """One stream request with nothing to deliver: held for the server's hold, then ended."""
        assert read_sse(agent, node["node_id"], node["node_secret_key"], "ffffffff").status == 200
        return time.monotonic()

    # Given more held streams than the server has workers
    with ThreadPoolExecutor(max_workers=6) as streams:
        held = [streams.submit(hold) for _ in range(6)]
        time.sleep(0.3)
        # When an operator and a node make ordinary requests meanwhile
        listed = http.get(f"/v1/projects/{project['id']}/nodes", headers=project["admin"])
        beat = agent.request("POST", f"/v1/nodes/{node['node_id']}/heartbeat", {}, token=node["node_secret_key"])
        answered = time.monotonic()
        ended = [f.result() for f in held]
    # Then they were answered before any held stream ended: no worker of theirs was held
    assert listed.status_code == 200 and beat.status == 200
    assert answered < min(ended)


def test_the_agent_learns_of_a_secret_fetches_it_and_decrypts_it_with_its_nsk(
    agent: GoAgent, http: httpx.Client, project: dict[str, Any]
) -> None:
    node = register(agent, enrollment_token(http, project), "agent-secrets", capabilities=agent_capabilities())
    nsk, node_id = node["node_secret_key"], node["node_id"]
    verifier = GoVerifier([node["signing_public_key"]])
    # Given an operator secret granted by the agent's labels (its registration metadata)
    value = "-----BEGIN KEY-----\n" + "A" * 2000 + "\n-----END KEY-----\n"  # an answer over 1 KiB: gzipped
    put = http.put(
        f"/v1/projects/{project['id']}/secrets/tls-key",
        headers=project["admin"],
        json={"value": value, "grants": {"selector": "os=linux"}},
    )
    assert put.status_code == 201, put.text
    # When the agent reads node_secrets_updated (names and versions only) and fetches the secret
    _, event = stream_until(agent, node, "node_secrets_updated")
    payload = verifier.verify(event.data)
    assert payload["secret_refs"] == [{"key": "tls-key", "version": 1}]
    assert "AAAA" not in event.data
    reply = agent.request("GET", f"/v1/nodes/{node_id}/secrets/tls-key", token=nsk)
    assert reply.status == 200, reply.body
    answer = reply.json()
    assert set(answer) == {"key", "ciphertext", "nonce", "version"}
    # Then DecryptSecret's steps (standard base64, 12-byte nonce, AES-256-GCM, no AAD) give the value
    nonce = base64.b64decode(answer["nonce"], validate=True)
    assert len(nonce) == 12
    key = base64.b64decode(nsk, validate=True)
    assert len(key) == 32
    plaintext = AESGCM(key).decrypt(nonce, base64.b64decode(answer["ciphertext"], validate=True), None)
    assert plaintext.decode() == value and answer["version"] == 1
    # And /state lists it; another secret not granted is 403, an unknown one 404
    state = agent.request("GET", f"/v1/nodes/{node_id}/state", token=nsk).json()
    assert state["secret_refs"] == [{"key": "tls-key", "version": 1}]
    http.put(
        f"/v1/projects/{project['id']}/secrets/other",
        headers=project["admin"],
        json={"value": "x", "grants": {"selector": "os=windows"}},
    )
    assert agent.request("GET", f"/v1/nodes/{node_id}/secrets/other", token=nsk).status == 403
    assert agent.request("GET", f"/v1/nodes/{node_id}/secrets/missing", token=nsk).status == 404


# --- the mesh (SPEC §18), as the agent speaks it ------------------------------------------------


def curve25519_public_key() -> str:
    """``wgtypes.GeneratePrivateKey().PublicKey().String()``: standard base64 of 32 bytes."""
    return base64.b64encode(
        X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ).decode()


def mesh_items(local_server: dict[str, Any], project_id: str, node_ids: list[str]) -> list[dict[str, Any]]:
    """Every table item of the project's and the nodes' partitions (feed included), read consistently."""
    client, table = local_aws(local_server, "dynamodb"), local_services(local_server)["table"]
    partitions = [f"PROJECT#{project_id}", f"PROJECT#{project_id}#FEED", *(f"NODE#{n}" for n in node_ids)]
    items: list[dict[str, Any]] = []
    for partition in partitions:
        pages = client.get_paginator("query").paginate(
            TableName=table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": partition}},
            ConsistentRead=True,
        )
        items += [item for page in pages for item in page["Items"]]
    return items


def test_the_agent_joins_the_mesh_reports_its_endpoint_and_rotates_its_key(
    agent: GoAgent, http: httpx.Client, project: dict[str, Any], local_server: dict[str, Any]
) -> None:
    # Given two agents registered with real Curve25519 keys, the first alone in its mesh
    first_key, second_key = curve25519_public_key(), curve25519_public_key()
    first = register(agent, enrollment_token(http, project), "mesh-01", public_key=first_key)
    assert first["peers"] == []
    second = register(agent, enrollment_token(http, project), "mesh-02", public_key=second_key)
    a, b = first["node_id"], second["node_id"]
    # Then the second's 201 lists the first as the agent's api.Peer
    (peer,) = second["peers"]
    assert peer == {
        "id": a,
        "public_key": first_key,
        "mesh_ip": first["mesh_ip"],
        "endpoint": "",
        "allowed_ips": [f"{first['mesh_ip']}/32"],
        "psk": peer["psk"],
    }
    assert len(base64.b64decode(peer["psk"], validate=True)) == 32
    # ... and the first's /state lists the second with the same pair key
    state = agent.request("GET", f"/v1/nodes/{a}/state", token=first["node_secret_key"]).json()
    assert [(p["id"], p["public_key"], p["psk"]) for p in state["peers"]] == [(b, second_key, peer["psk"])]

    # When both report their STUN endpoints (EndpointReport, Go JSON)
    report = {"public_endpoint": "198.51.100.5:51820", "nat_type": "full_cone"}
    reply = agent.request("PUT", f"/v1/nodes/{b}/endpoint", report, token=second["node_secret_key"])
    assert reply.status == 200, reply.body
    assert reply.json() == {"peer_endpoints": []}  # the first has reported none yet
    report = {"public_endpoint": "203.0.113.10:51820", "nat_type": "port_restricted_cone"}
    reply = agent.request("PUT", f"/v1/nodes/{a}/endpoint", report, token=first["node_secret_key"])
    # Then each answer lists the peers' known endpoints (EndpointResponse)
    assert reply.status == 200, reply.body
    assert reply.json() == {"peer_endpoints": [{"peer_id": b, "endpoint": "198.51.100.5:51820"}]}

    # When the first rotates its key (KeyRotateRequest: under 1 KiB, so sent plain, as the agent does)
    new_key = curve25519_public_key()
    rotate = {"node_id": a, "new_public_key": new_key}
    reply = agent.request("POST", "/v1/keys/rotate", rotate, token=first["node_secret_key"])
    assert reply.status == 200, reply.body
    assert "Content-Encoding" not in agent.sent[-1]
    # Then its updated_peers carry a new pair key with the second
    (updated,) = reply.json()["updated_peers"]
    assert (updated["id"], updated["public_key"], updated["endpoint"]) == (b, second_key, "198.51.100.5:51820")
    assert updated["psk"] != peer["psk"]

    # And the second's stream carries a verified peer_key_rotated: an api.Peer with the new key,
    # whose pair key is what the second's /state and the first's answer hold
    verifier = GoVerifier([second["signing_public_key"]])
    _, event = stream_until(agent, second, "peer_key_rotated")
    payload = verifier.verify(event.data)
    assert (payload["peer_id"], payload["id"], payload["public_key"]) == (a, a, new_key)
    assert payload["allowed_ips"] == [f"{first['mesh_ip']}/32"] and payload["endpoint"] == "203.0.113.10:51820"
    state = agent.request("GET", f"/v1/nodes/{b}/state", token=second["node_secret_key"]).json()
    assert [(p["id"], p["public_key"], p["psk"]) for p in state["peers"]] == [(a, new_key, payload["psk"])]
    assert payload["psk"] == updated["psk"]

    # When a key of 31 bytes or a malformed endpoint is sent
    before = mesh_items(local_server, project["id"], [a, b])
    short = {"node_id": a, "new_public_key": base64.b64encode(bytes(31)).decode()}
    reply = agent.request("POST", "/v1/keys/rotate", short, token=first["node_secret_key"])
    assert (reply.status, json.loads(reply.body)["code"]) == (422, "public_key_invalid")
    for endpoint in ("203.0.113.10", "203.0.113.10:0", "[::1]:51820x", "bad host:51820"):
        bad = {"public_endpoint": endpoint, "nat_type": "full_cone"}
        reply = agent.request("PUT", f"/v1/nodes/{a}/endpoint", bad, token=first["node_secret_key"])
        assert (reply.status, json.loads(reply.body)["code"]) == (400, "invalid_endpoint"), endpoint
    # Then nothing was written
    assert mesh_items(local_server, project["id"], [a, b]) == before
