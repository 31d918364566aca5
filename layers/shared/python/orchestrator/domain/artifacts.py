"""Release artifacts of the node agent (SPEC §19): what names one, what a publication
declares, and when uploaded bytes may be served. No I/O.

An artifact is ``(name, version, os, arch)``; only ``plexd`` is published today. An admin
declares its SHA-256 and size (``pending``), uploads the bytes straight to the bucket, and
the verifier compares what landed with the declaration: ``verified`` (served to nodes) or
``rejected`` (the bytes are deleted, never served). See docs/artifacts.md.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from orchestrator.errors import InvalidParameter

PLEXD = "plexd"
# Semantic versions as plexd reports its own (`1.4.2`, `v1.5.0-rc.1+build.7`), bounded.
VERSION = re.compile(
    r"^v?(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
MAX_VERSION_CHARS = 64
# Go's GOOS / GOARCH spelling (linux, darwin, windows; amd64, arm64, arm, 386, riscv64...): a
# bounded slug rather than an allow-list, so a new Go port needs no server change.
PLATFORM_SLUG = re.compile(r"^[a-z0-9]{2,16}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
SHA256_DECLARED = re.compile(r"^(sha256:)?[0-9a-f]{64}$")
MAX_SIZE_BYTES = 512 * 1024 * 1024  # far above a Go agent binary (tens of MiB)
UPLOAD_URL_SECONDS = 900  # a large binary on a slow link still starts its PUT in time
DOWNLOAD_URL_SECONDS = 300


class ArtifactStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class ArtifactRef(BaseModel):
    """Which artifact: ``plexd`` at a version, for a platform."""

    model_config = ConfigDict(frozen=True)

    name: str = PLEXD
    version: str
    os: str
    arch: str

    @classmethod
    def checked(cls, version: str, os: str, arch: str) -> ArtifactRef:
        """The reference if every part is well-formed (400 ``invalid_parameter`` otherwise)."""
        if len(version) > MAX_VERSION_CHARS or not VERSION.fullmatch(version):
            raise InvalidParameter(
                f"version must be a semantic version (e.g. 1.4.2, v1.5.0-rc.1), at most {MAX_VERSION_CHARS} characters."
            )
        for part, value in (("os", os), ("arch", arch)):
            if not PLATFORM_SLUG.fullmatch(value):
                raise InvalidParameter(f"{part} must be 2 to 16 lower-case letters or digits (Go's GOOS/GOARCH).")
        return cls(version=version, os=os, arch=arch)

    @classmethod
    def parsed(cls, version: str, os: str, arch: str) -> ArtifactRef | None:
        """The reference, or None when no artifact could have this name (never published)."""
        try:
            return cls.checked(version, os, arch)
        except InvalidParameter:
            return None


class Artifact(BaseModel):
    """One publication: what the admin declared, and where the verification stands."""

    model_config = ConfigDict(frozen=True)

    ref: ArtifactRef
    sha256: str  # 64 lower-case hex digits
    size: int
    status: ArtifactStatus
    created_at: datetime
    created_by: str
    upload_expires_at: datetime
    published_at: datetime | None = None  # when its bytes were verified
    object_version: str | None = None  # the bucket's version id of the verified bytes
    rejected_reason: str | None = None

    @property
    def servable(self) -> bool:
        return self.status is ArtifactStatus.VERIFIED


def declared_sha256(value: str) -> str:
    """The 64 hex digits of a declared checksum, bare or ``sha256:``-prefixed as plexd
    writes checksums in its capabilities."""
    return value.removeprefix("sha256:")


def rejection(declared: Artifact, sha256: str, size: int) -> str | None:
    """Why the uploaded bytes (their SHA-256 and size) are not the declared ones, or None
    when they are."""
    if size != declared.size:
        return f"size {size} differs from the declared {declared.size}"
    if sha256 != declared.sha256:
        return "sha256 differs from the declared one"
    return None
