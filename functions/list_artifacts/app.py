"""GET /v1/artifacts/plexd — the agent's publications: versions, platforms, checksums, status."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.domain.artifacts import PLEXD
from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.artifact_schemas import artifact_view
from orchestrator.http.paging import page_body, page_request
from orchestrator.observability import api_entrypoint
from orchestrator.services import artifacts
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/artifacts/plexd")
def list_artifacts() -> Response[str]:
    ctx = context_for("artifacts")
    subject = operator_subject(app)
    page = page_request(app, subject=subject, route=f"artifacts:{PLEXD}", filters={})
    found, last_key = artifacts.list_page(ctx, PLEXD, limit=page.limit, start_key=page.start_key)
    return json_response(200, page_body([artifact_view(a) for a in found], last_key, page))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
