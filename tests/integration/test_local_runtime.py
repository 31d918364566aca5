"""Local mode's Lambda routing: moto Lambda invocations and Step Functions tasks run the handlers in-process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import boto3
import pytest

from orchestrator_local.resources import Stack
from orchestrator_local.runtime import InProcessRuntime, install_moto_lambda_router
from tests.integration.conftest import operator_token


@pytest.fixture
def routed(stack: Stack, runtime: InProcessRuntime) -> Iterator[None]:
    from moto.awslambda.models import LambdaBackend

    before = LambdaBackend.invoke
    install_moto_lambda_router(runtime.invoke, set(runtime.functions))
    yield
    LambdaBackend.invoke = before  # type: ignore[method-assign]


def test_lambda_invoke_runs_the_handler_in_process(routed: None) -> None:
    event = {
        "type": "TOKEN",
        "authorizationToken": f"Bearer {operator_token('alice')}",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:local/dev/GET/v1/domains",
    }
    response = boto3.client("lambda").invoke(FunctionName="OperatorAuthorizerFunction", Payload=json.dumps(event))
    policy = json.loads(response["Payload"].read())
    assert "FunctionError" not in response
    assert policy["principalId"] == "alice"
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_handler_exception_is_a_function_error(routed: None) -> None:
    event = {"type": "TOKEN", "authorizationToken": "Bearer nope", "methodArn": "arn:x:y:z:1:a/b/GET/"}
    response = boto3.client("lambda").invoke(FunctionName="OperatorAuthorizerFunction", Payload=json.dumps(event))
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read()) == {"errorType": "Exception", "errorMessage": "Unauthorized"}


def test_template_state_machine_runs_its_lambda_tasks_in_process(routed: None, stack: Stack) -> None:
    """The template's workflow executes in moto; its FanOut task reaches our handler (which,
    until dispatch lands, fails with workflow_not_provisioned and is caught by the ASL)."""
    sfn = boto3.client("stepfunctions")
    started = sfn.start_execution(
        stateMachineArn=stack.refs["ExecutionWorkflow"],
        input=json.dumps({"execution_id": "e1", "project_id": "p1", "expires_at": "2030-01-01T00:00:00Z"}),
    )
    deadline = time.monotonic() + 20
    failure = None
    while time.monotonic() < deadline and failure is None:
        history = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
        for event in history:
            details = event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails")
            if details:
                failure = details
                break
        time.sleep(0.2)
    sfn.stop_execution(executionArn=started["executionArn"])
    assert failure is not None, "the FanOut task never ran"
    assert failure["error"] == "NotProvisioned"
    assert json.loads(failure["cause"])["errorType"] == "NotProvisioned"
