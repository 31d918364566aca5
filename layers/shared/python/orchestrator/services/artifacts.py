"""Release artifacts of the node agent (SPEC §19): publish, list, download, verify.

The bytes never pass through an API function: an admin uploads them with a presigned PUT,
the verifier (an S3 ``ObjectCreated`` consumer) hashes what landed, and a node downloads
the verified object version through a presigned GET. See docs/artifacts.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import unquote_plus

from orchestrator.domain.artifacts import (
    UPLOAD_URL_SECONDS,
    Artifact,
    ArtifactRef,
    ArtifactStatus,
    declared_sha256,
    rejection,
)
from orchestrator.errors import ArtifactNotFound
from orchestrator.observability import logger
from orchestrator.services.access import authorize_deployment_admin
from orchestrator.services.context import Context
from orchestrator.store import keys
from orchestrator.store.artifacts import ArtifactObjects


@dataclass(frozen=True)
class Publication:
    artifact: Artifact
    upload_url: str


def publish(ctx: Context, subject: str, ref: ArtifactRef, *, sha256: str, size: int) -> Publication:
    """Declare ``ref``'s checksum and size (deployment admins only) and hand back where to
    upload its bytes. A pending or rejected publication is declared again; a verified one is
    409 ``artifact_exists``."""
    authorize_deployment_admin(ctx.settings.deployment_admins, subject, "Publishing an agent release")
    objects = ctx.artifact_objects  # 501 before anything is written
    now = ctx.clock.now()
    artifact = Artifact(
        ref=ref,
        sha256=declared_sha256(sha256),
        size=size,
        status=ArtifactStatus.PENDING,
        created_at=now,
        created_by=subject,
        upload_expires_at=now + timedelta(seconds=UPLOAD_URL_SECONDS),
    )
    upload_url = objects.upload_url(artifact)
    ctx.artifacts.declare(artifact)
    return Publication(artifact, upload_url)


def list_page(
    ctx: Context, name: str, *, limit: int, start_key: dict[str, Any] | None
) -> tuple[list[Artifact], dict[str, Any] | None]:
    """Every publication of ``name`` (any authenticated operator: versions and checksums are
    what the nodes run, not a secret)."""
    return ctx.artifacts.list_page(name, limit=limit, start_key=start_key)


def download_url(ctx: Context, ref: ArtifactRef | None) -> str:
    """Where a node fetches ``ref``'s verified bytes; 404 ``artifact_not_found`` for anything
    else (unknown, pending, rejected, or a name no artifact can have)."""
    artifact = ctx.artifacts.get(ref) if ref is not None else None
    if artifact is None or not artifact.servable:
        raise ArtifactNotFound("No verified artifact of this version for this platform.")
    return ctx.artifact_objects.download_url(artifact)


@dataclass(frozen=True)
class Verification:
    key: str
    outcome: str  # verified, rejected, stale, duplicate, gone, ignored


def verify_upload(ctx: Context, objects: ArtifactObjects, key: str, version_id: str | None) -> Verification:
    """Compare the bytes uploaded under ``key`` with their publication: serve them (verified),
    or delete them (rejected, or stale: a declaration that no longer expects them).

    S3 delivers an event at least once and maybe late, so each step is conditional on what the
    publication declares now, never on what it declared when the URL was handed out."""
    parsed = keys.parse_artifact_object(key)
    ref = ArtifactRef.parsed(*parsed[1:4]) if parsed else None
    if parsed is None or ref is None or parsed[0] != ref.name:
        logger.warning("object outside the artifact layout left alone", key=key)
        return Verification(key, "ignored")
    declared = ctx.artifacts.get(ref, consistent=True)
    # AWS names the object version in the event (the bucket is versioned); moto does not.
    uploaded = version_id or objects.latest_version(key)
    if declared is None or declared.sha256 != parsed[4]:
        objects.discard(key, uploaded)  # no publication expects these bytes (any more)
        return Verification(key, "stale")
    if declared.status is ArtifactStatus.VERIFIED:
        # The served version's event again, or a second upload to its key (the upload URL is
        # still valid): nodes keep downloading the verified version; another one is deleted.
        if uploaded is not None and uploaded != declared.object_version:
            objects.discard(key, uploaded)
        return Verification(key, "duplicate")
    return Verification(key, _check_bytes(ctx, objects, declared, key, uploaded))


def _check_bytes(ctx: Context, objects: ArtifactObjects, declared: Artifact, key: str, uploaded: str | None) -> str:
    """Hash the uploaded version: verified when it is what ``declared`` says, else deleted and
    the publication rejected."""
    found = objects.digest(key, uploaded)
    if found is None:
        return "gone"
    sha256, size, found_version = found
    reason = rejection(declared, sha256, size)
    ref, now = declared.ref, ctx.clock.now()
    if reason is None:
        if ctx.artifacts.mark_verified(ref, declared.sha256, declared.size, found_version, now):
            logger.info("artifact verified", key=key, version=ref.version, os=ref.os, arch=ref.arch)
            return "verified"
        return "duplicate"
    objects.discard(key, found_version)
    ctx.artifacts.mark_rejected(ref, declared.sha256, reason, now)
    logger.warning("artifact rejected", key=key, reason=reason)
    return "rejected"


def object_records(event: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """``(bucket, key, version id)`` of each ``ObjectCreated`` record of an S3 event (keys
    arrive URL-encoded, spaces as ``+``)."""
    found = []
    for record in event.get("Records") or []:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3") or {}
        bucket, obj = (s3.get("bucket") or {}).get("name"), s3.get("object") or {}
        if isinstance(bucket, str) and isinstance(obj.get("key"), str):
            version = obj.get("versionId")
            found.append((bucket, unquote_plus(obj["key"]), version if isinstance(version, str) else None))
    return found
