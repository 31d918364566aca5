"""Agent release artifacts (SPEC §19): a deployment admin publishes (declared SHA-256 and size,
presigned upload), the S3-event verifier checks what landed, nodes download the verified
bytes through a 302 to a presigned GET; nothing else is ever served."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
import requests

from orchestrator.domain.artifacts import ArtifactRef
from orchestrator.services.context import context_for
from orchestrator.settings import get_settings
from orchestrator_local import snapshot
from tests.integration.conftest import (
    ADMIN,
    Api,
    RegisteredNode,
    Tenant,
    assert_problem,
    operator_token,
    register_node,
)

BINARY = b"\x7fELF plexd 1.5.0 linux/amd64 " + bytes(range(256)) * 64
SHA = hashlib.sha256(BINARY).hexdigest()
ROUTE = "/v1/artifacts/plexd/1.5.0/linux/amd64"


def publish(api: Api, body: dict[str, Any] | None = None, *, path: str = ROUTE, token: str | None = None) -> Any:
    return api.request(
        "POST", path, json_body=body or {"sha256": SHA, "size": len(BINARY)}, token=token or operator_token(ADMIN)
    )


def upload(url: str, data: bytes) -> requests.Response:
    response = requests.put(url, data=data, timeout=10)
    return response


def published(api: Api, data: bytes = BINARY, *, path: str = ROUTE, sha256: str = SHA) -> dict[str, Any]:
    answer = publish(api, {"sha256": sha256, "size": len(data)}, path=path)
    assert answer.status_code == 201, answer.text
    assert upload(answer.json["upload_url"], data).status_code == 200
    return dict(answer.json)


def listed(api: Api, token: str | None = None) -> list[dict[str, Any]]:
    response = api.request("GET", "/v1/artifacts/plexd", token=token or operator_token(ADMIN))
    assert response.status_code == 200, response.text
    return list(response.json["items"])


def download(api: Api, node: RegisteredNode, path: str = ROUTE) -> Any:
    return api.request("GET", path, token=node.nsk, headers={"Accept": "application/json", "Accept-Encoding": "gzip"})


def fetched(location: str) -> bytes:
    response = requests.get(location, timeout=10)
    assert response.status_code == 200, response.text
    return response.content


def artifact_objects(api: Api) -> list[dict[str, Any]]:
    versions = boto3.client("s3").list_object_versions(Bucket=api.stack.refs["ArtifactBucket"])
    return list(versions.get("Versions", []))


# Publishing ---------------------------------------------------------------------------
def test_an_admin_publishes_and_the_upload_is_verified_and_listed(api: Api) -> None:
    # When the admin declares the binary
    answer = publish(api)
    assert answer.status_code == 201, answer.text
    body = answer.json
    assert list(body) == ["version", "os", "arch", "sha256", "size", "status", "upload_url", "upload_expires_at"]
    assert (body["version"], body["os"], body["arch"], body["sha256"], body["size"], body["status"]) == (
        "1.5.0",
        "linux",
        "amd64",
        SHA,
        len(BINARY),
        "pending",
    )
    # Then the upload URL is a SigV4 PUT that signs the Content-Length
    query = parse_qs(urlparse(body["upload_url"]).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "content-length" in query["X-Amz-SignedHeaders"][0]
    assert listed(api)[0]["status"] == "pending"
    # When the bytes are uploaded, the verifier checks them
    assert upload(body["upload_url"], BINARY).status_code == 200
    (item,) = listed(api)
    assert item["status"] == "verified"
    assert item["published_at"] is not None
    assert (item["sha256"], item["size"]) == (SHA, len(BINARY))


def test_a_sha256_prefixed_checksum_is_accepted_and_answered_bare(api: Api) -> None:
    answer = publish(api, {"sha256": f"sha256:{SHA}", "size": len(BINARY)})
    assert answer.status_code == 201, answer.text
    assert answer.json["sha256"] == SHA


def test_a_tampered_upload_is_rejected_deleted_and_never_served(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01")
    answer = publish(api)
    tampered = bytes([BINARY[0] ^ 1]) + BINARY[1:]  # same size, other bytes
    assert upload(answer.json["upload_url"], tampered).status_code == 200
    (item,) = listed(api)
    assert item["status"] == "rejected"
    assert "sha256" in item["rejected_reason"]
    assert artifact_objects(api) == []
    assert_problem(download(api, node), 404, "artifact_not_found")


def test_a_rejected_publication_may_be_declared_again_and_then_verified(api: Api) -> None:
    answer = publish(api)
    upload(answer.json["upload_url"], b"x" * len(BINARY))
    assert listed(api)[0]["status"] == "rejected"
    published(api)
    (item,) = listed(api)
    assert item["status"] == "verified"
    assert "rejected_reason" not in item


def test_republishing_a_verified_artifact_is_409_and_changes_nothing(api: Api) -> None:
    published(api)
    items = api.table_items()
    assert_problem(publish(api), 409, "artifact_exists")
    assert_problem(publish(api, {"sha256": "0" * 64, "size": 3}), 409, "artifact_exists")
    assert api.table_items() == items


def test_a_pending_publication_is_declared_again_with_another_checksum(api: Api) -> None:
    # Given a declaration whose upload never came
    first = publish(api, {"sha256": "0" * 64, "size": len(BINARY)})
    assert first.status_code == 201
    # When it is declared again with the real checksum and the bytes are uploaded
    published(api)
    # Then the new declaration is verified
    assert listed(api)[0]["status"] == "verified"
    # And a late upload to the first URL is deleted as stale, the verified one untouched
    assert upload(first.json["upload_url"], BINARY).status_code == 200
    assert listed(api)[0]["status"] == "verified"
    assert [o["Key"] for o in artifact_objects(api)] == [f"plexd/1.5.0/linux/amd64/{SHA}"]


def test_a_second_upload_to_a_verified_key_does_not_change_what_nodes_get(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01")
    body = published(api)
    # The upload URL is still valid: other bytes of the same size land on the same key
    upload(body["upload_url"], b"y" * len(BINARY))
    assert listed(api)[0]["status"] == "verified"
    assert len(artifact_objects(api)) == 1
    assert hashlib.sha256(fetched(download(api, node).headers["Location"])).hexdigest() == SHA


def test_a_second_platform_and_version_are_listed_in_order(api: Api) -> None:
    published(api)
    published(api, path="/v1/artifacts/plexd/1.5.0/linux/arm64")
    published(api, path="/v1/artifacts/plexd/1.4.2/darwin/arm64")
    assert [(i["version"], i["os"], i["arch"]) for i in listed(api)] == [
        ("1.4.2", "darwin", "arm64"),
        ("1.5.0", "linux", "amd64"),
        ("1.5.0", "linux", "arm64"),
    ]


def test_the_list_is_paged(api: Api) -> None:
    for arch in ("amd64", "arm64", "arm"):
        assert publish(api, path=f"/v1/artifacts/plexd/1.5.0/linux/{arch}").status_code == 201
    token = operator_token(ADMIN)
    first = api.request("GET", "/v1/artifacts/plexd", token=token, query={"limit": 2})
    assert len(first.json["items"]) == 2
    second = api.request(
        "GET", "/v1/artifacts/plexd", token=token, query={"limit": 2, "cursor": first.json["next_cursor"]}
    )
    assert len(second.json["items"]) == 1
    assert "next_cursor" not in second.json
    assert_problem(api.request("GET", "/v1/artifacts/plexd", token=token, query={"limit": 0}), 400, "invalid_limit")
    other = operator_token("someone@example.com")
    assert_problem(
        api.request("GET", "/v1/artifacts/plexd", token=other, query={"cursor": first.json["next_cursor"]}),
        403,
        "cursor_binding_mismatch",
    )


def test_any_operator_lists_but_only_a_deployment_admin_publishes(api: Api, tenant: Tenant) -> None:
    published(api)
    assert [i["status"] for i in listed(api, operator_token("viewer@example.com"))] == ["verified"]
    items = api.table_items()
    problem = assert_problem(publish(api, token=operator_token("viewer@example.com")), 403, "rebac_denied")
    assert problem["relation_path"] == ["user:viewer@example.com", "deployment#admin"]
    # Even with a bad body: the caller is refused before anything is read
    assert_problem(publish(api, {"nope": 1}, token=operator_token("viewer@example.com")), 403, "rebac_denied")
    assert api.table_items() == items


@pytest.mark.parametrize(
    "path",
    [
        "/v1/artifacts/plexd/latest/linux/amd64",
        "/v1/artifacts/plexd/1.5/linux/amd64",
        f"/v1/artifacts/plexd/1.5.0-{'x' * 64}/linux/amd64",
        "/v1/artifacts/plexd/1.5.0/Linux/amd64",
        "/v1/artifacts/plexd/1.5.0/linux/x",
        "/v1/artifacts/plexd/1.5.0/linux/amd64_v3",
    ],
)
def test_a_malformed_path_is_400_and_writes_nothing(api: Api, path: str) -> None:
    items = api.table_items()
    assert_problem(publish(api, path=path), 400, "invalid_parameter")
    assert api.table_items() == items


@pytest.mark.parametrize(
    "body",
    [
        {"sha256": SHA.upper(), "size": 10},
        {"sha256": SHA[:-1], "size": 10},
        {"sha256": f"md5:{SHA}", "size": 10},
        {"sha256": SHA, "size": 0},
        {"sha256": SHA, "size": 512 * 1024 * 1024 + 1},
        {"sha256": SHA, "size": "10"},
        {"sha256": SHA},
        {"sha256": SHA, "size": 10, "name": "plexd"},
    ],
)
def test_a_malformed_body_is_400_and_writes_nothing(api: Api, body: dict[str, Any]) -> None:
    items = api.table_items()
    assert_problem(publish(api, body), 400, "invalid_body")
    assert api.table_items() == items
    assert artifact_objects(api) == []


def test_a_node_cannot_publish(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01")
    items = api.table_items()
    response = api.request("POST", ROUTE, json_body={"sha256": SHA, "size": 10}, token=node.nsk)
    assert response.status_code == 401
    assert api.table_items() == items


def test_without_the_bucket_publish_and_download_are_501(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01")
    del os.environ["ARTIFACT_BUCKET"]
    get_settings.cache_clear()
    items = api.table_items()
    assert_problem(publish(api), 501, "artifacts_not_provisioned")
    assert api.table_items() == items
    assert_problem(download(api, node), 404, "artifact_not_found")  # nothing could be published


# Downloading --------------------------------------------------------------------------
def test_a_node_of_any_project_downloads_the_verified_bytes(api: Api, tenant: Tenant) -> None:
    token = operator_token(ADMIN)
    domain = api.request("POST", "/v1/domains", json_body={"name": "other"}, token=token).json["id"]
    project = api.request("POST", f"/v1/domains/{domain}/projects", json_body={"name": "p2"}, token=token).json["id"]
    other = Tenant(domain, project, token)
    published(api)
    for node in (register_node(api, tenant, "web-01"), register_node(api, other, "db-01")):
        response = download(api, node)
        assert response.status_code == 302, response.text
        assert response.data == b""
        assert response.headers["Cache-Control"] == "no-store"
        location = response.headers["Location"]
        assert "versionId=" in location
        assert hashlib.sha256(fetched(location)).hexdigest() == SHA


def test_a_pending_or_unknown_artifact_is_404(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "web-01")
    assert_problem(download(api, node), 404, "artifact_not_found")
    publish(api)
    assert_problem(download(api, node), 404, "artifact_not_found")
    published(api, path="/v1/artifacts/plexd/1.5.0/linux/arm64")
    assert_problem(download(api, node, "/v1/artifacts/plexd/1.5.1/linux/arm64"), 404, "artifact_not_found")
    assert_problem(download(api, node, "/v1/artifacts/plexd/not-a-version/linux/arm64"), 404, "artifact_not_found")


def test_download_needs_an_active_node_key(api: Api, tenant: Tenant) -> None:
    published(api)
    node = register_node(api, tenant, "web-01")
    assert_problem(api.request("GET", ROUTE), 401, "nsk_revoked")
    assert_problem(api.request("GET", ROUTE, token="not-a-key"), 401, "nsk_revoked")
    # An operator's token is not a node key
    assert_problem(api.request("GET", ROUTE, token=operator_token(ADMIN)), 401, "nsk_revoked")
    # A deregistered node's key is revoked
    assert api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk).status_code == 200
    assert_problem(download(api, node), 401, "nsk_revoked")


# The verifier -------------------------------------------------------------------------
def test_an_object_outside_the_layout_or_without_a_publication_is_handled(api: Api) -> None:
    s3 = boto3.client("s3")
    bucket = api.stack.refs["ArtifactBucket"]
    # No publication declares it: deleted as stale
    s3.put_object(Bucket=bucket, Key=f"plexd/9.9.9/linux/amd64/{SHA}", Body=BINARY)
    # Not the artifact layout: left alone
    s3.put_object(Bucket=bucket, Key="plexd/readme.txt", Body=b"hello")
    assert [o["Key"] for o in artifact_objects(api)] == ["plexd/readme.txt"]
    assert [i for i in api.table_items() if i.get("type", {}).get("S") == "artifact"] == []


def test_a_repeated_event_for_the_verified_upload_changes_nothing(api: Api, runtime: Any) -> None:
    published(api)
    (version,) = artifact_objects(api)
    items = api.table_items()
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": api.stack.refs["ArtifactBucket"]},
                    "object": {"key": version["Key"], "versionId": version["VersionId"]},
                },
            }
        ]
    }
    result = runtime.invoke("VerifyArtifactFunction", event)
    assert result["verified"] == [{"key": version["Key"], "outcome": "duplicate"}]
    assert api.table_items() == items
    assert len(artifact_objects(api)) == 1


# Local mode ---------------------------------------------------------------------------
def test_a_verified_artifact_still_downloads_after_a_local_restart(api: Api, tenant: Tenant, tmp_path: Path) -> None:
    # Given a verified publication, saved by a clean stop
    published(api)
    snapshot.save(api.stack, tmp_path / "state")
    # When its bytes are gone (a fresh moto) and the saved state is restored, with the
    # bucket's notifications (the verifier) installed as the server has them
    s3 = boto3.client("s3")
    for version in artifact_objects(api):
        s3.delete_object(Bucket=api.stack.refs["ArtifactBucket"], Key=version["Key"], VersionId=version["VersionId"])
    snapshot.restore(api.stack, tmp_path / "state")
    # Then restoring was not taken for an upload: still verified, and the node gets the bytes
    assert [item["status"] for item in listed(api)] == ["verified"]
    node = register_node(api, tenant, "web-01")
    answer = download(api, node)
    assert answer.status_code == 302, answer.text
    assert fetched(answer.headers["Location"]) == BINARY
    # And the notifications are back: a new upload is verified again
    published(api, path="/v1/artifacts/plexd/1.5.1/linux/amd64")
    assert sorted(item["status"] for item in listed(api)) == ["verified", "verified"]


def test_a_verification_does_not_serve_a_publication_declared_again_with_another_size(api: Api) -> None:
    # Given a pending publication (declared, not uploaded)
    assert publish(api).status_code == 201
    ctx = context_for("verify_artifact")
    ref = ArtifactRef.checked("1.5.0", "linux", "amd64")
    # When a verification that hashed bytes of another declared size comes to record its verdict
    # (the publication was declared again, same SHA-256, another size, while it hashed)
    done = ctx.artifacts.mark_verified(ref, SHA, len(BINARY) + 1, None, ctx.clock.now())
    # Then nothing is served: the size checked is not the one declared
    assert done is False
    assert listed(api)[0]["status"] == "pending"
    assert ctx.artifacts.mark_verified(ref, SHA, len(BINARY), None, ctx.clock.now()) is True
    assert listed(api)[0]["status"] == "verified"
