"""GET /v1/nodes/{node_id}/secrets/{key} — a granted secret, encrypted under the node's NSK."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, rest_app
from orchestrator.http.nodes import authenticated_node
from orchestrator.http.secret_schemas import checked_secret_key
from orchestrator.observability import api_entrypoint
from orchestrator.services import secrets
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/nodes/<node_id>/secrets/<key>")
def fetch_node_secret(node_id: str, key: str) -> Response[str]:
    ctx = context_for("node_secrets")
    caller = authenticated_node(app, ctx, node_id)
    found = secrets.fetch_for_node(ctx, caller, checked_secret_key(key))
    return json_response(
        200, {"key": found.key, "ciphertext": found.ciphertext, "nonce": found.nonce, "version": found.version}
    )


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
