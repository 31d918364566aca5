"""POST /v1/nodes/{node_id}/deregister — the node leaves every cohort; its NSK stops working."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, rest_app
from orchestrator.http.nodes import authenticated_node_record
from orchestrator.observability import api_entrypoint
from orchestrator.services import nodes
from orchestrator.services.context import context_for

app = rest_app()


@app.post("/v1/nodes/<node_id>/deregister")
def deregister(node_id: str) -> Response[str]:
    ctx = context_for("node_deregistration")
    node = nodes.deregister(ctx, *authenticated_node_record(app, ctx, node_id))
    return json_response(200, {"node_id": node.id, "status": node.status.value})


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
