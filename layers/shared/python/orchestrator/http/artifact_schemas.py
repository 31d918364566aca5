"""Release artifacts at the edge (SPEC §19): the publish body, the path, the projections."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictInt

from orchestrator.clock import rfc3339
from orchestrator.domain.artifacts import MAX_SIZE_BYTES, SHA256_DECLARED, Artifact
from orchestrator.http.schemas import OperatorBody
from orchestrator.services.artifacts import Publication


class PublishArtifactRequest(OperatorBody):
    """The checksum and size of the binary about to be uploaded (unknown fields are refused)."""

    sha256: Annotated[str, Field(pattern=SHA256_DECLARED.pattern)] = Field(
        description="The binary's SHA-256: 64 lower-case hex digits, bare or `sha256:`-prefixed (as plexd writes"
        " checksums). Answers always carry the bare digits.",
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    )
    size: Annotated[StrictInt, Field(ge=1, le=MAX_SIZE_BYTES)] = Field(
        description=f"The binary's size in bytes, 1 to {MAX_SIZE_BYTES} (512 MiB)."
    )


def _described(artifact: Artifact) -> dict[str, Any]:
    """What every view says of a publication: which, its bytes' checksum and size, its state."""
    return {
        "version": artifact.ref.version,
        "os": artifact.ref.os,
        "arch": artifact.ref.arch,
        "sha256": artifact.sha256,
        "size": artifact.size,
        "status": artifact.status.value,
    }


def published_view(publication: Publication) -> dict[str, Any]:
    return _described(publication.artifact) | {
        "upload_url": publication.upload_url,
        "upload_expires_at": rfc3339(publication.artifact.upload_expires_at),
    }


def artifact_view(artifact: Artifact) -> dict[str, Any]:
    view: dict[str, Any] = _described(artifact) | {
        "created_at": rfc3339(artifact.created_at),
        "published_at": rfc3339(artifact.published_at) if artifact.published_at else None,
    }
    if artifact.rejected_reason:
        view["rejected_reason"] = artifact.rejected_reason
    return view
