"""POST /v1/nodes/{node_id}/executions/{execution_id} — the unified per-node callback."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, parse_body, rest_app
from orchestrator.http.callback_schemas import CallbackIn
from orchestrator.http.nodes import callback_reporter
from orchestrator.observability import api_entrypoint
from orchestrator.services import callbacks
from orchestrator.services.context import context_for

app = rest_app()


@app.post("/v1/nodes/<node_id>/executions/<execution_id>")
def execution_callback(node_id: str, execution_id: str) -> Response[str]:
    ctx = context_for("execution_callback")
    reporter = callback_reporter(app, ctx, node_id, execution_id)
    report = parse_body(app, CallbackIn).to_report()
    outcome = callbacks.report(ctx, node_id, execution_id, report, reporter)
    body: dict[str, Any] = {"status": outcome.status.value}
    if outcome.output_upload_url:
        body |= {"output_upload_url": outcome.output_upload_url, "output_object_key": outcome.output_object_key}
    return json_response(200, body)


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
