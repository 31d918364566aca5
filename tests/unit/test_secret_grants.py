"""Secret grants and the node-side encryption (domain.secrets): table-driven, no I/O."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestrator.domain.secrets import SecretGrants, change_audience, for_node, open_sealed, seal

WEB = "0190a8b8-0000-7000-8000-000000000001"
DB = "0190a8b8-0000-7000-8000-000000000002"


@pytest.mark.parametrize(
    ("grants", "node_id", "labels", "allowed"),
    [
        (SecretGrants(node_ids=(WEB,)), WEB, {}, True),
        (SecretGrants(node_ids=(WEB,)), DB, {"role": "web"}, False),
        (SecretGrants(selector="role=web"), DB, {"role": "web"}, True),
        (SecretGrants(selector="role=web"), DB, {"role": "db"}, False),
        (SecretGrants(selector="env=prod,role!=db"), WEB, {"env": "prod", "role": "web"}, True),
        (SecretGrants(node_ids=(DB,), selector="role=web"), WEB, {"role": "web"}, True),
        (SecretGrants(node_ids=(DB,), selector="role=web"), DB, {}, True),
        (SecretGrants(), WEB, {"role": "web"}, False),
    ],
)
def test_a_node_is_granted_by_id_or_by_its_labels(
    grants: SecretGrants, node_id: str, labels: dict[str, str], allowed: bool
) -> None:
    assert grants.allows(node_id, labels) is allowed


def test_a_change_concerns_the_nodes_granted_before_and_after() -> None:
    audience = change_audience(SecretGrants(node_ids=(WEB,)), SecretGrants(selector="role=db"))
    assert audience.concerns(WEB, {})  # lost it: must learn
    assert audience.concerns(DB, {"role": "db"})  # gained it
    assert not audience.concerns("other", {"role": "cache"})
    both = change_audience(SecretGrants(selector="role=web"), SecretGrants(selector="role=db"))
    assert both.concerns(WEB, {"role": "web"}) and both.concerns(DB, {"role": "db"})


def test_a_secret_granted_to_nobody_concerns_nobody() -> None:
    assert not change_audience(None, SecretGrants()).concerns(WEB, {"role": "web"})


def test_the_node_form_opens_with_the_nsk_alone_like_plexd() -> None:
    nsk = os.urandom(32)
    ciphertext, nonce = for_node(nsk, b"value")
    raw_nonce = base64.b64decode(nonce, validate=True)
    assert len(raw_nonce) == 12
    assert AESGCM(nsk).decrypt(raw_nonce, base64.b64decode(ciphertext, validate=True), None) == b"value"
    assert for_node(nsk, b"value")[1] != nonce  # a fresh nonce each time


def test_sealing_at_rest_needs_the_same_data_key() -> None:
    key = os.urandom(32)
    nonce, ciphertext = seal(key, b"at rest")
    assert open_sealed(key, nonce, ciphertext) == b"at rest"
    with pytest.raises(InvalidTag):
        open_sealed(os.urandom(32), nonce, ciphertext)
