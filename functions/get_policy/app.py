"""GET /v1/projects/{project_id}/policies/{policy_id} — one policy (viewer)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.state_schemas import checked_policy_id, policy_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import policies
from orchestrator.services.context import context_for

app = rest_app()


@app.get("/v1/projects/<project_id>/policies/<policy_id>")
def get_policy(project_id: str, policy_id: str) -> Response[str]:
    ctx = context_for("policies")
    policy = policies.get_policy(ctx, operator_subject(app), project_id, checked_policy_id(policy_id))
    return json_response(200, policy_view(policy))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
