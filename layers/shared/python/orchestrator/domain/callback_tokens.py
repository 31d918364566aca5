"""Per-invocation callback tokens (SPEC §12): HMAC-signed, bound to (execution, node), expiring.

For callers that are not the node itself (e.g. an external workflow reporting
for it). Format: ``plx_cb_<base64url(payload)>.<base64url(HMAC-SHA256)>``. Pure: the
caller brings the key (the secret store's callback key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import datetime

from orchestrator.errors import InvalidCallbackToken

PREFIX = "plx_cb_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_callback_token(token: str) -> bool:
    return token.startswith(PREFIX)


def mint(execution_id: str, node_id: str, expires_at: datetime, key: bytes) -> str:
    payload = json.dumps(
        {"e": execution_id, "n": node_id, "x": int(expires_at.timestamp())}, separators=(",", ":")
    ).encode()
    signature = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{PREFIX}{_b64(payload)}.{_b64(signature)}"


def verify(token: str, execution_id: str, node_id: str, now: datetime, key: bytes) -> None:
    """Accept only a token this server signed, for this (execution, node), not expired."""
    try:
        payload_part, signature_part = token.removeprefix(PREFIX).split(".", 1)
        payload, signature = _unb64(payload_part), _unb64(signature_part)
    except (ValueError, binascii.Error) as exc:
        raise InvalidCallbackToken("The callback token is malformed.") from exc
    expected = hmac.new(key, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise InvalidCallbackToken("The callback token is invalid.")
    claims = json.loads(payload)
    if claims.get("e") != execution_id or claims.get("n") != node_id:
        raise InvalidCallbackToken("The callback token is for another invocation.")
    if int(claims.get("x", 0)) <= int(now.timestamp()):
        raise InvalidCallbackToken("The callback token has expired.")
