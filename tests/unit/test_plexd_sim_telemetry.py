"""The simulated agent's telemetry (tools/plexd_sim/telemetry.py) without a server: its
cadence, its buffer and chunks, what it does with a refusal, and the bytes it sends (checked
by the ingestion's own record models)."""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from plexd_sim.mesh import NodeMesh, Peer
from plexd_sim.telemetry import (
    AGENT_CADENCE,
    Buffer,
    Cadence,
    Kind,
    NodeSource,
    TelemetryAgent,
    TelemetryOptions,
    TelemetrySent,
)
from plexd_sim.wire import go_float, go_json, go_time

from orchestrator.domain.telemetry import GO_TIME, records_of
from orchestrator.domain.telemetry import Kind as ServerKind

START = 1_000.0
WALL_NS = 1_736_937_000_123_456_789  # 2025-01-15T10:30:00.123456789Z


class Clock:
    """``time`` for the telemetry module: monotonic seconds and a wall clock that move together."""

    def __init__(self) -> None:
        self.now = START

    def monotonic(self) -> float:
        return self.now

    def time_ns(self) -> int:
        return WALL_NS + round((self.now - START) * 1e9)


@dataclass(eq=False)
class Node:
    node_id: str = "n-1"
    hostname: str = "web-01"
    revoked: bool = False
    mesh: NodeMesh = field(default_factory=NodeMesh)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": "Bearer nsk"}


@dataclass
class Harness:
    """An agent whose requests are answered by ``answer`` and whose timers wait for ``advance``."""

    clock: Clock
    agent: TelemetryAgent
    requests: list[httpx.Request]
    sent: list[TelemetrySent]
    timers: list[tuple[float, Callable[[], None]]]

    def advance(self, seconds: float) -> None:
        """Move the clock, running each timer when it is due, in order."""
        target = self.clock.now + seconds
        while True:
            due = sorted((t for t in self.timers if t[0] <= target), key=lambda t: t[0])
            if not due:
                break
            when, task = due[0]
            self.timers.remove(due[0])
            self.clock.now = when
            task()
        self.clock.now = target

    def batches(self, kind: str) -> list[list[dict[str, Any]]]:
        return [body_of(r) for r in self.requests if r.url.path.endswith(f"/{kind}")]


def body_of(request: httpx.Request) -> list[dict[str, Any]]:
    content = request.content
    if request.headers.get("content-encoding") == "gzip":
        content = gzip.decompress(content)
    value: list[dict[str, Any]] = json.loads(content)
    return value


def harness(
    monkeypatch: pytest.MonkeyPatch,
    options: TelemetryOptions,
    answer: Callable[[httpx.Request], httpx.Response] | None = None,
) -> Harness:
    clock = Clock()
    monkeypatch.setattr("plexd_sim.telemetry.time", clock)
    requests: list[httpx.Request] = []
    sent: list[TelemetrySent] = []
    timers: list[tuple[float, Callable[[], None]]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return answer(request) if answer else httpx.Response(202, json={"records": len(body_of(request))})

    http = httpx.Client(base_url="http://cp.test", transport=httpx.MockTransport(handle))
    agent = TelemetryAgent(
        http, options, record=sent.append, schedule=lambda delay, task: timers.append((clock.now + delay, task))
    )
    return Harness(clock, agent, requests, sent, timers)


def records(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"n": n} for n in range(start, start + count)]


# The buffer ----------------------------------------------------------------------------------------
def test_a_report_sends_the_buffer_in_chunks_of_the_batch_size_in_order() -> None:
    buffer, chunks = Buffer(batch_size=100), []
    buffer.add(records(150))
    buffer.add(records(30, start=150))

    taken = buffer.flush(lambda chunk: chunks.append(chunk) or True)

    assert taken == 2 and [len(c) for c in chunks] == [100, 80]
    assert [r["n"] for c in chunks for r in c] == list(range(180))
    assert len(buffer) == 0


def test_an_empty_buffer_sends_nothing() -> None:
    calls: list[Any] = []
    assert Buffer(10).flush(lambda chunk: calls.append(chunk) or True) == 0
    assert calls == []


def test_a_refused_chunk_and_the_ones_after_it_stay_in_front_of_newer_records() -> None:
    buffer = Buffer(batch_size=10)
    buffer.add(records(15))
    answers = iter([True, False])

    taken = buffer.flush(lambda chunk: next(answers))
    buffer.add(records(2, start=100))

    assert taken == 1
    assert [r["n"] for r in buffer.records] == [10, 11, 12, 13, 14, 100, 101]


def test_the_buffer_keeps_two_batches_and_drops_the_oldest() -> None:
    buffer = Buffer(batch_size=10)
    buffer.add(records(25))
    assert [r["n"] for r in buffer.records] == list(range(5, 25))
    assert buffer.dropped == 5

    buffer.flush(lambda chunk: False)  # refused: put back, still capped
    buffer.add(records(3, start=25))
    assert [r["n"] for r in buffer.records] == list(range(8, 28))
    assert buffer.dropped == 8


