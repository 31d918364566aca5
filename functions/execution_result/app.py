"""POST /v1/nodes/{node_id}/executions/{execution_id}/result — the agent's final result."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, parse_body, rest_app
from orchestrator.http.callback_schemas import ResultIn, check_execution_id
from orchestrator.http.nodes import callback_reporter
from orchestrator.observability import api_entrypoint
from orchestrator.services import callbacks
from orchestrator.services.context import context_for

app = rest_app()


@app.post("/v1/nodes/<node_id>/executions/<execution_id>/result")
def execution_result(node_id: str, execution_id: str) -> Response[str]:
    ctx = context_for("execution_callback")
    reporter = callback_reporter(app, ctx, node_id, execution_id)
    request = parse_body(app, ResultIn)
    check_execution_id(request.execution_id, execution_id)
    outcome = callbacks.report_result(ctx, node_id, execution_id, request.report_fields(), reporter)
    return json_response(200, {"status": outcome.status.value})


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
