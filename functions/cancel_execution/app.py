"""POST /v1/projects/{project_id}/executions/{execution_id} — Cancel an Execution (`{execution_id}:cancel`, or DELETE).

Declared in the template and routed; the behaviour lands with its feature.
Until then the operation answers 501 ``execution_cancel_not_provisioned`` (SPEC §13).
"""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.errors import NotProvisioned
from orchestrator.http.api import rest_app
from orchestrator.observability import api_entrypoint

app = rest_app()


@app.post("/v1/projects/<project_id>/executions/<execution_id>")
@app.delete("/v1/projects/<project_id>/executions/<execution_id>")
def cancel_execution(execution_id: str, project_id: str) -> Response[str]:
    raise NotProvisioned("execution_cancel_not_provisioned")


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
