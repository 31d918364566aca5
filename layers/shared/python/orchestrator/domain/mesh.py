"""Mesh rules (SPEC §18): pair keys and peer entries.

One pre-shared key per node pair, the same on both sides, is *derived*, not stored
(docs/node-state-plane.md §2): HMAC-SHA256 under the deployment's mesh key of the project,
the pair's node ids in sorted order and each one's key version. Either side computes the
same 32 bytes; a node's key rotation (its ``key_version`` + 1) changes every pair key of it.

A peer (``MeshPeer``) is what the project's peer snapshot holds of a node; what a recipient
receives of it is its ``entry`` with their pair key. Public keys and endpoints are checked
and put in canonical form here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from orchestrator.errors import InvalidEndpoint, PublicKeyInvalid


def pair_psk(mesh_key: bytes, project_id: str, a: tuple[str, int], b: tuple[str, int]) -> str:
    """Base64 of the 32-byte pre-shared key of nodes ``a`` and ``b`` (``(node_id, key_version)``),
    symmetric in its two nodes."""
    low, high = sorted((a, b))
    message = f"psk/v1|{project_id}|{low[0]}|{low[1]}|{high[0]}|{high[1]}".encode()
    return base64.b64encode(hmac.new(mesh_key, message, hashlib.sha256).digest()).decode()


WIREGUARD_KEY_BYTES = 32
MAX_PUBLIC_KEY_CHARS = 64
MAX_ENDPOINT_CHARS = 262  # a 253-character hostname, ":" and a 5-digit port, or a bracketed IPv6
HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class MeshPeer(BaseModel):
    """A node's place in its project's mesh, as the peer snapshot holds it: what every other
    node needs to reach it, without any pair key (those are derived per recipient)."""

    model_config = ConfigDict(frozen=True)

    id: str
    public_key: str
    mesh_ip: str
    endpoint: str = ""
    key_version: int = 0

    def entry(self, psk: str) -> dict[str, Any]:
        """The peer as the agent receives it (its Go ``api.Peer``). An endpoint not reported
        yet is ``""``: Go's zero value, which the agent reads as "no endpoint"."""
        return {
            "id": self.id,
            "public_key": self.public_key,
            "mesh_ip": self.mesh_ip,
            "endpoint": self.endpoint,
            "allowed_ips": [f"{self.mesh_ip}/32"],
            "psk": psk,
        }

    def event_fields(self) -> dict[str, Any]:
        """The peer entry of an event, without its ``psk`` (filled in per recipient at
        delivery), with ``peer_id`` beside ``id``: the spec names ``peer_id``, while the agent
        reads these payloads as a whole ``api.Peer`` (``id``, key, endpoint, allowed IPs)."""
        fields = self.entry("")
        del fields["psk"]
        return {"peer_id": self.id, **fields}


def peer_entries(
    mesh_key: bytes, project_id: str, recipient: tuple[str, int], snapshot: Sequence[MeshPeer]
) -> list[dict[str, Any]]:
    """What ``recipient`` (``(node_id, key_version)``) receives of a snapshot: every other peer
    that has a mesh key (a node registered without one cannot be a WireGuard peer), each with
    the pair key the two of them share."""
    return [
        peer.entry(pair_psk(mesh_key, project_id, recipient, (peer.id, peer.key_version)))
        for peer in snapshot
        if peer.id != recipient[0] and peer.public_key
    ]


def parse_public_key(value: str) -> str:
    """A WireGuard (Curve25519) public key: standard base64 of exactly 32 bytes, else 422
    ``public_key_invalid``."""
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise PublicKeyInvalid("new_public_key must be standard base64.") from exc
    if len(raw) != WIREGUARD_KEY_BYTES:
        raise PublicKeyInvalid(f"new_public_key must encode {WIREGUARD_KEY_BYTES} bytes, not {len(raw)}.")
    return base64.b64encode(raw).decode()


def parse_endpoint(value: str) -> str:
    """``host:port`` in canonical form (IPv4, ``[IPv6]``, or a DNS name in lower case; port
    1..65535), else 400 ``invalid_endpoint``. The canonical form is what is compared, so the
    same address spelled twice is not a change."""
    host, separator, port_text = value.rpartition(":")
    if not separator or not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise InvalidEndpoint("public_endpoint must be host:port.")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise InvalidEndpoint("The endpoint's port must be 1..65535.")
    if host.startswith("[") and host.endswith("]"):
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]:{port}"
        except ValueError as exc:
            raise InvalidEndpoint("The endpoint's bracketed host must be an IPv6 address.") from exc
    try:
        return f"{ipaddress.IPv4Address(host)}:{port}"
    except ValueError:
        pass
    name = host.removesuffix(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(HOST_LABEL.fullmatch(label) for label in labels):
        raise InvalidEndpoint("The endpoint's host must be an IPv4 address, a bracketed IPv6 address or a DNS name.")
    if labels[-1].isdigit():
        raise InvalidEndpoint("The endpoint's host is not a valid IPv4 address.")
    return f"{name.lower()}:{port}"
