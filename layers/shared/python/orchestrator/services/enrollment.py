"""One-time enrollment tokens for node bootstrap."""

from __future__ import annotations

from datetime import datetime, timedelta

from orchestrator.domain.credentials import mint_enrollment_token, secret_hash
from orchestrator.domain.models import EnrollmentToken, Permission
from orchestrator.services.access import authorize_project
from orchestrator.services.context import Context


def mint(ctx: Context, subject: str, project_id: str, *, ttl_seconds: int | None) -> tuple[str, datetime]:
    """A new token (returned once, stored only as its hash) and its expiry. Project admins only."""
    project = authorize_project(ctx.tenancy, subject, project_id, Permission.ADMIN)
    token = mint_enrollment_token()
    now = ctx.clock.now()
    expires_at = now + timedelta(seconds=ttl_seconds or ctx.settings.enrollment_token_ttl_seconds)
    ctx.nodes.put_enrollment_token(
        EnrollmentToken(
            token_hash=secret_hash(token),
            project_id=project.id,
            domain_id=project.domain_id,
            created_by=subject,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return token, expires_at
