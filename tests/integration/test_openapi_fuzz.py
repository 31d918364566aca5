"""No input a client can send yields a 5xx (SPEC §13, §17): schemathesis generates requests
for every operation of api/openapi.yaml, valid and invalid ones (bodies, parameters,
headers), sends them through the gateway to the handlers as API Gateway would, with both
kinds of credential (an operator JWT on operator routes, a node secret key on node routes),
and every answer must be below 500, with a Problem+JSON document on every 4xx.

Bounded: a fixed number of examples per operation, derandomized, no shrinking database, so
the run takes the same time on every machine (about a minute here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from tests.integration.conftest import Api, RegisteredNode, Tenant, register_node

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_PER_OPERATION = 12


@schemathesis.serializer("application/x-ndjson")
def ndjson(_: Any, value: Any) -> bytes:
    """A telemetry batch as NDJSON: each record of a generated array on its line (anything
    else as one line), as the seed documents the agent's logs and audit routes."""
    values = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(item).encode() + b"\n" for item in values)


schema = schemathesis.openapi.from_path(ROOT / "api" / "openapi.yaml")
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True, database="none", no_shrink=True
)


@pytest.fixture
def node(api: Api, tenant: Tenant) -> RegisteredNode:
    declared = {"name": "restart-agent", "parameters": [{"name": "service"}]}
    return register_node(api, tenant, "fuzz-01", metadata={"env": "prod"}, capabilities={"builtin_actions": [declared]})


def aim(case: Any, tenant: Tenant, node: RegisteredNode) -> dict[str, str]:
    """Point the case at the fixture's tenant and node (so requests get past the lookups into
    the handlers' logic) and give it the credential its route takes."""
    parameters = case.path_parameters or {}
    if "project_id" in parameters:
        parameters["project_id"] = tenant.project_id
    if "domain_id" in parameters:
        parameters["domain_id"] = tenant.domain_id
    if "node_id" in parameters and case.operation.path.startswith("/v1/nodes/"):
        parameters["node_id"] = node.id
    schemes = {name for requirement in case.operation.definition.raw.get("security", [{}]) for name in requirement}
    if "operatorJwt" in schemes or case.operation.path.startswith(("/v1/domains", "/v1/projects")):
        return {"Authorization": f"Bearer {tenant.admin_token}"}
    if "nodeSecretKey" in schemes:
        return {"Authorization": f"Bearer {node.nsk}"}
    return {}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_yields_a_5xx(case: Any, api: Api, tenant: Tenant, node: RegisteredNode) -> None:
    headers = aim(case, tenant, node)
    response = case.call(app=api.client.application, headers=headers)
    assert response.status_code < 500, (case.operation.label, response.status_code, response.text[:500])
    if 400 <= response.status_code < 500:
        content_type = {k.lower(): v for k, v in response.headers.items()}["content-type"]
        assert str(content_type[0] if isinstance(content_type, list) else content_type).startswith(
            "application/problem+json"
        ), response.headers
        problem = json.loads(response.text)
        assert problem["status"] == response.status_code and problem["code"], problem
