"""Rotating the deployment's event-signing key (SPEC §18): who may, what nodes are told, and
which key signs which event."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest

from orchestrator import secrets
from orchestrator.domain.node_events import NodeEvent
from orchestrator.services.context import context_for
from orchestrator.settings import get_settings
from tests.e2e.plexd_wire import EnvelopeRefused, GoVerifier
from tests.integration.conftest import Api, RegisteredNode, Tenant, assert_problem, operator_token, register_node
from tests.integration.test_feeds import _frames

ROTATE = "/v1/signing-keys:rotate"


def raw_stream(api: Api, node: RegisteredNode) -> list[dict[str, str]]:
    response = api.request("GET", f"/v1/nodes/{node.id}/events", token=node.nsk, headers={"Last-Event-ID": "0"})
    assert response.status_code == 200, response.text
    # Leave out the mesh's peer events (a node registering sends peer_added to the others).
    return [frame for frame in _frames(response.text) if not frame["event"].startswith("peer_")]


def own_event(node: RegisteredNode, event_type: str, fields: dict[str, Any]) -> str:
    ctx = context_for("test")
    event_id = ctx.ids.new_id()
    ctx.node_events.append([NodeEvent.new(event_id, event_type, node.id, ctx.clock.now(), fields)], ctx.clock.now())
    return event_id


def signing_secret(api: Api) -> str:
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=api.stack.refs["SigningKeySecret"])
    return str(secret["SecretString"])


def test_only_a_deployment_admin_rotates_and_a_refusal_changes_nothing(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "sk-0")
    before, items = signing_secret(api), api.table_items()
    problem = assert_problem(
        api.request("POST", ROTATE, token=operator_token("someone@example.com")), 403, "rebac_denied"
    )
    assert problem["relation_path"] == ["user:someone@example.com", "deployment#admin"]
    assert signing_secret(api) == before
    assert api.table_items() == items
    assert raw_stream(api, node) == []


def test_a_rotation_lists_both_keys_and_nodes_learn_the_new_one_from_an_envelope_signed_with_the_old(
    api: Api, tenant: Tenant
) -> None:
    node = register_node(api, tenant, "sk-1")
    old_key = api.request("GET", f"/v1/nodes/{node.id}/state", token=node.nsk).json["signing_keys"]["current"]
    before = own_event(node, "rotate_keys", {"n": "before"})

    rotated = api.request("POST", ROTATE, token=tenant.admin_token)
    assert rotated.status_code == 200, rotated.text
    keys = rotated.json
    assert keys["previous"] == old_key and keys["current"] != old_key
    assert keys["transition_expires"] > keys["valid_from"]
    after = own_event(node, "rotate_keys", {"n": "after"})

    state_keys = api.request("GET", f"/v1/nodes/{node.id}/state", token=node.nsk).json["signing_keys"]
    assert state_keys == {k: keys[k] for k in ("current", "previous", "transition_expires")}
    assert api.request("GET", "/v1/signing-keys", token=tenant.admin_token).json == keys
    # A node registering now is handed the new key.
    fresh = api.request("POST", "/v1/register", json_body={"token": _token(api, tenant), "hostname": "sk-late"}).json[
        "signing_public_key"
    ]
    assert fresh == keys["current"]

    frames = raw_stream(api, node)
    assert [f["event"] for f in frames] == ["rotate_keys", "signing_key_rotated", "rotate_keys"]
    assert frames[0]["id"] == before and frames[2]["id"] == after
    old_only, new_only = GoVerifier([old_key]), GoVerifier([keys["current"]])
    # Up to and including the rotation event: the old key; after it: the new one only.
    assert old_only.verify(frames[0]["data"])["n"] == "before"
    announced = old_only.verify(frames[1]["data"])
    with pytest.raises(EnvelopeRefused):
        old_only.verify(frames[2]["data"])
    assert new_only.verify(frames[2]["data"])["n"] == "after"
    # The payload speaks both the spec's fields and the agent's api.SigningKeys.
    assert announced["public_key"] == announced["current"] == keys["current"]
    assert announced["previous"] == old_key
    assert announced["valid_from"] == keys["valid_from"]
    assert announced["transition_expires"] == keys["transition_expires"]
    # The secret store holds seeds, the table none of them.
    keyring = json.loads(signing_secret(api))
    assert keyring["previous"] and keyring["current"]
    assert not any(keyring["current"] in json.dumps(item, default=str) for item in api.table_items())


def end_transition(api: Api) -> None:
    """Store the current keyring with its transition already over (as a day later)."""
    keyring = secrets.signing_keyring(fresh=True)
    over = keyring.model_copy(update={"transition_expires": "2000-01-01T00:00:00.000Z", "rotations": keyring.rotations})
    boto3.client("secretsmanager").put_secret_value(
        SecretId=api.stack.refs["SigningKeySecret"], SecretString=over.serialize()
    )
    secrets.clear_cache()


def test_a_rotation_during_the_previous_transition_is_409_and_changes_nothing(api: Api, tenant: Tenant) -> None:
    assert api.request("POST", ROTATE, token=tenant.admin_token).status_code == 200
    stored, items = signing_secret(api), api.table_items()
    assert_problem(api.request("POST", ROTATE, token=tenant.admin_token), 409, "signing_key_rotation_in_progress")
    assert signing_secret(api) == stored and api.table_items() == items
    # Once the transition is over, the next rotation goes through.
    end_transition(api)
    again = api.request("POST", ROTATE, token=tenant.admin_token)
    assert again.status_code == 200, again.text
    from orchestrator.domain.signing import public_key_b64

    assert again.json["previous"] == public_key_b64(json.loads(stored)["current"])


def test_two_rotations_from_the_same_keyring_store_one(
    api: Api, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = secrets.signing_keyring(fresh=True)
    assert api.request("POST", ROTATE, token=tenant.admin_token).status_code == 200
    stored = signing_secret(api)
    # The second rotation read the keyring before the first stored its own.
    monkeypatch.setattr(secrets, "signing_keyring", lambda **_: stale)
    assert_problem(api.request("POST", ROTATE, token=tenant.admin_token), 409, "signing_key_rotation_conflict")
    assert signing_secret(api) == stored


def test_the_previous_key_is_dropped_when_the_transition_expires() -> None:
    from datetime import UTC, datetime

    from orchestrator.domain.signing import Keyring, public_key_b64

    now = datetime(2026, 1, 1, tzinfo=UTC)
    keyring = Keyring.parse("old-seed").rotated("new-seed", "0190", now, timedelta(hours=1))
    assert keyring.public(now).previous == public_key_b64("old-seed")
    assert keyring.seed_for("0189", now) == "old-seed"
    assert keyring.seed_for("0190", now) == "old-seed"
    assert keyring.seed_for("0191", now) == "new-seed"
    later = now + timedelta(hours=1)
    assert keyring.public(later).previous is None and keyring.public(later).transition_expires is None
    assert keyring.seed_for("0189", later) == "new-seed"
    assert Keyring.parse(keyring.serialize()) == keyring


def _token(api: Api, tenant: Tenant) -> str:
    from tests.integration.conftest import mint_enrollment_token

    return mint_enrollment_token(api, tenant)


def test_a_container_with_a_cached_keyring_from_before_the_rotation_serves_the_new_keys(
    api: Api, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plexd replaces its trusted keys with ``state.signing_keys``: a container still caching
    the keyring from before a rotation must not hand out the old key alone."""
    node = register_node(api, tenant, "sk-stale")
    before = signing_secret(api)
    keys = api.request("POST", ROTATE, token=tenant.admin_token).json
    # This container's cache still holds the keyring from before the rotation.
    name = get_settings().signing_key_secret_name
    cached = secrets._secret
    monkeypatch.setattr(secrets, "_secret", lambda asked: before if asked == name else cached(asked))
    assert secrets.signing_keyring().current != json.loads(signing_secret(api))["current"]

    state_keys = api.request("GET", f"/v1/nodes/{node.id}/state", token=node.nsk).json["signing_keys"]
    assert state_keys["current"] == keys["current"]
    assert state_keys["previous"] == keys["previous"]
