"""Real answers of every operation, through the gateway, against the response models that
api/openapi.yaml is generated from (orchestrator.http.responses): the dicts the projections
and use cases build and the models cannot drift apart unnoticed.

One walk through the whole API (tenancy, enrollment, capabilities, dispatch, events,
reports, reads, cancel, deregistration) records each operation's success answer; each must
validate strictly against its operation's model, with no field the model lacks and the
fields in the model's order, and against the operation's schema in the generated document.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import yaml
from openapi_gen.operations import OPERATIONS, Operation
from openapi_schema_validator import OAS30Validator
from openapi_schema_validator import validate as validate_instance
from werkzeug.test import TestResponse

from orchestrator.http.responses import EventEnvelope, Problem
from orchestrator_local.template import ROOT
from tests.integration.conftest import Api, RegisteredNode, Tenant, mint_enrollment_token
from tests.integration.test_signing_keys import end_transition
from tests.response_shapes import assert_conforms

CHECKSUM = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
BY_ID = {operation.operation_id: operation for operation in OPERATIONS}


class Walk:
    """Calls operations by their operationId and keeps each one's answer."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.answers: dict[str, TestResponse] = {}

    def call(self, operation_id: str, path: str, **kwargs: Any) -> TestResponse:
        operation = BY_ID[operation_id]
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(operation.path)) + "$"
        assert re.match(pattern, path), (operation_id, path)
        response = self.api.request(operation.method, path, **kwargs)
        assert response.status_code == operation.answer.status, (operation_id, response.status_code, response.text)
        self.answers.setdefault(operation_id, response)
        return response


