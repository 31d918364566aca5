"""POST /v1/nodes/{node_id}/metrics|logs|audit — a node's telemetry batch (SPEC §19).

The body is a JSON array (what the agent sends) or NDJSON, gzip or identity: read here as
bytes, not as a JSON object, so this resolver leaves the event's body as sent.
"""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from orchestrator.clock import rfc3339
from orchestrator.domain.credentials import NodeCredential
from orchestrator.domain.telemetry import Kind
from orchestrator.http.api import json_response, raw_request_body, rest_app
from orchestrator.http.nodes import authenticated_node
from orchestrator.http.request_body import telemetry_batch
from orchestrator.observability import api_entrypoint
from orchestrator.services import telemetry
from orchestrator.services.context import Context, context_for


def caller(app: APIGatewayRestResolver, node_id: str) -> tuple[Context, NodeCredential]:
    """Before the body: the operation is provisioned (501), then the node's key (401/403)."""
    ctx = context_for("node_telemetry")
    telemetry.stream(ctx)
    return ctx, authenticated_node(app, ctx, node_id)


app = rest_app(before_body=caller, decode_body=False)


def ingest(node_id: str, kind: Kind) -> Response[str]:
    ctx, node = caller(app, node_id)
    headers = app.current_event.headers
    content = telemetry_batch(raw_request_body(app), headers.get("content-encoding"))
    accepted = telemetry.ingest(ctx, node, kind, content, content_type=headers.get("content-type"))
    return json_response(202, {"accepted_at": rfc3339(accepted.accepted_at), "records": accepted.records})


@app.post("/v1/nodes/<node_id>/metrics")
def ingest_metrics(node_id: str) -> Response[str]:
    return ingest(node_id, Kind.METRICS)


@app.post("/v1/nodes/<node_id>/logs")
def ingest_logs(node_id: str) -> Response[str]:
    return ingest(node_id, Kind.LOGS)


@app.post("/v1/nodes/<node_id>/audit")
def ingest_audit(node_id: str) -> Response[str]:
    return ingest(node_id, Kind.AUDIT)


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
