"""PUT /v1/projects/{project_id}/nodes/{node_id}/data/{key} — write a node's data entry (operator)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.state_schemas import NodeDataRequest, checked_data_key
from orchestrator.observability import api_entrypoint
from orchestrator.services import node_data
from orchestrator.services.context import Context, context_for


def checks(_: APIGatewayRestResolver, key: str, **__: str) -> Context:
    """Before the body: the key in the path (400), the operation is provisioned (501)."""
    checked_data_key(key)
    return context_for("node_data")


app = rest_app(before_body=checks)


@app.put("/v1/projects/<project_id>/nodes/<node_id>/data/<key>")
def put_node_data(
    project_id: str, node_id: str, key: str, request: Annotated[NodeDataRequest, Body()]
) -> Response[str]:
    ctx = checks(app, key)
    written = node_data.put_entry(
        ctx,
        operator_subject(app),
        project_id,
        node_id,
        key,
        content_type=request.content_type,
        payload=request.payload,
    )
    return json_response(201 if written.created else 200, written.entry.view())


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
