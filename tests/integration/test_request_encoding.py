"""Bodies as the real clients send them (SPEC §17), through the gateway as API Gateway passes
them: gzip over 1 KiB on every route with a body, refusals that write nothing, gzipped
answers for clients that accept them, and a Problem's instance as the client's path."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from typing import Any

import pytest

from tests.e2e.plexd_wire import agent_ack, agent_result, go_marshal
from tests.integration.conftest import (
    Api,
    RegisteredNode,
    Tenant,
    assert_problem,
    mint_enrollment_token,
    register_node,
)
from tests.unit.test_request_body import gzip_bomb


def gzipped(value: Any) -> tuple[bytes, dict[str, str]]:
    return gzip.compress(go_marshal(value), 6), {"Content-Type": "application/json", "Content-Encoding": "gzip"}


def big_capabilities() -> dict[str, Any]:
    """About 2 KB of capabilities, as an agent with many builtins declares them."""
    return {
        "binary": {"version": "1.4.2", "checksum": "sha256:" + "a" * 64},
        "builtin_actions": [
            {"name": f"action-{i}", "description": f"does thing number {i} on the node", "parameters": []}
            for i in range(30)
        ],
        "hooks": [],
    }


@pytest.fixture
def node(api: Api, tenant: Tenant) -> RegisteredNode:
    declared = {"name": "restart-agent", "parameters": [{"name": "service"}, {"name": "note"}]}
    return register_node(api, tenant, "web-01", capabilities={"builtin_actions": [declared]})


def registration(token: str, hostname: str) -> dict[str, Any]:
    return {"token": token, "public_key": base64.b64encode(bytes(32)).decode(), "hostname": hostname}


def test_a_gzipped_registration_with_2kb_of_capabilities_is_201(api: Api, tenant: Tenant) -> None:
    body = registration(mint_enrollment_token(api, tenant), "web-01") | {"capabilities": big_capabilities()}
    data, headers = gzipped(body)
    assert len(go_marshal(body)) > 2000 and len(data) < len(go_marshal(body))
    response = api.request("POST", "/v1/register", data=data, headers=headers)
    assert response.status_code == 201, response.text
    listed = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=tenant.admin_token).json["items"]
    assert len(listed[0]["capabilities"]["builtin_actions"]) == 30


@pytest.mark.parametrize("coding", ["identity", "gzip, identity"])
def test_identity_coding_is_the_body_as_it_is(api: Api, tenant: Tenant, coding: str) -> None:
    body = registration(mint_enrollment_token(api, tenant), "web-01")
    data = gzip.compress(go_marshal(body)) if "gzip" in coding else go_marshal(body)
    response = api.request("POST", "/v1/register", data=data, headers={"Content-Encoding": coding})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("coding", "mangle", "status", "code"),
    [
        ("br", lambda b: b, 415, "unsupported_content_encoding"),
        ("deflate", zlib.compress, 415, "unsupported_content_encoding"),
        ("gzip", lambda b: b, 400, "invalid_body"),  # plain JSON that says it is gzip
        ("gzip", lambda b: gzip.compress(b)[:-4], 400, "invalid_body"),  # truncated stream
        ("gzip", lambda b: gzip.compress(b)[:10] + bytes(len(b)), 400, "invalid_body"),  # corrupt stream
    ],
)
def test_a_refused_coding_writes_nothing_and_keeps_the_token(
    api: Api, tenant: Tenant, coding: str, mangle: Any, status: int, code: str
) -> None:
    token = mint_enrollment_token(api, tenant)
    before = api.table_items()
    refused = api.request(
        "POST",
        "/v1/register",
        data=mangle(go_marshal(registration(token, "web-01"))),
        headers={"Content-Encoding": coding},
    )
    assert_problem(refused, status, code)
    assert api.table_items() == before
    # The token was not used up: the same registration, sent right, succeeds
    data, headers = gzipped(registration(token, "web-01"))
    assert api.request("POST", "/v1/register", data=data, headers=headers).status_code == 201


def test_a_gzip_bomb_is_413_and_the_api_keeps_answering(api: Api, tenant: Tenant) -> None:
    # Given 200 MiB of zeros in ~200 KB of gzip, well under the gateway's 10 MB
    bomb = gzip_bomb(200 * 1024 * 1024)
    before = api.table_items()
    # When it is sent as a registration
    response = api.request("POST", "/v1/register", data=bomb, headers={"Content-Encoding": "gzip"})
    # Then it is refused while inflating, nothing is written, and the API answers the next request
    problem = assert_problem(response, 413, "request_body_too_large")
    assert "inflates" in problem["detail"]
    assert api.table_items() == before
    assert api.request("GET", "/v1/ping").json == {"status": "ok"}


def test_gzip_is_accepted_by_operator_and_node_routes(api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    # An operator route: a dispatch whose parameters make the body over 1 KiB
    admin = {"Authorization": f"Bearer {tenant.admin_token}"}
    data, headers = gzipped({"action": "restart-agent", "node_id": node.id, "parameters": {"note": "x" * 1500}})
    response = api.request(
        "POST", f"/v1/projects/{tenant.project_id}/executions:dispatch", data=data, headers=headers | admin
    )
    assert response.status_code == 201, response.text
    assert response.json["parameters"] == {"note": "x" * 1500}
    # Node routes: capabilities and a heartbeat over 1 KiB
    nsk = {"Authorization": f"Bearer {node.nsk}"}
    data, headers = gzipped(big_capabilities())
    response = api.request("PUT", f"/v1/nodes/{node.id}/capabilities", data=data, headers=headers | nsk)
    assert response.status_code == 200, response.text
    heartbeat = {"node_id": node.id, "status": "healthy", "uptime": "1h", "bridge": {"routes": ["10.0.0.0/8"] * 100}}
    data, headers = gzipped(heartbeat)
    response = api.request("POST", f"/v1/nodes/{node.id}/heartbeat", data=data, headers=headers | nsk)
    assert response.status_code == 200, response.text


def dispatched(api: Api, tenant: Tenant, node: RegisteredNode, **parameters: str) -> str:
    response = api.request(
        "POST",
        f"/v1/projects/{tenant.project_id}/executions:dispatch",
        json_body={"action": "restart-agent", "node_id": node.id, "parameters": {"service": "nginx", **parameters}},
        token=tenant.admin_token,
    )
    assert response.status_code == 201, response.text
    return str(response.json["id"])


def test_the_agents_gzipped_ack_and_result_with_kilobytes_of_stdout(
    api: Api, tenant: Tenant, node: RegisteredNode
) -> None:
    execution_id = dispatched(api, tenant, node)
    nsk = {"Authorization": f"Bearer {node.nsk}"}
    response = api.request(
        "POST",
        f"/v1/nodes/{node.id}/executions/{execution_id}/ack",
        data=go_marshal(agent_ack(execution_id)),
        headers=nsk | {"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    stdout = "".join(f"line {i}: service nginx restarted <ok> & healthy\n" for i in range(150))  # ~7 KB
    result = agent_result(execution_id, stdout)
    data, headers = gzipped(result)
    response = api.request(
        "POST", f"/v1/nodes/{node.id}/executions/{execution_id}/result", data=data, headers=headers | nsk
    )
    assert response.status_code == 200, response.text
    got = api.request("GET", f"/v1/projects/{tenant.project_id}/executions/{execution_id}", token=tenant.admin_token)
    ref = got.json["targets"][0]["output_ref"]
    assert ref["kind"] == "inline"
    assert json.loads(base64.b64decode(ref["inline_bytes"])) == {"stdout": stdout, "stderr": ""}


def test_answers_over_1kib_are_gzipped_for_clients_that_accept_it(
    api: Api, tenant: Tenant, node: RegisteredNode
) -> None:
    execution_id = dispatched(api, tenant, node, note="x" * 1024)
    path = f"/v1/projects/{tenant.project_id}/executions/{execution_id}"
    plain = api.request("GET", path, token=tenant.admin_token)
    assert "Content-Encoding" not in plain.headers and len(plain.data) > 1024
    squeezed = api.request("GET", path, token=tenant.admin_token, headers={"Accept-Encoding": "gzip"})
    assert squeezed.headers["Content-Encoding"] == "gzip"
    assert squeezed.headers["Vary"] == "Accept-Encoding"
    assert json.loads(gzip.decompress(squeezed.data)) == plain.json
    # Problems stay plain (the agent reads error bodies raw), and so do small answers
    missing = api.request("GET", path + "0", token=tenant.admin_token, headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in missing.headers
    assert_problem(missing, 404, "execution_not_found")
    ping = api.request("GET", "/v1/ping", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in ping.headers and ping.json == {"status": "ok"}


def test_a_problems_instance_is_the_path_the_client_sent(api: Api, tenant: Tenant) -> None:
    # A handler's Problem
    path = f"/v1/projects/{tenant.project_id}/executions/01900000-0000-7000-8000-000000000000"
    assert (
        assert_problem(api.request("GET", path, token=tenant.admin_token), 404, "execution_not_found")["instance"]
        == path
    )
    # And API Gateway's own (no route; no operator token)
    assert assert_problem(api.request("GET", "/v1/nope"), 404, "route_not_found")["instance"] == "/v1/nope"
    nodes = f"/v1/projects/{tenant.project_id}/nodes"
    assert assert_problem(api.request("GET", nodes), 401, "unauthenticated")["instance"] == nodes


def test_ping_needs_no_credential(api: Api) -> None:
    response = api.request("GET", "/v1/ping", headers={"Accept": "application/json", "User-Agent": "plexd/dev"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json == {"status": "ok"}


@pytest.mark.parametrize(
    ("field", "literal"),
    [
        ("parameters", b'{"n": NaN}'),
        ("parameters", b'{"n": 1e400}'),
        ("parameters", b'{"n": 123456789012345678901234567890123456789}'),
        ("parameters", b'{"n": 1e200}'),
        ("parameters", b'{"s": "\\ud800"}'),
        ("parameters", b'{"d": ' + b"[" * 40 + b"]" * 40 + b"}"),
        ("parameters", b'{"big": "' + b"x" * 40_000 + b'"}'),
    ],
)
def test_dispatch_values_dynamodb_cannot_store_are_400_and_write_nothing(
    api: Api, tenant: Tenant, node: RegisteredNode, field: str, literal: bytes
) -> None:
    body = (
        b'{"action":"restart-agent","node_id":"' + node.id.encode() + b'","' + field.encode() + b'":' + literal + b"}"
    )
    before = api.table_items()
    response = api.request(
        "POST",
        f"/v1/projects/{tenant.project_id}/executions:dispatch",
        data=body,
        token=tenant.admin_token,
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 400, "invalid_body")
    assert api.table_items() == before


@pytest.mark.parametrize(
    "body",
    [
        b'{"token":"t","hostname":"web-01","metadata":{"os":"\xff"}}',  # not UTF-8
        b'{"token":"t","hostname":"web-01","metadata":{"os":Infinity}}',
        b'{"token":"t","hostname":"web-01","metadata":{"os":"\\udc00"}}',
        b"[" * 50_000 + b"]" * 50_000,
    ],
)
def test_unauthenticated_register_refuses_unstorable_bodies_with_400(api: Api, body: bytes) -> None:
    before = api.table_items()
    response = api.request("POST", "/v1/register", data=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "invalid_body")
    assert api.table_items() == before
