"""PATCH /v1/domains/{domain_id} — change the Domain's live-execution ceiling (Domain admin)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from orchestrator.http.api import json_response, operator_subject, rest_app
from orchestrator.http.schemas import UpdateDomainRequest, domain_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import tenancy
from orchestrator.services.context import Context, context_for


def provisioned(_: APIGatewayRestResolver, **__: str) -> Context:
    """Before the body: the operation is provisioned (501)."""
    return context_for("tenancy")


app = rest_app(before_body=provisioned)


@app.patch("/v1/domains/<domain_id>")
def update_domain(domain_id: str, request: Annotated[UpdateDomainRequest, Body()]) -> Response[str]:
    ctx = provisioned(app)
    domain = tenancy.update_domain(
        ctx, operator_subject(app), domain_id, live_execution_ceiling=request.live_execution_ceiling
    )
    return json_response(200, domain_view(domain))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
