"""DELETE /v1/projects/{project_id}/nodes/{node_id}/data/{key} — delete a node's data entry (operator)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import operator_subject, rest_app
from orchestrator.http.state_schemas import checked_data_key
from orchestrator.observability import api_entrypoint
from orchestrator.services import node_data
from orchestrator.services.context import context_for

app = rest_app()


@app.delete("/v1/projects/<project_id>/nodes/<node_id>/data/<key>")
def delete_node_data(project_id: str, node_id: str, key: str) -> Response[None]:
    ctx = context_for("node_data")
    node_data.delete_entry(ctx, operator_subject(app), project_id, node_id, checked_data_key(key))
    return Response(status_code=204)


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
