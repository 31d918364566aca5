"""Against ``make serve``'s event relay (the agents' base URL, a process of its own): streams
are held past the Lambda path's hold and get a dispatch as it happens, Last-Event-ID resumes
without a resend, refusals are the API's Problem+JSON, and everything else an agent sends is
forwarded byte for byte (a whole simulated fleet works through it)."""

from __future__ import annotations

import base64
import gzip
import json
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from orchestrator.events.envelope import verify_envelope
from tests.e2e.conftest import bearer, local_services, problem, project_with_nodes, simulated_fleet

pytestmark = pytest.mark.e2e

AGENT_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-cache", "User-Agent": "plexd/0.9.0"}


@pytest.fixture
def node(local_server: dict[str, Any], http: httpx.Client) -> dict[str, str]:
    hostname = f"relay-{time.monotonic_ns()}"
    admin = bearer(local_server["operator_token"])
    made = project_with_nodes(http, admin, [(hostname, {"env": "relay"}, ["restart-agent"])])
    return {"project_id": made["project_id"], **made["nodes"][0]}


@contextmanager
def held_stream(agent_url: str, node: dict[str, str], last_event_id: str | None = None) -> Iterator[queue.Queue[str]]:
    """Hold the node's stream as the agent does; its lines arrive on the queue as read."""
    lines: queue.Queue[str] = queue.Queue()
    headers = {**AGENT_HEADERS, **bearer(node["nsk"])}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    client = httpx.Client(base_url=agent_url, timeout=httpx.Timeout(30))
    opened = threading.Event()

    def read() -> None:
        try:
            with client.stream("GET", f"/v1/nodes/{node['id']}/events", headers=headers) as response:
                lines.put(f"status {response.status_code} {response.headers.get('content-type')}")
                opened.set()
                for line in response.iter_lines():
                    lines.put(line)
        except httpx.HTTPError:
            lines.put("closed")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert opened.wait(15)
    try:
        yield lines
    finally:
        client.close()


def frames_until(lines: queue.Queue[str], wanted: str, timeout: float) -> list[dict[str, str]]:
    """SSE frames read until one of type ``wanted`` (or the timeout)."""
    frames, fields = [], {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line == "":
            if "event" in fields:
                frames.append(fields)
                if fields["event"] == wanted:
                    return frames
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    return frames


def signing_key(agent_url: str, node: dict[str, str]) -> Ed25519PublicKey:
    state = httpx.get(f"{agent_url}/v1/nodes/{node['id']}/state", headers=bearer(node["nsk"]), timeout=30)
    assert state.status_code == 200, state.text
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(state.json()["signing_keys"]["current"]))


def relay_stats(local_server: dict[str, Any]) -> dict[str, Any]:
    return dict(httpx.get(f"{local_services(local_server)['relay_admin_url']}/stats", timeout=10).json())


def test_a_held_stream_outlives_the_lambda_hold_and_gets_a_dispatch_as_it_happens(
    local_server: dict[str, Any], http: httpx.Client, node: dict[str, str]
) -> None:
    agent_url = local_server["agent_url"]
    assert agent_url != local_server["server"]
    key = signing_key(agent_url, node)
    with held_stream(agent_url, node) as lines:
        assert lines.get(timeout=5) == "status 200 text/event-stream"
        assert lines.get(timeout=5) == ": keep-alive"
        time.sleep(3)  # past the API's own hold (2 s locally): the relay keeps the stream open
        assert "closed" not in list(lines.queue)
        dispatched = http.post(
            f"/v1/projects/{node['project_id']}/executions:dispatch",
            headers=bearer(local_server["operator_token"]),
            json={"action": "restart-agent", "selector": "env=relay"},
        )
        assert dispatched.status_code == 201, dispatched.text
        frames = frames_until(lines, "action_request", timeout=10)
    assert frames and frames[-1]["event"] == "action_request"
    envelope = json.loads(frames[-1]["data"])
    assert verify_envelope(key, frames[-1]["data"])
    assert envelope["event_id"] == frames[-1]["id"]
    assert envelope["payload"]["execution_id"] == dispatched.json()["id"]

    # The agent reconnects with the id it got: nothing is sent again.
    with held_stream(agent_url, node, last_event_id=frames[-1]["id"]) as lines:
        assert frames_until(lines, "action_request", timeout=2) == []
    # An older id (here: none known to the agent, a restart) gets it replayed.
    with held_stream(agent_url, node, last_event_id="00000000-0000-7000-8000-000000000000") as lines:
        replayed = frames_until(lines, "action_request", timeout=10)
    assert [f["id"] for f in replayed][-1] == frames[-1]["id"]


