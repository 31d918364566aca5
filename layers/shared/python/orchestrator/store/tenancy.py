"""Domains, Projects and relation tuples (role grants)."""

from __future__ import annotations

from orchestrator.clock import parse_rfc3339, rfc3339
from orchestrator.domain.models import Domain, Membership, Project, Relation
from orchestrator.errors import DomainNotFound, MemberNotFound
from orchestrator.store import keys
from orchestrator.store.table import ConditionFailed, Item, Table, TransactionCanceled

NOT_EXISTS = "attribute_not_exists(PK)"
EXISTS = "attribute_exists(PK)"


class TenancyStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    # Domains -----------------------------------------------------------------
    def create_domain(self, domain: Domain, admin_subject: str) -> None:
        """The Domain and its creator's admin grant, atomically."""
        self.table.transact(
            [
                self.table.put_op(
                    {
                        **keys.domain(domain.id),
                        "type": "domain",
                        "id": domain.id,
                        "name": domain.name,
                        "live_execution_ceiling": domain.live_execution_ceiling,
                        "live_executions": 0,
                        "created_at": rfc3339(domain.created_at),
                    },
                    condition=NOT_EXISTS,
                ),
                self.table.put_op(
                    _member_item(
                        Membership(
                            object_type="domain", object_id=domain.id, subject=admin_subject, relation=Relation.ADMIN
                        )
                    )
                ),
            ]
        )

    def get_domain(self, domain_id: str) -> Domain | None:
        item = self.table.get(keys.domain(domain_id))
        return _domain(item) if item else None

    def set_domain_ceiling(self, domain_id: str, ceiling: int) -> Domain:
        try:
            item = self.table.update(
                keys.domain(domain_id),
                update="SET live_execution_ceiling = :c",
                condition=EXISTS,
                values={":c": ceiling},
            )
        except ConditionFailed as exc:
            raise DomainNotFound(f"Domain {domain_id} does not exist.") from exc
        return _domain(item)

    # Projects ----------------------------------------------------------------
    def create_project(self, project: Project) -> None:
        """The Project, provided its Domain exists (checked in the same transaction)."""
        try:
            self.table.transact(
                [
                    self.table.put_op(
                        {
                            **keys.project(project.id),
                            "type": "project",
                            "id": project.id,
                            "domain_id": project.domain_id,
                            "name": project.name,
                            "created_at": rfc3339(project.created_at),
                            "GSI1PK": keys.domain_projects_gsi1(project.domain_id),
                            "GSI1SK": project.id,
                        },
                        condition=NOT_EXISTS,
                    ),
                    self.table.condition_check_op(keys.domain(project.domain_id), condition=EXISTS),
                ]
            )
        except TransactionCanceled as exc:
            if exc.reasons[1:2] == ["ConditionalCheckFailed"]:
                raise DomainNotFound(f"Domain {project.domain_id} does not exist.") from exc
            raise

    def get_project(self, project_id: str) -> Project | None:
        item = self.table.get(keys.project(project_id))
        return _project(item) if item else None

    def project_and_relation(self, project_id: str, subject: str) -> tuple[Project | None, Relation | None]:
        """The Project and the subject's direct relation on it, in one round trip."""
        items = self.table.batch_get([keys.project(project_id), keys.project_member(project_id, subject)])
        project: Project | None = None
        relation: Relation | None = None
        for item in items:
            if item["SK"] == "PROJECT":
                project = _project(item)
            else:
                relation = Relation(item["relation"])
        return project, relation

    # Relation tuples ---------------------------------------------------------
    def relation(self, object_type: str, object_id: str, subject: str) -> Relation | None:
        key = (
            keys.domain_member(object_id, subject)
            if object_type == "domain"
            else keys.project_member(object_id, subject)
        )
        item = self.table.get(key)
        return Relation(item["relation"]) if item else None

    def put_membership(self, membership: Membership) -> None:
        self.table.put(_member_item(membership))

    def delete_membership(self, object_type: str, object_id: str, subject: str) -> None:
        key = (
            keys.domain_member(object_id, subject)
            if object_type == "domain"
            else keys.project_member(object_id, subject)
        )
        try:
            self.table.delete(key, condition=EXISTS)
        except ConditionFailed as exc:
            raise MemberNotFound(f"{subject} has no role on {object_type} {object_id}.") from exc


def _member_item(m: Membership) -> Item:
    key = (
        keys.domain_member(m.object_id, m.subject)
        if m.object_type == "domain"
        else keys.project_member(m.object_id, m.subject)
    )
    return {
        **key,
        "type": "membership",
        "object_type": m.object_type,
        "object_id": m.object_id,
        "subject": m.subject,
        "relation": m.relation.value,
    }


def _domain(item: Item) -> Domain:
    return Domain(
        id=item["id"],
        name=item["name"],
        live_execution_ceiling=item["live_execution_ceiling"],
        created_at=parse_rfc3339(item["created_at"]),
    )


def _project(item: Item) -> Project:
    return Project(
        id=item["id"],
        domain_id=item["domain_id"],
        name=item["name"],
        created_at=parse_rfc3339(item["created_at"]),
    )