# The cadence ---------------------------------------------------------------------------------------
def test_each_kind_reports_at_the_agents_interval_scaled_by_the_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(monkeypatch, TelemetryOptions(speed=60))
    h.agent.start(Node())
    # audit every 15 s, logs 30 s, metrics 60 s: a minute in a second
    assert sorted(round(when - START, 6) for when, _ in h.timers) == [0.25, 0.5, 1.0]
    assert {
        "metrics": Cadence(15, 60, 100),
        "logs": Cadence(10, 30, 200),
        "audit": Cadence(5, 15, 500),
    } == AGENT_CADENCE


def test_a_metrics_report_carries_every_collection_since_the_last_stamped_with_its_own_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = harness(monkeypatch, TelemetryOptions(kinds=("metrics",)))
    h.agent.start(Node())

    h.advance(60)  # collections at 0, 15, 30, 45 and 60 s, then the report

    [batch] = h.batches("metrics")
    assert [p["group"] for p in batch] == ["node_resources"] * 5
    assert [p["timestamp"] for p in batch] == [go_time(WALL_NS + s * 1_000_000_000) for s in (0, 15, 30, 45, 60)]
    h.advance(120)
    assert [len(b) for b in h.batches("metrics")] == [5, 4, 4]


def test_a_tunnel_point_per_peer_with_the_peer_id(monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node()
    key = base64.b64encode(bytes(32)).decode()
    node.mesh.load([Peer(f"n-peer{i}", key, f"10.100.0.{i}", "", (), key) for i in (2, 3)])
    h = harness(monkeypatch, TelemetryOptions(kinds=("metrics",)))
    h.agent.start(node)
    h.advance(60)
    [batch] = h.batches("metrics")
    tunnels = [p for p in batch if p["group"] == "tunnel_health"]
    assert len(tunnels) == 10 and {p["peer_id"] for p in tunnels} == {"n-peer2", "n-peer3"}
    assert set(tunnels[0]["data"]) == {"handshake_age_seconds", "tx_bytes", "rx_bytes", "packet_loss_percent"}


def test_empty_batches_are_not_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    options = TelemetryOptions(kinds=("logs", "audit"), log_lines_per_second=0, audit_events_per_second=0)
    h = harness(monkeypatch, options)
    h.agent.start(Node())
    h.advance(300)
    assert h.requests == []


def test_a_backlog_larger_than_a_batch_goes_out_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # 40 audit events a second for 15 s: ~600 records, more than one batch of 500
    h = harness(monkeypatch, TelemetryOptions(kinds=("audit",), audit_events_per_second=40, seed=1))
    h.agent.start(Node())
    h.advance(15)
    sizes = [len(b) for b in h.batches("audit")]
    assert len(sizes) == 2 and sizes[0] == 500 and 0 < sizes[1] <= 500


# Refusals ------------------------------------------------------------------------------------------
def test_a_429_keeps_the_batch_for_the_next_report_without_waiting_out_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "42"}, json={"code": "per_node_rate_limited"})])

    def answer(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(202, json={}))

    h = harness(monkeypatch, TelemetryOptions(kinds=("metrics",)), answer)
    h.agent.start(Node())
    h.advance(60)
    h.advance(60)  # the agent's next tick: 18 s before Retry-After ends, it sends anyway

    first, second = h.batches("metrics")
    assert len(first) == 5 and second[:5] == first and len(second) == 9
    refused, taken = h.sent
    assert (refused.status_code, refused.code, refused.retry_after, refused.accepted) == (
        429,
        "per_node_rate_limited",
        42,
        False,
    )
    assert taken.accepted and taken.records == 9
    counts = h.agent.counts(h.sent)["metrics"]
    assert (counts["batches"], counts["records"], counts["refused"], counts["refused_by_status"]) == (
        1,
        9,
        1,
        {"429": 1},
    )


def test_with_respect_retry_after_the_next_report_waits_it_out(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "90"})])

    def answer(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(202, json={}))

    h = harness(monkeypatch, TelemetryOptions(kinds=("metrics",), respect_retry_after=True), answer)
    h.agent.start(Node())
    h.advance(60)
    h.advance(60)
    assert len(h.requests) == 1  # the tick at 120 s is inside Retry-After
    h.advance(60)
    assert len(h.requests) == 2 and len(h.batches("metrics")[1]) == 13


