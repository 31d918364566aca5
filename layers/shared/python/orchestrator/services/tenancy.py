"""Domains, Projects and role grants: the minimal admin surface."""

from __future__ import annotations

from typing import Literal

from orchestrator.domain.models import Domain, Membership, Permission, Project, Relation
from orchestrator.services.access import authorize_domain_admin, authorize_project
from orchestrator.services.context import Context


def create_domain(ctx: Context, subject: str, *, name: str, live_execution_ceiling: int | None) -> Domain:
    """Any authenticated operator may create a Domain and becomes its admin."""
    domain = Domain(
        id=ctx.ids.new_id(),
        name=name,
        live_execution_ceiling=live_execution_ceiling or ctx.settings.default_live_execution_ceiling,
        created_at=ctx.clock.now(),
    )
    ctx.tenancy.create_domain(domain, admin_subject=subject)
    return domain


def update_domain(ctx: Context, subject: str, domain_id: str, *, live_execution_ceiling: int) -> Domain:
    authorize_domain_admin(ctx.tenancy, subject, domain_id)
    return ctx.tenancy.set_domain_ceiling(domain_id, live_execution_ceiling)


def create_project(ctx: Context, subject: str, domain_id: str, *, name: str) -> Project:
    authorize_domain_admin(ctx.tenancy, subject, domain_id)
    project = Project(id=ctx.ids.new_id(), domain_id=domain_id, name=name, created_at=ctx.clock.now())
    ctx.tenancy.create_project(project)
    return project


def grant(
    ctx: Context,
    subject: str,
    *,
    object_type: Literal["domain", "project"],
    object_id: str,
    member: str,
    relation: Relation,
) -> Membership:
    """Project admins grant project roles; Domain admins grant Domain admin."""
    _authorize_membership_change(ctx, subject, object_type, object_id)
    membership = Membership(object_type=object_type, object_id=object_id, subject=member, relation=relation)
    ctx.tenancy.put_membership(membership)
    return membership


def revoke(
    ctx: Context, subject: str, *, object_type: Literal["domain", "project"], object_id: str, member: str
) -> None:
    _authorize_membership_change(ctx, subject, object_type, object_id)
    ctx.tenancy.delete_membership(object_type, object_id, member)


def _authorize_membership_change(ctx: Context, subject: str, object_type: str, object_id: str) -> None:
    if object_type == "domain":
        authorize_domain_admin(ctx.tenancy, subject, object_id)
    else:
        authorize_project(ctx.tenancy, subject, object_id, Permission.ADMIN)
