"""GET /v1/artifacts/plexd/{version}/{os}/{arch} — a node downloads a verified release binary:
302 to a short-lived presigned GET (the bytes never pass through a function)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.domain.artifacts import ArtifactRef
from orchestrator.http.api import bearer_token, rest_app
from orchestrator.http.node_auth import authenticate_any_node
from orchestrator.observability import api_entrypoint
from orchestrator.services import artifacts
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/artifacts/plexd/<version>/<os>/<arch>")
def download_artifact(version: str, os: str, arch: str) -> Response[None]:
    ctx = context_for("artifacts")
    authenticate_any_node(ctx.nodes, bearer_token(app))
    location = artifacts.download_url(ctx, ArtifactRef.parsed(version, os, arch))
    return Response(status_code=302, headers={"Location": location, "Cache-Control": "no-store"})


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
