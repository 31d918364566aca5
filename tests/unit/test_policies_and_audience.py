"""Policy rules as the agent enforces them, and the audience of a feed event (SPEC §18)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.domain.feed import Audience, FeedEvent
from orchestrator.domain.node_data import DataEntry, encoded_data_size, is_data_key, with_entry, without_key
from orchestrator.domain.policies import Policy, PolicyRule, is_policy_id, rule_problem

NODE = "0190b6a4-1c2d-7e3f-8a4b-5c6d7e8f9a0b"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("src", "dst", "port", "protocol", "problem"),
    [
        ("*", "*", 0, "any", None),
        (NODE, "*", 443, "tcp", None),
        ("*", NODE, 53, "udp", None),
        ("*", "*", 65535, "tcp", None),
        ("10.0.0.0/8", "*", 0, "any", "src must be a node id"),
        ("*", "10.100.0.1", 0, "any", "dst must be a node id"),
        ("*", "web-01", 0, "any", "dst must be a node id"),
        (NODE.upper(), "*", 0, "any", "src must be a node id in canonical form"),
        ("*", "*", -1, "tcp", "port must be 0"),
        ("*", "*", 65536, "tcp", "port must be 0"),
        ("*", "*", 80, "any", "a port needs protocol tcp or udp"),
    ],
)
def test_rule_problem(src: str, dst: str, port: int, protocol: str, problem: str | None) -> None:
    found = rule_problem(src, dst, port, protocol)
    assert (found is None) if problem is None else (found is not None and found.startswith(problem))


@pytest.mark.parametrize(
    ("policy_id", "valid"),
    [("web", True), ("a.b_c-1", True), ("a" * 64, True), ("a" * 65, False), ("-a", False), ("a/b", False), ("", False)],
)
def test_policy_ids_are_bounded_tokens(policy_id: str, valid: bool) -> None:
    assert is_policy_id(policy_id) is valid


def test_any_protocol_is_the_agents_empty_protocol() -> None:
    policy = Policy(
        project_id="p",
        id="x",
        selector="role=web",
        rules=(
            PolicyRule(src="*", dst=NODE, action="deny"),
            PolicyRule(src="*", dst="*", port=22, protocol="tcp", action="allow"),
        ),
        version=1,
        updated_at=NOW,
        updated_by="alice",
    )
    assert policy.for_agent() == {
        "id": "x",
        "rules": [
            {"src": "*", "dst": NODE, "port": 0, "protocol": "", "action": "deny"},
            {"src": "*", "dst": "*", "port": 22, "protocol": "tcp", "action": "allow"},
        ],
    }
    assert policy.concerns({"role": "web"}) and not policy.concerns({"role": "db"})


@pytest.mark.parametrize(
    ("audience", "labels", "concerned"),
    [
        (Audience(selectors=("role=web", "role=db")), {"role": "web"}, True),
        (Audience(selectors=("role=web", "role=db")), {"role": "db"}, True),
        (Audience(selectors=("role=web", "role=db")), {"role": "cache"}, False),
        (Audience(selectors=()), {"role": "web"}, False),
        (Audience(selector="role=web", selectors=("role=db",)), {"role": "web"}, True),
        (Audience(selector="role=web"), {"role": "db"}, False),
        (Audience(node_ids=("n1",), selectors=("role=db",)), {"role": "web"}, True),
        (Audience(), {}, True),
        (Audience(exclude_node="n1", selectors=("role=web",)), {"role": "web"}, False),
    ],
)
def test_audience_selectors_widen_each_other(audience: Audience, labels: dict[str, str], concerned: bool) -> None:
    assert audience.concerns("n1", labels) is concerned


def test_an_event_stored_before_selectors_existed_still_reads() -> None:
    stored = {
        "event_id": "e",
        "event_type": "peer_added",
        "occurred_at": "2026-01-01T00:00:00Z",
        "payload": {},
        "audience": {"exclude_node": "n1", "selector": "env=prod"},
    }
    event = FeedEvent.model_validate(stored)
    assert event.audience.selectors is None
    assert event.audience.concerns("n2", {"env": "prod"}) and not event.audience.concerns("n2", {"env": "dev"})


def test_a_policy_event_round_trips_its_selectors() -> None:
    event = FeedEvent.new("e", "policy_updated", NOW, {}, audience=Audience(selectors=("a=b", "c=d")))
    again = FeedEvent.model_validate(event.model_dump(mode="json", exclude_none=True))
    assert again.audience.selectors == ("a=b", "c=d")


def entry(key: str, payload: object, version: int = 1) -> DataEntry:
    return DataEntry(key=key, content_type="text/plain", payload=payload, version=version, updated_at=NOW)


def test_entries_after_a_write_and_a_delete_stay_in_key_order() -> None:
    entries = [entry("b", 1), entry("d", 2)]
    assert [e.key for e in with_entry(entries, entry("a", 0))] == ["a", "b", "d"]
    assert [e.version for e in with_entry(entries, entry("b", 5, version=2))] == [2, 1]
    assert [e.key for e in without_key(entries, "b")] == ["d"]


def test_data_size_counts_go_escaping() -> None:
    assert encoded_data_size([entry("k", "<" * 100)]) - encoded_data_size([entry("k", "a" * 100)]) == 500


@pytest.mark.parametrize(
    ("key", "valid"), [("config", True), ("a.json", True), ("..", False), (".", False), ("a/b", False), ("-x", False)]
)
def test_data_keys_are_file_name_safe(key: str, valid: bool) -> None:
    assert is_data_key(key) is valid
