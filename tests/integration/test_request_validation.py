"""Request bodies are validated by Powertools' event handler (``enable_validation=True``,
``Body()`` models), after the body is decoded as the client sent it, and a refused body is
answered in the order the handlers always answered: an undecodable body first, then what
the operation checks before its body (501 not provisioned, the caller's credential), then
400 ``invalid_body`` naming the field."""

from __future__ import annotations

import gzip
import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator import secrets
from orchestrator.domain import callback_tokens
from orchestrator.domain.credentials import mint_node_secret_key
from orchestrator.settings import get_settings
from tests.e2e.plexd_wire import go_marshal
from tests.integration.conftest import (
    Api,
    RegisteredNode,
    Tenant,
    assert_problem,
    mint_enrollment_token,
    register_node,
)

NODE = "01900000-0000-7000-8000-0000000000aa"
EXECUTION = "01900000-0000-7000-8000-0000000000bb"
BAD_BODIES = {
    "not-an-object": (b"[]", {}),
    "nan": (b'{"status": NaN}', {}),
    "schema": (b'{"zz": [1], "status": 5, "builtin_actions": 5, "relation": 5, "checksum": 5}', {}),
    "gzipped-schema": (gzip.compress(b'{"zz": [1], "status": 5, "builtin_actions": 5}'), {"Content-Encoding": "gzip"}),
    "not-utf8": (b'{"status": "\xff"}', {}),
}


@pytest.fixture
def node(api: Api, tenant: Tenant) -> RegisteredNode:
    return register_node(api, tenant, "web-01", capabilities={"builtin_actions": [{"name": "restart-agent"}]})


@pytest.fixture
def execution(api: Api, tenant: Tenant, node: RegisteredNode) -> str:
    response = api.request(
        "POST",
        f"/v1/projects/{tenant.project_id}/executions:dispatch",
        json_body={"action": "restart-agent", "node_id": node.id},
        token=tenant.admin_token,
    )
    assert response.status_code == 201, response.text
    execution_id = str(response.json["id"])
    # The workflow's fan-out writes the Execution and the node's event on moto's thread: wait
    # for it, so that the refusals below are the only requests that could change the table.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        read = api.request(
            "GET", f"/v1/projects/{tenant.project_id}/executions/{execution_id}", token=tenant.admin_token
        )
        if read.json.get("started_at"):
            return execution_id
        time.sleep(0.05)
    raise AssertionError("the workflow's fan-out did not run")


def body_routes(tenant: Tenant) -> list[tuple[str, str, str | None]]:
    """Every operation with a body: method, path, and the 501 code it answers before its
    body when the table is not configured (``None``: it looks at its body first)."""
    p, d = tenant.project_id, tenant.domain_id
    return [
        ("POST", "/v1/domains", "tenancy_not_provisioned"),
        ("PATCH", f"/v1/domains/{d}", "tenancy_not_provisioned"),
        ("POST", f"/v1/domains/{d}/projects", "tenancy_not_provisioned"),
        ("PUT", f"/v1/domains/{d}/members/bob@example.com", "tenancy_not_provisioned"),
        ("PUT", f"/v1/projects/{p}/members/bob@example.com", "tenancy_not_provisioned"),
        ("POST", f"/v1/projects/{p}/enrollment-tokens", "enrollment_tokens_not_provisioned"),
        ("PATCH", f"/v1/projects/{p}/nodes/{NODE}", "node_labels_not_provisioned"),
        ("POST", f"/v1/projects/{p}/executions:dispatch", "actions_dispatch_not_provisioned"),
        ("POST", f"/v1/projects/{p}/executions/dispatch", "actions_dispatch_not_provisioned"),
        ("POST", f"/v1/projects/{p}/actions/restart-agent:prepare", None),
        ("PUT", f"/v1/projects/{p}/hooks/backup/baseline", None),
        ("POST", "/v1/register", None),
        ("PUT", f"/v1/nodes/{NODE}/capabilities", "node_capabilities_not_provisioned"),
        ("POST", f"/v1/nodes/{NODE}/heartbeat", "node_heartbeat_not_provisioned"),
        ("POST", f"/v1/nodes/{NODE}/executions/{EXECUTION}", "execution_callback_not_provisioned"),
        ("POST", f"/v1/nodes/{NODE}/executions/{EXECUTION}/ack", "execution_callback_not_provisioned"),
        ("POST", f"/v1/nodes/{NODE}/executions/{EXECUTION}/result", "execution_callback_not_provisioned"),
    ]


