"""Project secrets (SPEC §18): who may read one, and the AES-256-GCM both sides speak.

A value is encrypted twice, never stored in the clear: at rest under a per-version data
key (KMS ``GenerateDataKey``), and for a node under that node's NSK on each fetch, as the
agent decrypts it (a random 12-byte nonce, no AAD, standard base64).
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from datetime import datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict

from orchestrator.domain.feed import Audience
from orchestrator.domain.selectors import parse_selector

SECRET_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_VALUE_BYTES = 64 * 1024
NONCE_BYTES = 12
SECRETS_UPDATED = "node_secrets_updated"


class SecretGrants(BaseModel):
    """The nodes a secret is granted to: those named, and those whose labels the selector
    matches. Neither: no node."""

    model_config = ConfigDict(frozen=True)

    node_ids: tuple[str, ...] = ()
    selector: str | None = None

    def allows(self, node_id: str, labels: Mapping[str, str]) -> bool:
        if node_id in self.node_ids:
            return True
        return self.selector is not None and parse_selector(self.selector).matches(labels)


def change_audience(*grants: SecretGrants | None) -> Audience:
    """Who must learn of a change: every node granted before or after it (a node that lost
    access learns too). No grant at all: nobody (an empty node list)."""
    present = [g for g in grants if g is not None]
    node_ids = tuple(sorted({n for g in present for n in g.node_ids}))
    selectors = tuple(dict.fromkeys(g.selector for g in present if g.selector is not None))
    return Audience(node_ids=node_ids, selectors=selectors or None)


class SecretMeta(BaseModel):
    """What operators and nodes may see of a secret: never its value."""

    model_config = ConfigDict(frozen=True)

    project_id: str
    key: str
    version: int
    grants: SecretGrants
    updated_at: datetime
    updated_by: str


class SealedSecret(BaseModel):
    """A secret version as stored: the value under its data key, the data key under KMS."""

    model_config = ConfigDict(frozen=True)

    meta: SecretMeta
    ciphertext: bytes
    nonce: bytes
    wrapped_data_key: bytes


def data_key_context(project_id: str, key: str, version: int) -> dict[str, str]:
    """The KMS encryption context binding a data key to its secret version."""
    return {"project_id": project_id, "secret": key, "version": str(version)}


def nsk_context(node_id: str) -> dict[str, str]:
    """The KMS encryption context binding a sealed NSK to its node."""
    return {"node_id": node_id, "purpose": "nsk"}


def seal(key: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    """AES-256-GCM under ``key`` with a fresh random nonce and no AAD: (nonce, ciphertext‖tag)."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce, AESGCM(key).encrypt(nonce, plaintext, None)


def open_sealed(key: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    return AESGCM(key).decrypt(nonce, ciphertext, None)


def for_node(nsk: bytes, plaintext: bytes) -> tuple[str, str]:
    """The value as a node receives it: (ciphertext, nonce), standard base64, under the
    node's 32-byte NSK (the base64-decoded ``node_secret_key``, SPEC §18)."""
    nonce, ciphertext = seal(nsk, plaintext)
    return base64.b64encode(ciphertext).decode(), base64.b64encode(nonce).decode()
