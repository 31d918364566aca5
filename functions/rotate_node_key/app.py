"""POST /v1/keys/rotate — a node's new mesh key; its peers get new pair keys."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.errors import NskRevoked
from orchestrator.http.api import bearer_token, json_response, rest_app
from orchestrator.http.mesh_schemas import KeyRotateRequest
from orchestrator.http.nodes import authenticated_node_record
from orchestrator.observability import api_entrypoint
from orchestrator.services import mesh
from orchestrator.services.context import Context, context_for


def provisioned(app: APIGatewayRestResolver, **__: str) -> Context:
    """Before the body: the operation is provisioned (501), and a key is presented (401). The
    node it must belong to is named in the body, so it is checked after."""
    ctx = context_for("node_key_rotation")
    if bearer_token(app) is None:
        raise NskRevoked("A node secret key is required as Authorization: Bearer.")
    return ctx


app = rest_app(before_body=provisioned)


@app.post("/v1/keys/rotate")
def rotate_key(request: Annotated[KeyRotateRequest, Body()]) -> Response[str]:
    ctx = provisioned(app)
    node, _ = authenticated_node_record(app, ctx, request.node_id)
    return json_response(200, {"updated_peers": mesh.rotate_key(ctx, node, request.new_public_key)})


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
