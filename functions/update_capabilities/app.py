"""PUT /v1/nodes/{node_id}/capabilities — a node declares its builtin actions and hooks."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.clock import rfc3339
from orchestrator.domain.credentials import NodeCredential
from orchestrator.http.api import json_response, rest_app
from orchestrator.http.nodes import authenticated_node
from orchestrator.http.schemas import CapabilitiesIn, capabilities_summary
from orchestrator.observability import api_entrypoint
from orchestrator.services import nodes
from orchestrator.services.context import Context, context_for


def caller(app: APIGatewayRestResolver, node_id: str) -> tuple[Context, NodeCredential]:
    """Before the body: the operation is provisioned (501), then the node's key (401/403)."""
    ctx = context_for("node_capabilities")
    return ctx, authenticated_node(app, ctx, node_id)


app = rest_app(before_body=caller)


@app.put("/v1/nodes/<node_id>/capabilities")
def update_capabilities(node_id: str, request: Annotated[CapabilitiesIn, Body()]) -> Response[str]:
    ctx, node_item = caller(app, node_id)
    node = nodes.update_capabilities(ctx, node_item, request.to_domain())
    return json_response(
        200,
        {
            "node_id": node.id,
            "capabilities": capabilities_summary(node.capabilities),
            "updated_at": rfc3339(node.updated_at),
        },
    )


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
