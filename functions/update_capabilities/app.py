"""PUT /v1/nodes/{node_id}/capabilities — a node declares its builtin actions and hooks."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.clock import rfc3339
from orchestrator.http.api import json_response, parse_body, rest_app
from orchestrator.http.nodes import authenticated_node
from orchestrator.http.schemas import CapabilitiesIn, capabilities_summary
from orchestrator.observability import api_entrypoint
from orchestrator.services import nodes
from orchestrator.services.context import context_for

app = rest_app()


@app.put("/v1/nodes/<node_id>/capabilities")
def update_capabilities(node_id: str) -> Response[str]:
    ctx = context_for("node_capabilities")
    node_item = authenticated_node(app, ctx, node_id)
    node = nodes.update_capabilities(ctx, node_item, parse_body(app, CapabilitiesIn).to_domain())
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
