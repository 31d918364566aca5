"""Minting and checking bearer secrets. Only hashes are ever stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from pydantic import BaseModel, ConfigDict

ENROLLMENT_PREFIX = "plx_enroll_"


def mint_enrollment_token() -> str:
    return ENROLLMENT_PREFIX + secrets.token_urlsafe(32)


class NodeCredential(BaseModel):
    """What authenticating a node reads of it: whether it is registered, its key's hash
    (never the key), where its event stream was last delivered to, and what delivering its
    project's feed needs (the project, its labels, its mesh key's version)."""

    model_config = ConfigDict(frozen=True)

    node_id: str
    active: bool
    nsk_hash: str | None = None
    events_delivered_through: str | None = None
    project_id: str | None = None
    labels: dict[str, str] = {}
    key_version: int = 0


def enrollment_token_usable(*, used: bool, expires_epoch: int, now: datetime) -> bool:
    """A one-time enrollment token registers a node only unused and before its expiry (the
    second it expires at is already too late, as the store's condition says)."""
    return not used and expires_epoch > int(now.timestamp())


def mint_node_secret_key() -> str:
    """A node secret key: 32 random bytes, base64 (an AES-256 key, as plexd expects)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def secret_hash(secret: str) -> str:
    """SHA-256 hex of a high-entropy secret; safe to store and to index on."""
    return hashlib.sha256(secret.encode()).hexdigest()


def hashes_match(presented_hash: str, stored_hash: str | None) -> bool:
    """Constant-time comparison of two hashes."""
    if not stored_hash:
        # Still spend a comparison so a missing hash is not faster than a wrong one.
        hmac.compare_digest(presented_hash, presented_hash)
        return False
    return hmac.compare_digest(presented_hash.encode(), stored_hash.encode())
