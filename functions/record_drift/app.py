"""POST /v1/nodes/{node_id}/drift — a node reports what it corrected when it reconciled."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.clock import rfc3339
from orchestrator.domain.credentials import NodeCredential
from orchestrator.http.api import json_response, rest_app
from orchestrator.http.nodes import authenticated_node
from orchestrator.http.report_schemas import DriftRequest
from orchestrator.observability import api_entrypoint
from orchestrator.services import node_reports
from orchestrator.services.context import Context, context_for


def caller(app: APIGatewayRestResolver, node_id: str) -> tuple[Context, NodeCredential]:
    """Before the body: the operation is provisioned (501), then the node's key (401/403)."""
    ctx = context_for("node_drift")
    return ctx, authenticated_node(app, ctx, node_id)


app = rest_app(before_body=caller)


@app.post("/v1/nodes/<node_id>/drift")
def record_drift(node_id: str, request: Annotated[DriftRequest, Body()]) -> Response[str]:
    ctx, node = caller(app, node_id)
    drift = node_reports.record_drift(ctx, node, request.timestamp, request.to_domain())
    return json_response(
        200, {"id": drift.id, "received_at": rfc3339(drift.received_at), "corrections": len(drift.corrections)}
    )


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
