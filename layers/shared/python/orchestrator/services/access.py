"""ReBAC checks against the relation tuples in the table, run before any write."""

from __future__ import annotations

from orchestrator.domain.models import Domain, Permission, Project, Relation
from orchestrator.domain.rebac import REQUIRED_RELATION, decide_domain_access, decide_project_access
from orchestrator.errors import DomainNotFound, ProjectNotFound, RebacDenied
from orchestrator.observability import logger
from orchestrator.store.tenancy import TenancyStore


def authorize_project(tenancy: TenancyStore, subject: str, project_id: str, permission: Permission) -> Project:
    """The Project if ``subject`` may ``permission`` on it; 404 unknown project; 403 denied."""
    project, project_relation = tenancy.project_and_relation(project_id, subject)
    if project is None:
        raise ProjectNotFound(f"Project {project_id} does not exist.")
    domain_relation: Relation | None = None
    if project_relation is None or not project_relation.includes(REQUIRED_RELATION[permission]):
        # Only read the Domain grant when the direct relation is not enough.
        domain_relation = tenancy.relation("domain", project.domain_id, subject)
    decision = decide_project_access(
        subject=subject,
        project_id=project_id,
        domain_id=project.domain_id,
        permission=permission,
        project_relation=project_relation,
        domain_relation=domain_relation,
    )
    if not decision.allowed:
        logger.info("rebac denied", subject=subject, project_id=project_id, permission=permission.value)
        raise RebacDenied(decision.reason, decision.relation_path)
    return project


def authorize_deployment_admin(deployment_admins: str, subject: str, action: str = "Rotating the signing key") -> None:
    """Deployment-wide operations (the event-signing key, publishing agent releases) need a
    subject named in the deployment's ``DeploymentAdmins`` parameter."""
    if subject not in {admin.strip() for admin in deployment_admins.split(",") if admin.strip()}:
        logger.info("rebac denied", subject=subject, permission="deployment_admin")
        raise RebacDenied(
            f"{action} requires relation 'admin' on the deployment.",
            [f"user:{subject}", "deployment#admin"],
        )


def authorize_domain_admin(tenancy: TenancyStore, subject: str, domain_id: str) -> Domain:
    domain = tenancy.get_domain(domain_id)
    if domain is None:
        raise DomainNotFound(f"Domain {domain_id} does not exist.")
    decision = decide_domain_access(
        subject=subject, domain_id=domain_id, domain_relation=tenancy.relation("domain", domain_id, subject)
    )
    if not decision.allowed:
        raise RebacDenied(decision.reason, decision.relation_path)
    return domain
