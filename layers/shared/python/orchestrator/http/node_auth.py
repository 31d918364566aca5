"""Node secret key (NSK) authentication (SPEC §5, §12).

Happy path: one strongly consistent read of the node's credential and a constant-time hash
comparison.
Only on failure is the NSK index read, to tell a revoked credential (401)
from another node's credential (403).
"""

from __future__ import annotations

from orchestrator.domain.credentials import NodeCredential, hashes_match, secret_hash
from orchestrator.errors import NskNodeMismatch, NskRevoked
from orchestrator.store.nodes import NodeStore


def authenticate_node(store: NodeStore, nsk: str | None, node_id: str) -> NodeCredential:
    """The credential of the active node ``node_id`` if ``nsk`` is its current key (one
    strongly consistent read, constant-time comparison of the hashes)."""
    if not nsk:
        raise NskRevoked("A node secret key is required as Authorization: Bearer.")
    presented = secret_hash(nsk)
    credential = store.get_credential(node_id)
    if credential is not None and credential.active and hashes_match(presented, credential.nsk_hash):
        return credential
    owner = store.node_id_for_nsk(presented)
    if owner is not None and owner != node_id:
        raise NskNodeMismatch("This node secret key belongs to another node.")
    raise NskRevoked("The node secret key is invalid or revoked.")
