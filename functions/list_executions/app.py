"""GET /v1/projects/{project_id}/executions — creation order, status/action_name filters, cursors."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, query_param, rest_app
from orchestrator.http.execution_schemas import InlineBudget, execution_view, list_filters
from orchestrator.http.paging import page_body, page_request
from orchestrator.observability import api_entrypoint
from orchestrator.services import executions
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/projects/<project_id>/executions")
def list_executions(project_id: str) -> Response[str]:
    ctx = context_for("executions_read")
    subject = operator_subject(app)
    status, action = list_filters(query_param(app, "status"), query_param(app, "action_name"))
    page = page_request(
        app, subject=subject, route=f"executions:{project_id}", filters={"status": status, "action_name": action}
    )
    found, last_key = executions.list_executions(
        ctx, subject, project_id, status=status, action=action, limit=page.limit, start_key=page.start_key
    )
    budget = InlineBudget()  # one for the whole page
    items = [
        execution_view(s.execution, targets=s.targets, targets_truncated=s.targets_truncated, budget=budget)
        for s in found
    ]
    return json_response(200, page_body(items, last_key, page))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
