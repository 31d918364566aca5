"""GET /v1/nodes/{node_id}/events — the node's signed event stream (SSE, Last-Event-ID replay)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import query_param, rest_app
from orchestrator.http.nodes import authenticated_node
from orchestrator.observability import api_entrypoint
from orchestrator.services import node_feed
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/nodes/<node_id>/events")
def node_events(node_id: str) -> Response[str]:
    ctx = context_for("node_events")
    node_item = authenticated_node(app, ctx, node_id)
    last_event_id = app.current_event.headers.get("last-event-id") or query_param(app, "last_event_id")
    body = node_feed.event_stream(ctx, node_item, last_event_id, hold_seconds=ctx.settings.event_stream_hold_seconds)
    return Response(200, "text/event-stream", body, headers={"Cache-Control": "no-cache"})


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
