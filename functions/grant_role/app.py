"""PUT /v1/{domains|projects}/{id}/members/{subject} — grant a relation (admin)."""

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.schemas import GrantRequest, checked_subject, membership_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import tenancy
from orchestrator.services.context import Context, context_for


def provisioned(_: APIGatewayRestResolver, **__: str) -> Context:
    """Before the body: the operation is provisioned (501)."""
    return context_for("tenancy")


app = rest_app(before_body=provisioned)


def _grant(
    object_type: Literal["domain", "project"], object_id: str, member: str, request: GrantRequest
) -> Response[str]:
    ctx = provisioned(app)
    membership = tenancy.grant(
        ctx,
        operator_subject(app),
        object_type=object_type,
        object_id=object_id,
        member=checked_subject(member),
        relation=request.relation,
    )
    return json_response(200, membership_view(membership))


@app.put("/v1/projects/<project_id>/members/<member>")
def grant_project_role(project_id: str, member: str, request: Annotated[GrantRequest, Body()]) -> Response[str]:
    return _grant("project", project_id, member, request)


@app.put("/v1/domains/<domain_id>/members/<member>")
def grant_domain_role(domain_id: str, member: str, request: Annotated[GrantRequest, Body()]) -> Response[str]:
    return _grant("domain", domain_id, member, request)


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
