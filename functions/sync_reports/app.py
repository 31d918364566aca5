"""POST /v1/nodes/{node_id}/report — a node syncs a batch of its report entries, all or nothing."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.domain.credentials import NodeCredential
from orchestrator.http.api import json_response, rest_app
from orchestrator.http.nodes import authenticated_node
from orchestrator.http.report_schemas import ReportSyncRequest
from orchestrator.observability import api_entrypoint
from orchestrator.services import node_reports
from orchestrator.services.context import Context, context_for


def caller(app: APIGatewayRestResolver, node_id: str) -> tuple[Context, NodeCredential]:
    """Before the body: the operation is provisioned (501), then the node's key (401/403)."""
    ctx = context_for("node_reports")
    return ctx, authenticated_node(app, ctx, node_id)


app = rest_app(before_body=caller)


@app.post("/v1/nodes/<node_id>/report")
def sync_reports(node_id: str, request: Annotated[ReportSyncRequest, Body()]) -> Response[str]:
    ctx, node = caller(app, node_id)
    result = node_reports.sync_reports(ctx, node, request.to_domain())
    return json_response(200, {"accepted": result.accepted, "deleted": result.deleted, "versions": result.versions})


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
