"""GET /v1/ping — the node agent's health check (no auth, no AWS call)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, rest_app
from orchestrator.observability import api_entrypoint

app = rest_app()


@app.get("/v1/ping")
def ping() -> Response[str]:
    return json_response(200, {"status": "ok"})


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
