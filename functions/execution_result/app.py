"""POST /v1/nodes/{node_id}/executions/{execution_id}/result — Agent result of an invocation.

Declared in the template and routed; the behaviour lands with its feature.
Until then the operation answers 501 ``execution_callback_not_provisioned`` (SPEC §13).
"""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.errors import NotProvisioned
from orchestrator.http.api import rest_app
from orchestrator.observability import api_entrypoint

app = rest_app()


@app.post("/v1/nodes/<node_id>/executions/<execution_id>/result")
def execution_result(execution_id: str, node_id: str) -> Response[str]:
    raise NotProvisioned("execution_callback_not_provisioned")


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
