"""Local mode's Lambda routing: moto Lambda invocations and Step Functions tasks run the handlers in-process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import boto3
import pytest

from orchestrator_local.resources import Stack
from tests.integration.conftest import operator_token


@pytest.fixture
def routed(stack: Stack) -> Iterator[None]:
    """The stack fixture routes moto's Lambda invocations to the in-process runtime."""
    yield


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
    """The template's workflow executes in moto and its Lambda tasks reach our handlers: for an
    Execution that does not exist, FanOut fails (ExecutionNotFound), the ASL catches it and
    Finalize ends the run."""
    sfn = boto3.client("stepfunctions")
    started = sfn.start_execution(
        stateMachineArn=stack.refs["ExecutionWorkflow"],
        name="no-such-execution",
        input=json.dumps(
            {
                "execution_id": "nope",
                "project_id": "p1",
                "expires_at": "2030-01-01T00:00:00Z",
                "poll_seconds": 1,
                "failed_step": None,
            }
        ),
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=started["executionArn"])
        if described["status"] != "RUNNING":
            break
        time.sleep(0.1)
    assert described["status"] == "SUCCEEDED"
    history = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
    failures = [e["taskFailedEventDetails"] for e in history if "taskFailedEventDetails" in e]
    assert [f["error"] for f in failures] == ["ExecutionNotFound"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered == ["FanOut", "FanOutFailed", "Finalize"]
