"""api/openapi.yaml is what `make openapi` generates from the routes, the operations and the
models: a change to any of them without regenerating the file fails here."""

from __future__ import annotations

import difflib
import re
import typing
from typing import Any

import pytest
import yaml
from openapi_gen import OUTPUT, build_document, render
from openapi_gen.document import BASE
from openapi_gen.operations import OPERATIONS, Operation
from openapi_gen.schemas import REF_PREFIX, to_openapi

from orchestrator_local.template import Route, Template

SHOWN_DIFF_LINES = 80


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(BASE.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def generated() -> str:
    return render()


def test_the_committed_document_is_the_generated_one(generated: str) -> None:
    committed = OUTPUT.read_text(encoding="utf-8")
    if committed != generated:
        diff = difflib.unified_diff(
            committed.splitlines(), generated.splitlines(), "api/openapi.yaml (committed)", "generated", lineterm=""
        )
        shown = "\n".join(list(diff)[:SHOWN_DIFF_LINES])
        pytest.fail(f"api/openapi.yaml is out of date: run make openapi\n{shown}")


def test_generation_is_deterministic(generated: str) -> None:
    assert render() == generated


def test_a_route_without_an_operation_is_refused(base: dict[str, Any]) -> None:
    routes = [*Template().routes, Route("GET", "/v1/nowhere", "NowhereFunction", authorized=True)]
    with pytest.raises(ValueError, match="undeclared"):
        build_document(base, routes, OPERATIONS)


def test_an_operation_without_a_route_is_refused(base: dict[str, Any]) -> None:
    routes = [r for r in Template().routes if r.path != "/v1/ping"]
    with pytest.raises(ValueError, match="not routed"):
        build_document(base, routes, OPERATIONS)


def test_an_operation_must_name_its_routes_function(base: dict[str, Any]) -> None:
    routes = [
        Route(r.method, r.path, "OtherFunction", r.authorized) if r.path == "/v1/ping" else r for r in Template().routes
    ]
    with pytest.raises(ValueError, match="OtherFunction"):
        build_document(base, routes, OPERATIONS)


def test_an_unknown_problem_response_is_refused(base: dict[str, Any]) -> None:
    ping = next(op for op in OPERATIONS if op.path == "/v1/ping")
    broken = Operation(**{**ping.__dict__, "errors": {418: "Teapot"}})
    operations = [broken if op is ping else op for op in OPERATIONS]
    with pytest.raises(ValueError, match="Teapot"):
        build_document(base, Template().routes, operations)


def test_request_and_response_schemas_are_the_models_components() -> None:
    document = yaml.safe_load(OUTPUT.read_text(encoding="utf-8"))
    for operation in OPERATIONS:
        found = document["paths"][operation.path][operation.method.lower()]
        if operation.request is not None:
            schema = found["requestBody"]["content"]["application/json"]["schema"]
            model = typing.get_args(operation.request)[0] if typing.get_origin(operation.request) else operation.request
            title = model.model_config.get("title") or model.__name__
            ref = {"$ref": REF_PREFIX + title}
            assert schema == (ref if model is operation.request else {"type": "array", "items": ref}), (
                operation.operation_id
            )
            assert found["responses"]["400"]["$ref"].startswith("#/components/responses/"), operation.operation_id
        if isinstance(operation.answer.body, type):
            answer = found["responses"][str(operation.answer.status)]["content"]["application/json"]["schema"]
            title = operation.answer.body.model_config.get("title") or operation.answer.body.__name__
            assert answer == {"$ref": REF_PREFIX + title}, operation.operation_id


def test_the_document_holds_no_json_schema_2020_keywords() -> None:
    text = OUTPUT.read_text(encoding="utf-8")
    assert not re.search(r"^\s+(const|examples|prefixItems|\$defs):", text, re.MULTILINE)
    assert "type: 'null'" not in text and "- type: 'null'" not in text


@pytest.mark.parametrize(
    ("json_schema", "openapi"),
    [
        (
            {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            {"type": "string", "nullable": True, "default": None},
        ),
        ({"anyOf": [{"$ref": REF_PREFIX + "X"}, {"type": "null"}]}, {"type": "object", "nullable": True}),
        ({"$ref": REF_PREFIX + "X", "description": "d"}, {"allOf": [{"$ref": REF_PREFIX + "X"}], "description": "d"}),
        ({"const": True, "type": "boolean"}, {"type": "boolean", "enum": [True]}),
        ({"type": "string", "examples": ["a", "b"], "title": "T"}, {"type": "string", "example": "a"}),
        ({"type": "string", "default": None}, {"type": "string"}),
        ({"default": None, "description": "any"}, {"nullable": True, "description": "any", "default": None}),
    ],
)
def test_json_schema_becomes_openapi_3_0(json_schema: dict[str, Any], openapi: dict[str, Any]) -> None:
    assert to_openapi(json_schema, {"X": {"type": "object", "title": "X"}}) == openapi


def test_a_keyword_without_an_openapi_3_0_form_is_refused() -> None:
    with pytest.raises(ValueError, match="prefixItems"):
        to_openapi({"type": "array", "prefixItems": [{"type": "string"}]}, {})
