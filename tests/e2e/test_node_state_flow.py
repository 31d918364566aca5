"""Policies and node data end to end (SPEC §18): an operator writes them with plexctl, the
simulated agents that they concern (and only those) get the signed event on their stream and
apply it as plexd does (a policy change → re-pull `/state`; `node_state_updated` → replace the
data entries)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from plexd_sim import SimulatedFleet

from tests.e2e.conftest import bearer, simulated_fleet
from tests.e2e.test_plexctl import Plexctl, private_file

pytestmark = pytest.mark.e2e


@pytest.fixture
def fleet(local_server: dict[str, Any]) -> Iterator[SimulatedFleet]:
    with simulated_fleet(
        local_server,
        local_server["project_id"],
        duration=0.2,
        heartbeat_interval=5,
        stream_concurrency=1,
    ) as fleet:
        yield fleet


@pytest.fixture
def plexctl(tmp_path: Path, local_server: dict[str, Any]) -> Plexctl:
    token_file = private_file(tmp_path / "tokens" / "admin", local_server["operator_token"] + "\n")
    return Plexctl(tmp_path, server=local_server["server"], token_file=token_file)


def state_of(local_server: dict[str, Any], node: Any) -> dict[str, Any]:
    response = httpx.get(f"{local_server['server']}/v1/nodes/{node.node_id}/state", headers=node.auth, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_policy_reaches_exactly_the_matching_nodes_and_data_reaches_its_node(
    local_server: dict[str, Any], fleet: SimulatedFleet, plexctl: Plexctl
) -> None:
    # Given two nodes of one tier and one of another, following their streams
    tag = f"t{time.time_ns()}"
    matching = fleet.enroll(2, labels={"tier": f"{tag}-a"}, hostname_prefix=f"pol-{tag}-a")
    other = fleet.enroll(1, labels={"tier": f"{tag}-b"}, hostname_prefix=f"pol-{tag}-b")[0]
    fleet.start()
    assert fleet.wait_until(lambda: all(fleet.heartbeats(n.node_id) for n in fleet.nodes), timeout=15)
    project = local_server["project_id"]

    # When an admin puts a policy for the first tier with plexctl
    rule = f"src=*,dst={matching[0].node_id},port=443,protocol=tcp,action=allow"
    put = plexctl(
        "policy", "put", tag, "--project", project, "--selector", f"tier={tag}-a", "--rule", rule, "-o", "json"
    )
    assert put.code == 0, put
    assert put.json()["version"] == 1

    # Then each matching node gets policy_updated (verified) and pulls the rules from /state
    expected = {
        "id": tag,
        "rules": [{"src": "*", "dst": matching[0].node_id, "port": 443, "protocol": "tcp", "action": "allow"}],
    }

    def applied() -> bool:
        return all(expected in n.policies for n in matching)

    assert fleet.wait_until(applied, timeout=20), fleet.summary()
    for node in matching:
        events = [e for e in fleet.events(node.node_id, "policy_updated") if e.payload["policy_id"] == tag]
        assert [(e.payload["version"], e.payload["deleted"]) for e in events] == [(1, False)]
    assert fleet.verification_failures == []
    # And the other node neither hears of it nor gets it in /state
    time.sleep(1.0)  # its stream has had time to deliver anything addressed to it
    assert [e for e in fleet.events(other.node_id, "policy_updated") if e.payload["policy_id"] == tag] == []
    assert expected not in state_of(local_server, other)["policies"]

    # When an operator sets a data entry for one node with plexctl
    target = matching[1]
    payload = json.dumps({"region": "eu-1", "weights": [1, 2]})
    written = plexctl(
        "node", "data", "set", target.node_id, "config", "--project", project, "--payload", payload, "-o", "json"
    )
    assert written.code == 0, written
    assert written.json()["version"] == 1

    # Then that node receives node_state_updated with every entry and keeps them; /state agrees
    assert fleet.wait_until(lambda: [d["key"] for d in target.data] == ["config"], timeout=20), fleet.summary()
    assert target.data[0]["payload"] == {"region": "eu-1", "weights": [1, 2]}
    assert state_of(local_server, target)["data"] == target.data
    assert fleet.events(matching[0].node_id, "node_state_updated") == []
    listed = plexctl("node", "data", "list", target.node_id, "--project", project, "-o", "json")
    assert [e["key"] for e in listed.json()["items"]] == ["config"]

    # When the entry and the policy are deleted, the nodes drop them too
    assert plexctl("node", "data", "delete", target.node_id, "config", "--project", project).code == 0
    assert fleet.wait_until(lambda: target.data == [], timeout=20)
    assert plexctl("policy", "delete", tag, "--project", project).code == 0
    assert fleet.wait_until(lambda: not any(expected in n.policies for n in matching), timeout=20)
    missing = plexctl("policy", "get", tag, "--project", project)
    assert missing.code != 0
    assert "code: policy_not_found" in missing.stderr
    assert fleet.verification_failures == []


def test_a_malformed_rule_is_refused_before_any_request(plexctl: Plexctl, local_server: dict[str, Any]) -> None:
    result = plexctl(
        "policy", "put", "x", "--project", local_server["project_id"], "--selector", "a=b", "--rule", "src=*,dst"
    )
    assert result.code == 2, result
    headers = bearer(local_server["operator_token"])
    found = httpx.get(f"{local_server['server']}/v1/projects/{local_server['project_id']}/policies/x", headers=headers)
    assert found.status_code == 404
