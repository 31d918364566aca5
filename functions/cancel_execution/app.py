"""POST .../executions/{execution_id}:cancel (or DELETE .../executions/{execution_id}) — operator cancel."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.errors import RouteNotFound
from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.execution_schemas import execution_view
from orchestrator.observability import api_entrypoint
from orchestrator.services.cancel import cancel
from orchestrator.services.context import context_for

app = rest_app()


def _cancel(project_id: str, execution_id: str) -> Response[str]:
    detail = cancel(context_for("execution_cancel"), operator_subject(app), project_id, execution_id)
    return json_response(
        200, execution_view(detail.execution, status=detail.status, counts=detail.counts, targets=detail.targets)
    )


@app.post("/v1/projects/<project_id>/executions/<execution_ref>")
def cancel_custom_method(project_id: str, execution_ref: str) -> Response[str]:
    # API Gateway cannot route "{execution_id}:cancel"; the parameter carries the suffix.
    execution_id, separator, verb = execution_ref.partition(":")
    if not separator or verb != "cancel":
        raise RouteNotFound(f"No route for POST {app.current_event.path}.")
    return _cancel(project_id, execution_id)


@app.delete("/v1/projects/<project_id>/executions/<execution_id>")
def cancel_delete(project_id: str, execution_id: str) -> Response[str]:
    return _cancel(project_id, execution_id)


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
