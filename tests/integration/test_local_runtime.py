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


def test_item_responses_round_trip_every_attribute_type_through_the_fast_serializer(stack: Stack) -> None:
    client, table = boto3.client("dynamodb"), stack.refs["Table"]
    item = {
        "PK": {"S": "TEST#types"},
        "SK": {"S": "ITEM"},
        "GSI1PK": {"S": "TEST#types#GSI"},
        "GSI1SK": {"S": "1"},
        "n": {"N": "-12.50"},
        "b": {"B": b"\x00\xff binary"},
        "t": {"BOOL": True},
        "none": {"NULL": True},
        "l": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"B": b"\x01"}}}]},
        "m": {"M": {"k": {"S": "v"}, "empty": {"M": {}}}},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2"]},
        "bs": {"BS": [b"\x02", b"\x03"]},
    }
    client.put_item(TableName=table, Item=item)
    key = {"PK": item["PK"], "SK": item["SK"]}
    assert client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"] == item
    (queried,) = client.query(
        TableName=table,
        IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :p",
        ExpressionAttributeValues={":p": {"S": "TEST#types#GSI"}},
    )["Items"]
    assert queried == item
    updated = client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET t = :f",
        ExpressionAttributeValues={":f": {"BOOL": False}},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert updated == {**item, "t": {"BOOL": False}}
    missing = client.get_item(TableName=table, Key={"PK": {"S": "TEST#none"}, "SK": {"S": "ITEM"}})
    assert "Item" not in missing
    # DynamoDB's 400 KB item limit still holds.
    with pytest.raises(client.exceptions.ClientError, match="Item size has exceeded the maximum allowed size"):
        client.put_item(TableName=table, Item={**key, "big": {"S": "x" * 410_000}})
    # Operations outside the fast path (timestamps, model objects) still answer through moto's serializer.
    assert client.describe_table(TableName=table)["Table"]["CreationDateTime"] is not None
