"""GET /v1/projects/{project_id}/nodes — the project's nodes, in registration order."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.paging import page_body, page_request
from orchestrator.http.schemas import node_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import nodes
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/projects/<project_id>/nodes")
def list_nodes(project_id: str) -> Response[str]:
    ctx = context_for("node_listing")
    subject = operator_subject(app)
    page = page_request(app, subject=subject, route=f"nodes:{project_id}", filters={})
    found, last_key = nodes.list_nodes(ctx, subject, project_id, limit=page.limit, start_key=page.start_key)
    now = ctx.clock.now()
    return json_response(200, page_body([node_view(n, now) for n in found], last_key, page))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
