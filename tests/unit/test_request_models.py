"""Request models refuse what a client may send but the system must not take: a trailing
newline past a `$` anchor, a number sent as a string where an integer is meant, values no
DynamoDB item could hold."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from orchestrator.domain.capabilities import validate_capabilities
from orchestrator.domain.labels import is_label_token
from orchestrator.errors import BuiltinActionInvalid, HookInvalid, InvalidParameter
from orchestrator.http.callback_schemas import CallbackIn, ResultIn
from orchestrator.http.execution_schemas import checked_action_name, list_filters
from orchestrator.http.schemas import (
    MAX_CAPABILITIES_BYTES,
    MAX_METADATA_BYTES,
    CapabilitiesIn,
    CreateDomainRequest,
    CreateEnrollmentTokenRequest,
    HeartbeatRequest,
    RegisterRequest,
    UpdateDomainRequest,
    UpdateNodeLabelsRequest,
    checked_subject,
)


def refused(model: type[BaseModel], body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as error:
        model.model_validate(body)
    return ".".join(str(p) for p in error.value.errors()[0]["loc"])


@pytest.mark.parametrize("hostname", ["web-01\n", "web-01\r\n", "\nweb-01"])
def test_a_hostname_with_a_newline_is_refused(hostname: str) -> None:
    assert refused(RegisterRequest, {"token": "t", "hostname": hostname}) == "hostname"


@pytest.mark.parametrize("token", ["prod\n", "prod\r", "\nprod"])
def test_a_label_with_a_newline_is_no_label(token: str) -> None:
    assert not is_label_token(token)
    refused(UpdateNodeLabelsRequest, {"labels": {"env": token}})
    refused(UpdateNodeLabelsRequest, {"labels": {token: "x"}})


def test_names_with_a_trailing_newline_are_refused() -> None:
    with pytest.raises(InvalidParameter):
        checked_subject("alice@example.com\n")
    with pytest.raises(InvalidParameter):
        checked_action_name("restart-agent\n")
    with pytest.raises(InvalidParameter):
        list_filters(None, "restart-agent\n")
    with pytest.raises(BuiltinActionInvalid):
        validate_capabilities(CapabilitiesIn.model_validate({"builtin_actions": [{"name": "restart\n"}]}).to_domain())
    hook = {"name": "backup", "checksum": "sha256:" + "a" * 64 + "\n"}
    with pytest.raises(HookInvalid):
        validate_capabilities(CapabilitiesIn.model_validate({"hooks": [hook]}).to_domain())


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (CreateDomainRequest, {"name": "acme", "live_execution_ceiling": "5"}),
        (CreateDomainRequest, {"name": "acme", "live_execution_ceiling": 5.0}),
        (UpdateDomainRequest, {"live_execution_ceiling": "5"}),
        (UpdateDomainRequest, {"live_execution_ceiling": True}),
        (CreateEnrollmentTokenRequest, {"ttl_seconds": "3600"}),
        (CallbackIn, {"status": "succeeded", "exit_code": "0"}),
        (ResultIn, {"status": "success", "exit_code": 1.0}),
    ],
)
def test_integers_are_strict(model: type[BaseModel], body: dict[str, Any]) -> None:
    refused(model, body)


def test_an_exit_code_is_a_64_bit_integer() -> None:
    assert CallbackIn.model_validate({"status": "failed", "exit_code": -(2**63)}).exit_code == -(2**63)
    assert refused(CallbackIn, {"status": "failed", "exit_code": 2**63}) == "exit_code"
    assert refused(ResultIn, {"status": "failure", "exit_code": -(2**63) - 1}) == "exit_code"


@pytest.mark.parametrize("field", ["status", "uptime", "binary_checksum", "timestamp", "node_id"])
def test_heartbeat_strings_are_bounded(field: str) -> None:
    assert refused(HeartbeatRequest, {field: "x" * 1025}) == field
    # and the shipped agent's zero values are fine
    zero = {"node_id": "", "timestamp": "0001-01-01T00:00:00Z", "status": "", "uptime": "", "binary_checksum": ""}
    HeartbeatRequest.model_validate(zero)


def test_metadata_and_capabilities_fit_a_node_item() -> None:
    big = {"k": "v" * MAX_METADATA_BYTES}
    assert refused(RegisterRequest, {"token": "t", "hostname": "web-01", "metadata": big}) == "metadata"
    actions = [{"name": f"a{i}", "description": "d" * 1000} for i in range(MAX_CAPABILITIES_BYTES // 1000)]
    assert len(json.dumps(actions)) > MAX_CAPABILITIES_BYTES
    assert refused(
        RegisterRequest, {"token": "t", "hostname": "web-01", "capabilities": {"builtin_actions": actions}}
    ) == ("capabilities")
