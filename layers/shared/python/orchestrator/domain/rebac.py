"""Relation-based access control (SPEC §12): pure evaluation over relation tuples."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.domain.models import Permission, Relation

REQUIRED_RELATION: dict[Permission, Relation] = {
    Permission.READ: Relation.VIEWER,
    Permission.DISPATCH: Relation.OPERATOR,
    Permission.CANCEL: Relation.OPERATOR,
    Permission.OPERATE: Relation.OPERATOR,
    Permission.ADMIN: Relation.ADMIN,
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    relation_path: list[str]


def decide_project_access(
    *,
    subject: str,
    project_id: str,
    domain_id: str,
    permission: Permission,
    project_relation: Relation | None,
    domain_relation: Relation | None,
) -> Decision:
    """Allow when the subject's relation on the project, or on its Domain, includes
    the required one: a Domain relation holds on every project of the Domain
    (so a Domain admin is admin of all its projects)."""
    required = REQUIRED_RELATION[permission]
    project_ref = f"project:{project_id}#{required.value}"
    if project_relation is not None and project_relation.includes(required):
        return Decision(True, "project relation", [f"user:{subject}", project_ref])
    if domain_relation is not None and domain_relation.includes(required):
        domain_ref = f"domain:{domain_id}#{domain_relation.value}"
        return Decision(True, "domain relation", [f"user:{subject}", domain_ref, project_ref])
    held = project_relation.value if project_relation else "none"
    return Decision(
        False,
        f"'{permission.value}' on project {project_id} requires relation '{required.value}' "
        f"on the project or its domain {domain_id} (held on the project: {held}).",
        [f"user:{subject}", project_ref],
    )


def decide_domain_access(*, subject: str, domain_id: str, domain_relation: Relation | None) -> Decision:
    """Domain-level operations (create projects, grant domain roles) need Domain admin."""
    ref = f"domain:{domain_id}#{Relation.ADMIN.value}"
    if domain_relation is Relation.ADMIN:
        return Decision(True, "domain admin", [f"user:{subject}", ref])
    return Decision(False, f"requires admin of domain {domain_id}.", [f"user:{subject}", ref])
