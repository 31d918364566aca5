"""The telemetry half of a simulated ``plexd`` (SPEC §19): metrics, logs and audit batches.

What the agent does, read from its sources (``internal/metrics``, ``internal/logfwd``,
``internal/auditfwd``, ``internal/api``):

- Each kind has a collector loop and a report loop: it collects at once, then every
  ``CollectInterval``, and reports every ``ReportInterval`` (metrics 15 s / 60 s, logs
  10 s / 30 s, audit 5 s / 15 s: :data:`AGENT_CADENCE`).
- Collected records go to a buffer of at most ``2 x BatchSize`` records (100 metrics, 200
  log lines, 500 audit records); past it the oldest are dropped.
- A report takes the whole buffer and sends it in chunks of ``BatchSize``
  (``POST /v1/nodes/{id}/metrics|logs|audit``, a JSON array); an empty buffer sends nothing.
- On any error (a transport error, or any non-2xx answer: 429, 5xx, also 400 or 413) the
  chunk and the ones after it go back to the front of the buffer (capacity enforced again) and
  the report stops there: they are sent at the next report tick. The agent keeps a 429's
  ``Retry-After`` (``APIError.RetryAfter``) but its forwarders do not read it: the next tick
  is the retry. The simulator does the same and counts what it was told.
- On shutdown each loop flushes once more.

Records are shaped as the agent's ``api.MetricPoint``, ``api.LogEntry`` and ``api.AuditEntry``
marshal (``time.Time`` as RFC 3339 with nanoseconds, ``data``/``subject``/``object`` raw
JSON). Metric groups follow seed 003 (``node_resources``, and ``tunnel_health`` per peer) by
default, or what the shipped collectors send (``system``, ``tunnel`` and ``latency`` per
peer) with ``metric_groups="agent"``. Log lines are journald entries (priority mapped to the
agent's severities), audit records auditd events as ``AuditdSource`` maps them.

Time runs ``speed`` times faster for tests (intervals divided by it; a record's content, e.g.
how many log lines a collection finds, follows simulated time). Collections are not timers
of their own: a report first runs the collections due by then, each stamped with its own
(wall-clock) time, which is what the agent's two tickers amount to.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import httpx

from plexd_sim import wire
from plexd_sim.mesh import MeshNode

Kind = Literal["metrics", "logs", "audit"]
KINDS: tuple[Kind, ...] = ("metrics", "logs", "audit")
MetricGroups = Literal["seed", "agent"]
BUFFER_BATCHES = 2  # the agent's buffers hold 2 x BatchSize records
STALE_HANDSHAKE_SECONDS = 300  # metrics.DefaultStaleThreshold


@dataclass(frozen=True)
class Cadence:
    """One kind's ``CollectInterval`` and ``ReportInterval`` (seconds) and ``BatchSize``."""

    collect: float
    report: float
    batch_size: int

    def __post_init__(self) -> None:
        if self.collect <= 0 or self.report <= 0 or self.batch_size < 1:
            raise ValueError("intervals must be positive and the batch size at least 1")


AGENT_CADENCE: Mapping[Kind, Cadence] = {
    "metrics": Cadence(15.0, 60.0, 100),
    "logs": Cadence(10.0, 30.0, 200),
    "audit": Cadence(5.0, 15.0, 500),
}


@dataclass(frozen=True)
class TelemetryOptions:
    """What a fleet's nodes send. ``speed`` divides every interval (60: a minute in a second);
    ``cadence`` replaces the agent's for some kinds; ``log_lines_per_second`` and
    ``audit_events_per_second`` are a node's mean rates in simulated seconds.
    ``respect_retry_after`` makes a refused report wait out a 429's ``Retry-After`` (real
    seconds) before the next one, which the agent does not do (off by default)."""

    speed: float = 1.0
    kinds: tuple[Kind, ...] = KINDS
    cadence: Mapping[Kind, Cadence] = field(default_factory=dict)
    metric_groups: MetricGroups = "seed"
    log_lines_per_second: float = 0.5
    audit_events_per_second: float = 0.2
    respect_retry_after: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown telemetry kinds {sorted(unknown)}")
        if self.log_lines_per_second < 0 or self.audit_events_per_second < 0:
            raise ValueError("rates cannot be negative")

    def cadence_of(self, kind: Kind) -> Cadence:
        """The agent's (or overridden) cadence, in simulated seconds."""
        return self.cadence.get(kind, AGENT_CADENCE[kind])

    def real_seconds(self, simulated: float) -> float:
        return simulated / self.speed


