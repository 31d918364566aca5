"""PUT /v1/projects/{project_id}/hooks/{name}/baseline — pin a hook's known-good sha256 (admin)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.execution_schemas import PinBaselineRequest, checked_action_name
from orchestrator.observability import api_entrypoint
from orchestrator.services import executions
from orchestrator.services.context import context_for


def checked_name(_: APIGatewayRestResolver, name: str, **__: str) -> str:
    """Before the body: the hook's name in the path (400 ``invalid_parameter``)."""
    return checked_action_name(name)


app = rest_app(before_body=checked_name)


@app.put("/v1/projects/<project_id>/hooks/<name>/baseline")
def pin_hook_baseline(project_id: str, name: str, request: Annotated[PinBaselineRequest, Body()]) -> Response[str]:
    checked_name(app, name)
    pinned = executions.pin_baseline(
        context_for("hook_baselines"), operator_subject(app), project_id, name, request.checksum
    )
    return json_response(200, pinned)


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
