"""PUT /v1/projects/{project_id}/policies/{policy_id} — create or replace a policy (admin)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.state_schemas import PolicyRequest, checked_policy_id, policy_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import policies
from orchestrator.services.context import Context, context_for


def checks(_: APIGatewayRestResolver, policy_id: str, **__: str) -> Context:
    """Before the body: the policy id in the path (400), the operation is provisioned (501)."""
    checked_policy_id(policy_id)
    return context_for("policies")


app = rest_app(before_body=checks)


@app.put("/v1/projects/<project_id>/policies/<policy_id>")
def put_policy(project_id: str, policy_id: str, request: Annotated[PolicyRequest, Body()]) -> Response[str]:
    ctx = checks(app, policy_id)
    written = policies.put_policy(
        ctx, operator_subject(app), project_id, policy_id, selector=request.selector, rules=request.domain_rules()
    )
    return json_response(201 if written.created else 200, policy_view(written.policy))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
