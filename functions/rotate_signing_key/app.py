"""POST /v1/signing-keys:rotate — a deployment admin rotates the event-signing key."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.observability import api_entrypoint
from orchestrator.services import signing
from orchestrator.services.context import context_for

app = rest_app()


@app.post("/v1/signing-keys:rotate")
@app.post("/v1/signing-keys/rotate")
def rotate_signing_key() -> Response[str]:
    ctx = context_for("signing_key_rotation")
    keyring = signing.rotate(ctx, operator_subject(app))
    return json_response(200, signing.signing_keys_view(keyring, ctx))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