def test_a_5xx_or_a_transport_error_keeps_the_batch_too(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = iter(["503", "error"])

    def answer(request: httpx.Request) -> httpx.Response:
        step = next(calls, "ok")
        if step == "error":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(503 if step == "503" else 202, json={})

    h = harness(monkeypatch, TelemetryOptions(kinds=("audit",), audit_events_per_second=2, seed=3), answer)
    h.agent.start(Node())
    h.advance(45)
    assert [s.status_code for s in h.sent] == [503, None, 202]
    assert h.sent[1].error and "ConnectError" in h.sent[1].error
    assert h.batches("audit")[2][: h.sent[0].records] == h.batches("audit")[0]


def test_a_revoked_node_stops_reporting(monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node()
    h = harness(monkeypatch, TelemetryOptions(kinds=("metrics",)))
    h.agent.start(node)
    node.revoked = True
    h.advance(600)
    assert h.requests == []


# The bytes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("groups", ["seed", "agent"])
def test_every_batch_is_what_the_ingestion_takes_as_the_agent_sends_it(
    monkeypatch: pytest.MonkeyPatch, groups: str
) -> None:
    node = Node()
    key = base64.b64encode(bytes(32)).decode()
    node.mesh.load([Peer("n-peer2", key, "10.100.0.2", "", (), key)])
    options = TelemetryOptions(metric_groups=groups, log_lines_per_second=3, audit_events_per_second=3, seed=7)  # type: ignore[arg-type]
    h = harness(monkeypatch, options)
    h.agent.start(node)
    h.advance(60)

    kinds = {r.url.path.rsplit("/", 1)[1] for r in h.requests}
    assert kinds == {"metrics", "logs", "audit"}
    for request in h.requests:
        assert request.method == "POST" and request.url.path.startswith("/v1/nodes/n-1/")
        assert request.headers["content-type"] == "application/json"
        assert request.headers["accept-encoding"] == "gzip"
        assert request.headers["authorization"] == "Bearer nsk"
        raw = gzip.decompress(request.content) if "content-encoding" in request.headers else request.content
        assert (request.headers.get("content-encoding") == "gzip") == (len(raw) > 1024)
        assert raw == go_json(json.loads(raw))  # Go's marshalling, byte for byte
        kind = ServerKind(request.url.path.rsplit("/", 1)[1])
        checked = records_of(kind, raw, request.headers["content-type"])
        assert checked and all(re.match(GO_TIME, r["timestamp"]) for r in checked)
    groups_sent = {p["group"] for b in h.batches("metrics") for p in b}
    assert groups_sent == ({"node_resources", "tunnel_health"} if groups == "seed" else {"system", "tunnel", "latency"})
    log = h.batches("logs")[0][0]
    assert list(log) == ["timestamp", "source", "unit", "message", "severity", "hostname"]
    assert log["source"] == "journald" and log["hostname"] == "web-01"
    audit = h.batches("audit")[0][0]
    assert list(audit) == [
        "timestamp",
        "source",
        "event_type",
        "subject",
        "object",
        "action",
        "result",
        "hostname",
        "raw",
    ]
    assert set(audit["subject"]) == {"uid", "gid", "pid"} and isinstance(audit["object"], str)
    assert audit["raw"].startswith(f"type={audit['event_type']} msg=audit(")


def test_log_lines_and_audit_events_fall_between_two_collections() -> None:
    source = NodeSource("web-01", TelemetryOptions(log_lines_per_second=50), seed=1)
    since, at = WALL_NS, WALL_NS + 10_000_000_000
    lines = source.collect("logs", at, since)
    assert 400 < len(lines) < 600
    moments = [line["timestamp"] for line in lines]
    assert moments == sorted(moments)
    assert go_time(since) < moments[0] and moments[-1] <= go_time(at)


@pytest.mark.parametrize(
    ("number", "text"),
    [(100.0, "100"), (23.5, "23.5"), (0.1, "0.1"), (1e-7, "1e-7"), (1e21, "1e+21"), (1e20, "100000000000000000000")],
)
def test_floats_are_written_as_go_writes_them(number: float, text: str) -> None:
    assert go_float(number) == text


def test_go_json_escapes_html_and_keeps_field_order() -> None:
    assert go_json({"b": "<a&b>", "a": [1, 2.0, None, True]}) == b'{"b":"\\u003ca\\u0026b\\u003e","a":[1,2,null,true]}'


@pytest.mark.parametrize(
    ("nanos", "text"),
    [(WALL_NS, "2025-01-15T10:30:00.123456789Z"), (1_736_937_000 * 10**9, "2025-01-15T10:30:00Z")],
)
def test_times_are_rfc3339_nano_as_go_marshals_them(nanos: int, text: str) -> None:
    assert go_time(nanos) == text


def test_options_refuse_an_unknown_kind_or_a_non_positive_speed() -> None:
    bad_kind: Any = ("metrics", "traces")
    with pytest.raises(ValueError):
        TelemetryOptions(kinds=bad_kind)
    with pytest.raises(ValueError):
        TelemetryOptions(speed=0)
    kind: Kind = "metrics"
    assert TelemetryOptions(cadence={kind: Cadence(1, 2, 3)}).cadence_of(kind) == Cadence(1, 2, 3)
