"""Integration fixtures: handlers and the template's resources against in-process moto."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from werkzeug.test import Client, TestResponse

from orchestrator import aws, secrets
from orchestrator.http.operator_auth import mint_dev_token
from orchestrator.settings import get_settings
from orchestrator_local import moto_patches
from orchestrator_local.gateway import Gateway
from orchestrator_local.resources import Stack, deploy
from orchestrator_local.runtime import (
    InProcessRuntime,
    install_moto_lambda_router,
    uninstall_moto_s3_notification_router,
)
from orchestrator_local.streams import StreamPump
from orchestrator_local.template import Template

ADMIN = "admin@example.com"


def reset_process_caches() -> None:
    get_settings.cache_clear()
    aws.reset_clients()
    secrets.clear_cache()


@pytest.fixture(scope="session")
def template() -> Template:
    return Template()


@pytest.fixture(scope="session")
def runtime(template: Template) -> InProcessRuntime:
    return InProcessRuntime(template)


PUBLIC_BASE_URL = "http://orchestrator.test"


@pytest.fixture
def stack(template: Template, runtime: InProcessRuntime) -> Iterator[Stack]:
    """A fresh moto account with the template's resources and the functions' environment;
    the state machine's Lambda tasks run the handlers in-process."""
    from moto.awslambda.models import LambdaBackend

    moto_patches.install()
    saved = dict(os.environ)
    original_invoke = LambdaBackend.invoke
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        deployed = deploy(
            template,
            prefix="test",
            parameters={"PublicBaseUrl": PUBLIC_BASE_URL, "EventStreamHoldSeconds": "0", "DeploymentAdmins": ADMIN},
        )
        os.environ.update(deployed.environment())
        reset_process_caches()
        install_moto_lambda_router(runtime.invoke, set(runtime.functions))
        pump = StreamPump(runtime.invoke, template.stream_sources, deployed.refs, lock=moto_patches.write_lock())
        runtime.follow_streams(pump.pump, pump.consumers)
        deployed.pump = pump.pump
        try:
            yield deployed
        finally:
            stop_workflows(deployed)
            runtime.drain()  # a task still running must finish inside the mock, not against AWS
            runtime.follow_streams(None)
            LambdaBackend.invoke = original_invoke  # type: ignore[method-assign]
            uninstall_moto_s3_notification_router()
            os.environ.clear()
            os.environ.update(saved)
            reset_process_caches()


def stop_workflows(deployed: Stack) -> None:
    """Stop the runs a test left behind, so none outlives its mock."""
    sfn = boto3.client("stepfunctions")
    arn = deployed.refs["ExecutionWorkflow"]
    for run in sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING").get("executions", []):
        for _ in range(20):
            try:
                sfn.stop_execution(executionArn=run["executionArn"])
                break
            except AttributeError:  # moto: the run's worker has not started yet
                time.sleep(0.05)


# Every secret value an integration test writes through the API is looked for, when the test
# ends, in every table item, every answer and every event the test received (issue 15: a
# value is never stored, answered or sent in clear; the node's fetch answers ciphertext).
SECRET_WRITE = re.compile(r"^/v1/projects/[^/]+/secrets/[^/?]+$")
NODE_SECRET_FETCH = re.compile(r"^/v1/nodes/[^/]+/secrets/")
TRACKED_SECRET_LENGTH = 8  # shorter values would be found by chance (a test's "x")


