"""GET /v1/signing-keys — the public event-signing keys, as nodes see them in their state."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.observability import api_entrypoint
from orchestrator.services import signing
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/signing-keys")
def get_signing_keys() -> Response[str]:
    ctx = context_for("signing_keys")
    operator_subject(app)
    return json_response(200, signing.signing_keys_view(signing.current(ctx), ctx))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
