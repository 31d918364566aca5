"""Opaque list cursors: HMAC-signed and bound to the caller and the filters (SPEC §14)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import CursorBindingMismatch, InvalidCursor, InvalidLimit

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def parse_limit(raw: str | None) -> int:
    """``limit`` is 1..200 (default 50); anything else is 400 ``invalid_limit``, never clamped."""
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit():
        raise InvalidLimit(f"limit must be an integer from 1 to {MAX_LIMIT}.")
    value = int(raw)
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidLimit(f"limit must be an integer from 1 to {MAX_LIMIT}.")
    return value


def binding(subject: str, route: str, filters: Mapping[str, str | None]) -> str:
    canonical = json.dumps({"s": subject, "r": route, "f": dict(filters)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(key: bytes, last_evaluated_key: Mapping[str, Any], bound_to: str) -> str:
    payload = json.dumps({"k": dict(last_evaluated_key), "b": bound_to}, separators=(",", ":")).encode()
    signature = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def decode_cursor(key: bytes, cursor: str, bound_to: str) -> dict[str, Any]:
    """The ``LastEvaluatedKey`` inside a cursor this server minted for this caller and filters."""
    try:
        payload_part, signature_part = cursor.split(".", 1)
        payload = _unb64(payload_part)
        signature = _unb64(signature_part)
    except (ValueError, binascii.Error) as exc:
        raise InvalidCursor("The cursor is malformed.") from exc
    expected = hmac.new(key, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise InvalidCursor("The cursor is malformed or was tampered with.")
    try:
        decoded = json.loads(payload)
        last_key, cursor_binding = decoded["k"], decoded["b"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidCursor("The cursor is malformed.") from exc
    if not isinstance(last_key, dict) or not isinstance(cursor_binding, str):
        raise InvalidCursor("The cursor is malformed.")
    if not hmac.compare_digest(cursor_binding, bound_to):
        raise CursorBindingMismatch("The cursor was issued for another caller or other filters.")
    return last_key
