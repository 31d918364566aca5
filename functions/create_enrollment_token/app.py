"""POST /v1/projects/{project_id}/enrollment-tokens — mint a one-time bootstrap token (admin)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.clock import rfc3339
from orchestrator.http.api import json_response, operator_subject, parse_body, rest_app
from orchestrator.http.schemas import CreateEnrollmentTokenRequest
from orchestrator.observability import api_entrypoint
from orchestrator.services import enrollment
from orchestrator.services.context import context_for

app = rest_app()


@app.post("/v1/projects/<project_id>/enrollment-tokens")
def create_enrollment_token(project_id: str) -> Response[str]:
    ctx = context_for("enrollment_tokens")
    request = parse_body(app, CreateEnrollmentTokenRequest, empty_ok=True)
    token, expires_at = enrollment.mint(ctx, operator_subject(app), project_id, ttl_seconds=request.ttl_seconds)
    return json_response(201, {"token": token, "expires_at": rfc3339(expires_at)})


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