def test_a_refused_stream_is_the_apis_problem(local_server: dict[str, Any], node: dict[str, str]) -> None:
    agent_url = local_server["agent_url"]
    answer = httpx.get(
        f"{agent_url}/v1/nodes/{node['id']}/events", headers={**AGENT_HEADERS, **bearer("not-a-key")}, timeout=10
    )
    body = problem(answer, 401, "nsk_revoked")
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert body["instance"] == f"/v1/nodes/{node['id']}/events"
    direct = httpx.get(
        f"{local_server['server']}/v1/nodes/{node['id']}/events", headers=bearer("not-a-key"), timeout=10
    ).json()
    assert {k: v for k, v in body.items() if k != "correlation_id"} == {
        k: v for k, v in direct.items() if k != "correlation_id"
    }


def test_an_agents_gzip_body_is_forwarded_as_sent(local_server: dict[str, Any], node: dict[str, str]) -> None:
    """plexd gzips bodies over 1 KiB; the relay passes them to the API as they are."""
    padding = {f"extension_{i}": "x" * 64 for i in range(32)}  # unknown fields are ignored
    body = json.dumps({"status": "healthy", "uptime": "1h", **padding}).encode()
    headers = {**bearer(node["nsk"]), "Content-Type": "application/json", "Content-Encoding": "gzip"}
    url = f"/v1/nodes/{node['id']}/heartbeat"
    through = httpx.post(local_server["agent_url"] + url, content=gzip.compress(body), headers=headers, timeout=30)
    direct = httpx.post(local_server["server"] + url, content=gzip.compress(body), headers=headers, timeout=30)
    assert through.status_code == direct.status_code == 200, through.text
    assert through.json().keys() == direct.json().keys()
    assert through.headers["content-type"] == direct.headers["content-type"]


def test_a_simulated_fleet_works_entirely_through_the_relay(local_server: dict[str, Any], http: httpx.Client) -> None:
    admin = bearer(local_server["operator_token"])
    domain = http.post("/v1/domains", headers=admin, json={"name": f"relay-{time.monotonic_ns()}"}).json()
    project = http.post(f"/v1/domains/{domain['id']}/projects", headers=admin, json={"name": "p"}).json()
    before = relay_stats(local_server)
    through_relay = {**local_server, "server": local_server["agent_url"]}
    with simulated_fleet(through_relay, project["id"], stream_concurrency=4, heartbeat_interval=2) as fleet:
        fleet.enroll(3, labels={"env": "relay"}, hostname_prefix=f"relay-fleet-{time.monotonic_ns()}")
        fleet.start()
        dispatched = http.post(
            f"/v1/projects/{project['id']}/executions:dispatch",
            headers=admin,
            json={"action": "restart-agent", "selector": "env=relay"},
        )
        assert dispatched.status_code == 201, dispatched.text
        execution = dispatched.json()["id"]
        assert fleet.wait_until(lambda: len(fleet.action_requests(execution)) == 3, timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = http.get(f"/v1/projects/{project['id']}/executions/{execution}", headers=admin).json()["status"]
            if status == "succeeded":
                break
            time.sleep(0.3)
        assert status == "succeeded"
        assert fleet.verification_failures == []
    after = relay_stats(local_server)
    assert after["event_requests"] >= before["event_requests"] + 3
    assert after["proxied_requests"] > before["proxied_requests"]  # registrations, heartbeats, callbacks
