"""Release artifacts: one table item per publication, and their bytes in the artifact bucket."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orchestrator import aws
from orchestrator.clock import parse_rfc3339, rfc3339
from orchestrator.domain.artifacts import (
    DOWNLOAD_URL_SECONDS,
    UPLOAD_URL_SECONDS,
    Artifact,
    ArtifactRef,
    ArtifactStatus,
)
from orchestrator.errors import ArtifactExists, DependencyUnavailable
from orchestrator.observability import logger
from orchestrator.store import keys
from orchestrator.store.table import ConditionFailed, Item, Table

STATUS = {"#status": "status"}


class ArtifactStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, ref: ArtifactRef, *, consistent: bool = False) -> Artifact | None:
        item = self.table.get(_key(ref), consistent=consistent)
        return artifact_from_item(item) if item else None

    def declare(self, artifact: Artifact) -> None:
        """Write ``artifact`` as pending: only if no publication of it exists or the existing
        one was never verified (409 ``artifact_exists`` otherwise, nothing written)."""
        try:
            self.table.put(
                _item(artifact),
                condition="attribute_not_exists(PK) OR #status <> :verified",
                names=STATUS,
                values={":verified": ArtifactStatus.VERIFIED.value},
            )
        except ConditionFailed as exc:
            ref = artifact.ref
            raise ArtifactExists(
                f"{ref.name} {ref.version} for {ref.os}/{ref.arch} is already published and verified."
            ) from exc

    def mark_verified(
        self, ref: ArtifactRef, sha256: str, size: int, object_version: str | None, now: datetime
    ) -> bool:
        """Serve the bytes at ``object_version``: only while the publication still declares
        ``sha256`` and ``size`` (the ones checked) and is not verified yet (False, nothing
        written, otherwise: it was declared again meanwhile)."""
        update = "SET #status = :verified, published_at = :now REMOVE rejected_reason"
        values: dict[str, Any] = {
            ":verified": ArtifactStatus.VERIFIED.value,
            ":now": rfc3339(now),
            ":sha": sha256,
            ":size": size,
        }
        if object_version:
            update = "SET #status = :verified, published_at = :now, object_version = :v REMOVE rejected_reason"
            values[":v"] = object_version
        try:
            self.table.update(
                _key(ref),
                update=update,
                condition="sha256 = :sha AND #size = :size AND #status <> :verified",
                names={**STATUS, "#size": "size"},
                values=values,
                returns="NONE",
            )
        except ConditionFailed:
            return False
        return True

    def mark_rejected(self, ref: ArtifactRef, sha256: str, reason: str, now: datetime) -> bool:
        """Record why the uploaded bytes were refused: only while the publication still
        declares ``sha256`` and is pending (False, nothing written, otherwise)."""
        try:
            self.table.update(
                _key(ref),
                update="SET #status = :rejected, rejected_reason = :reason, rejected_at = :now",
                condition="sha256 = :sha AND #status = :pending",
                names=STATUS,
                values={
                    ":rejected": ArtifactStatus.REJECTED.value,
                    ":pending": ArtifactStatus.PENDING.value,
                    ":reason": reason,
                    ":now": rfc3339(now),
                    ":sha": sha256,
                },
                returns="NONE",
            )
        except ConditionFailed:
            return False
        return True

    def list_page(
        self, name: str, *, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Artifact], dict[str, Any] | None]:
        """One page of the artifact's publications, by version string, then os, then arch."""
        items, last = self.table.query_page(
            index=None,
            key_condition="PK = :pk",
            values={":pk": keys.artifacts_partition(name)},
            limit=limit,
            start_key=start_key,
        )
        return [artifact_from_item(i) for i in items], last


class ArtifactObjects:
    """The artifact bucket (versioned): presigned URLs, digests of one object version, and the
    removal of refused ones. No bytes pass through a function except the verifier's read."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def upload_url(self, artifact: Artifact) -> str:
        """A PUT URL for exactly ``artifact.size`` bytes (SigV4 signs Content-Length)."""
        return _presigned(
            "put_object",
            {"Bucket": self.bucket, "Key": object_key(artifact), "ContentLength": artifact.size},
            UPLOAD_URL_SECONDS,
        )

    def download_url(self, artifact: Artifact) -> str:
        """A short-lived GET URL of the verified bytes (that object version, whatever was
        uploaded to the key since)."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": object_key(artifact)}
        if artifact.object_version:
            params["VersionId"] = artifact.object_version
        return _presigned("get_object", params, DOWNLOAD_URL_SECONDS)

    def digest(self, key: str, version_id: str | None) -> tuple[str, int, str | None] | None:
        """SHA-256 (hex), size and version id of the object (that version, else the latest),
        streamed in 1 MiB chunks; None when it is gone."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        try:
            response = aws.s3().get_object(**params)
            hasher, size = hashlib.sha256(), 0
            body = response["Body"]
            for chunk in iter(lambda: body.read(1024 * 1024), b""):
                hasher.update(chunk)
                size += len(chunk)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "NoSuchVersion", "404", "NotFound"}:
                return None
            raise DependencyUnavailable("The object store is unavailable.") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable("The object store is unavailable.") from exc
        found_version = response.get("VersionId")
        return hasher.hexdigest(), size, found_version if found_version not in (None, "null") else None

    def latest_version(self, key: str) -> str | None:
        """The version id of the object's latest version (None: gone, or no versioning)."""
        try:
            response = aws.s3().head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise DependencyUnavailable("The object store is unavailable.") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable("The object store is unavailable.") from exc
        version = response.get("VersionId")
        return version if version not in (None, "null") else None

    def discard(self, key: str, version_id: str | None) -> None:
        """Delete that version of the object for good (the latest, when the version is not
        known)."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        try:
            aws.s3().delete_object(**params)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyUnavailable("The object store is unavailable.") from exc
        logger.info("artifact object discarded", key=key, version_id=version_id)


def object_key(artifact: Artifact) -> str:
    ref = artifact.ref
    return keys.artifact_object(ref.name, ref.version, ref.os, ref.arch, artifact.sha256)


def _presigned(operation: str, params: dict[str, Any], expires_in: int) -> str:
    # Signed locally with the function's credentials: no request to S3.
    url: str = aws.s3().generate_presigned_url(operation, Params=params, ExpiresIn=expires_in)
    return url


def _key(ref: ArtifactRef) -> keys.Key:
    return keys.artifact(ref.name, ref.version, ref.os, ref.arch)


def _item(artifact: Artifact) -> Item:
    ref = artifact.ref
    return {
        **_key(ref),
        "type": "artifact",
        "name": ref.name,
        "version": ref.version,
        "os": ref.os,
        "arch": ref.arch,
        "sha256": artifact.sha256,
        "size": artifact.size,
        "status": artifact.status.value,
        "created_at": rfc3339(artifact.created_at),
        "created_by": artifact.created_by,
        "upload_expires_at": rfc3339(artifact.upload_expires_at),
    }


def artifact_from_item(item: Item) -> Artifact:
    published = item.get("published_at")
    return Artifact(
        ref=ArtifactRef(name=item["name"], version=item["version"], os=item["os"], arch=item["arch"]),
        sha256=item["sha256"],
        size=int(item["size"]),
        status=ArtifactStatus(item["status"]),
        created_at=parse_rfc3339(item["created_at"]),
        created_by=item.get("created_by", ""),
        upload_expires_at=parse_rfc3339(item["upload_expires_at"]),
        published_at=parse_rfc3339(published) if published else None,
        object_version=item.get("object_version"),
        rejected_reason=item.get("rejected_reason"),
    )
