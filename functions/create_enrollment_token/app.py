"""POST /v1/projects/{project_id}/enrollment-tokens — mint a one-time bootstrap token (admin)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.clock import rfc3339
from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.schemas import CreateEnrollmentTokenRequest
from orchestrator.observability import api_entrypoint
from orchestrator.services import enrollment
from orchestrator.services.context import Context, context_for


def provisioned(_: APIGatewayRestResolver, **__: str) -> Context:
    """Before the body: the operation is provisioned (501)."""
    return context_for("enrollment_tokens")


app = rest_app(before_body=provisioned)
DEFAULTS = CreateEnrollmentTokenRequest()  # an empty body takes the default lifetime


@app.post("/v1/projects/<project_id>/enrollment-tokens")
def create_enrollment_token(
    project_id: str, request: Annotated[CreateEnrollmentTokenRequest, Body()] = DEFAULTS
) -> Response[str]:
    ctx = provisioned(app)
    token, expires_at = enrollment.mint(ctx, operator_subject(app), project_id, ttl_seconds=request.ttl_seconds)
    return json_response(201, {"token": token, "expires_at": rfc3339(expires_at)})


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
