"""PATCH /v1/projects/{project_id}/nodes/{node_id} — set or remove operator labels (admin)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, parse_body, rest_app
from orchestrator.http.schemas import UpdateNodeLabelsRequest, node_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import nodes
from orchestrator.services.context import context_for

app = rest_app()


@app.patch("/v1/projects/<project_id>/nodes/<node_id>")
def update_node_labels(project_id: str, node_id: str) -> Response[str]:
    ctx = context_for("node_labels")
    request = parse_body(app, UpdateNodeLabelsRequest)
    node = nodes.set_labels(ctx, operator_subject(app), project_id, node_id, request.labels)
    return json_response(200, node_view(node, ctx.clock.now()))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
