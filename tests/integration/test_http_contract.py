"""Problem+JSON everywhere: limits, unknown routes, 501, 503, correlation ids (SPEC §13)."""

from __future__ import annotations

import os

import pytest

from orchestrator import aws
from orchestrator.settings import get_settings
from tests.integration.conftest import Api, Tenant, assert_problem, register_node


def test_correlation_id_from_the_caller_is_echoed(api: Api, tenant: Tenant) -> None:
    response = api.request(
        "GET",
        f"/v1/projects/{tenant.project_id}/nodes",
        token=tenant.admin_token,
        headers={"X-Correlation-Id": "trace-123"},
    )
    assert response.status_code == 200
    assert response.headers["X-Correlation-Id"] == "trace-123"
    problem = api.request("POST", "/v1/register", json_body={}, headers={"X-Correlation-Id": "trace-456"})
    assert assert_problem(problem, 400, "invalid_body")["correlation_id"] == "trace-456"


def test_malformed_correlation_id_is_replaced(api: Api) -> None:
    response = api.request("POST", "/v1/register", json_body={}, headers={"X-Correlation-Id": "bad id <script>"})
    problem = assert_problem(response, 400, "invalid_body")
    assert problem["correlation_id"] != "bad id <script>"


def test_unknown_route_is_404_problem(api: Api) -> None:
    assert_problem(api.request("GET", "/v1/nothing-here"), 404, "route_not_found")
    assert_problem(api.request("PATCH", "/v1/register", json_body={}), 404, "route_not_found")


@pytest.mark.parametrize("body", ["[]", '"text"', "null", "42"])
def test_non_object_json_body_is_400(api: Api, body: str) -> None:
    response = api.request("POST", "/v1/register", data=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "invalid_body")


def test_body_over_the_limit_is_413(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01")
    huge = '{"builtin_actions": [], "pad": "' + "x" * (1_048_576 + 10) + '"}'
    response = api.request(
        "PUT",
        f"/v1/nodes/{node.id}/capabilities",
        data=huge,
        token=node.nsk,
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 413, "request_body_too_large")


def test_dispatch_without_a_state_machine_is_501(api: Api, tenant: Tenant) -> None:
    del os.environ["STATE_MACHINE_ARN"]
    get_settings.cache_clear()
    response = api.request(
        "POST",
        f"/v1/projects/{tenant.project_id}/executions:dispatch",
        json_body={"action": "restart-agent", "node_id": "x"},
        token=tenant.admin_token,
    )
    assert_problem(response, 501, "actions_dispatch_not_provisioned")


def test_missing_table_configuration_is_501(api: Api) -> None:
    del os.environ["TABLE_NAME"]
    get_settings.cache_clear()
    response = api.request("POST", "/v1/register", json_body={"token": "plx_enroll_x", "hostname": "web-01"})
    assert_problem(response, 501, "node_registration_not_provisioned")


def test_datastore_outage_is_503_without_internals(api: Api, tenant: Tenant) -> None:
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = "http://127.0.0.1:9"  # nothing listens there
    aws.reset_clients()
    try:
        response = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=tenant.admin_token)
    finally:
        del os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
        aws.reset_clients()
    problem = assert_problem(response, 503, "datastore_unavailable")
    assert "127.0.0.1" not in response.text
    assert "Traceback" not in response.text
    assert problem["detail"] == "The datastore is temporarily unavailable."


def test_unauthenticated_gateway_problem_has_correlation_header(api: Api, tenant: Tenant) -> None:
    response = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token="nope")
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