@pytest.mark.parametrize("bad", sorted(BAD_BODIES))
def test_an_unprovisioned_operation_is_501_before_its_body_is_looked_at(api: Api, tenant: Tenant, bad: str) -> None:
    data, headers = BAD_BODIES[bad]
    del os.environ["TABLE_NAME"]
    get_settings.cache_clear()
    for method, path, code in body_routes(tenant):
        token = mint_node_secret_key() if path.startswith("/v1/nodes/") else tenant.admin_token
        response = api.request(method, path, data=data, headers=headers, token=token)
        if code is None:
            assert_problem(response, 400, "invalid_body")
        else:
            assert_problem(response, 501, code)


NODE_ROUTES = [
    ("PUT", "/v1/nodes/{node}/capabilities"),
    ("POST", "/v1/nodes/{node}/heartbeat"),
    ("POST", "/v1/nodes/{node}/executions/{execution}"),
    ("POST", "/v1/nodes/{node}/executions/{execution}/ack"),
    ("POST", "/v1/nodes/{node}/executions/{execution}/result"),
]


@pytest.mark.parametrize("bad", sorted(BAD_BODIES))
def test_a_bad_key_with_a_bad_body_is_refused_as_a_credential(
    api: Api, node: RegisteredNode, execution: str, bad: str
) -> None:
    data, headers = BAD_BODIES[bad]
    before = api.table_items()
    stranger = mint_node_secret_key()
    expired = callback_tokens.mint(execution, node.id, datetime.now(UTC) - timedelta(minutes=1), secrets.callback_key())
    for method, template in NODE_ROUTES:
        path = template.format(node=node.id, execution=execution)
        assert_problem(api.request(method, path, data=data, headers=headers, token=stranger), 401, "nsk_revoked")
        if "executions" in path:
            refused = api.request(method, path, data=data, headers=headers, token=expired)
            assert_problem(refused, 401, "invalid_callback_token")
        # and to the node itself, the body's own refusal
        assert_problem(api.request(method, path, data=data, headers=headers, token=node.nsk), 400, "invalid_body")
    assert api.table_items() == before


def test_an_empty_body_is_refused_after_the_key_where_a_body_is_required(
    api: Api, node: RegisteredNode, execution: str
) -> None:
    for method, template in NODE_ROUTES:
        path = template.format(node=node.id, execution=execution)
        assert_problem(api.request(method, path, token=mint_node_secret_key()), 401, "nsk_revoked")
        if path.endswith("/heartbeat"):
            assert api.request(method, path, token=node.nsk).status_code == 200  # a heartbeat needs no body
        else:
            problem = assert_problem(api.request(method, path, token=node.nsk), 400, "invalid_body")
            assert problem["detail"] == "A JSON object body is required."


def test_an_undecodable_body_is_refused_before_the_key_is_read(api: Api, node: RegisteredNode, execution: str) -> None:
    stranger = mint_node_secret_key()
    for method, template in NODE_ROUTES:
        path = template.format(node=node.id, execution=execution)
        response = api.request(method, path, data=b"{}", headers={"Content-Encoding": "br"}, token=stranger)
        assert_problem(response, 415, "unsupported_content_encoding")
        response = api.request(method, path, data=b"{}", headers={"Content-Encoding": "gzip"}, token=stranger)
        assert_problem(response, 400, "invalid_body")


