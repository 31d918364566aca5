"""GET /v1/projects/{project_id}/nodes/{node_id}/drift — a node's drift reports, newest first."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.paging import page_body, page_request
from orchestrator.http.report_schemas import drift_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import node_reports
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/projects/<project_id>/nodes/<node_id>/drift")
def list_node_drift(project_id: str, node_id: str) -> Response[str]:
    ctx = context_for("node_drift_listing")
    subject = operator_subject(app)
    page = page_request(app, subject=subject, route=f"node_drift:{project_id}:{node_id}", filters={})
    found, last_key = node_reports.list_drift(
        ctx, subject, project_id, node_id, limit=page.limit, start_key=page.start_key
    )
    return json_response(200, page_body([drift_view(d) for d in found], last_key, page))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
