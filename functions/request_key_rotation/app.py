"""POST /v1/projects/{project_id}/nodes/{node_id}/rotate-keys — ask a node to rotate its mesh
key (operator)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.observability import api_entrypoint
from orchestrator.services import mesh
from orchestrator.services.context import context_for

app = rest_app()


@app.post("/v1/projects/<project_id>/nodes/<node_id>/rotate-keys")
def request_key_rotation(project_id: str, node_id: str) -> Response[str]:
    mesh.request_key_rotation(context_for("node_key_rotation"), operator_subject(app), project_id, node_id)
    return json_response(202, {"node_id": node_id, "rotate_keys": True})


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