def eventually(check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def register(walk: Walk, tenant: Tenant, hostname: str) -> RegisteredNode:
    capabilities = {
        "binary": {"version": "1.4.2", "checksum": CHECKSUM},
        "builtin_actions": [
            {"name": "restart-agent", "parameters": [{"name": "service", "default": "nginx", "description": "unit"}]}
        ],
        "hooks": [{"name": "rotate-logs", "checksum": CHECKSUM, "parameters": None}],
    }
    body = {
        "token": mint_enrollment_token(walk.api, tenant),
        "hostname": hostname,
        "metadata": {"env": "prod"},
        "capabilities": capabilities,
    }
    answer = walk.call("registerNode", "/v1/register", json_body=body).json
    return RegisteredNode(answer["node_id"], answer["node_secret_key"], hostname)


def dispatch(walk: Walk, tenant: Tenant, operation_id: str, spelling: str, body: dict[str, Any]) -> str:
    path = f"/v1/projects/{tenant.project_id}/executions{spelling}"
    return str(walk.call(operation_id, path, json_body=body, token=tenant.admin_token).json["id"])


def walk_the_api(walk: Walk, tenant: Tenant) -> dict[str, Any]:
    """Every operation once (at least), the way a client would chain them."""
    admin, project, domain = tenant.admin_token, tenant.project_id, tenant.domain_id
    walk.call("ping", "/v1/ping")
    walk.call("createDomain", "/v1/domains", json_body={"name": "other"}, token=admin)
    walk.call("updateDomain", f"/v1/domains/{domain}", json_body={"live_execution_ceiling": 50}, token=admin)
    walk.call("createProject", f"/v1/domains/{domain}/projects", json_body={"name": "second"}, token=admin)
    grant = {"relation": "viewer"}
    walk.call("grantDomainRole", f"/v1/domains/{domain}/members/bob", json_body=grant, token=admin)
    walk.call("revokeDomainRole", f"/v1/domains/{domain}/members/bob", token=admin)
    walk.call("grantProjectRole", f"/v1/projects/{project}/members/carol", json_body=grant, token=admin)
    walk.call("revokeProjectRole", f"/v1/projects/{project}/members/carol", token=admin)
    walk.call("createEnrollmentToken", f"/v1/projects/{project}/enrollment-tokens", token=admin)

    web, api_node = register(walk, tenant, "web-01"), register(walk, tenant, "api-01")
    walk.call("heartbeat", f"/v1/nodes/{web.id}/heartbeat", json_body={"status": "healthy"}, token=web.nsk)
    caps = {"builtin_actions": [{"name": "restart-agent"}], "hooks": [{"name": "rotate-logs", "checksum": CHECKSUM}]}
    walk.call("updateCapabilities", f"/v1/nodes/{api_node.id}/capabilities", json_body=caps, token=api_node.nsk)
    walk.call("listNodes", f"/v1/projects/{project}/nodes", token=admin, query={"limit": 1})
    entry = {"key": "app-health", "content_type": "application/json", "payload": {"status": "healthy"}}
    batch = {"entries": [{**entry, "version": 12, "updated_at": "2025-01-15T10:30:00Z"}], "deleted": ["old"]}
    walk.call("syncReports", f"/v1/nodes/{web.id}/report", json_body=batch, token=web.nsk)
    drift = {"timestamp": "2025-01-15T10:31:00Z", "corrections": [{"type": "peer_added", "detail": "n_peer789"}]}
    walk.call("recordDrift", f"/v1/nodes/{web.id}/drift", json_body=drift, token=web.nsk)
    walk.call("recordDrift", f"/v1/nodes/{web.id}/drift", json_body={**drift, "corrections": None}, token=web.nsk)
    at = "2025-01-15T10:30:00.123456789Z"
    for operation_id, kind, record in (
        ("ingestMetrics", "metrics", {"timestamp": at, "group": "node_resources", "data": {"cpu_percent": 23.5}}),
        ("ingestLogs", "logs", {"timestamp": at, "source": "journald", "unit": "plexd", "message": "ok"}),
        ("ingestAudit", "audit", {"timestamp": at, "source": "auditd", "event_type": "SYSCALL", "subject": {}}),
    ):
        walk.call(operation_id, f"/v1/nodes/{web.id}/{kind}", json_body=[record], token=web.nsk)
        walk.call(f"read{kind.capitalize()}", f"/v1/projects/{project}/nodes/{web.id}/{kind}", token=admin)
    walk.call("listNodeReports", f"/v1/projects/{project}/nodes/{web.id}/reports", token=admin)
    walk.call("listNodeDrift", f"/v1/projects/{project}/nodes/{web.id}/drift", token=admin, query={"limit": 1})
    labels = {"labels": {"role": "web"}}
    walk.call("updateNodeLabels", f"/v1/projects/{project}/nodes/{web.id}", json_body=labels, token=admin)
    rule = {"src": "*", "dst": web.id, "port": 443, "protocol": "tcp", "action": "allow"}
    policies = f"/v1/projects/{project}/policies"
    walk.call("putPolicy", f"{policies}/web", json_body={"selector": "role=web", "rules": [rule]}, token=admin)
    walk.call("getPolicy", f"{policies}/web", token=admin)
    walk.call("listPolicies", policies, token=admin, query={"limit": 1})
    walk.api.request("PUT", f"{policies}/gone", json_body={"selector": "role=web", "rules": []}, token=admin)
    walk.call("deletePolicy", f"{policies}/gone", token=admin)
    data = f"/v1/projects/{project}/nodes/{web.id}/data"
    entry = {"content_type": "application/json", "payload": {"region": "eu-1"}}
    walk.call("putNodeData", f"{data}/config", json_body=entry, token=admin)
    walk.call("listNodeData", data, token=admin)
    walk.api.request("PUT", f"{data}/gone", json_body=entry, token=admin)
    walk.call("deleteNodeData", f"{data}/gone", token=admin)
    endpoint = {"public_endpoint": "203.0.113.10:51820", "nat_type": "full_cone"}
    walk.call("reportEndpoint", f"/v1/nodes/{api_node.id}/endpoint", json_body=endpoint, token=api_node.nsk)
    walk.call("requestNodeKeyRotation", f"/v1/projects/{project}/nodes/{web.id}/rotate-keys", token=admin)
    rotation = {"node_id": api_node.id, "new_public_key": base64.b64encode(bytes(range(32))).decode()}
    walk.call("rotateNodeKey", "/v1/keys/rotate", json_body=rotation, token=api_node.nsk)

    walk.call("listActions", f"/v1/projects/{project}/actions", token=admin)
    walk.call(
        "pinHookBaseline",
        f"/v1/projects/{project}/hooks/rotate-logs/baseline",
        json_body={"checksum": CHECKSUM},
        token=admin,
    )
    prepare = {"type": "hook", "selector": "env=prod"}
    walk.call("prepareAction", f"/v1/projects/{project}/actions/rotate-logs:prepare", json_body=prepare, token=admin)

    reported = dispatch(walk, tenant, "dispatchExecution", ":dispatch", {"action": "restart-agent", "node_id": web.id})
    inline = dispatch(
        walk,
        tenant,
        "dispatchExecutionSlashSpelling",
        "/dispatch",
        {"action": "restart-agent", "selector": "env=prod", "rate": {"max_concurrency": 5}},
    )

    def requested() -> bool:
        text = walk.api.request("GET", f"/v1/nodes/{web.id}/events", token=web.nsk, headers={"Last-Event-ID": "0"}).text
        return text.count("event: action_request") >= 2

    secret = f"/v1/projects/{project}/secrets/db-password"
    created = walk.api.request("PUT", secret, json_body={"value": "v1", "grants": {"node_ids": [web.id]}}, token=admin)
    assert created.status_code == 201, created.text
    walk.call("putSecret", secret, json_body={"value": "v2", "grants": {"selector": "env=prod"}}, token=admin)
    walk.call("listSecrets", f"/v1/projects/{project}/secrets", token=admin)
    walk.call("fetchNodeSecret", f"/v1/nodes/{web.id}/secrets/db-password", token=web.nsk)

    eventually(requested)
    events = walk.call("nodeEvents", f"/v1/nodes/{web.id}/events", token=web.nsk, headers={"Last-Event-ID": "0"})
    walk.call("nodeState", f"/v1/nodes/{web.id}/state", token=web.nsk)

    node_path = f"/v1/nodes/{web.id}/executions/{reported}"
    walk.call("ackExecution", f"{node_path}/ack", json_body={"status": "accepted"}, token=web.nsk)
    walk.call(
        "executionCallback", node_path, json_body={"status": "started", "declared_output_bytes": 20_000}, token=web.nsk
    )
    result = {"status": "success", "exit_code": 0, "stdout": "ok\n", "duration": "1.2s"}
    walk.call("executionResult", f"{node_path}/result", json_body=result, token=web.nsk)
    output = {"inline": base64.b64encode(b"rotated").decode()}
    done = {"status": "succeeded", "exit_code": 0, "output": output}
    walk.api.request("POST", f"/v1/nodes/{web.id}/executions/{inline}", json_body=done, token=web.nsk)

    walk.call("getExecution", f"/v1/projects/{project}/executions/{reported}", token=admin)
    walk.call("listExecutions", f"/v1/projects/{project}/executions", token=admin)
    walk.call("listExecutionEvents", f"/v1/projects/{project}/executions/{reported}/events", token=admin)
    walk.call("getTargetOutput", f"/v1/projects/{project}/executions/{reported}/targets/{web.id}/output", token=admin)

    cancelled = dispatch(walk, tenant, "dispatchExecution", ":dispatch", {"action": "restart-agent", "node_id": web.id})
    walk.call("cancelExecution", f"/v1/projects/{project}/executions/{cancelled}:cancel", token=admin)
    deleted = dispatch(walk, tenant, "dispatchExecution", ":dispatch", {"action": "restart-agent", "node_id": web.id})
    walk.call("cancelExecutionByDelete", f"/v1/projects/{project}/executions/{deleted}", token=admin)
    walk.call("deregisterNode", f"/v1/nodes/{api_node.id}/deregister", token=api_node.nsk)
    walk.call("deleteSecret", secret, token=admin)
    walk.call("getSigningKeys", "/v1/signing-keys", token=admin)
    binary = b"plexd release"
    release = "/v1/artifacts/plexd/1.5.0/linux/amd64"
    declared = {"sha256": hashlib.sha256(binary).hexdigest(), "size": len(binary)}
    published = walk.call("publishArtifact", release, json_body=declared, token=admin)
    assert requests.put(published.json["upload_url"], data=binary, timeout=10).status_code == 200
    walk.call("listArtifacts", "/v1/artifacts/plexd", token=admin)
    walk.call("downloadArtifact", release, token=web.nsk)
    walk.call("rotateSigningKey", "/v1/signing-keys:rotate", token=admin)
    end_transition(walk.api)  # a second rotation waits for the first one's transition
    walk.call("rotateSigningKeySlashSpelling", "/v1/signing-keys/rotate", token=admin)
    walk.call("nodeState", f"/v1/nodes/{web.id}/state", token=web.nsk)  # with a previous key listed
    return {"events": events}


@pytest.fixture
def walked(api: Api, tenant: Tenant) -> Walk:
    walk = Walk(api)
    walk_the_api(walk, tenant)
    return walk


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "api" / "openapi.yaml").read_text(encoding="utf-8"))
    return loaded


