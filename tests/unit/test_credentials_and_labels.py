"""Secrets at rest, labels from metadata, liveness and mesh addresses."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from orchestrator.domain.credentials import (
    hashes_match,
    mint_enrollment_token,
    mint_node_secret_key,
    secret_hash,
)
from orchestrator.domain.labels import labels_from_metadata
from orchestrator.domain.liveness import node_liveness
from orchestrator.domain.models import Node, NodeStatus
from orchestrator.services.nodes import mesh_ip

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_node_secret_key_is_a_base64_aes256_key() -> None:
    assert len(base64.b64decode(mint_node_secret_key())) == 32
    assert mint_node_secret_key() != mint_node_secret_key()


def test_enrollment_tokens_are_prefixed_and_unique() -> None:
    token = mint_enrollment_token()
    assert token.startswith("plx_enroll_") and len(token) > 40
    assert token != mint_enrollment_token()


def test_hash_comparison() -> None:
    digest = secret_hash("s")
    assert hashes_match(digest, digest)
    assert not hashes_match(digest, secret_hash("t"))
    assert not hashes_match(digest, None)
    assert not hashes_match(digest, "")


def test_labels_keep_only_selectable_scalar_metadata() -> None:
    metadata = {
        "env": "prod",
        "replicas": 3,
        "gpu": True,
        "nested": {"a": 1},
        "list": [1],
        "bad key": "v",
        "k": "bad value",
        "long": "x" * 64,
        "region": "eu-west-1",
    }
    assert labels_from_metadata(metadata) == {"env": "prod", "replicas": "3", "gpu": "true", "region": "eu-west-1"}


def _node(**fields: object) -> Node:
    base = {
        "id": "n",
        "project_id": "p",
        "domain_id": "d",
        "hostname": "h",
        "mesh_ip": "10.100.0.1",
        "registered_at": NOW,
        "updated_at": NOW,
    }
    return Node.model_validate(base | fields)


def test_liveness_uses_last_heartbeat_or_registration() -> None:
    assert node_liveness(_node(), NOW + timedelta(seconds=30)) == "online"
    assert node_liveness(_node(), NOW + timedelta(seconds=91)) == "stale"
    assert node_liveness(_node(last_heartbeat_at=NOW + timedelta(minutes=10)), NOW + timedelta(minutes=11)) == "online"
    assert node_liveness(_node(status=NodeStatus.DEREGISTERED), NOW) == "deregistered"


def test_mesh_addresses_skip_network_and_broadcast_hosts() -> None:
    assert [mesh_ip(n) for n in (1, 2, 254, 255, 256)] == [
        "10.100.0.1",
        "10.100.0.2",
        "10.100.0.254",
        "10.100.1.1",
        "10.100.1.2",
    ]
