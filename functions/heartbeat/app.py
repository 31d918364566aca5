"""POST /v1/nodes/{node_id}/heartbeat — liveness; answers reconcile / rotate_keys requests."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.domain.credentials import NodeCredential
from orchestrator.http.api import json_response, rest_app
from orchestrator.http.nodes import authenticated_node
from orchestrator.http.schemas import HeartbeatRequest
from orchestrator.observability import api_entrypoint
from orchestrator.services import nodes
from orchestrator.services.context import Context, context_for


def caller(app: APIGatewayRestResolver, node_id: str) -> tuple[Context, NodeCredential]:
    """Before the body: the operation is provisioned (501), then the node's key (401/403)."""
    ctx = context_for("node_heartbeat")
    return ctx, authenticated_node(app, ctx, node_id)


app = rest_app(before_body=caller)
NO_REPORT = HeartbeatRequest()  # an empty body is a heartbeat without details


@app.post("/v1/nodes/<node_id>/heartbeat")
def heartbeat(node_id: str, report: Annotated[HeartbeatRequest, Body()] = NO_REPORT) -> Response[str]:
    ctx, node_item = caller(app, node_id)
    reconcile, rotate_keys = nodes.heartbeat(ctx, node_item, report.model_dump())
    return json_response(200, {"reconcile": reconcile, "rotate_keys": rotate_keys})


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
