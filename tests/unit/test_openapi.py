"""api/openapi.yaml describes exactly the API routes of template.yaml, and is valid OpenAPI 3.0."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from openapi_spec_validator import OpenAPIV30SpecValidator, validate

from orchestrator_local.template import ROOT, Route, Template

OPENAPI = ROOT / "api" / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
STUB = re.compile(r'raise NotProvisioned\("(\w+)"\)')


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    with OPENAPI.open() as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


@pytest.fixture(scope="module")
def routes() -> list[Route]:
    return Template().routes


def operation(document: dict[str, Any], route: Route) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"][route.path][route.method.lower()]
    return found


def test_document_is_valid_openapi_3_0(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.0.3"
    validate(document, cls=OpenAPIV30SpecValidator)


def test_documented_routes_are_exactly_the_template_routes(document: dict[str, Any], routes: list[Route]) -> None:
    # Given the API events of every function in template.yaml
    routed = {(route.method, route.path) for route in routes}
    # When reading every operation of the OpenAPI document
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item if method in HTTP_METHODS
    }
    # Then neither has a route the other lacks
    assert sorted(routed - documented) == [], "routed in template.yaml but missing from api/openapi.yaml"
    assert sorted(documented - routed) == [], "in api/openapi.yaml but not routed by template.yaml"


def test_security_follows_the_template_authorizer(document: dict[str, Any], routes: list[Route]) -> None:
    for route in routes:
        requirements = operation(document, route).get("security", document.get("security", []))
        schemes = {name for requirement in requirements for name in requirement}
        if route.authorized:
            assert schemes == {"operatorJwt"}, route
        elif route.path.startswith("/v1/nodes/"):
            assert "nodeSecretKey" in schemes, route
            assert "operatorJwt" not in schemes, route
        else:
            assert route.path == "/v1/register", route
            assert schemes == set(), route


def test_every_operation_documents_its_problem_responses(document: dict[str, Any], routes: list[Route]) -> None:
    for route in routes:
        responses = operation(document, route)["responses"]
        assert any(status.startswith("2") for status in responses), route
        assert responses["501"] == {"$ref": "#/components/responses/NotProvisioned"}, route
        assert responses["503"] == {"$ref": "#/components/responses/DatastoreUnavailable"}, route
        assert responses["413"]["$ref"].startswith("#/components/responses/"), route


def test_stub_operations_say_they_are_not_provisioned_and_name_their_code(
    document: dict[str, Any], routes: list[Route]
) -> None:
    functions = Template().functions
    stubs = 0
    for route in routes:
        stub = STUB.search(functions[route.function].module_path.read_text())
        if stub is None:
            continue
        stubs += 1
        description = operation(document, route)["description"]
        assert "Not yet provisioned in this build (501)" in description, route
        assert f"`{stub.group(1)}`" in description, route
    assert stubs > 0


def test_problem_schema_and_reusable_responses(document: dict[str, Any]) -> None:
    components = document["components"]
    problem = components["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance", "code", "correlation_id"}
    assert {"dimension", "reason", "relation_path", "errors"} <= set(problem["properties"])
    for name in (
        "InvalidBody",
        "Unauthenticated",
        "RebacDenied",
        "NotFound",
        "RequestBodyTooLarge",
        "NotProvisioned",
        "DatastoreUnavailable",
    ):
        response = components["responses"][name]
        assert response["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}, (
            name
        )
        assert response["headers"]["X-Correlation-Id"] == {"$ref": "#/components/headers/XCorrelationId"}, name
