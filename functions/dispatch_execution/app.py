"""POST /v1/projects/{project_id}/executions:dispatch (also /executions/dispatch) — dispatch an action."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.http.api import json_response, rest_app
from orchestrator.http.dispatching import dispatch_from_request, dispatcher
from orchestrator.http.execution_schemas import DispatchRequest
from orchestrator.observability import api_entrypoint

app = rest_app(before_body=dispatcher)


@app.post("/v1/projects/<project_id>/executions:dispatch")
@app.post("/v1/projects/<project_id>/executions/dispatch")
def dispatch_execution(project_id: str, request: Annotated[DispatchRequest, Body()]) -> Response[str]:
    subject, ctx = dispatcher(app)
    return json_response(201, dispatch_from_request(app, ctx, subject, project_id, request))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
