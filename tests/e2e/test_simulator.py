"""The node simulator (SPEC §16) against the local server, and its plexd-style event verifier (SPEC §11)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from plexd_sim import EnvelopeRejected, EnvelopeVerifier, SimulatedFleet
from plexd_sim.wire import SseParser, go_duration

from orchestrator.events.envelope import Envelope, envelope_json, new_nonce, sign_envelope
from tests.e2e.conftest import bearer, simulated_fleet

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fleet(local_server: dict[str, Any]) -> Iterator[SimulatedFleet]:
    with simulated_fleet(
        local_server,
        local_server["project_id"],
        duration=0.2,
        heartbeat_interval=5,
        stream_concurrency=1,  # the test server runs two workers; leave one for dispatch and the workflow
    ) as fleet:
        yield fleet


def test_selector_dispatch_reaches_exactly_the_matching_simulated_nodes(
    local_server: dict[str, Any], fleet: SimulatedFleet
) -> None:
    # Given three prod nodes and one dev node, all declaring restart-agent, following their streams
    prod = fleet.enroll(3, labels={"env": "prod"}, hostname_prefix=f"simtest-{time.time_ns()}-prod")
    dev = fleet.enroll(1, labels={"env": "dev"}, hostname_prefix=f"simtest-{time.time_ns()}-dev")[0]
    fleet.start()
    assert fleet.wait_until(lambda: all(fleet.heartbeats(node.node_id) for node in fleet.nodes), timeout=10)
    assert all(beat.status_code == 200 for beat in fleet.heartbeats())

    # When an operator dispatches restart-agent to env=prod
    dispatched = httpx.post(
        f"{local_server['server']}/v1/projects/{local_server['project_id']}/executions:dispatch",
        headers=bearer(local_server["operator_token"]),
        json={
            "action": "restart-agent",
            "type": "builtin",
            "selector": "env=prod",
            "parameters": {},
            "timeout_seconds": 60,
        },
        timeout=30,
    )
    assert dispatched.status_code == 201, dispatched.text
    execution_id = dispatched.json()["id"]
    targets = {target["node_id"] for target in dispatched.json()["targets"]}
    assert {node.node_id for node in prod} <= targets
    assert dev.node_id not in targets

    # Then each prod node gets the request once, verified, with its own callback URL
    prod_ids = {node.node_id for node in prod}
    assert fleet.wait_until(lambda: set(fleet.action_requests(execution_id)) >= prod_ids, timeout=20), fleet.summary()
    received_all = time.monotonic()

    # ... and the dev node has read its stream since then without getting it
    def dev_read_since() -> bool:
        started, finished = dev.last_poll_started or 0.0, dev.last_poll_finished or 0.0
        return received_all < started < finished

    assert fleet.wait_until(dev_read_since, timeout=20)  # one reader, ~2 s per empty read: a round is ~8 s
    requests = fleet.action_requests(execution_id)
    assert set(requests) == prod_ids
    for node in prod:
        (event,) = requests[node.node_id]
        assert event.payload["action"] == "restart-agent"
        assert event.payload["node_id"] == node.node_id
        assert event.payload["callback_url"].endswith(f"/v1/nodes/{node.node_id}/executions/{execution_id}")
    assert not fleet.events(dev.node_id, "action_request")
    assert fleet.verification_failures == []

    # The simulator answered every request (ack, then result), and the round trip closed
    def answered() -> bool:
        kinds = {(sent.node_id, sent.kind) for sent in fleet.callbacks(execution_id=execution_id)}
        return all((node_id, kind) in kinds for node_id in prod_ids for kind in ("ack", "result"))

    assert fleet.wait_until(answered, timeout=10), fleet.callbacks(execution_id=execution_id)
    assert fleet.callbacks_available is True
    assert all(sent.status_code == 200 for sent in fleet.callbacks(execution_id=execution_id))

    def prod_targets_succeeded() -> bool:
        execution = httpx.get(
            f"{local_server['server']}/v1/projects/{local_server['project_id']}/executions/{execution_id}",
            headers=bearer(local_server["operator_token"]),
            timeout=30,
        ).json()
        statuses = {target["node_id"]: target["status"] for target in execution["targets"]}
        return all(statuses[node_id] == "succeeded" for node_id in prod_ids)

    assert fleet.wait_until(prod_targets_succeeded, timeout=10)

    # And it stops promptly
    started = time.monotonic()
    assert fleet.stop()
    assert time.monotonic() - started < 3.5


def test_cli_enrolls_follows_and_deregisters(local_server: dict[str, Any]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers/shared/python"), str(ROOT / "tools")])
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "plexd_sim",
            "--credentials",
            str(Path(local_server["state_dir"]) / "credentials.json"),
            "--nodes",
            "2",
            "--label",
            "env=cli",
            "--hostname-prefix",
            f"simcli-{time.time_ns()}",
            "--concurrency",
            "1",
            "--run-for",
            "1",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.count(" registered node_id=") == 2
    assert "deregistered 2 nodes" in completed.stdout
    assert '"verification_failures": 0' in completed.stdout


# --- the verifier on its own ----------------------------------------------------------------------


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_b64(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def signed(key: Ed25519PrivateKey, *, issued_at: datetime, nonce: str | None = None, event_id: str = "e1") -> Envelope:
    return sign_envelope(
        key,
        event_type="action_request",
        event_id=event_id,
        payload={"execution_id": "x1", "action": "restart-agent", "callback_url": "http://a/b?c=1&d=<2>"},
        issued_at=issued_at,
        nonce=nonce or new_nonce(),
    )


def test_verifier_accepts_a_fresh_envelope(signing_key: Ed25519PrivateKey) -> None:
    verifier = EnvelopeVerifier([public_b64(signing_key)])
    event = verifier.verify(envelope_json(signed(signing_key, issued_at=datetime.now(UTC))))
    assert (event.event_type, event.event_id, event.payload["execution_id"]) == ("action_request", "e1", "x1")


def test_verifier_rejects_an_envelope_older_than_five_minutes(signing_key: Ed25519PrivateKey) -> None:
    verifier = EnvelopeVerifier([public_b64(signing_key)])
    stale = signed(signing_key, issued_at=datetime.now(UTC) - timedelta(minutes=5, seconds=1))
    with pytest.raises(EnvelopeRejected) as rejected:
        verifier.verify(envelope_json(stale))
    assert rejected.value.reason == "stale"


def test_verifier_rejects_a_reused_nonce(signing_key: Ed25519PrivateKey) -> None:
    verifier = EnvelopeVerifier([public_b64(signing_key)])
    now = datetime.now(UTC)
    first = signed(signing_key, issued_at=now, nonce="n-1", event_id="e1")
    verifier.verify(envelope_json(first))
    for replay in (first, signed(signing_key, issued_at=now + timedelta(seconds=1), nonce="n-1", event_id="e2")):
        with pytest.raises(EnvelopeRejected) as rejected:
            verifier.verify(envelope_json(replay))
        assert rejected.value.reason == "nonce_reused"


def test_verifier_rejects_tampering_without_using_up_the_nonce(signing_key: Ed25519PrivateKey) -> None:
    verifier = EnvelopeVerifier([public_b64(signing_key)])
    genuine = signed(signing_key, issued_at=datetime.now(UTC), nonce="n-2")
    tampered: Any = {**genuine, "payload": {**genuine["payload"], "action": "wipe-disk"}}
    other_key = signed(Ed25519PrivateKey.generate(), issued_at=datetime.now(UTC), nonce="n-2")
    for forged in (tampered, other_key):
        with pytest.raises(EnvelopeRejected) as rejected:
            verifier.verify(envelope_json(forged))
        assert rejected.value.reason == "bad_signature"
    with pytest.raises(EnvelopeRejected) as malformed:
        verifier.verify("{not json")
    assert malformed.value.reason == "malformed"
    assert verifier.verify(envelope_json(genuine)).nonce == "n-2"


def test_sse_parser_and_go_durations() -> None:
    parser = SseParser()
    lines = ["id: 1", "event: action_request", "data: {}", "", ": comment", "retry: 1000", ""]
    messages = [message for line in lines if (message := parser.feed_line(line)) is not None]
    assert [(m.id, m.event, m.data) for m in messages] == [("1", "action_request", "{}")]
    assert (parser.last_event_id, parser.retry_ms) == ("1", 1000)
    assert [go_duration(s) for s in (0, 0.5, 2.34, 90, 3600)] == ["0s", "500ms", "2.34s", "1m30s", "1h0m0s"]
