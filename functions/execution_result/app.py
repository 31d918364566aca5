"""POST /v1/nodes/{node_id}/executions/{execution_id}/result — the agent's final result."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.http.api import json_response, rest_app
from orchestrator.http.callback_schemas import ResultIn, check_execution_id
from orchestrator.http.nodes import callback_reporter
from orchestrator.observability import api_entrypoint
from orchestrator.services import callbacks
from orchestrator.services.callbacks import Reporter
from orchestrator.services.context import Context, context_for


def caller(app: APIGatewayRestResolver, node_id: str, execution_id: str) -> tuple[Context, Reporter]:
    """Before the body: the operation is provisioned (501), then the reporter (401/403)."""
    ctx = context_for("execution_callback")
    return ctx, callback_reporter(app, ctx, node_id, execution_id)


app = rest_app(before_body=caller)


@app.post("/v1/nodes/<node_id>/executions/<execution_id>/result")
def execution_result(node_id: str, execution_id: str, request: Annotated[ResultIn, Body()]) -> Response[str]:
    ctx, reporter = caller(app, node_id, execution_id)
    check_execution_id(request.execution_id, execution_id)
    outcome = callbacks.report_result(ctx, node_id, execution_id, request.report_fields(), reporter)
    return json_response(200, {"status": outcome.status.value})


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