# --- the agent's buffer ------------------------------------------------------------------------

Send = Callable[[list[dict[str, Any]]], bool]


class Buffer:
    """One kind's buffer and report, as the agent's ``Manager``/``Forwarder``: ``add`` keeps at
    most ``2 x batch_size`` records (dropping the oldest), ``flush`` sends everything in
    chunks of ``batch_size`` and keeps what was not taken."""

    def __init__(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self.records: list[dict[str, Any]] = []
        self.dropped = 0
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return BUFFER_BATCHES * self.batch_size

    def __len__(self) -> int:
        return len(self.records)

    def add(self, records: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            self.records.extend(records)
            self._enforce_capacity()

    def flush(self, send: Send) -> int:
        """Send the buffer in chunks until one is refused (``send`` returns ``False``); that
        chunk and the rest go back in front of what was collected meanwhile. How many chunks
        were taken."""
        with self._lock:
            batch, self.records = self.records, []
        taken = 0
        while batch:
            chunk = batch[: self.batch_size]
            if not send(chunk):
                with self._lock:
                    self.records = batch + self.records
                    self._enforce_capacity()
                return taken
            taken += 1
            batch = batch[len(chunk) :]
        return taken

    def _enforce_capacity(self) -> None:
        excess = len(self.records) - self.capacity
        if excess > 0:
            self.dropped += excess
            del self.records[:excess]


# --- what a node collects ------------------------------------------------------------------------

JOURNAL = (
    # (unit, journald priority, message template)
    ("plexd", 6, "reconciliation completed, {n} drifts corrected"),
    ("plexd", 6, "heartbeat sent"),
    ("plexd", 7, "metrics batch reported"),
    ("plexd", 4, "peer {peer} handshake is {age}s old"),
    ("sshd", 6, "Accepted publickey for admin from 198.51.100.{octet} port {port} ssh2: ED25519 SHA256:{key}"),
    ("sshd", 5, "Invalid user test from 203.0.113.{octet} port {port}"),
    ("sshd", 6, "pam_unix(sshd:session): session opened for user admin(uid=1000) by (uid=0)"),
    ("systemd", 6, "Started Session {n} of User admin."),
    ("systemd", 6, "logrotate.service: Deactivated successfully."),
    ("cron", 6, "(root) CMD (run-parts /etc/cron.hourly)"),
    ("kernel", 4, "TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies."),
    ("nginx", 3, "upstream timed out (110: Connection timed out) while reading response header from upstream"),
)
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")  # logfwd.mapSeverity

AUDIT_EVENTS = (
    # (type, syscall, uid, comm, exe, object path, success, key)
    ("SYSCALL", "openat", 1000, "cat", "/usr/bin/cat", "/etc/shadow", False, "shadow"),
    ("SYSCALL", "execve", 0, "sudo", "/usr/bin/sudo", "/usr/bin/systemctl", True, "privileged"),
    ("SYSCALL", "connect", 0, "plexd", "/usr/local/bin/plexd", "", True, "network"),
    ("SYSCALL", "unlink", 1000, "rm", "/usr/bin/rm", "/var/log/auth.log", False, "logs"),
    ("USER_LOGIN", "", 1000, "sshd", "/usr/sbin/sshd", "", True, ""),
    ("USER_CMD", "", 1000, "sudo", "/usr/bin/sudo", "", True, ""),
    ("CRED_ACQ", "", 0, "cron", "/usr/sbin/cron", "", True, ""),
)
BASE64_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
SYSCALL_NUMBERS = {"openat": 257, "execve": 59, "connect": 42, "unlink": 87}


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's; means here are small)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class NodeSource:
    """What one node's collectors find at each collection: its resources and tunnels, its
    journal and its audit log, made up but plausible and steady (seeded per node)."""

    def __init__(
        self,
        hostname: str,
        options: TelemetryOptions,
        peers: Callable[[], Sequence[str]] = tuple,
        seed: int | None = None,
    ) -> None:
        self.hostname = hostname
        self.options = options
        self.peers = peers
        self.rng = random.Random(seed)  # noqa: S311 - made-up telemetry, not a secret
        self.memory_total = self.rng.choice((4, 8, 16, 32)) * 1024**3
        self.disk_total = self.rng.choice((40, 80, 160)) * 1024**3
        self.cpu = self.rng.uniform(5, 40)
        self.rx = self.rng.randrange(10**6, 10**9)
        self.tx = self.rng.randrange(10**6, 10**9)
        self.tunnels: dict[str, list[int]] = {}  # peer -> [rx, tx]
        self.audit_serial = self.rng.randrange(1000, 100000)

    def collect(self, kind: Kind, at_ns: int, since_ns: int) -> list[dict[str, Any]]:
        """The records of one collection at ``at_ns`` (Unix ns), the previous one having been
        at ``since_ns`` (log lines and audit events are stamped between the two)."""
        if kind == "metrics":
            return self.metrics(at_ns)
        seconds = (at_ns - since_ns) / 1e9 * self.options.speed  # simulated seconds
        if kind == "logs":
            return self.logs(at_ns, since_ns, poisson(self.rng, self.options.log_lines_per_second * seconds))
        return self.audit(at_ns, since_ns, poisson(self.rng, self.options.audit_events_per_second * seconds))

    # metrics

    def metrics(self, at_ns: int) -> list[dict[str, Any]]:
        stamp = wire.go_time(at_ns)
        self.cpu = min(100.0, max(0.5, self.cpu + self.rng.gauss(0, 4)))
        used = int(self.memory_total * self.rng.uniform(0.3, 0.7))
        self.rx += self.rng.randrange(10**4, 10**7)
        self.tx += self.rng.randrange(10**4, 10**7)
        peers = list(self.peers())
        for peer in peers:
            counters = self.tunnels.setdefault(peer, [0, 0])
            counters[0] += self.rng.randrange(10**3, 10**6)
            counters[1] += self.rng.randrange(10**3, 10**6)
        if self.options.metric_groups == "agent":
            return self._agent_metrics(at_ns, stamp, used, peers)
        points: list[dict[str, Any]] = [
            {
                "timestamp": stamp,
                "group": "node_resources",
                "data": {"cpu_percent": round(self.cpu, 1), "memory_used": used, "memory_total": self.memory_total},
            }
        ]
        for peer in peers:
            rx, tx = self.tunnels[peer]
            points.append(
                {
                    "timestamp": stamp,
                    "group": "tunnel_health",
                    "peer_id": peer,
                    "data": {
                        "handshake_age_seconds": self.rng.randrange(0, 120),
                        "tx_bytes": tx,
                        "rx_bytes": rx,
                        "packet_loss_percent": round(self.rng.choice((0.0, 0.0, 0.0, 0.1, 0.2, 1.5)), 1),
                    },
                }
            )
        return points

    def _agent_metrics(self, at_ns: int, stamp: str, used: int, peers: list[str]) -> list[dict[str, Any]]:
        """``SystemCollector``, ``TunnelCollector`` and ``LatencyCollector`` as shipped."""
        disk_used = int(self.disk_total * self.rng.uniform(0.2, 0.6))
        points: list[dict[str, Any]] = [
            {
                "timestamp": stamp,
                "group": "system",
                "data": {
                    "cpu_usage_percent": round(self.cpu, 2),
                    "memory_used_bytes": used,
                    "memory_total_bytes": self.memory_total,
                    "disk_used_bytes": disk_used,
                    "disk_total_bytes": self.disk_total,
                    "network_rx_bytes": self.rx,
                    "network_tx_bytes": self.tx,
                },
            }
        ]
        for peer in peers:
            rx, tx = self.tunnels[peer]
            age = self.rng.randrange(0, 150)
            points.append(
                {
                    "timestamp": stamp,
                    "group": "tunnel",
                    "peer_id": peer,
                    "data": {
                        "peer_id": peer,
                        "last_handshake_time": wire.go_time(at_ns - age * 1_000_000_000),
                        "rx_bytes": rx,
                        "tx_bytes": tx,
                        "handshake_succeeded": True,
                        "handshake_stale": age > STALE_HANDSHAKE_SECONDS,
                    },
                }
            )
        for peer in peers:
            rtt = self.rng.randrange(200_000, 40_000_000)
            points.append(
                {
                    "timestamp": stamp,
                    "group": "latency",
                    "peer_id": peer,
                    "data": {"peer_id": peer, "rtt_nano": rtt},
                }
            )
        return points

    # logs and audit

    def _moments(self, count: int, at_ns: int, since_ns: int) -> list[int]:
        span = max(1, at_ns - since_ns)
        return sorted(since_ns + 1 + self.rng.randrange(span) for _ in range(count))

    def logs(self, at_ns: int, since_ns: int, count: int) -> list[dict[str, Any]]:
        lines = []
        for moment in self._moments(count, at_ns, since_ns):
            unit, priority, template = self.rng.choice(JOURNAL)
            message = template.format(
                n=self.rng.randrange(0, 4),
                peer=self.rng.choice(list(self.peers()) or ["n_peer456"]),
                age=self.rng.randrange(120, 600),
                octet=self.rng.randrange(1, 255),
                port=self.rng.randrange(1024, 65535),
                key="".join(self.rng.choice(BASE64_DIGITS) for _ in range(43)),
            )
            lines.append(
                {
                    "timestamp": wire.go_time(moment),
                    "source": "journald",
                    "unit": f"{unit}.service" if unit not in ("kernel",) else unit,
                    "message": message,
                    "severity": SEVERITIES[priority],
                    "hostname": self.hostname,
                }
            )
        return lines

    def audit(self, at_ns: int, since_ns: int, count: int) -> list[dict[str, Any]]:
        records = []
        for moment in self._moments(count, at_ns, since_ns):
            kind, syscall, uid, comm, exe, path, success, key = self.rng.choice(AUDIT_EVENTS)
            self.audit_serial += 1
            pid = self.rng.randrange(300, 65000)
            gid = uid
            seconds, nanos = divmod(moment, 1_000_000_000)
            stamp = f"audit({seconds}.{nanos // 1_000_000:03d}:{self.audit_serial})"
            if syscall:
                outcome = "success=yes exit=3" if success else "success=no exit=-13"
                raw = (
                    f"type={kind} msg={stamp}: arch=c000003e syscall={SYSCALL_NUMBERS[syscall]} {outcome}"
                    f" ppid=1 pid={pid} auid={uid} uid={uid} gid={gid} euid={uid} tty=(none) ses=4"
                    f' comm="{comm}" exe="{exe}" key="{key}"'
                )
            else:
                raw = (
                    f"type={kind} msg={stamp}: pid={pid} uid={uid} auid={uid} ses=4"
                    f' msg=\'op=login acct="admin" exe="{exe}" hostname=? addr=198.51.100.7 terminal=ssh'
                    f" res={'success' if success else 'failed'}'"
                )
            records.append(
                {
                    "timestamp": wire.go_time(moment),
                    "source": "auditd",
                    "event_type": kind,
                    "subject": {"uid": uid, "gid": gid, "pid": pid},
                    "object": path,
                    "action": syscall or kind,
                    "result": "success" if success else "failure",
                    "hostname": self.hostname,
                    "raw": raw,
                }
            )
        return records


# --- what the fleet records ----------------------------------------------------------------------


@dataclass(frozen=True)
class TelemetrySent:
    """One telemetry batch a node sent and the answer. ``status_code`` is ``None`` when no
    answer came (``error`` says why); ``retry_after`` is a 429's ``Retry-After`` in seconds."""

    node_id: str
    hostname: str
    kind: Kind
    records: int
    bytes: int
    status_code: int | None
    code: str | None
    retry_after: int | None
    error: str | None

    @property
    def accepted(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(eq=False)
class _Stream:
    """One node's loop of one kind: its buffer, and when its next collection and report are."""

    node: MeshNode
    kind: Kind
    cadence: Cadence
    buffer: Buffer
    next_collect: float  # monotonic
    next_report: float
    last_collect_ns: int
    hold_until: float = 0.0  # monotonic; a 429's Retry-After when respected
    lock: threading.Lock = field(default_factory=threading.Lock)


class TelemetryAgent:
    """The telemetry loops of every node of a fleet. ``record`` gets each
    :class:`TelemetrySent`; ``schedule(delay, task)`` runs a task later (nothing once the
    fleet stops)."""

    def __init__(
        self,
        http: httpx.Client,
        options: TelemetryOptions,
        *,
        record: Callable[[TelemetrySent], None],
        schedule: Callable[[float, Callable[[], None]], None],
    ) -> None:
        self._http = http
        self.options = options
        self._record = record
        self._schedule = schedule
        self._lock = threading.Lock()
        self._streams: list[_Stream] = []
        self._sources: dict[str, NodeSource] = {}
        self._seeds = random.Random(options.seed)  # noqa: S311 - not a secret

    def source(self, node: MeshNode) -> NodeSource:
        with self._lock:
            source = self._sources.get(node.node_id)
            if source is None:
                seed = self._seeds.randrange(2**32)
                source = NodeSource(node.hostname, self.options, lambda: sorted(node.mesh.peers()), seed)
                self._sources[node.node_id] = source
            return source

    def start(self, node: MeshNode) -> None:
        """Start the node's loops: a first collection now, reports every interval."""
        now, wall = time.monotonic(), time.time_ns()
        for kind in self.options.kinds:
            cadence = self.options.cadence_of(kind)
            report = self.options.real_seconds(cadence.report)
            stream = _Stream(node, kind, cadence, Buffer(cadence.batch_size), now, now + report, wall)
            with self._lock:
                self._streams.append(stream)
            self._collect_due(stream, now)
            self._schedule(report, partial(self._tick, stream))

    def _tick(self, stream: _Stream) -> None:
        if stream.node.revoked:
            return
        now = time.monotonic()
        self._collect_due(stream, now)
        self.flush(stream)
        report = self.options.real_seconds(stream.cadence.report)
        # a ticker drops the ticks it could not deliver
        while stream.next_report <= now or stream.next_report < stream.hold_until:
            stream.next_report += report
        self._schedule(stream.next_report - now, partial(self._tick, stream))

    def _collect_due(self, stream: _Stream, now: float) -> None:
        """Run the collections due by ``now`` (monotonic), each stamped with its own time."""
        source = self.source(stream.node)
        interval = self.options.real_seconds(stream.cadence.collect)
        offset_ns = time.time_ns() - int(now * 1e9)  # wall clock = monotonic + offset
        with stream.lock:
            while stream.next_collect <= now:
                at_ns = int(stream.next_collect * 1e9) + offset_ns
                stream.buffer.add(source.collect(stream.kind, at_ns, stream.last_collect_ns))
                stream.last_collect_ns = at_ns
                stream.next_collect += interval

    def flush(self, stream: _Stream) -> int:
        """Report the stream's buffer now (chunks until one is refused)."""

        def send(chunk: list[dict[str, Any]]) -> bool:
            sent = self.send(stream.node, stream.kind, chunk)
            if sent.retry_after is not None and self.options.respect_retry_after:
                stream.hold_until = time.monotonic() + sent.retry_after
            return sent.accepted

        return stream.buffer.flush(send)

    def flush_all(self, deadline: float) -> None:
        """The agent's last flush on shutdown, for every live node, while time is left."""
        for stream in self.streams():
            if time.monotonic() >= deadline:
                return
            if not stream.node.revoked:
                self.flush(stream)

    def streams(self) -> list[_Stream]:
        with self._lock:
            return list(self._streams)

    def send(self, node: MeshNode, kind: Kind, records: list[dict[str, Any]]) -> TelemetrySent:
        """``POST /v1/nodes/{id}/{kind}`` of ``records``, recorded."""
        request = wire.agent_body(records, node.auth)
        size = len(request["content"])
        try:
            response = self._http.post(f"/v1/nodes/{node.node_id}/{kind}", **request)
        except httpx.HTTPError as error:
            problem = f"{type(error).__name__}: {error}"
            sent = TelemetrySent(node.node_id, node.hostname, kind, len(records), size, None, None, None, problem)
        else:
            sent = TelemetrySent(
                node.node_id,
                node.hostname,
                kind,
                len(records),
                size,
                response.status_code,
                _code(response),
                _retry_after(response),
                None,
            )
        self._record(sent)
        return sent

    def counts(self, sent: Sequence[TelemetrySent]) -> dict[str, dict[str, Any]]:
        """By kind: batches and records taken, batches refused (by status; ``error`` for no
        answer), records dropped by full buffers and records still buffered."""
        counts: dict[str, dict[str, Any]] = {}
        for kind in self.options.kinds:
            mine = [s for s in sent if s.kind == kind]
            refused = Counter(str(s.status_code or "error") for s in mine if not s.accepted)
            streams = [s for s in self.streams() if s.kind == kind]
            counts[kind] = {
                "batches": sum(s.accepted for s in mine),
                "records": sum(s.records for s in mine if s.accepted),
                "bytes": sum(s.bytes for s in mine if s.accepted),
                "refused": sum(refused.values()),
                "refused_by_status": dict(refused),
                "dropped": sum(s.buffer.dropped for s in streams),
                "buffered": sum(len(s.buffer) for s in streams),
            }
        return counts


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _retry_after(response: httpx.Response) -> int | None:
    """A 429's ``Retry-After`` in whole seconds (what ``errorFromResponse`` parses)."""
    value = response.headers.get("retry-after", "")
    return int(value) if response.status_code == 429 and value.isascii() and value.isdigit() else None
