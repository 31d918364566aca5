"""GET /v1/projects/{project_id}/executions/{execution_id} — one Execution with its targets."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.execution_schemas import execution_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import executions
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/projects/<project_id>/executions/<execution_id>")
def get_execution(project_id: str, execution_id: str) -> Response[str]:
    detail = executions.get_execution(context_for("executions_read"), operator_subject(app), project_id, execution_id)
    return json_response(
        200, execution_view(detail.execution, status=detail.status, counts=detail.counts, targets=detail.targets)
    )


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
