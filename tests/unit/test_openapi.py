"""api/openapi.yaml describes exactly the API routes of template.yaml, and is valid OpenAPI 3.0."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, get_args

import pytest
import yaml
from openapi_schema_validator import OAS30Validator
from openapi_schema_validator import validate as validate_instance
from openapi_spec_validator import OpenAPIV30SpecValidator, validate
from pydantic import BaseModel

from orchestrator.domain.executions import Execution, OutputRef, RateControl, Target, TargetStatus
from orchestrator.http.callback_schemas import AckIn, CallbackIn, OutputIn, ResultIn
from orchestrator.http.execution_schemas import (
    DispatchRequest,
    InlineBudget,
    PinBaselineRequest,
    RateIn,
    execution_view,
    target_view,
)
from orchestrator_local.template import ROOT, Route, Template

OPENAPI = ROOT / "api" / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
STUB = re.compile(r'raise NotProvisioned\("(\w+)"\)')
CONTEXT = re.compile(r'context_for\("(\w+)"\)')
STUB_WORDING = "Not yet provisioned in this build (501)"


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


def handler_source(route: Route) -> str:
    return Template().functions[route.function].module_path.read_text()


def schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def conforms(document: dict[str, Any], instance: Any, name: str) -> None:
    """Validate ``instance`` against ``#/components/schemas/<name>`` (OpenAPI 3.0 dialect)."""
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    validate_instance(instance, root, cls=OAS30Validator)


def literal_values(model: type[BaseModel], field: str) -> set[str]:
    return set(get_args(model.model_fields[field].annotation))


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
        elif (
            route.path.startswith("/v1/nodes/")
            or route.path == "/v1/keys/rotate"
            or (route.method == "GET" and route.path.startswith("/v1/artifacts/"))  # the node's download
        ):
            assert "nodeSecretKey" in schemes, route
            assert "operatorJwt" not in schemes, route
        else:
            assert route.path in {"/v1/register", "/v1/ping"}, route
            assert schemes == set(), route


def test_only_the_callback_routes_accept_a_callback_token(document: dict[str, Any], routes: list[Route]) -> None:
    for route in routes:
        alternatives = [set(requirement) for requirement in operation(document, route).get("security", [])]
        is_callback = re.fullmatch(r"/v1/nodes/\{node_id\}/executions/\{execution_id\}(/ack|/result)?", route.path)
        if is_callback:
            assert alternatives == [{"nodeSecretKey"}, {"callbackToken"}], route
        else:
            assert {"callbackToken"} not in alternatives, route


def test_every_operation_documents_its_problem_responses(document: dict[str, Any], routes: list[Route]) -> None:
    for route in routes:
        responses = operation(document, route)["responses"]
        assert any(status.startswith(("2", "3")) for status in responses), route  # a 302 redirects
        if route.path != "/v1/ping":  # the health check needs no resource
            assert responses["501"] == {"$ref": "#/components/responses/NotProvisioned"}, route
            assert responses["503"] == {"$ref": "#/components/responses/DatastoreUnavailable"}, route
        assert responses["413"]["$ref"].startswith("#/components/responses/"), route
        assert responses["415"] == {"$ref": "#/components/responses/UnsupportedContentEncoding"}, route


def test_stub_operations_say_they_are_not_provisioned_and_name_their_code(
    document: dict[str, Any], routes: list[Route]
) -> None:
    # Given the handlers that still only raise NotProvisioned (there may be none left)
    for route in routes:
        stub = STUB.search(handler_source(route))
        if stub is None:
            continue
        # Then their operation says so and names the code the handler raises
        description = operation(document, route)["description"]
        assert STUB_WORDING in description, route
        assert f"`{stub.group(1)}`" in description, route


def test_operations_name_the_not_provisioned_codes_of_their_handler(
    document: dict[str, Any], routes: list[Route]
) -> None:
    # Given the operation each handler builds its context for (501 <operation>_not_provisioned without a table)
    for route in routes:
        description = operation(document, route)["description"]
        for context in CONTEXT.findall(handler_source(route)):
            # Then the operation's description names that code
            assert f"`{context}_not_provisioned`" in description, (route, context)


def test_problem_schema_and_reusable_responses(document: dict[str, Any]) -> None:
    components = document["components"]
    problem = components["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance", "code", "correlation_id"}
    extensions = {"dimension", "limit", "reason", "relation_path", "errors", "position", "problems"}
    assert extensions | {"hook", "baseline", "drifting_nodes"} <= set(problem["properties"])
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


