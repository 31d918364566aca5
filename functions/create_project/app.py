"""POST /v1/domains/{domain_id}/projects — create a Project in a Domain (Domain admin)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.schemas import CreateProjectRequest, project_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import tenancy
from orchestrator.services.context import Context, context_for


def provisioned(_: APIGatewayRestResolver, **__: str) -> Context:
    """Before the body: the operation is provisioned (501)."""
    return context_for("tenancy")


app = rest_app(before_body=provisioned)


@app.post("/v1/domains/<domain_id>/projects")
def create_project(domain_id: str, request: Annotated[CreateProjectRequest, Body()]) -> Response[str]:
    ctx = provisioned(app)
    project = tenancy.create_project(ctx, operator_subject(app), domain_id, name=request.name)
    return json_response(201, project_view(project))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
