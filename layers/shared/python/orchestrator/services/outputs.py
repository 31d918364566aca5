"""The object store for over-ceiling outputs (S3): presigned URLs, digests, server-side puts."""

from __future__ import annotations

import hashlib

from botocore.exceptions import BotoCoreError, ClientError

from orchestrator import aws
from orchestrator.errors import DependencyUnavailable
from orchestrator.observability import logger

URL_EXPIRY_SECONDS = 300
INLINE_CEILING_BYTES = 16 * 1024


def object_key(execution_id: str, node_id: str, suffix: str = "") -> str:
    return f"outputs/{execution_id}/{node_id}{suffix}"


def presign_put(bucket: str, key: str, size: int) -> str:
    """A short-lived PUT URL; the signed Content-Length limits the upload to ``size`` bytes."""
    return aws.s3().generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": key, "ContentLength": size}, ExpiresIn=URL_EXPIRY_SECONDS
    )


def presign_get(bucket: str, key: str) -> str:
    return aws.s3().generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=URL_EXPIRY_SECONDS
    )


def digest(bucket: str, key: str) -> tuple[str, int] | None:
    """SHA-256 (hex) and size of a stored object, or None when it does not exist."""
    try:
        body = aws.s3().get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
            return None
        raise DependencyUnavailable("The object store is unavailable.") from exc
    except BotoCoreError as exc:
        raise DependencyUnavailable("The object store is unavailable.") from exc
    hasher, size = hashlib.sha256(), 0
    for chunk in iter(lambda: body.read(1024 * 1024), b""):
        hasher.update(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size


def put(bucket: str, key: str, data: bytes, content_type: str) -> str:
    """Store ``data``; returns its SHA-256 (hex)."""
    try:
        aws.s3().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
    except (ClientError, BotoCoreError) as exc:
        raise DependencyUnavailable("The object store is unavailable.") from exc
    return hashlib.sha256(data).hexdigest()


def discard(bucket: str, key: str) -> None:
    """Best-effort removal of an object no target refers to (a refused report's output)."""
    try:
        aws.s3().delete_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError):
        logger.warning("orphan output left in the object store", key=key)
