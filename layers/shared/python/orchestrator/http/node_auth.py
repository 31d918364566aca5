"""Node secret key (NSK) authentication (SPEC §5, §12).

Happy path: one read of the node item and a constant-time hash comparison.
Only on failure is the NSK index read, to tell a revoked credential (401)
from another node's credential (403).
"""

from __future__ import annotations

from orchestrator.domain.credentials import hashes_match, secret_hash
from orchestrator.errors import NskNodeMismatch, NskRevoked
from orchestrator.store.nodes import NodeStore
from orchestrator.store.table import Item


def authenticate_node(store: NodeStore, nsk: str | None, node_id: str, *, credential_only: bool = False) -> Item:
    """The active node item for ``node_id`` if ``nsk`` is its current key (with
    ``credential_only``, just its ``status`` and ``nsk_hash``: all a caller that only needs to
    know who is calling reads, e.g. every report on the callback hot path)."""
    if not nsk:
        raise NskRevoked("A node secret key is required as Authorization: Bearer.")
    presented = secret_hash(nsk)
    item = store.get_node_credential(node_id) if credential_only else store.get_node_item(node_id)
    if item is not None and item.get("status") == "active" and hashes_match(presented, item.get("nsk_hash")):
        return item
    owner = store.node_id_for_nsk(presented)
    if owner is not None and owner != node_id:
        raise NskNodeMismatch("This node secret key belongs to another node.")
    raise NskRevoked("The node secret key is invalid or revoked.")
