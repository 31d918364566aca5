"""DELETE /v1/projects/{project_id}/policies/{policy_id} — delete a policy (admin)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import operator_subject, rest_app
from orchestrator.http.state_schemas import checked_policy_id
from orchestrator.observability import api_entrypoint
from orchestrator.services import policies
from orchestrator.services.context import context_for

app = rest_app()


@app.delete("/v1/projects/<project_id>/policies/<policy_id>")
def delete_policy(project_id: str, policy_id: str) -> Response[None]:
    ctx = context_for("policies")
    policies.delete_policy(ctx, operator_subject(app), project_id, checked_policy_id(policy_id))
    return Response(status_code=204)


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
