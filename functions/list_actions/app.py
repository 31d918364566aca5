"""GET /v1/projects/{project_id}/actions — the action catalog of the project's nodes."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.observability import api_entrypoint
from orchestrator.services import actions
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/projects/<project_id>/actions")
def list_actions(project_id: str) -> Response[str]:
    return json_response(
        200, {"items": actions.catalog(context_for("action_catalog"), operator_subject(app), project_id)}
    )


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
