"""POST /v1/projects/{project_id}/actions/{action}:prepare — schema, defaults and cohort (dry run)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.errors import RouteNotFound
from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.dispatching import prepare_command
from orchestrator.http.execution_schemas import PrepareRequest
from orchestrator.observability import api_entrypoint
from orchestrator.services import actions
from orchestrator.services.context import context_for


def prepared_action(app: APIGatewayRestResolver, action: str, **_: str) -> str:
    """Before the body: the path names ``{action}:prepare`` (404 otherwise); the action."""
    # API Gateway cannot route "{action}:prepare"; the parameter carries the suffix.
    name, separator, verb = action.rpartition(":")
    if not separator or verb != "prepare" or not name:
        raise RouteNotFound(f"No route for POST {app.current_event.path}.")
    return name


app = rest_app(before_body=prepared_action)
DEFAULTS = PrepareRequest()  # an empty body is read as `{}`


@app.post("/v1/projects/<project_id>/actions/<action>")
def prepare_action(
    project_id: str, action: str, request: Annotated[PrepareRequest, Body()] = DEFAULTS
) -> Response[str]:
    command = prepare_command(prepared_action(app, action), request)
    return json_response(
        200, actions.prepare(context_for("action_prepare"), operator_subject(app), project_id, command)
    )


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
