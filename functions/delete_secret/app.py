"""DELETE /v1/projects/{project_id}/secrets/{key} — delete a project secret (admin)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import operator_subject, rest_app
from orchestrator.http.secret_schemas import checked_secret_key
from orchestrator.observability import api_entrypoint
from orchestrator.services import secrets
from orchestrator.services.context import context_for

app = rest_app()


@app.delete("/v1/projects/<project_id>/secrets/<key>")
def delete_secret(project_id: str, key: str) -> Response[None]:
    secrets.delete_secret(context_for("secrets"), operator_subject(app), project_id, checked_secret_key(key))
    return Response(status_code=204)


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
