"""The resolver every API function uses (``orchestrator.http.api``): Powertools' validation
reads bodies decoded the way real clients send them, refusals are Problems in the handler's
order, and answers leave the handler byte for byte."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Annotated, Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import ValidationError

from orchestrator.errors import NotProvisioned, Unauthenticated
from orchestrator.http.api import json_request, json_response, rest_app, schema_mismatch
from orchestrator.http.schemas import CreateEnrollmentTokenRequest, RegisterRequest

CHECKED: list[str] = []


def checks(app: APIGatewayRestResolver, **path: str) -> None:
    """What the routes check before their body: here, every caller but ``good`` is refused."""
    CHECKED.append(path.get("node_id", "-"))
    if app.current_event.headers.get("authorization") != "Bearer good":
        raise Unauthenticated("bad key")


app = rest_app(before_body=checks)
DEFAULTS = CreateEnrollmentTokenRequest()


@app.post("/nodes/<node_id>")
def with_body(node_id: str, request: Annotated[RegisterRequest, Body()]) -> Response[str]:
    checks(app, node_id=node_id)
    return json_response(201, {"hostname": request.hostname, "note": "é" * 2000})


@app.post("/optional")
def optional_body(request: Annotated[CreateEnrollmentTokenRequest, Body()] = DEFAULTS) -> Response[str]:
    checks(app)
    return json_response(200, {"ttl": request.ttl_seconds})


@app.post("/no-body")
def no_body() -> Response[str]:
    return json_response(200, {"ok": True})


@app.delete("/nothing")
def nothing() -> Response[None]:
    return Response(status_code=204)


@app.delete("/mistyped")
def mistyped() -> Response[str]:
    return Response(status_code=204)  # no body, though the annotation promises a str


def not_provisioned(_: APIGatewayRestResolver) -> None:
    raise NotProvisioned("x_not_provisioned")


unprovisioned = rest_app(before_body=not_provisioned)


@unprovisioned.post("/x")
def unprovisioned_route(request: Annotated[RegisterRequest, Body()]) -> Response[str]:
    raise AssertionError("never reached")


def failing(_: APIGatewayRestResolver) -> None:
    raise ZeroDivisionError("division by zero")


broken = rest_app(before_body=failing)


@broken.post("/x")
def broken_route(request: Annotated[RegisterRequest, Body()]) -> Response[str]:
    raise AssertionError("never reached")


def event(
    path: str,
    body: bytes | None = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    gzipped: bool = False,
) -> dict[str, Any]:
    sent = dict(headers or {})
    if gzipped and body is not None:
        body, sent["Content-Encoding"] = gzip.compress(body), "gzip"
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": sent,
        "multiValueHeaders": {k: [v] for k, v in sent.items()},
        "pathParameters": {"node_id": path.rsplit("/", 1)[-1]} if path.startswith("/nodes/") else None,
        "requestContext": {"requestId": "req-1", "path": path},
        "body": base64.b64encode(body).decode() if body is not None else None,
        "isBase64Encoded": body is not None,
    }


def resolved(resolver: APIGatewayRestResolver, sent: dict[str, Any]) -> tuple[int, Any, dict[str, Any]]:
    answer = resolver.resolve(sent, None)  # type: ignore[arg-type]
    headers = {k: v[-1] for k, v in answer["multiValueHeaders"].items()}
    body = json.loads(answer["body"]) if answer["body"] else None
    return answer["statusCode"], body, headers


GOOD = {"Authorization": "Bearer good"}
REGISTRATION = b'{"token": "t", "hostname": "web-01"}'


@pytest.fixture(autouse=True)
def _forget_checks() -> None:
    CHECKED.clear()


def test_a_gzipped_body_is_validated_inflated() -> None:
    status, body, headers = resolved(app, event("/nodes/n1", REGISTRATION, headers=GOOD, gzipped=True))
    assert (status, body["hostname"]) == (201, "web-01")
    assert headers["X-Correlation-Id"] == "req-1"
    status, body, _ = resolved(app, event("/nodes/n1", b'{"token": "t"}', headers=GOOD, gzipped=True))
    assert status == 400
    assert body["errors"] == [{"field": "hostname", "message": "Field required"}]


@pytest.mark.parametrize(
    ("sent", "detail", "errors"),
    [
        (b"", "A JSON object body is required.", None),
        (b"  \n", "A JSON object body is required.", None),
        (b"[]", "The body must be a JSON object.", None),
        (b"null", "The body must be a JSON object.", None),
        (b"{", "The body is not valid JSON.", None),
        (b'{"token": "\xff"}', "The body is not valid UTF-8.", None),
        (
            b'{"token": NaN}',
            "token: NaN is not a JSON number",
            [{"field": "token", "message": "NaN is not a JSON number"}],
        ),
    ],
)
def test_a_refused_body_is_400_invalid_body_in_the_same_words_as_before(
    sent: bytes, detail: str, errors: list[dict[str, str]] | None
) -> None:
    status, body, headers = resolved(app, event("/nodes/n1", sent, headers=GOOD))
    assert (status, body["code"], body["detail"]) == (400, "invalid_body", detail)
    assert body.get("errors") == errors
    assert body["instance"] == "/nodes/n1" and headers["X-Correlation-Id"] == body["correlation_id"] == "req-1"
    assert headers["Content-Type"] == "application/problem+json"
    assert CHECKED == ["n1"]  # the route's checks ran first


@pytest.mark.parametrize("sent", [b"", b"[]", b'{"token": NaN}', b"{", b'{"token": "t"}'])
def test_the_routes_checks_come_before_the_bodys_refusal(sent: bytes) -> None:
    status, body, _ = resolved(app, event("/nodes/n1", sent, headers={"Authorization": "Bearer bad"}))
    assert (status, body["code"]) == (401, "unauthenticated")
    assert CHECKED == ["n1"]
    status, body, _ = resolved(unprovisioned, event("/x", sent))
    assert (status, body["code"]) == (501, "x_not_provisioned")


@pytest.mark.parametrize(
    ("headers", "sent", "status", "code"),
    [
        ({"Content-Encoding": "br"}, REGISTRATION, 415, "unsupported_content_encoding"),
        ({"Content-Encoding": "gzip"}, REGISTRATION, 400, "invalid_body"),
        ({}, b"x" * (1_048_576 + 1), 413, "request_body_too_large"),
    ],
)
def test_an_undecodable_body_is_refused_before_anything_else(
    headers: dict[str, str], sent: bytes, status: int, code: str
) -> None:
    for path in ("/nodes/n1", "/optional", "/no-body"):
        status_got, body, _ = resolved(app, event(path, sent, headers=headers | {"Authorization": "Bearer bad"}))
        assert (status_got, body["code"]) == (status, code), path
    assert CHECKED == []


def test_a_route_without_a_body_never_reads_it() -> None:
    for sent in (b"[]", b'{"a": NaN}', b"\xff"):
        assert resolved(app, event("/no-body", sent))[:2] == (200, {"ok": True})


def test_an_optional_body_may_be_empty_but_not_wrong() -> None:
    assert resolved(app, event("/optional", headers=GOOD))[:2] == (200, {"ttl": None})
    assert resolved(app, event("/optional", b"", headers=GOOD))[:2] == (200, {"ttl": None})
    # an empty body has no coding to refuse
    assert resolved(app, event("/optional", headers=GOOD | {"Content-Encoding": "br"}))[:2] == (200, {"ttl": None})
    assert resolved(app, event("/optional", b'{"ttl_seconds": 120}', headers=GOOD))[:2] == (200, {"ttl": 120})
    for sent in (b"null", b"[]", b'{"ttl_seconds": NaN}', b'{"ttl_seconds": "120"}', b'{"nope": 1}'):
        status, body, _ = resolved(app, event("/optional", sent, headers=GOOD))
        assert (status, body["code"]) == (400, "invalid_body"), sent
        assert resolved(app, event("/optional", sent))[1]["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "document",
    [
        {"token": "t", "hostname": 1, "capabilities": {"builtin_actions": [{"name": 5}], "hooks": [{}]}},
        {"token": "", "hostname": "web 01", "public_key": ["k"], "metadata": "m"},
        {"hostname": "web-01", "capabilities": {"builtin_actions": "none"}},
    ],
)
def test_schema_errors_are_pydantics_own(document: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as expected:
        RegisterRequest.model_validate(document)
    status, body, _ = resolved(app, event("/nodes/n1", json.dumps(document).encode(), headers=GOOD))
    assert (status, body["detail"]) == (400, "The body does not match the schema.")
    assert body["errors"] == [
        {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
        for e in expected.value.errors(include_url=False, include_input=False)
    ]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_is_json_whatever_content_type_the_client_sent(content_type: str | None) -> None:
    headers = GOOD | ({"Content-Type": content_type} if content_type else {})
    status, body, _ = resolved(app, event("/nodes/n1", REGISTRATION, headers=headers))
    assert (status, body["hostname"]) == (201, "web-01")


def test_answers_leave_the_handler_byte_for_byte() -> None:
    # Powertools' response validation sees a str (or None) and changes nothing
    answer = app.resolve(event("/nodes/n1", REGISTRATION, headers=GOOD), None)  # type: ignore[arg-type]
    assert answer["body"] == json_response(201, {"hostname": "web-01", "note": "é" * 2000}).body
    answer = app.resolve(event("/nothing", method="DELETE"), None)  # type: ignore[arg-type]
    assert (answer["statusCode"], answer["body"]) == (204, None)


@pytest.mark.parametrize(("method", "path"), [("GET", "/swagger"), ("GET", "/openapi.json"), ("GET", "/_openapi")])
def test_no_openapi_document_or_swagger_ui_is_served(method: str, path: str) -> None:
    status, body, _ = resolved(app, event(path, method=method))
    assert (status, body["code"]) == (404, "route_not_found")


def test_an_answer_against_the_handlers_annotation_is_a_generic_500() -> None:
    status, body, _ = resolved(app, event("/mistyped", method="DELETE"))
    assert (status, body["code"]) == (500, "internal_error")


def test_a_failure_in_the_checks_is_a_generic_500() -> None:
    status, body, headers = resolved(broken, event("/x", b"[]"))
    assert (status, body["code"]) == (500, "internal_error")
    assert "division" not in json.dumps(body) and headers["X-Correlation-Id"] == "req-1"


def test_the_resolver_is_handed_a_plain_json_body() -> None:
    sent = event("/nodes/n1", REGISTRATION, headers={"content-type": "text/plain", "X-Other": "1"}, gzipped=True)
    normalized = json_request(sent, REGISTRATION)
    assert normalized["body"] == REGISTRATION.decode() and normalized["isBase64Encoded"] is False
    assert normalized["headers"] == {"X-Other": "1", "Content-Type": "application/json"}
    assert normalized["multiValueHeaders"] == {"X-Other": ["1"], "Content-Type": ["application/json"]}
    assert json_request(sent, b" \r\n")["body"] is None
    assert sent["isBase64Encoded"] is True  # the event itself is left as it was


def test_schema_errors_name_fields_as_pydantic_does_without_the_body_prefix() -> None:
    error = RequestValidationError(
        [
            {"loc": ("body",), "msg": "Value error, too big", "type": "value_error"},
            {"loc": ("body", "a", 0, "b"), "msg": "Field required", "type": "missing"},
        ]
    )
    refused = schema_mismatch(error, "{}")
    assert refused.extensions["errors"] == [
        {"field": "(body)", "message": "Value error, too big"},
        {"field": "a.0.b", "message": "Field required"},
    ]
    assert schema_mismatch(error, None).detail == "A JSON object body is required."
