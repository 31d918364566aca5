"""POST /v1/projects/{project_id}/actions/{action}:prepare — schema, defaults and cohort (dry run)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.errors import RouteNotFound
from orchestrator.http.api import json_response, operator_subject, parse_body, rest_app
from orchestrator.http.dispatching import prepare_command
from orchestrator.http.execution_schemas import PrepareRequest
from orchestrator.observability import api_entrypoint
from orchestrator.services import actions
from orchestrator.services.context import context_for

app = rest_app()


@app.post("/v1/projects/<project_id>/actions/<action_ref>")
def prepare_action(project_id: str, action_ref: str) -> Response[str]:
    # API Gateway cannot route "{action}:prepare"; the parameter carries the suffix.
    action, separator, verb = action_ref.rpartition(":")
    if not separator or verb != "prepare" or not action:
        raise RouteNotFound(f"No route for POST {app.current_event.path}.")
    command = prepare_command(action, parse_body(app, PrepareRequest, empty_ok=True))
    return json_response(
        200, actions.prepare(context_for("action_prepare"), operator_subject(app), project_id, command)
    )


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
