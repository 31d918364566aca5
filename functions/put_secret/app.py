"""PUT /v1/projects/{project_id}/secrets/{key} — create or update a project secret (admin)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.secret_schemas import PutSecretRequest, checked_secret_key, secret_written_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import secrets
from orchestrator.services.context import context_for


def checked_key(_: APIGatewayRestResolver, key: str, **__: str) -> str:
    """Before the body: the secret's name in the path (400 ``invalid_parameter``)."""
    return checked_secret_key(key)


app = rest_app(before_body=checked_key)


@app.put("/v1/projects/<project_id>/secrets/<key>")
def put_secret(project_id: str, key: str, request: Annotated[PutSecretRequest, Body()]) -> Response[str]:
    checked_key(app, key)
    value, grants = request.value_bytes(), request.to_grants()
    ctx, subject = context_for("secrets"), operator_subject(app)
    meta, created = secrets.put_secret(ctx, subject, project_id, key, value=value, grants=grants)
    return json_response(201 if created else 200, secret_written_view(meta))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
