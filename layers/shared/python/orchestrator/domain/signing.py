"""The deployment's event-signing keys and their rotation (SPEC §11, §18).

The secret store holds the keyring: the current key's seed, and after a rotation the
previous one, the id of the ``signing_key_rotated`` event and when the previous key stops
being listed. A secret that is a bare string (as the template generates it) is a keyring of
one key that was never rotated. Each key's 32-byte Ed25519 seed is SHA-256 of its seed string.

Every event is signed at delivery with the key valid at its id: events up to and including
the rotation event with the previous key (while the transition lasts), later ones with the
new key. A node reads its stream in id order, so it learns the new key, from an envelope it
can verify, before any envelope signed with it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict

from orchestrator.clock import parse_rfc3339, rfc3339


@lru_cache(maxsize=8)
def private_key(seed: str) -> Ed25519PrivateKey:
    """The Ed25519 key a seed names (kept: every event of a dispatch is signed with it)."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())


def public_key_b64(seed: str) -> str:
    """Base64 of the raw 32-byte Ed25519 public key, as node agents expect it."""
    raw = private_key(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


class SigningKeys(BaseModel):
    """The public view: ``state.signing_keys`` and the agent's ``api.SigningKeys``."""

    model_config = ConfigDict(frozen=True)

    current: str
    previous: str | None
    transition_expires: str | None


class Keyring(BaseModel):
    model_config = ConfigDict(frozen=True)

    current: str
    previous: str | None = None
    rotation_event_id: str | None = None
    valid_from: str | None = None
    transition_expires: str | None = None
    rotations: int = 0

    @classmethod
    def parse(cls, secret: str) -> Keyring:
        """The keyring a secret value holds (a bare string: one key, never rotated)."""
        if secret.startswith("{"):
            return cls.model_validate(json.loads(secret))
        return cls(current=secret)

    def serialize(self) -> str:
        return self.model_dump_json(exclude_none=True)

    def in_transition(self, now: datetime) -> bool:
        return (
            self.previous is not None
            and self.transition_expires is not None
            and now < parse_rfc3339(self.transition_expires)
        )

    def seed_for(self, event_id: str, now: datetime) -> str:
        """The seed that signs the event ``event_id`` delivered at ``now``."""
        if self.in_transition(now) and self.rotation_event_id is not None and event_id <= self.rotation_event_id:
            assert self.previous is not None
            return self.previous
        return self.current

    def public(self, now: datetime) -> SigningKeys:
        """What nodes are told: the previous key only while the transition lasts."""
        if self.in_transition(now):
            assert self.previous is not None
            return SigningKeys(
                current=public_key_b64(self.current),
                previous=public_key_b64(self.previous),
                transition_expires=self.transition_expires,
            )
        return SigningKeys(current=public_key_b64(self.current), previous=None, transition_expires=None)

    def rotated(self, new_seed: str, event_id: str, now: datetime, transition: timedelta) -> Keyring:
        """The keyring after a rotation at ``now`` announced by the event ``event_id``."""
        return Keyring(
            current=new_seed,
            previous=self.current,
            rotation_event_id=event_id,
            valid_from=rfc3339(now),
            transition_expires=rfc3339(now + transition),
            rotations=self.rotations + 1,
        )
