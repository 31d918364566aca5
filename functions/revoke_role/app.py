"""DELETE /v1/{domains|projects}/{id}/members/{subject} — revoke a relation (admin)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from orchestrator.http.api import operator_subject, rest_app
from orchestrator.http.schemas import checked_subject
from orchestrator.observability import api_entrypoint
from orchestrator.services import tenancy
from orchestrator.services.context import context_for

app = rest_app()


@app.delete("/v1/projects/<project_id>/members/<member>")
def revoke_project_role(project_id: str, member: str) -> Response[None]:
    tenancy.revoke(
        context_for("tenancy"),
        operator_subject(app),
        object_type="project",
        object_id=project_id,
        member=checked_subject(member),
    )
    return Response(status_code=204)


@app.delete("/v1/domains/<domain_id>/members/<member>")
def revoke_domain_role(domain_id: str, member: str) -> Response[None]:
    tenancy.revoke(
        context_for("tenancy"),
        operator_subject(app),
        object_type="domain",
        object_id=domain_id,
        member=checked_subject(member),
    )
    return Response(status_code=204)


@api_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
