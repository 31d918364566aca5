"""plexctl's rendering of a target's output reference (SPEC §3: inline bytes travel as base64)."""

from __future__ import annotations

import base64

import pytest
from plexctl.render import output_summary


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
