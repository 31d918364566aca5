"""No secret value, nor its base64, nor any node key, leaks (issue 15 "Done means"): not in
any table item (binary attributes included), operator answer, event (node streams and
feeds), or log line written while operators write secrets and nodes fetch them."""

from __future__ import annotations

import base64
import logging
import uuid

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.observability import logger
from tests.integration.conftest import Api, RegisteredNode, Tenant, register_node
from tests.integration.test_secrets import decrypt, fetch, put, secrets_path

VALUES = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_categories=("Cs",)),
    min_size=12,
    max_size=300,
)


def raw_table(api: Api) -> bytes:
    """Every item as DynamoDB holds it, binary attributes as their bytes."""
    parts: list[bytes] = []
    for item in api.table_items():
        for value in item.values():
            parts.append(value["B"] if "B" in value else repr(value).encode())
    return b"\n".join(parts)


def forms(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw)]


@pytest.fixture
def fleet(api: Api, tenant: Tenant) -> list[RegisteredNode]:
    return [register_node(api, tenant, f"leak-{i}", metadata={"env": "prod"}) for i in range(2)]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(VALUES, min_size=1, max_size=3, unique=True))
def test_no_secret_value_or_node_key_is_stored_answered_sent_or_logged(
    api: Api, tenant: Tenant, fleet: list[RegisteredNode], capfd: pytest.CaptureFixture[str], values: list[str]
) -> None:
    # Each value starts with a random token: a generated value that happens to be a substring
    # of what the table rightly holds (a type name, say) is not a leak.
    values = [f"{uuid.uuid4().hex}{value}" for value in values]
    caught = _LogCatcher()
    logging.getLogger().addHandler(caught)
    logger.setLevel("DEBUG")
    operator_answers: list[str] = []
    events: list[str] = []
    try:
        web, other = fleet
        for index, value in enumerate(values):
            key = f"leak-{index}"
            written = put(api, tenant, key, value, node_ids=[web.id], selector="env=prod")
            assert written.status_code in (200, 201), written.text
            operator_answers.append(written.text)
            answer = fetch(api, web, key)
            assert decrypt(web, answer.json) == value
            assert decrypt(other, fetch(api, other, key).json) == value
        operator_answers.append(api.request("GET", secrets_path(tenant), token=tenant.admin_token).text)
        for node in fleet:
            events.append(
                api.request("GET", f"/v1/nodes/{node.id}/events", token=node.nsk, headers={"Last-Event-ID": "0"}).text
            )
            events.append(api.request("GET", f"/v1/nodes/{node.id}/state", token=node.nsk).text)
    finally:
        logger.setLevel("WARNING")
        logging.getLogger().removeHandler(caught)
    out, err = capfd.readouterr()
    table = raw_table(api)
    seen = {
        "table": table,
        "operator answers": "\n".join(operator_answers).encode(),
        "events and state": "\n".join(events).encode(),
        "logs": (out + err + "\n".join(caught.lines)).encode(),
    }
    assert "node_secrets_updated" in "\n".join(events)  # the events were there to search
    for value in values:
        for form in forms(value):
            for where, text in seen.items():
                assert form not in text, f"a secret value leaked into {where}"
    for node in fleet:
        for form in (node.nsk.encode(), base64.b64decode(node.nsk)):
            for where, text in seen.items():
                assert form not in text, f"a node key leaked into {where}"


class _LogCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage() + repr(record.__dict__))


def test_the_suite_wide_guard_finds_a_value_in_an_answer_or_the_table(api: Api, tenant: Tenant) -> None:
    """Every integration test's ``api`` looks for the secret values it wrote when it ends; the
    guard itself must find one where it should not be."""
    value = "guard-sentinel-value"
    assert put(api, tenant, "guarded", value, node_ids=[]).status_code == 201
    api.assert_no_secret_value_leaked()  # nothing leaked so far
    api.answers.append(b'{"echo": "' + base64.b64encode(value.encode()) + b'"}')
    with pytest.raises(AssertionError, match="an answer or event"):
        api.assert_no_secret_value_leaked()
    api.answers.pop()
    boto3.client("dynamodb").put_item(
        TableName=api.stack.refs["Table"], Item={"PK": {"S": "LEAK"}, "SK": {"S": "LEAK"}, "v": {"S": value}}
    )
    with pytest.raises(AssertionError, match="the table"):
        api.assert_no_secret_value_leaked()
    boto3.client("dynamodb").delete_item(
        TableName=api.stack.refs["Table"], Key={"PK": {"S": "LEAK"}, "SK": {"S": "LEAK"}}
    )
