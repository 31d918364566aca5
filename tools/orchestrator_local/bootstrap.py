"""The demo tenant every local start creates: Domain, Project, admin token, enrollment token."""

from __future__ import annotations

from dataclasses import asdict, dataclass

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


def bootstrap(server: str) -> Credentials:
    """Create the demo tenant through the same use cases the API runs."""
    ctx = context_for("bootstrap")
    domain = tenancy.create_domain(ctx, ADMIN_SUBJECT, name="demo", live_execution_ceiling=None)
    project = tenancy.create_project(ctx, ADMIN_SUBJECT, domain.id, name="demo")
    token, _ = enrollment.mint(ctx, ADMIN_SUBJECT, project.id, ttl_seconds=None)
    return Credentials(
        server=server,
        domain_id=domain.id,
        project_id=project.id,
        operator_token=mint_dev_token(ADMIN_SUBJECT, now=ctx.clock.now()),
        enrollment_token=token,
    )
