"""Operator JWTs, the API authorizer and ReBAC (SPEC §12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from orchestrator import secrets
from tests.integration.conftest import Api, Tenant, assert_problem, operator_token


def forged(claims: dict, key: bytes | None = None) -> str:
    return jwt.encode(claims, key or secrets.jwt_key(), algorithm="HS256")


def base_claims(**overrides: object) -> dict:
    now = datetime.now(UTC)
    claims = {
        "sub": "alice",
        "iss": "plexsphere-local",
        "aud": "plexsphere",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    claims.update(overrides)
    return claims


def test_operator_route_without_token_is_401(api: Api, tenant: Tenant) -> None:
    response = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes")
    assert_problem(response, 401, "unauthenticated")


@pytest.mark.parametrize(
    "make_token",
    [
        lambda: forged(base_claims(exp=int((datetime.now(UTC) - timedelta(hours=1)).timestamp()))),
        lambda: forged(base_claims(aud="someone-else")),
        lambda: forged(base_claims(iss="evil")),
        lambda: forged(base_claims(), key=b"not-the-key-but-long-enough-for-hs256-0123456789"),
        lambda: forged({k: v for k, v in base_claims().items() if k != "sub"}),
        lambda: "not.a.jwt",
    ],
    ids=["expired", "audience", "issuer", "signature", "no-subject", "garbage"],
)
def test_invalid_operator_token_is_401(api: Api, tenant: Tenant, make_token) -> None:  # type: ignore[no-untyped-def]
    response = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=make_token())
    assert_problem(response, 401, "unauthenticated")


def test_unsigned_token_is_rejected(api: Api, tenant: Tenant) -> None:
    token = jwt.encode(base_claims(), key=None, algorithm="none")  # type: ignore[arg-type]
    response = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=token)
    assert_problem(response, 401, "unauthenticated")


def test_domain_creator_is_admin_of_its_projects(api: Api, tenant: Tenant) -> None:
    response = api.request("POST", f"/v1/projects/{tenant.project_id}/enrollment-tokens", token=tenant.admin_token)
    assert response.status_code == 201


def test_roles_grant_exactly_their_permissions(api: Api, tenant: Tenant) -> None:
    members = f"/v1/projects/{tenant.project_id}/members"
    for subject, relation in (("val", "viewer"), ("oscar", "operator"), ("ada", "admin")):
        granted = api.request("PUT", f"{members}/{subject}", json_body={"relation": relation}, token=tenant.admin_token)
        assert granted.status_code == 200, granted.text
        assert granted.json == {
            "object_type": "project",
            "object_id": tenant.project_id,
            "subject": subject,
            "relation": relation,
        }

    def can_list(subject: str) -> int:
        return api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=operator_token(subject)).status_code

    def can_mint(subject: str) -> int:
        return api.request(
            "POST", f"/v1/projects/{tenant.project_id}/enrollment-tokens", token=operator_token(subject)
        ).status_code

    assert [can_list(s) for s in ("val", "oscar", "ada", "eve")] == [200, 200, 200, 403]
    assert [can_mint(s) for s in ("val", "oscar", "ada", "eve")] == [403, 403, 201, 403]


def test_revoked_role_no_longer_grants(api: Api, tenant: Tenant) -> None:
    member = f"/v1/projects/{tenant.project_id}/members/val"
    api.request("PUT", member, json_body={"relation": "viewer"}, token=tenant.admin_token)
    assert api.request("DELETE", member, token=tenant.admin_token).status_code == 204
    listed = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=operator_token("val"))
    assert_problem(listed, 403, "rebac_denied")
    assert_problem(api.request("DELETE", member, token=tenant.admin_token), 404, "member_not_found")


def test_project_admin_cannot_grant_domain_roles(api: Api, tenant: Tenant) -> None:
    api.request(
        "PUT",
        f"/v1/projects/{tenant.project_id}/members/ada",
        json_body={"relation": "admin"},
        token=tenant.admin_token,
    )
    response = api.request(
        "PUT",
        f"/v1/domains/{tenant.domain_id}/members/ada",
        json_body={"relation": "admin"},
        token=operator_token("ada"),
    )
    assert_problem(response, 403, "rebac_denied")


def test_domain_admin_grant_inherits_every_project(api: Api, tenant: Tenant) -> None:
    api.request(
        "PUT", f"/v1/domains/{tenant.domain_id}/members/dora", json_body={"relation": "admin"}, token=tenant.admin_token
    )
    response = api.request("POST", f"/v1/projects/{tenant.project_id}/enrollment-tokens", token=operator_token("dora"))
    assert response.status_code == 201


def test_non_admin_cannot_create_projects_and_nothing_is_written(api: Api, tenant: Tenant) -> None:
    before = len(api.table_items())
    response = api.request(
        "POST", f"/v1/domains/{tenant.domain_id}/projects", json_body={"name": "x"}, token=operator_token("eve")
    )
    assert_problem(response, 403, "rebac_denied")
    assert len(api.table_items()) == before


def test_unknown_domain_is_404(api: Api, tenant: Tenant) -> None:
    response = api.request("POST", "/v1/domains/nope/projects", json_body={"name": "x"}, token=tenant.admin_token)
    assert_problem(response, 404, "domain_not_found")


def test_domain_admin_changes_the_ceiling(api: Api, tenant: Tenant) -> None:
    response = api.request(
        "PATCH", f"/v1/domains/{tenant.domain_id}", json_body={"live_execution_ceiling": 7}, token=tenant.admin_token
    )
    assert response.status_code == 200
    assert response.json["live_execution_ceiling"] == 7
    bad = api.request(
        "PATCH", f"/v1/domains/{tenant.domain_id}", json_body={"live_execution_ceiling": 0}, token=tenant.admin_token
    )
    assert_problem(bad, 400, "invalid_body")


def test_new_domain_uses_the_configured_default_ceiling(api: Api) -> None:
    response = api.request("POST", "/v1/domains", json_body={"name": "d"}, token=operator_token("x"))
    assert response.json["live_execution_ceiling"] == 100


def test_unknown_field_in_operator_body_is_400(api: Api) -> None:
    response = api.request("POST", "/v1/domains", json_body={"name": "d", "ceilng": 3}, token=operator_token("x"))
    problem = assert_problem(response, 400, "invalid_body")
    assert problem["errors"][0]["field"] == "ceilng"


def test_invalid_relation_is_400(api: Api, tenant: Tenant) -> None:
    response = api.request(
        "PUT",
        f"/v1/projects/{tenant.project_id}/members/bob",
        json_body={"relation": "owner"},
        token=tenant.admin_token,
    )
    assert_problem(response, 400, "invalid_body")


def test_domain_operator_can_read_in_every_project_but_not_administer(api: Api, tenant: Tenant) -> None:
    api.request(
        "PUT",
        f"/v1/domains/{tenant.domain_id}/members/olga",
        json_body={"relation": "operator"},
        token=tenant.admin_token,
    )
    listed = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=operator_token("olga"))
    assert listed.status_code == 200
    mint = api.request("POST", f"/v1/projects/{tenant.project_id}/enrollment-tokens", token=operator_token("olga"))
    assert_problem(mint, 403, "rebac_denied")
