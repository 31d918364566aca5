"""PATCH /v1/domains/{domain_id} — change the Domain's live-execution ceiling (Domain admin)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import json_response, operator_subject, parse_body, rest_app
from orchestrator.http.schemas import UpdateDomainRequest, domain_view
from orchestrator.observability import api_entrypoint
from orchestrator.services import tenancy
from orchestrator.services.context import context_for

app = rest_app()


@app.patch("/v1/domains/<domain_id>")
def update_domain(domain_id: str) -> Response[str]:
    ctx = context_for("tenancy")
    request = parse_body(app, UpdateDomainRequest)
    domain = tenancy.update_domain(
        ctx, operator_subject(app), domain_id, live_execution_ceiling=request.live_execution_ceiling
    )
    return json_response(200, domain_view(domain))


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
