"""The demo tenant every local start creates: Domain, Project, admin token, enrollment token."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.http.operator_auth import mint_dev_token
from orchestrator.services import enrollment, tenancy
from orchestrator.services.context import context_for

ADMIN_SUBJECT = "admin@local"


@dataclass(frozen=True)
class Credentials:
    server: str
    domain_id: str
    project_id: str
    operator_token: str
    enrollment_token: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def bootstrap(server: str, previous: dict[str, Any] | None = None) -> Credentials:
    """Create the demo tenant through the same use cases the API runs; with the ``previous``
    start's credentials and a restored state that still holds its Project, keep that tenant
    and mint fresh tokens for it."""
    ctx = context_for("bootstrap")
    kept = ctx.tenancy.get_project(str(previous.get("project_id"))) if previous else None
    if kept is not None:
        domain_id, project_id = kept.domain_id, kept.id
    else:
        domain = tenancy.create_domain(ctx, ADMIN_SUBJECT, name="demo", live_execution_ceiling=None)
        domain_id, project_id = domain.id, tenancy.create_project(ctx, ADMIN_SUBJECT, domain.id, name="demo").id
    token, _ = enrollment.mint(ctx, ADMIN_SUBJECT, project_id, ttl_seconds=None)
    return Credentials(
        server=server,
        domain_id=domain_id,
        project_id=project_id,
        operator_token=mint_dev_token(ADMIN_SUBJECT, now=ctx.clock.now()),
        enrollment_token=token,
    )
