"""plexctl's rendering of a target's output reference (SPEC §3: inline bytes travel as base64)."""

from __future__ import annotations

import base64
import io

import pytest
from plexctl.render import artifacts_table, human_size, output_summary
from rich.console import Console
from rich.table import Table


@pytest.mark.parametrize(
    ("ref", "cell"),
    [
        ({}, None),
        ({"kind": "inline", "inline_bytes": base64.b64encode(b"ok\n").decode(), "size": 3}, "inline (3 B)"),
        ({"kind": "inline", "inline_bytes": base64.b64encode(b"restarted\n").decode()}, "inline (10 B)"),
        ({"kind": "inline", "size": 20, "inline_bytes_omitted": True}, "inline (20 B)"),
        (
            {"kind": "object_store", "bucket": "b", "key": "k", "sha256": "0" * 64, "size": 40960},
            "object_store (40960 B)",
        ),
        ({"kind": "object_store", "bucket": "b", "key": "k", "sha256": "0" * 64}, "object_store"),
    ],
)
def test_output_cell_shows_kind_and_size(ref: dict, cell: str | None) -> None:
    assert output_summary(ref) == cell


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (24_117_248, "23.0 MiB"), (3 * 1024**3, "3.0 GiB"), (None, "-")],
)
def test_artifact_sizes_are_shown_in_binary_units(size: int | None, shown: str) -> None:
    assert human_size(size) == shown


def _rendered(table: Table) -> str:
    sink = io.StringIO()
    Console(file=sink, width=250, color_system=None).print(table)
    return sink.getvalue()


def test_artifact_table_shows_each_publication_with_its_full_checksum() -> None:
    # Given a verified, a pending and a rejected publication
    items = [
        {
            "version": "1.5.0",
            "os": "linux",
            "arch": "amd64",
            "sha256": "a" * 64,
            "size": 24_117_248,
            "status": "verified",
            "created_at": "2025-01-01T00:00:00.000Z",
            "published_at": "2025-01-01T00:00:05.000Z",
        },
        {
            "version": "1.5.0",
            "os": "linux",
            "arch": "arm64",
            "sha256": "b" * 64,
            "size": 10,
            "status": "pending",
            "created_at": "2025-01-01T00:00:00.000Z",
            "published_at": None,
        },
        {
            "version": "1.6.0-rc.1",
            "os": "darwin",
            "arch": "arm64",
            "sha256": "c" * 64,
            "size": 2048,
            "status": "rejected",
            "created_at": "2025-01-01T00:00:00.000Z",
            "published_at": None,
            "rejected_reason": "sha256 differs from the declared one",
        },
    ]
    # When they are rendered as a table
    lines = _rendered(artifacts_table(items)).splitlines()
    # Then there is a header and one row each, in order, with the whole SHA-256
    assert lines[0].split() == ["VERSION", "OS", "ARCH", "STATUS", "SIZE", "SHA256", "PUBLISHED"]
    published = "2025-01-01T00:00:05.000Z"
    assert lines[1].split() == ["1.5.0", "linux", "amd64", "verified", "23.0", "MiB", "a" * 64, published]
    assert lines[2].split() == ["1.5.0", "linux", "arm64", "pending", "10", "B", "b" * 64, "-"]
    assert lines[3].split()[:7] == ["1.6.0-rc.1", "darwin", "arm64", "rejected", "2.0", "KiB", "c" * 64]
    # And a rejection says why where the publication time would be
    assert lines[3].endswith("sha256 differs from the declared one")
