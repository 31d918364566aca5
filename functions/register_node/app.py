"""POST /v1/register — enroll a node with a one-time bootstrap token."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.http.api import json_response, rest_app
from orchestrator.http.schemas import RegisterRequest
from orchestrator.observability import api_entrypoint
from orchestrator.services import nodes
from orchestrator.services.context import context_for

app = rest_app()


@app.post("/v1/register")
def register(request: Annotated[RegisterRequest, Body()]) -> Response[str]:
    result = nodes.register(
        context_for("node_registration"),
        token=request.token,
        hostname=request.hostname,
        public_key=request.public_key,
        metadata=request.metadata,
        capabilities=request.capabilities.to_domain(),
    )
    return json_response(
        201,
        {
            "node_id": result.node.id,
            "mesh_ip": result.node.mesh_ip,
            "signing_public_key": result.signing_public_key,
            "node_secret_key": result.node_secret_key,
            "peers": result.peers,
        },
    )


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