def test_problem_examples_follow_the_type_convention(document: dict[str, Any]) -> None:
    for name, response in document["components"]["responses"].items():
        example = response.get("content", {}).get("application/problem+json", {}).get("example")
        if example is not None:
            assert example["type"] == f"urn:plexsphere:problem:{example['code']}", name


def test_statuses_and_counts_are_the_seven_target_states(document: dict[str, Any]) -> None:
    states = {status.value for status in TargetStatus}
    assert set(schema(document, "TargetStatus")["enum"]) == states
    assert set(schema(document, "ExecutionStatus")["enum"]) == states
    counts = schema(document, "ExecutionCounts")
    assert set(counts["required"]) == set(counts["properties"]) == states


def test_execution_projections_match_their_schemas(document: dict[str, Any]) -> None:
    # Given an Execution with an inline and an object-store output
    now = datetime(2025, 1, 1, 12, tzinfo=UTC)
    execution = Execution(
        id="0190b5e4-6f1a-7cc2-8d3e-2b9f3a1c4d5e",
        project_id="0190b5e4-0000-7000-8000-000000000002",
        domain_id="0190b5e4-0000-7000-8000-000000000001",
        action="restart-service",
        type="builtin",
        parameters={"service": "nginx"},
        timeout_seconds=300,
        status=TargetStatus.STARTED,
        created_at=now,
        updated_at=now,
        started_at=now,
        expires_at=now,
        triggered_by={"type": "operator", "subject": "alice"},
        target_count=2,
        selector="env=prod",
        rate=RateControl(max_concurrency=1),
    )
    inline = OutputRef(kind="inline", content=b"restarted ok", size=12)
    stored = OutputRef(kind="object_store", bucket="outputs", key="outputs/e/n", sha256="0" * 64, size=20_000)
    targets = [
        Target(
            execution_id=execution.id,
            node_id=node_id,
            hostname=node_id,
            status=TargetStatus.SUCCEEDED,
            created_at=now,
            updated_at=now,
            exit_code=0,
            output_ref=ref,
        )
        for node_id, ref in (("n1", inline), ("n2", stored))
    ]
    counts = {status.value: 0 for status in TargetStatus} | {TargetStatus.SUCCEEDED.value: 2}
    # Then the single-Execution view is an Execution and the list view an ExecutionSummary
    conforms(document, execution_view(execution, counts=counts, targets=targets), "Execution")
    conforms(document, execution_view(execution, targets=targets[:1], targets_truncated=True), "ExecutionSummary")
    # And an inline output past the response's budget still conforms, without its bytes
    squeezed = execution_view(execution, counts=counts, targets=targets, budget=InlineBudget(0))
    conforms(document, squeezed, "Execution")
    assert squeezed["targets"][0]["output_ref"] == {"kind": "inline", "size": 12, "inline_bytes_omitted": True}
    # And the Target schema lists exactly what a target view can hold (every optional field set)
    full = Target(**{**targets[0].model_dump(), "error": "boom", "late_reports": 2})
    assert list(target_view(full, InlineBudget())) == list(schema(document, "Target")["properties"])
    output_fields = set(schema(document, "InlineOutputRef")["properties"])
    output_fields |= set(schema(document, "ObjectStoreOutputRef")["properties"])
    # the domain's bytes travel as inline_bytes (base64), or are left out past the budget
    assert output_fields == set(OutputRef.model_fields) - {"content"} | {"inline_bytes", "inline_bytes_omitted"}


@pytest.mark.parametrize(
    ("model", "name"),
    [
        (DispatchRequest, "DispatchRequest"),
        (RateIn, "RateControl"),
        (PinBaselineRequest, "HookBaselineRequest"),
        (CallbackIn, "CallbackRequest"),
        (OutputIn, "CallbackOutput"),
        (AckIn, "AckRequest"),
        (ResultIn, "ResultRequest"),
    ],
)
def test_request_schemas_have_the_fields_of_their_models(
    document: dict[str, Any], model: type[BaseModel], name: str
) -> None:
    documented = schema(document, name)
    assert set(documented["properties"]) == set(model.model_fields), name
    required = {field for field, info in model.model_fields.items() if info.is_required()}
    assert set(documented.get("required", [])) == required, name


@pytest.mark.parametrize(
    ("model", "name"),
    [(CallbackIn, "CallbackRequest"), (AckIn, "AckRequest"), (ResultIn, "ResultRequest")],
)
def test_report_status_vocabularies_match_the_models(
    document: dict[str, Any], model: type[BaseModel], name: str
) -> None:
    assert set(schema(document, name)["properties"]["status"]["enum"]) == literal_values(model, "status")