def test_a_gzipped_agent_report_is_validated_inflated(api: Api, node: RegisteredNode, execution: str) -> None:
    path = f"/v1/nodes/{node.id}/executions/{execution}/result"
    gzipped = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    before = api.table_items()
    # A result without its status, over 1 KiB as the agent gzips it
    data = gzip.compress(go_marshal({"execution_id": execution, "exit_code": 0, "stdout": "x" * 2000}))
    problem = assert_problem(api.request("POST", path, data=data, headers=gzipped, token=node.nsk), 400, "invalid_body")
    assert problem["errors"] == [{"field": "status", "message": "Field required"}]
    # A value DynamoDB cannot store, named where it stands
    data = gzip.compress(b'{"status": "success", "triggered_by": {"at": 1e400}}')
    problem = assert_problem(api.request("POST", path, data=data, headers=gzipped, token=node.nsk), 400, "invalid_body")
    assert [e["field"] for e in problem["errors"]] == ["triggered_by.at"]
    assert problem["errors"][0]["message"].startswith("1e400 is out of range")
    assert api.table_items() == before
    # The same report, whole, is taken
    data = gzip.compress(go_marshal({"execution_id": execution, "status": "success", "stdout": "x" * 2000}))
    assert api.request("POST", path, data=data, headers=gzipped, token=node.nsk).status_code == 200


def test_a_missing_required_field_is_400_naming_it(api: Api, tenant: Tenant) -> None:
    token = mint_enrollment_token(api, tenant)
    before = api.table_items()
    problem = assert_problem(api.request("POST", "/v1/register", json_body={"token": token}), 400, "invalid_body")
    assert problem["detail"] == "The body does not match the schema."
    assert problem["errors"] == [{"field": "hostname", "message": "Field required"}]
    nested = {"token": token, "hostname": "web-01", "capabilities": {"builtin_actions": [{"name": 5}]}}
    problem = assert_problem(api.request("POST", "/v1/register", json_body=nested), 400, "invalid_body")
    assert problem["errors"] == [
        {"field": "capabilities.builtin_actions.0.name", "message": "Input should be a valid string"}
    ]
    assert api.table_items() == before


@pytest.mark.parametrize("body", [b"[]", b"null", b'"text"'])
def test_a_body_that_is_no_object_says_so(api: Api, body: bytes) -> None:
    response = api.request("POST", "/v1/register", data=body, headers={"Content-Type": "application/json"})
    assert assert_problem(response, 400, "invalid_body")["detail"] == "The body must be a JSON object."


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_a_body_is_read_as_json_whatever_its_content_type(api: Api, tenant: Tenant, content_type: str | None) -> None:
    # curl -d sends a form content type; the agent always says application/json
    body = json.dumps({"token": mint_enrollment_token(api, tenant), "hostname": "web-01"})
    headers = {"Content-Type": content_type} if content_type else {}
    response = api.request("POST", "/v1/register", data=body, headers=headers)
    assert response.status_code == 201, response.text


def test_operations_whose_body_is_optional_take_an_empty_one(api: Api, tenant: Tenant) -> None:
    path = f"/v1/projects/{tenant.project_id}/enrollment-tokens"
    assert api.request("POST", path, token=tenant.admin_token).status_code == 201
    refused = api.request("POST", path, data=b"null", token=tenant.admin_token)
    assert assert_problem(refused, 400, "invalid_body")["detail"] == "The body must be a JSON object."
    # prepare reads an empty body as {} (and then wants a target, as dispatch does)
    prepare = f"/v1/projects/{tenant.project_id}/actions/restart-agent:prepare"
    assert_problem(api.request("POST", prepare, token=tenant.admin_token), 400, "invalid_target")
    assert_problem(
        api.request("POST", prepare[: -len(":prepare")], data=b"[]", token=tenant.admin_token), 404, "route_not_found"
    )
