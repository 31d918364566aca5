"""GET .../executions/{execution_id}/targets/{node_id}/output — inline bytes or a presigned GET."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.observability import api_entrypoint
from orchestrator.services import executions
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/projects/<project_id>/executions/<execution_id>/targets/<node_id>/output")
def get_target_output(project_id: str, execution_id: str, node_id: str) -> Response[str]:
    output = executions.target_output(
        context_for("execution_output"), operator_subject(app), project_id, execution_id, node_id
    )
    return json_response(200, output)


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
