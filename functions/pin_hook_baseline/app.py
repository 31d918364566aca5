"""PUT /v1/projects/{project_id}/hooks/{name}/baseline — pin a hook's known-good sha256 (admin)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, parse_body, rest_app
from orchestrator.http.execution_schemas import PinBaselineRequest, checked_action_name
from orchestrator.observability import api_entrypoint
from orchestrator.services import executions
from orchestrator.services.context import context_for

app = rest_app()


@app.put("/v1/projects/<project_id>/hooks/<name>/baseline")
def pin_hook_baseline(project_id: str, name: str) -> Response[str]:
    checked_action_name(name)
    request = parse_body(app, PinBaselineRequest)
    pinned = executions.pin_baseline(
        context_for("hook_baselines"), operator_subject(app), project_id, name, request.checksum
    )
    return json_response(200, pinned)


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
