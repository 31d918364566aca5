"""Cursor signing, binding and limits (SPEC §14)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import CursorBindingMismatch, InvalidCursor, InvalidLimit
from orchestrator.http.cursor import _b64, _unb64, binding, decode_cursor, encode_cursor, parse_limit

KEY = b"k" * 32
LAST = {"PK": "NODE#1", "SK": "NODE", "GSI1PK": "PROJECT#p#NODES", "GSI1SK": "1"}


def test_round_trip_returns_the_last_key() -> None:
    bound = binding("alice", "nodes:p", {"status": None})
    assert decode_cursor(KEY, encode_cursor(KEY, LAST, bound), bound) == LAST


def test_other_caller_or_filters_is_binding_mismatch() -> None:
    cursor = encode_cursor(KEY, LAST, binding("alice", "nodes:p", {}))
    with pytest.raises(CursorBindingMismatch):
        decode_cursor(KEY, cursor, binding("bob", "nodes:p", {}))
    with pytest.raises(CursorBindingMismatch):
        decode_cursor(KEY, cursor, binding("alice", "nodes:p", {"status": "failed"}))


def test_cursor_signed_with_another_key_is_invalid() -> None:
    bound = binding("alice", "r", {})
    with pytest.raises(InvalidCursor):
        decode_cursor(b"x" * 32, encode_cursor(KEY, LAST, bound), bound)


@given(st.text(max_size=200))
def test_arbitrary_text_is_never_accepted_nor_crashes(text: str) -> None:
    with pytest.raises((InvalidCursor, CursorBindingMismatch)):
        decode_cursor(KEY, text, binding("a", "r", {}))


@given(st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_flipping_any_bit_of_payload_or_signature_invalidates(position: int, bit: int) -> None:
    bound = binding("a", "r", {})
    payload_b64, signature_b64 = encode_cursor(KEY, LAST, bound).split(".")
    parts = [bytearray(_unb64(payload_b64)), bytearray(_unb64(signature_b64))]
    target = parts[position % 2]
    target[position % len(target)] ^= 1 << bit
    tampered = f"{_b64(bytes(parts[0]))}.{_b64(bytes(parts[1]))}"
    with pytest.raises(InvalidCursor):
        decode_cursor(KEY, tampered, bound)


@pytest.mark.parametrize(("raw", "expected"), [(None, 50), ("1", 1), ("200", 200), ("50", 50)])
def test_valid_limits(raw: str | None, expected: int) -> None:
    assert parse_limit(raw) == expected


@pytest.mark.parametrize("raw", ["0", "201", "-5", "", " 5", "5.0", "1e2", "٣"])
def test_invalid_limits_are_rejected_not_clamped(raw: str) -> None:
    with pytest.raises(InvalidLimit):
        parse_limit(raw)
