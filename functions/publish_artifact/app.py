"""POST /v1/artifacts/plexd/{version}/{os}/{arch} — a deployment admin declares a release
binary's SHA-256 and size and gets a presigned PUT to upload it."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.domain.artifacts import ArtifactRef
from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.artifact_schemas import PublishArtifactRequest, published_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import artifacts
from orchestrator.services.access import authorize_deployment_admin
from orchestrator.services.context import Context, context_for


def checks(app: APIGatewayRestResolver, version: str, os: str, arch: str, **_: str) -> tuple[Context, ArtifactRef]:
    """Before the body: provisioned (501), a deployment admin (403), the path (400)."""
    ctx = context_for("artifacts")
    authorize_deployment_admin(ctx.settings.deployment_admins, operator_subject(app), "Publishing an agent release")
    return ctx, ArtifactRef.checked(version, os, arch)


app = rest_app(before_body=checks)


@app.post("/v1/artifacts/plexd/<version>/<os>/<arch>")
def publish_artifact(
    version: str, os: str, arch: str, request: Annotated[PublishArtifactRequest, Body()]
) -> Response[str]:
    ctx, ref = checks(app, version, os, arch)
    publication = artifacts.publish(ctx, operator_subject(app), ref, sha256=request.sha256, size=request.size)
    return json_response(201, published_view(publication))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
