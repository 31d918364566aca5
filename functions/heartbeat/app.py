"""POST /v1/nodes/{node_id}/heartbeat — liveness; answers reconcile / rotate_keys requests."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, parse_body, rest_app
from orchestrator.http.nodes import authenticated_node
from orchestrator.http.schemas import HeartbeatRequest
from orchestrator.observability import api_entrypoint
from orchestrator.services import nodes
from orchestrator.services.context import context_for

app = rest_app()


@app.post("/v1/nodes/<node_id>/heartbeat")
def heartbeat(node_id: str) -> Response[str]:
    ctx = context_for("node_heartbeat")
    node_item = authenticated_node(app, ctx, node_id)
    report = parse_body(app, HeartbeatRequest, empty_ok=True)
    reconcile, rotate_keys = nodes.heartbeat(ctx, node_item, report.model_dump())
    return json_response(200, {"reconcile": reconcile, "rotate_keys": rotate_keys})


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
