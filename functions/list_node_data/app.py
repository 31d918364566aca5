"""GET /v1/projects/{project_id}/nodes/{node_id}/data — a node's data entries, in key order (viewer)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.observability import api_entrypoint
from orchestrator.services import node_data
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/projects/<project_id>/nodes/<node_id>/data")
def list_node_data(project_id: str, node_id: str) -> Response[str]:
    entries = node_data.list_entries(context_for("node_data"), operator_subject(app), project_id, node_id)
    return json_response(200, {"items": [e.view() for e in entries]})


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
