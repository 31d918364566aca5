"""The sample events in events/ (for `sam local invoke -e`) are what the handlers expect.

Each one is invoked against a fresh moto account: the handler must parse it and
answer with the status that event deserves there (e.g. a sample NSK is unknown).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator_local.resources import Stack
from orchestrator_local.runtime import FunctionError, InProcessRuntime
from orchestrator_local.template import Template

EVENTS = Path(__file__).resolve().parents[2] / "events"

EXPECTED_STATUS = {
    "register_node.json": (401, "enrollment_token_invalid"),
    "update_capabilities.json": (401, "nsk_revoked"),
    "heartbeat.json": (401, "nsk_revoked"),
    "deregister_node.json": (401, "nsk_revoked"),
    "list_nodes.json": (404, "project_not_found"),
    "create_enrollment_token.json": (404, "project_not_found"),
    "create_domain.json": (201, None),
    "dispatch_execution.json": (404, "project_not_found"),
    "ping.json": (200, None),
    "sync_reports.json": (401, "nsk_revoked"),
    "record_drift.json": (401, "nsk_revoked"),
    "list_node_reports.json": (404, "project_not_found"),
    "list_node_drift.json": (404, "project_not_found"),
    "read_telemetry.json": (404, "project_not_found"),
    "put_secret.json": (404, "project_not_found"),
    "fetch_node_secret.json": (401, "nsk_revoked"),
    "rotate_node_key.json": (401, "nsk_revoked"),
    "report_endpoint.json": (401, "nsk_revoked"),
    "request_key_rotation.json": (404, "project_not_found"),
    "publish_artifact.json": (403, "rebac_denied"),
    "download_artifact.json": (401, "nsk_revoked"),
}


def function_for(template: Template, event_file: str) -> str:
    folder = event_file.removesuffix(".json")
    (logical_id,) = [name for name, f in template.functions.items() if f.code_dir.name == folder]
    return logical_id


def test_every_sample_event_is_checked() -> None:
    assert {p.name for p in EVENTS.glob("*.json")} == {
        *EXPECTED_STATUS,
        "operator_authorizer.json",
        "fan_out.json",
        "verify_artifact.json",
    }


@pytest.mark.parametrize("event_file", sorted(EXPECTED_STATUS))
def test_sample_api_event_reaches_its_handler(
    event_file: str, stack: Stack, runtime: InProcessRuntime, template: Template
) -> None:
    event = json.loads((EVENTS / event_file).read_text())
    response = runtime.invoke(function_for(template, event_file), event)
    status, code = EXPECTED_STATUS[event_file]
    assert response["statusCode"] == status, response
    if code:
        assert json.loads(response["body"])["code"] == code
    headers = response.get("headers") or {k: v[-1] for k, v in response["multiValueHeaders"].items()}
    assert headers["X-Correlation-Id"] == "sample-correlation-id"


def test_sample_authorizer_event_rejects_its_placeholder_token(stack: Stack, runtime: InProcessRuntime) -> None:
    event = json.loads((EVENTS / "operator_authorizer.json").read_text())
    with pytest.raises(FunctionError, match="Unauthorized"):
        runtime.invoke("OperatorAuthorizerFunction", event)


def test_sample_s3_event_reaches_the_verifier(stack: Stack, runtime: InProcessRuntime) -> None:
    # Given the sample upload event, in this account's artifact bucket, of bytes no publication declares
    event = json.loads((EVENTS / "verify_artifact.json").read_text())
    event["Records"][0]["s3"]["bucket"]["name"] = stack.refs["ArtifactBucket"]
    result = runtime.invoke("VerifyArtifactFunction", event)
    # Then the verifier reads it and deletes the object as stale
    (record,) = event["Records"]
    assert result == {"verified": [{"key": record["s3"]["object"]["key"], "outcome": "stale"}]}