@dataclass
class Api:
    """An HTTP client for the template's API, served the way API Gateway calls the handlers."""

    client: Client
    stack: Stack
    secret_values: set[str] = field(default_factory=set)
    answers: list[bytes] = field(default_factory=list)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: str | bytes | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
    ) -> TestResponse:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            data = json.dumps(json_body)
            all_headers.setdefault("Content-Type", "application/json")
            value = json_body.get("value") if isinstance(json_body, dict) else None
            tracked = isinstance(value, str) and len(value) >= TRACKED_SECRET_LENGTH
            if method == "PUT" and SECRET_WRITE.match(path) and tracked:
                self.secret_values.add(str(value))
        response = self.client.open(path, method=method, data=data, headers=all_headers, query_string=query)
        if not NODE_SECRET_FETCH.match(path):
            self.answers.append(response.get_data())
        return response

    def assert_no_secret_value_leaked(self) -> None:
        """No secret value written by the test, in clear or base64, in any table item (binary
        attributes as their bytes) or in any answer or event stream the test received."""
        if not self.secret_values:
            return
        stored = b"\n".join(
            value["B"] if "B" in value else repr(value).encode()
            for item in self.table_items()
            for value in item.values()
        )
        seen = {"the table": stored, "an answer or event": b"\n".join(self.answers)}
        for secret in self.secret_values:
            for form in (secret.encode(), base64.b64encode(secret.encode())):
                for where, text in seen.items():
                    assert form not in text, f"a secret value written by this test is in {where}"

    def table_items(self) -> list[dict[str, Any]]:
        client = boto3.client("dynamodb")
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.stack.refs["Table"]}
        while True:
            page = client.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture
def api(stack: Stack, runtime: InProcessRuntime, template: Template) -> Iterator[Api]:
    client = Api(Client(Gateway(runtime.invoke, template)), stack)
    yield client
    client.assert_no_secret_value_leaked()


def operator_token(subject: str, **overrides: Any) -> str:
    """A dev-key operator JWT (what the local server hands out)."""
    return mint_dev_token(
        subject, now=overrides.pop("now", datetime.now(UTC)), ttl=overrides.pop("ttl", timedelta(hours=1))
    )


@dataclass
class Tenant:
    domain_id: str
    project_id: str
    admin_token: str


@pytest.fixture
def tenant(api: Api) -> Tenant:
    """A Domain and Project created through the admin API by ADMIN."""
    token = operator_token(ADMIN)
    domain = api.request("POST", "/v1/domains", json_body={"name": "acme"}, token=token)
    assert domain.status_code == 201, domain.text
    project = api.request("POST", f"/v1/domains/{domain.json['id']}/projects", json_body={"name": "fleet"}, token=token)
    assert project.status_code == 201, project.text
    return Tenant(domain.json["id"], project.json["id"], token)


def mint_enrollment_token(api: Api, tenant: Tenant, **body: Any) -> str:
    response = api.request(
        "POST", f"/v1/projects/{tenant.project_id}/enrollment-tokens", json_body=body, token=tenant.admin_token
    )
    assert response.status_code == 201, response.text
    return str(response.json["token"])


@dataclass
class RegisteredNode:
    id: str
    nsk: str
    hostname: str


def register_node(api: Api, tenant: Tenant, hostname: str, **extra: Any) -> RegisteredNode:
    body = {"token": mint_enrollment_token(api, tenant), "hostname": hostname, **extra}
    response = api.request("POST", "/v1/register", json_body=body)
    assert response.status_code == 201, response.text
    return RegisteredNode(response.json["node_id"], response.json["node_secret_key"], hostname)


def assert_problem(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """The response is Problem+JSON with this status and code, and carries a correlation id."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
    problem: dict[str, Any] = response.json
    assert problem["code"] == code, problem
    assert problem["status"] == status
    for name in ("type", "title", "detail", "instance", "correlation_id"):
        assert problem[name], name
    assert response.headers["X-Correlation-Id"] == problem["correlation_id"]
    return problem


def seed_pending_execution(ctx: Any, execution_id: str, node_ids: list[str], *, domain_id: str = "d") -> None:
    """An Execution of pending targets on ``node_ids`` written straight through the store (its
    Domain must exist), for tests of what happens to targets after dispatch."""
    from orchestrator.domain.executions import Execution, Target, TargetStatus

    now = ctx.clock.now()
    execution = Execution(
        id=execution_id,
        project_id="p",
        domain_id=domain_id,
        action="a",
        type="builtin",
        timeout_seconds=60,
        status=TargetStatus.PENDING,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(seconds=60),
        target_count=len(node_ids),
    )
    from orchestrator.domain.audit import AuditEvent

    created = AuditEvent.new(f"created-{execution_id}", now, status=TargetStatus.PENDING, actor="test")
    ctx.executions.create(execution, created)
    ctx.targets.put_targets(
        execution,
        [
            Target(execution_id=execution_id, node_id=n, status=TargetStatus.PENDING, created_at=now, updated_at=now)
            for n in node_ids
        ],
    )
