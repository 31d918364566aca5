"""POST /v1/projects/{project_id}/executions:dispatch (also /executions/dispatch) — dispatch an action."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.dispatching import dispatch_from_request
from orchestrator.observability import api_entrypoint

app = rest_app()


@app.post("/v1/projects/<project_id>/executions:dispatch")
@app.post("/v1/projects/<project_id>/executions/dispatch")
def dispatch_execution(project_id: str) -> Response[str]:
    return json_response(201, dispatch_from_request(app, operator_subject(app), project_id))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
