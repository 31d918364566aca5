"""What names an agent release, and when uploaded bytes are the declared ones (SPEC §19)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.domain.artifacts import Artifact, ArtifactRef, ArtifactStatus, declared_sha256, rejection
from orchestrator.errors import InvalidParameter
from orchestrator.store import keys

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.mark.parametrize(
    ("version", "os", "arch"),
    [
        ("1.5.0", "linux", "amd64"),
        ("v1.5.0", "darwin", "arm64"),
        ("1.6.0-rc.1+build.7", "windows", "386"),
        ("0.0.1", "freebsd", "riscv64"),
    ],
)
def test_well_formed_releases_are_accepted_as_written(version: str, os: str, arch: str) -> None:
    ref = ArtifactRef.checked(version, os, arch)
    assert (ref.name, ref.version, ref.os, ref.arch) == ("plexd", version, os, arch)


@pytest.mark.parametrize(
    ("version", "os", "arch"),
    [
        ("latest", "linux", "amd64"),
        ("1.5", "linux", "amd64"),
        ("01.5.0", "linux", "amd64"),
        ("1.5.0/../x", "linux", "amd64"),
        ("1.5.0-" + "x" * 64, "linux", "amd64"),
        ("1.5.0", "Linux", "amd64"),
        ("1.5.0", "l", "amd64"),
        ("1.5.0", "linux", "amd64_v3"),
        ("1.5.0", "linux", "a" * 17),
    ],
)
def test_malformed_releases_are_400_and_never_a_reference(version: str, os: str, arch: str) -> None:
    with pytest.raises(InvalidParameter):
        ArtifactRef.checked(version, os, arch)
    assert ArtifactRef.parsed(version, os, arch) is None


@pytest.mark.parametrize(("declared", "bare"), [(SHA, SHA), (f"sha256:{SHA}", SHA)])
def test_a_checksum_is_kept_bare(declared: str, bare: str) -> None:
    assert declared_sha256(declared) == bare


def _declared(size: int = 10) -> Artifact:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    return Artifact(
        ref=ArtifactRef(version="1.5.0", os="linux", arch="amd64"),
        sha256=SHA,
        size=size,
        status=ArtifactStatus.PENDING,
        created_at=now,
        created_by="admin",
        upload_expires_at=now,
    )


@pytest.mark.parametrize(
    ("sha256", "size", "reason"),
    [
        (SHA, 10, None),
        ("0" * 64, 10, "sha256 differs from the declared one"),
        (SHA, 11, "size 11 differs from the declared 10"),
        ("0" * 64, 9, "size 9 differs from the declared 10"),
    ],
)
def test_uploaded_bytes_are_served_only_when_both_checksum_and_size_match(
    sha256: str, size: int, reason: str | None
) -> None:
    assert rejection(_declared(), sha256, size) == reason


def test_the_object_key_names_the_declared_checksum_and_reads_back() -> None:
    key = keys.artifact_object("plexd", "1.6.0-rc.1+b.7", "linux", "arm64", SHA)
    assert key == f"plexd/1.6.0-rc.1+b.7/linux/arm64/{SHA}"
    assert keys.parse_artifact_object(key) == ("plexd", "1.6.0-rc.1+b.7", "linux", "arm64", SHA)
    assert keys.parse_artifact_object("plexd/readme.txt") is None
    assert keys.parse_artifact_object("plexd/1.5.0//amd64/x") is None
