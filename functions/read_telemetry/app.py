"""GET /v1/projects/{project_id}/nodes/{node_id}/logs|metrics|audit — a node's telemetry,
newest first, one bounded scan of the telemetry bucket per page (SPEC §19)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.domain.telemetry import Kind
from orchestrator.http.api import json_response, operator_subject, query_param, rest_app
from orchestrator.http.paging import page_body, page_request
from orchestrator.observability import api_entrypoint
from orchestrator.services import telemetry_reads
from orchestrator.services.context import context_for

app = rest_app()


def read(project_id: str, node_id: str, kind: Kind) -> Response[str]:
    ctx = context_for(telemetry_reads.OPERATION)
    telemetry_reads.bucket(ctx)
    since, until = query_param(app, "since"), query_param(app, "until")
    window = telemetry_reads.window(ctx, since, until)
    subject = operator_subject(app)
    route = f"node_telemetry:{kind.value}:{project_id}:{node_id}"
    page = page_request(app, subject=subject, route=route, filters={"since": since, "until": until})
    start = telemetry_reads.start_position(window, page.start_key)
    found = telemetry_reads.read(ctx, subject, project_id, node_id, kind=kind, start=start, limit=page.limit)
    items = [{"received_at": line.received_at, "record": line.record} for line in found.lines]
    last_key = found.next.to_cursor() if found.next is not None else None
    return json_response(200, page_body(items, last_key, page))


@app.get("/v1/projects/<project_id>/nodes/<node_id>/metrics")
def read_metrics(project_id: str, node_id: str) -> Response[str]:
    return read(project_id, node_id, Kind.METRICS)


@app.get("/v1/projects/<project_id>/nodes/<node_id>/logs")
def read_logs(project_id: str, node_id: str) -> Response[str]:
    return read(project_id, node_id, Kind.LOGS)


@app.get("/v1/projects/<project_id>/nodes/<node_id>/audit")
def read_audit(project_id: str, node_id: str) -> Response[str]:
    return read(project_id, node_id, Kind.AUDIT)


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