def documented_schema(document: dict[str, Any], operation: Operation) -> dict[str, Any]:
    found = document["paths"][operation.path][operation.method.lower()]["responses"][str(operation.answer.status)]
    schema: dict[str, Any] = found["content"][operation.answer.media_type]["schema"]
    return {**schema, "components": document["components"]}


def test_every_operations_answer_is_its_response_model(walked: Walk, document: dict[str, Any]) -> None:
    # Given a walk through the whole API
    assert sorted(walked.answers) == sorted(BY_ID), "the walk must call every operation"
    for operation_id, response in walked.answers.items():
        operation = BY_ID[operation_id]
        if operation.answer.body is None:
            # Then an answer without a model has no body
            assert response.data == b"", operation_id
        elif operation.answer.media_type == "application/json":
            # Then every JSON answer is its model, field for field and in order
            assert_conforms(operation.answer.body, response.json)
            # And it is what the generated document says the operation answers
            validate_instance(response.json, documented_schema(document, operation), cls=OAS30Validator)


def test_every_event_of_the_stream_is_an_envelope(walked: Walk) -> None:
    stream = walked.answers["nodeEvents"].text
    data = [line.removeprefix("data: ") for line in stream.splitlines() if line.startswith("data: ")]
    assert data
    for line in data:
        # payload keys are sorted on the wire (Go's encoding/json), so only the envelope's order counts
        assert_conforms(EventEnvelope, json.loads(line), ordered=False)
        assert list(json.loads(line)) == list(EventEnvelope.model_fields)


@pytest.mark.parametrize(
    ("request_of", "status"),
    [
        (lambda t: ("POST", "/v1/domains", {"json_body": {"name": 5}, "token": t.admin_token}), 400),
        (lambda t: ("POST", f"/v1/nodes/{t.project_id}/heartbeat", {"token": "nope"}), 401),
        (
            lambda t: (
                "GET",
                f"/v1/projects/{t.project_id}/executions",
                {"token": t.admin_token, "query": {"limit": 0}},
            ),
            400,
        ),
        (
            lambda t: (
                "POST",
                f"/v1/projects/{t.project_id}/executions:dispatch",
                {"json_body": {"action": "x", "selector": "env~"}, "token": t.admin_token},
            ),
            400,
        ),
    ],
)
def test_problems_are_the_problem_model(
    api: Api, tenant: Tenant, request_of: Callable[[Tenant], tuple[str, str, dict[str, Any]]], status: int
) -> None:
    method, path, kwargs = request_of(tenant)
    response = api.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    assert_conforms(Problem, response.json)
