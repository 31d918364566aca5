"""POST /v1/domains/{domain_id}/projects — create a Project in a Domain (Domain admin)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, parse_body, rest_app
from orchestrator.http.schemas import CreateProjectRequest, project_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import tenancy
from orchestrator.services.context import context_for

app = rest_app()


@app.post("/v1/domains/<domain_id>/projects")
def create_project(domain_id: str) -> Response[str]:
    ctx = context_for("tenancy")
    request = parse_body(app, CreateProjectRequest)
    project = tenancy.create_project(ctx, operator_subject(app), domain_id, name=request.name)
    return json_response(201, project_view(project))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
