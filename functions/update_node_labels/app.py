"""PATCH /v1/projects/{project_id}/nodes/{node_id} — set or remove operator labels (admin)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.schemas import UpdateNodeLabelsRequest, node_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import nodes
from orchestrator.services.context import Context, context_for


def provisioned(_: APIGatewayRestResolver, **__: str) -> Context:
    """Before the body: the operation is provisioned (501)."""
    return context_for("node_labels")


app = rest_app(before_body=provisioned)


@app.patch("/v1/projects/<project_id>/nodes/<node_id>")
def update_node_labels(
    project_id: str, node_id: str, request: Annotated[UpdateNodeLabelsRequest, Body()]
) -> Response[str]:
    ctx = provisioned(app)
    node = nodes.set_labels(ctx, operator_subject(app), project_id, node_id, request.labels)
    return json_response(200, node_view(node, ctx.clock.now()))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
