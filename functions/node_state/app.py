"""GET /v1/nodes/{node_id}/state — the node's open invocations and signing keys (reconciliation)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, rest_app
from orchestrator.http.nodes import authenticated_node_record
from orchestrator.observability import api_entrypoint
from orchestrator.services import node_feed
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/nodes/<node_id>/state")
def node_state(node_id: str) -> Response[str]:
    ctx = context_for("node_state")
    node, _ = authenticated_node_record(app, ctx, node_id)
    return json_response(200, node_feed.node_state(ctx, node))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
