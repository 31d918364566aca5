"""Mesh rules (SPEC §18): pair keys and peer entries.

One pre-shared key per node pair, the same on both sides, is *derived*, not stored
(docs/node-state-plane.md §2): HMAC-SHA256 under the deployment's mesh key of the project,
the pair's node ids in sorted order and each one's key version. Either side computes the
same 32 bytes; a node's key rotation (its ``key_version`` + 1) changes every pair key of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def pair_psk(mesh_key: bytes, project_id: str, a: tuple[str, int], b: tuple[str, int]) -> str:
    """Base64 of the 32-byte pre-shared key of nodes ``a`` and ``b`` (``(node_id, key_version)``),
    symmetric in its two nodes."""
    low, high = sorted((a, b))
    message = f"psk/v1|{project_id}|{low[0]}|{low[1]}|{high[0]}|{high[1]}".encode()
    return base64.b64encode(hmac.new(mesh_key, message, hashlib.sha256).digest()).decode()
