"""ReBAC decisions (SPEC §12): viewer < operator < admin; Domain admin covers its projects."""

from __future__ import annotations

import pytest

from orchestrator.domain.models import Permission, Relation
from orchestrator.domain.rebac import decide_domain_access, decide_project_access

ALLOWED = {
    Relation.VIEWER: {Permission.READ},
    Relation.OPERATOR: {Permission.READ, Permission.DISPATCH, Permission.CANCEL, Permission.OPERATE},
    Relation.ADMIN: set(Permission),
}


@pytest.mark.parametrize("relation", list(Relation))
@pytest.mark.parametrize("permission", list(Permission))
def test_project_relation_grants_exactly_its_permissions(relation: Relation, permission: Permission) -> None:
    decision = decide_project_access(
        subject="u",
        project_id="p",
        domain_id="d",
        permission=permission,
        project_relation=relation,
        domain_relation=None,
    )
    assert decision.allowed == (permission in ALLOWED[relation])


@pytest.mark.parametrize("permission", list(Permission))
def test_domain_admin_is_admin_of_every_project(permission: Permission) -> None:
    decision = decide_project_access(
        subject="u",
        project_id="p",
        domain_id="d",
        permission=permission,
        project_relation=None,
        domain_relation=Relation.ADMIN,
    )
    assert decision.allowed
    assert decision.relation_path == ["user:u", "domain:d#admin", f"project:p#{_required(permission)}"]


@pytest.mark.parametrize("relation", list(Relation))
@pytest.mark.parametrize("permission", list(Permission))
def test_domain_relation_holds_on_every_project_at_its_own_level(relation: Relation, permission: Permission) -> None:
    decision = decide_project_access(
        subject="u",
        project_id="p",
        domain_id="d",
        permission=permission,
        project_relation=None,
        domain_relation=relation,
    )
    assert decision.allowed == (permission in ALLOWED[relation])


def test_project_and_domain_relations_combine_to_the_stronger() -> None:
    decision = decide_project_access(
        subject="u",
        project_id="p",
        domain_id="d",
        permission=Permission.DISPATCH,
        project_relation=Relation.VIEWER,
        domain_relation=Relation.OPERATOR,
    )
    assert decision.allowed


def test_denial_names_the_missing_relation() -> None:
    decision = decide_project_access(
        subject="u",
        project_id="p",
        domain_id="d",
        permission=Permission.DISPATCH,
        project_relation=Relation.VIEWER,
        domain_relation=None,
    )
    assert not decision.allowed
    assert decision.relation_path == ["user:u", "project:p#operator"]
    assert "operator" in decision.reason and "viewer" in decision.reason


def test_domain_operations_need_domain_admin() -> None:
    assert decide_domain_access(subject="u", domain_id="d", domain_relation=Relation.ADMIN).allowed
    assert not decide_domain_access(subject="u", domain_id="d", domain_relation=None).allowed


def _required(permission: Permission) -> str:
    return {"read": "viewer", "dispatch": "operator", "cancel": "operator", "operate": "operator", "admin": "admin"}[
        permission.value
    ]
