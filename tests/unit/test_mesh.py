"""Mesh rules: pair keys, peer entries, public keys and endpoints (SPEC §18)."""

from __future__ import annotations

import base64

import pytest

from orchestrator.domain.mesh import MeshPeer, pair_psk, parse_endpoint, parse_public_key, peer_entries
from orchestrator.errors import InvalidEndpoint, PublicKeyInvalid

KEY = b"mesh-key"


def test_a_pair_key_is_the_same_from_either_side_and_32_bytes() -> None:
    ab = pair_psk(KEY, "p", ("a", 0), ("b", 3))
    assert ab == pair_psk(KEY, "p", ("b", 3), ("a", 0))
    assert len(base64.b64decode(ab)) == 32


@pytest.mark.parametrize(
    ("changed", "why"),
    [
        ((KEY, "p", ("a", 1), ("b", 3)), "a rotated"),
        ((KEY, "p", ("a", 0), ("b", 4)), "b rotated"),
        ((KEY, "q", ("a", 0), ("b", 3)), "another project"),
        ((b"other", "p", ("a", 0), ("b", 3)), "another mesh key"),
        ((KEY, "p", ("a", 0), ("c", 3)), "another peer"),
    ],
)
def test_a_pair_key_changes_with_any_of_its_inputs(changed: tuple, why: str) -> None:
    assert pair_psk(*changed) != pair_psk(KEY, "p", ("a", 0), ("b", 3)), why


def test_a_recipient_gets_every_other_peer_with_their_pair_key() -> None:
    snapshot = [
        MeshPeer(id="a", public_key="ka", mesh_ip="10.100.0.1", key_version=2),
        MeshPeer(id="b", public_key="kb", mesh_ip="10.100.0.2", endpoint="198.51.100.5:51820"),
    ]
    assert peer_entries(KEY, "p", ("a", 2), snapshot) == [
        {
            "id": "b",
            "public_key": "kb",
            "mesh_ip": "10.100.0.2",
            "endpoint": "198.51.100.5:51820",
            "allowed_ips": ["10.100.0.2/32"],
            "psk": pair_psk(KEY, "p", ("a", 2), ("b", 0)),
        }
    ]


def test_an_event_entry_names_the_peer_twice_and_carries_no_pair_key() -> None:
    fields = MeshPeer(id="a", public_key="ka", mesh_ip="10.100.0.1").event_fields()
    assert fields == {
        "peer_id": "a",
        "id": "a",
        "public_key": "ka",
        "mesh_ip": "10.100.0.1",
        "endpoint": "",
        "allowed_ips": ["10.100.0.1/32"],
    }


def test_a_public_key_is_standard_base64_of_32_bytes() -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    assert parse_public_key(key) == key


@pytest.mark.parametrize(
    "value",
    [
        "",
        base64.b64encode(bytes(31)).decode(),
        base64.b64encode(bytes(33)).decode(),
        base64.urlsafe_b64encode(b"\xff" * 32).decode(),  # URL-safe alphabet
        base64.b64encode(bytes(32)).decode().rstrip("="),  # padding dropped
        "é" * 44,
    ],
)
def test_anything_else_is_public_key_invalid(value: str) -> None:
    with pytest.raises(PublicKeyInvalid):
        parse_public_key(value)


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("203.0.113.10:51820", "203.0.113.10:51820"),
        ("[2001:0db8:0:0::1]:1", "[2001:db8::1]:1"),
        ("Node-1.Example.COM:65535", "node-1.example.com:65535"),
        ("example.com.:443", "example.com:443"),
        ("localhost:51820", "localhost:51820"),
    ],
)
def test_endpoints_are_put_in_canonical_form(value: str, canonical: str) -> None:
    assert parse_endpoint(value) == canonical


@pytest.mark.parametrize(
    "value",
    [
        "",
        "203.0.113.10",
        "203.0.113.10:",
        "203.0.113.10:0",
        "203.0.113.10:65536",
        "203.0.113.10:+80",
        "203.0.113.10:٣",  # a non-ASCII digit
        "::1:51820",  # IPv6 without brackets
        "[203.0.113.10]:1",
        "[::1:1",
        "300.0.113.10:1",
        "1.2.3:1",
        "-bad.example.com:1",
        "bad_host:1",
        "a" * 64 + ".com:1",
        ":51820",
    ],
)
def test_anything_else_is_invalid_endpoint(value: str) -> None:
    with pytest.raises(InvalidEndpoint):
        parse_endpoint(value)
