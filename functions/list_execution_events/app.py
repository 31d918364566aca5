"""GET /v1/projects/{project_id}/executions/{execution_id}/events — the audit trail, paginated."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.paging import page_body, page_request
from orchestrator.observability import api_entrypoint
from orchestrator.services import executions
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/projects/<project_id>/executions/<execution_id>/events")
def list_execution_events(project_id: str, execution_id: str) -> Response[str]:
    ctx = context_for("executions_read")
    subject = operator_subject(app)
    page = page_request(app, subject=subject, route=f"audit:{execution_id}", filters={})
    items, last_key = executions.audit_trail(
        ctx, subject, project_id, execution_id, limit=page.limit, start_key=page.start_key
    )
    return json_response(200, page_body(items, last_key, page))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
