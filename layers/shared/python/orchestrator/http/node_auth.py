"""Node secret key (NSK) authentication (SPEC §5, §12).

Happy path: one strongly consistent read of the node's credential and a constant-time hash
comparison.
Only on failure is the NSK index read, to tell a revoked credential (401)
from another node's credential (403).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from orchestrator.domain.credentials import NodeCredential, hashes_match, secret_hash
from orchestrator.domain.models import Node
from orchestrator.errors import NskNodeMismatch, NskRevoked
from orchestrator.store.nodes import NodeStore

T = TypeVar("T")


def authenticate_node(store: NodeStore, nsk: str | None, node_id: str) -> NodeCredential:
    """The credential of the active node ``node_id`` if ``nsk`` is its current key (one
    strongly consistent read of the credential, constant-time comparison of the hashes)."""
    return _authenticated(store, nsk, node_id, store.get_credential, lambda credential: credential)


def authenticate_node_record(store: NodeStore, nsk: str | None, node_id: str) -> tuple[Node, NodeCredential]:
    """The same check, reading the whole node item once: for a route that needs the node's
    record as well (its state, its deregistration)."""
    return _authenticated(store, nsk, node_id, store.get_node_and_credential, lambda found: found[1])


def authenticate_any_node(store: NodeStore, nsk: str | None) -> NodeCredential:
    """The active node whose current key ``nsk`` is, for a route that names no node (an
    artifact download): the NSK index (``NSK#<sha256>``, written at registration, deleted at
    deregistration) names it, then the same check as :func:`authenticate_node`. Two reads;
    anything else (no bearer, an operator's token, a revoked key) is 401 ``nsk_revoked``."""
    if not nsk:
        raise NskRevoked("A node secret key is required as Authorization: Bearer.")
    node_id = store.node_id_for_nsk(secret_hash(nsk))
    if node_id is None:
        raise NskRevoked("The node secret key is invalid or revoked.")
    return authenticate_node(store, nsk, node_id)


def _authenticated(
    store: NodeStore,
    nsk: str | None,
    node_id: str,
    read: Callable[[str], T | None],
    credential_of: Callable[[T], NodeCredential],
) -> T:
    if not nsk:
        raise NskRevoked("A node secret key is required as Authorization: Bearer.")
    presented = secret_hash(nsk)
    found = read(node_id)
    if found is not None:
        credential = credential_of(found)
        if credential.active and hashes_match(presented, credential.nsk_hash):
            return found
    owner = store.node_id_for_nsk(presented)
    if owner is not None and owner != node_id:
        raise NskNodeMismatch("This node secret key belongs to another node.")
    raise NskRevoked("The node secret key is invalid or revoked.")
