"""PUT /v1/nodes/{node_id}/endpoint — the node's public endpoint (NAT discovery); the known
endpoints of its peers."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.domain.credentials import NodeCredential
from orchestrator.domain.models import Node
from orchestrator.http.api import json_response, rest_app
from orchestrator.http.mesh_schemas import EndpointReport
from orchestrator.http.nodes import authenticated_node_record
from orchestrator.observability import api_entrypoint
from orchestrator.services import mesh
from orchestrator.services.context import Context, context_for


def caller(app: APIGatewayRestResolver, node_id: str) -> tuple[Context, tuple[Node, NodeCredential]]:
    """Before the body: the operation is provisioned (501), then the node's key (401/403)."""
    ctx = context_for("node_endpoint")
    return ctx, authenticated_node_record(app, ctx, node_id)


app = rest_app(before_body=caller)


@app.put("/v1/nodes/<node_id>/endpoint")
def report_endpoint(node_id: str, request: Annotated[EndpointReport, Body()]) -> Response[str]:
    ctx, (node, _) = caller(app, node_id)
    peer_endpoints = mesh.report_endpoint(ctx, node, request.public_endpoint, request.nat_type)
    return json_response(200, {"peer_endpoints": peer_endpoints})


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
