"""GET /v1/projects/{project_id}/secrets — the project's secrets by name (never values)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.paging import page_body, page_request
from orchestrator.http.secret_schemas import secret_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import secrets
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/projects/<project_id>/secrets")
def list_secrets(project_id: str) -> Response[str]:
    ctx = context_for("secrets")
    subject = operator_subject(app)
    page = page_request(app, subject=subject, route=f"secrets:{project_id}", filters={})
    found, last_key = secrets.list_secrets(ctx, subject, project_id, limit=page.limit, start_key=page.start_key)
    return json_response(200, page_body([secret_view(s) for s in found], last_key, page))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
