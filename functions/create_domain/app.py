"""POST /v1/domains — create a Domain (tenant); the caller becomes its admin."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, parse_body, rest_app
from orchestrator.http.schemas import CreateDomainRequest, domain_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import tenancy
from orchestrator.services.context import context_for

app = rest_app()


@app.post("/v1/domains")
def create_domain() -> Response[str]:
    ctx = context_for("tenancy")
    request = parse_body(app, CreateDomainRequest)
    domain = tenancy.create_domain(
        ctx, operator_subject(app), name=request.name, live_execution_ceiling=request.live_execution_ceiling
    )
    return json_response(201, domain_view(domain))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
