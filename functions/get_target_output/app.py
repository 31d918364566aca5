"""GET .../executions/{execution_id}/targets/{node_id}/output — a target's output (inline or presigned GET).

Declared in the template and routed; the behaviour lands with its feature.
Until then the operation answers 501 ``execution_output_not_provisioned`` (SPEC §13).
"""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.errors import NotProvisioned
from orchestrator.http.api import rest_app
from orchestrator.observability import api_entrypoint

app = rest_app()


@app.get("/v1/projects/<project_id>/executions/<execution_id>/targets/<node_id>/output")
def get_target_output(execution_id: str, node_id: str, project_id: str) -> Response[str]:
    raise NotProvisioned("execution_output_not_provisioned")


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
