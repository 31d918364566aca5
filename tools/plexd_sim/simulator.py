"""A fleet of simulated ``plexd`` agents (SPEC §16): enroll, follow events, answer, report.

Each simulated node speaks the real agent's wire format (seed 003): it
registers with a one-time enrollment token, heartbeats with its node secret
key (NSK), follows ``GET /v1/nodes/{id}/events`` with ``Last-Event-ID``,
verifies every envelope like ``plexd`` (:mod:`plexd_sim.verifier`), and for
each ``action_request`` acks, "runs" the action for a configurable time and
reports a configurable outcome to the event's ``callback_url``.

Threads, not one per node: event streams are read by a small pool
(``stream_concurrency``) that takes nodes in order of when each is next due
(after the server's ``retry:`` hint), so 100 nodes do not mean 100 threads
holding 100 requests open against a server that serves a few at a time.
Acks, results and heartbeats run on a second small pool so a slow stream
never delays a result. Everything observed is recorded and can be read at
any time (:meth:`SimulatedFleet.events`, :meth:`~SimulatedFleet.callbacks`, ...)
or watched live through a ``listener``.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

import httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestrator.events.envelope import rfc3339_go
from plexd_sim import wire
from plexd_sim.mesh import DEFAULT_ENDPOINT_INTERVAL, MESH_EVENTS, MeshAgent, MeshNode, MeshSent, NodeMesh, Peer
from plexd_sim.telemetry import TelemetryAgent, TelemetryOptions, TelemetrySent
from plexd_sim.verifier import EnvelopeRejected, EnvelopeVerifier, VerifiedEvent

Outcome = Literal["success", "failure", "rejected", "silent"]
"""What a node does with an action request: ack and succeed, ack and fail,
refuse it at ack (``rejected``), or never answer (``silent``, to exercise timeouts)."""

CallbackStyle = Literal["plexd", "unified"]
"""``plexd``: ``{callback_url}/ack`` then ``{callback_url}/result`` (the agent's
routes). ``unified``: ``POST {callback_url}`` with ``ack``, ``started``, then
``succeeded``/``failed``."""

OUTCOMES: tuple[Outcome, ...] = ("success", "failure", "rejected", "silent")
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
ERROR_BACKOFF_SECONDS = 2.0
REPORT_BATCH_ITEMS = 100  # POST /report takes at most 100 entries and deleted keys together


class SimulatorError(Exception):
    """The control plane refused something the simulator cannot go on without (e.g. registration)."""


# --- what a node holds -------------------------------------------------------------------------


@dataclass(eq=False)
class SimulatedNode:
    """One registered node. Poll fields are written only by that node's (serialized) stream reads."""

    hostname: str
    node_id: str
    secret_key: str = field(repr=False)
    signing_public_key: str = field(repr=False)
    mesh_ip: str
    labels: dict[str, str]
    verifier: EnvelopeVerifier = field(repr=False)
    registered_at: float = field(default_factory=time.monotonic)
    last_event_id: str | None = None
    polls: int = 0
    last_poll_started: float | None = None
    last_poll_finished: float | None = None
    revoked: bool = False
    report_versions: dict[str, int] = field(default_factory=dict, repr=False)  # the agent's counter per key
    pending_entries: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)  # not yet synced
    pending_deleted: list[str] = field(default_factory=list, repr=False)
    report_sync_scheduled: bool = False
    # What plexd keeps of its state: the policies of its last /state pull (it re-pulls on
    # policy_updated) and the metadata and data entries node_state_updated replaces.
    policies: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    data: list[dict[str, Any]] = field(default_factory=list)
    state_pulls: int = 0
    # The agent's secret index (``secret_refs`` of the last ``node_secrets_updated``) and the
    # values it fetched and decrypted, by key: (version, value).
    secret_index: dict[str, int] = field(default_factory=dict)
    secrets: dict[str, tuple[int, str]] = field(default_factory=dict, repr=False)
    # Its WireGuard side: key pair, public endpoint, peer table (plexd_sim.mesh).
    mesh: NodeMesh = field(default_factory=NodeMesh, repr=False)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret_key}"}


def decrypt_secret(secret_key: str, answer: Mapping[str, Any]) -> str:
    """What plexd's ``DecryptSecret`` does: AES-256-GCM under the base64-decoded 32-byte NSK,
    the answer's 12-byte nonce, no AAD; ciphertext and nonce in standard base64."""
    nonce = base64.b64decode(answer["nonce"], validate=True)
    if len(nonce) != 12:
        raise ValueError("the nonce is not 12 bytes")
    ciphertext = base64.b64decode(answer["ciphertext"], validate=True)
    return AESGCM(base64.b64decode(secret_key)).decrypt(nonce, ciphertext, None).decode()


@dataclass(frozen=True)
class ActionRequest:
    """The ``action_request`` payload (SPEC §11)."""

    event_id: str
    execution_id: str
    node_id: str
    action: str
    type: str
    parameters: dict[str, Any]
    timeout_seconds: float | None
    callback_url: str | None
    triggered_by: dict[str, Any]

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ActionRequest:
        execution_id, node_id, action = payload.get("execution_id"), payload.get("node_id"), payload.get("action")
        if not all(isinstance(value, str) and value for value in (execution_id, node_id, action)):
            raise ValueError("action_request needs execution_id, node_id and action")
        timeout = payload.get("timeout_seconds")
        callback_url = payload.get("callback_url")
        return cls(
            event_id=str(payload.get("event_id", "")),
            execution_id=str(execution_id),
            node_id=str(node_id),
            action=str(action),
            type=str(payload.get("type", "builtin")),
            parameters=dict(payload.get("parameters") or {}),
            timeout_seconds=float(timeout) if isinstance(timeout, int | float) and timeout > 0 else None,
            callback_url=callback_url if isinstance(callback_url, str) and callback_url else None,
            triggered_by=dict(payload.get("triggered_by") or {}),
        )


# --- what the fleet records ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedEvent:
    """A verified event, as the node got it."""

    node_id: str
    hostname: str
    event_id: str
    event_type: str
    issued_at: datetime
    payload: dict[str, Any]
    received_at: datetime


@dataclass(frozen=True)
class VerificationFailure:
    """An event the node dropped: bad envelope, or a verified payload it cannot act on."""

    node_id: str
    hostname: str
    event_id: str | None
    event_type: str | None
    reason: str
    detail: str


@dataclass(frozen=True)
class CallbackResponse:
    """One callback the node sent (after retries) and what came back.

    ``kind`` is ``ack`` or ``result`` (plexd routes) or ``callback`` (unified).
    ``status_code`` is ``None`` when no response arrived (``error`` says why).
    """

    node_id: str
    hostname: str
    execution_id: str
    kind: str
    status: str
    url: str
    status_code: int | None
    code: str | None
    error: str | None
    attempts: int

    @property
    def not_provisioned(self) -> bool:
        return self.status_code == 501


@dataclass(frozen=True)
class HeartbeatSent:
    node_id: str
    hostname: str
    status_code: int | None
    reconcile: bool
    rotate_keys: bool
    error: str | None


@dataclass(frozen=True)
class StateSent:
    """A ``POST /report`` or ``POST /drift`` the node sent, and what came back.

    ``kind`` is ``report`` (``keys``: the entries' keys, ``deleted``: the deleted keys) or
    ``drift`` (``keys``: the corrections' types)."""

    node_id: str
    hostname: str
    kind: Literal["report", "drift"]
    keys: tuple[str, ...]
    deleted: tuple[str, ...]
    status_code: int | None
    code: str | None
    body: dict[str, Any]


@dataclass(frozen=True)
class NodeProblem:
    """Anything else that went wrong for a node: a stream refused, a transport error, a worker bug."""

    node_id: str | None
    hostname: str | None
    where: str
    status_code: int | None
    detail: str


Activity = (
    ReceivedEvent
    | VerificationFailure
    | CallbackResponse
    | HeartbeatSent
    | StateSent
    | MeshSent
    | TelemetrySent
    | NodeProblem
)
Listener = Callable[[Activity], None]
OutcomeRule = Outcome | Callable[[SimulatedNode, ActionRequest], Outcome]
DurationRule = float | Callable[[SimulatedNode, ActionRequest], float]


@dataclass(eq=False)
class _RunningAction:
    node: SimulatedNode
    request: ActionRequest
    outcome: Outcome
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.monotonic)
    done: bool = False


# --- a tiny timed work queue ---------------------------------------------------------------------


class _Scheduler:
    """Runs callables at their due time (monotonic seconds) on a fixed set of threads, earliest first."""

    def __init__(self, name: str, threads: int, on_error: Callable[[BaseException], None]) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cond = threading.Condition()
        self._sequence = itertools.count()
        self._stopping = False
        self._on_error = on_error
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(threads)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def call_at(self, due: float, task: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._sequence), task))
            self._cond.notify()

    def call_soon(self, task: Callable[[], None]) -> None:
        self.call_at(time.monotonic(), task)

    def stop(self, deadline: float) -> bool:
        """Drop what is queued, let running tasks finish; whether every thread exited by ``deadline``."""
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify_all()
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def _next(self) -> Callable[[], None] | None:
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    return heapq.heappop(self._heap)[2]
                self._cond.wait(self._heap[0][0] - now if self._heap else None)
            return None

    def _run(self) -> None:
        while (task := self._next()) is not None:
            try:
                task()
            except Exception as error:  # noqa: BLE001 - a task's bug is recorded; the worker must live on
                self._on_error(error)


# --- the fleet -------------------------------------------------------------------------------------


class SimulatedFleet:
    """Simulated ``plexd`` nodes in one project of a running control plane.

    >>> fleet = SimulatedFleet(server, operator_token, project_id, duration=0.5)
    >>> prod = fleet.enroll(3, labels={"env": "prod"})
    >>> with fleet:  # start() ... stop()
    ...     dispatch(...)
    ...     fleet.wait_until(lambda: len(fleet.action_requests(execution_id)) == 3, timeout=20)

    ``outcome`` and ``duration`` are fixed values or callables deciding per
    node and request. ``reconnect_delay`` overrides the server's ``retry:``
    hint between two stream reads of a node. Each node reports its public endpoint after
    start and every ``endpoint_interval`` seconds (:mod:`plexd_sim.mesh`). With ``telemetry``
    each node also sends metrics, logs and audit batches at the agent's cadence (scaled by
    its ``speed``) on ``telemetry_concurrency`` threads of their own (:mod:`plexd_sim.telemetry`).
    """

    def __init__(
        self,
        server: str,
        operator_token: str,
        project_id: str,
        *,
        outcome: OutcomeRule = "success",
        duration: DurationRule = 1.0,
        heartbeat_interval: float = 30.0,
        stream_concurrency: int = 8,
        callback_concurrency: int = 4,
        callback_style: CallbackStyle = "plexd",
        reconnect_delay: float | None = None,
        result_retries: int = 3,
        report_debounce: float = 5.0,
        request_timeout: float = 30.0,
        endpoint_interval: float = DEFAULT_ENDPOINT_INTERVAL,
        telemetry: TelemetryOptions | None = None,
        telemetry_concurrency: int = 2,
        listener: Listener | None = None,
    ) -> None:
        if stream_concurrency < 1 or callback_concurrency < 1 or telemetry_concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.server = server.rstrip("/")
        self.project_id = project_id
        self._operator = {"Authorization": f"Bearer {operator_token}"}
        self._outcome = outcome
        self._duration = duration
        self._heartbeat_interval = heartbeat_interval
        self._stream_concurrency = stream_concurrency
        self._callback_concurrency = callback_concurrency
        self._callback_style: CallbackStyle = callback_style
        self._reconnect_delay = reconnect_delay
        self._result_retries = result_retries
        self._report_debounce = report_debounce
        self._listener = listener
        limit = stream_concurrency + callback_concurrency + telemetry_concurrency + 8
        self._http = httpx.Client(
            base_url=self.server,
            timeout=request_timeout,
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            headers={"User-Agent": f"plexd-sim/{wire.SIM_VERSION}"},
        )
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._nodes: list[SimulatedNode] = []
        self._hostname_counts: dict[str, int] = {}
        self._actions: dict[tuple[str, str], _RunningAction] = {}
        self._events: list[ReceivedEvent] = []
        self._failures: list[VerificationFailure] = []
        self._callbacks: list[CallbackResponse] = []
        self._heartbeats: list[HeartbeatSent] = []
        self._state_sent: list[StateSent] = []
        self._mesh_sent: list[MeshSent] = []
        self._telemetry_sent: list[TelemetrySent] = []
        self._problems: list[NodeProblem] = []
        self._stopping = threading.Event()
        self._streams: _Scheduler | None = None
        self._workers: _Scheduler | None = None
        self._telemetry_workers: _Scheduler | None = None
        self._telemetry_concurrency = telemetry_concurrency
        self._telemetry = (
            None
            if telemetry is None or not telemetry.kinds
            else TelemetryAgent(
                self._http,
                telemetry,
                record=self._record,
                schedule=lambda delay, task: self._later(self._telemetry_workers, delay, task),
            )
        )
        self._mesh = MeshAgent(
            self._http,
            endpoint_interval=endpoint_interval,
            record=self._record,
            fail=self._fail,
            schedule=lambda delay, task: self._later(self._workers, delay, task),
        )

    # -- lifecycle --

    def __enter__(self) -> SimulatedFleet:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._streams is not None and not self._stopping.is_set()

    def start(self) -> None:
        """Start following every node's events and heartbeating (first heartbeat right away)."""
        if self._streams is not None:
            raise RuntimeError("a fleet starts once")
        self._streams = _Scheduler("plexd-sim-stream", self._stream_concurrency, self._worker_error)
        self._workers = _Scheduler("plexd-sim-callback", self._callback_concurrency, self._worker_error)
        self._streams.start()
        self._workers.start()
        if self._telemetry is not None:
            self._telemetry_workers = _Scheduler("plexd-sim-telemetry", self._telemetry_concurrency, self._worker_error)
            self._telemetry_workers.start()
        for node in self.nodes:
            self._schedule(node)
            if node.pending_entries or node.pending_deleted:
                self._schedule_report_sync(node)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop reading and answering; drops unsent results. Telemetry buffers are flushed
        once more, as the agent does on shutdown (while ``timeout`` lasts). Whether every
        thread exited in ``timeout``."""
        already = self._stopping.is_set()
        self._stopping.set()
        deadline = time.monotonic() + timeout
        schedulers = (self._streams, self._workers, self._telemetry_workers)
        stopped = [scheduler.stop(deadline) for scheduler in schedulers if scheduler is not None]
        if self._telemetry is not None and self._streams is not None and not already:
            self._telemetry.flush_all(deadline)
        with self._changed:
            self._changed.notify_all()
        return all(stopped)

    def close(self) -> None:
        """Stop, then release the HTTP client."""
        self.stop()
        self._http.close()

    # -- enrollment --

    def enroll(
        self,
        count: int,
        *,
        labels: Mapping[str, str] | None = None,
        builtin_actions: Sequence[str | Mapping[str, Any]] = ("restart-agent",),
        hooks: Sequence[str | Mapping[str, Any]] = (),
        hostname_prefix: str | None = None,
        concurrency: int = 1,
    ) -> list[SimulatedNode]:
        """Register ``count`` nodes, each with its own freshly minted enrollment token.

        ``labels`` become the registration ``metadata`` (the node's labels).
        Hostnames are ``{prefix}-001``...; the default prefix is random, so
        repeated runs against one project do not collide. Nodes that
        registered are kept even when another one fails (then
        :class:`SimulatorError` is raised). ``concurrency`` > 1 registers in
        parallel; local mode's moto backend is not safe for concurrent
        ``TransactWriteItems`` (500s), hence the sequential default.
        """
        prefix = hostname_prefix or f"sim-{secrets.token_hex(3)}"
        with self._lock:
            first = self._hostname_counts.get(prefix, 0) + 1
            self._hostname_counts[prefix] = first + count - 1
        hostnames = [f"{prefix}-{number:03d}" for number in range(first, first + count)]
        body = {"metadata": dict(labels or {}), "capabilities": wire.capabilities(builtin_actions, hooks)}
        registered: list[SimulatedNode] = []
        errors: list[SimulatorError] = []
        with ThreadPoolExecutor(max(1, min(count, concurrency)), thread_name_prefix="plexd-sim-enroll") as pool:
            for future in [pool.submit(self._register, hostname, body) for hostname in hostnames]:
                try:
                    registered.append(future.result())
                except SimulatorError as error:
                    errors.append(error)
        with self._lock:
            self._nodes.extend(registered)
        if self.running:
            for node in registered:
                self._schedule(node)
        if errors:
            raise SimulatorError(f"{len(errors)} of {count} registrations failed; first: {errors[0]}")
        return registered

    def deregister_all(self) -> int:
        """``POST /v1/nodes/{id}/deregister`` for every node still registered; how many succeeded."""
        return sum(self.deregister(node.node_id) for node in self.nodes if not node.revoked)

    def deregister(self, node_id: str) -> bool:
        """``POST /v1/nodes/{id}/deregister`` (no body, as plexd's shutdown); whether it was
        taken. The node stops reading, heartbeating and reporting."""
        node = self.node(node_id)
        try:
            response = self._http.post(f"/v1/nodes/{node.node_id}/deregister", headers=node.auth)
        except httpx.HTTPError as error:
            self._record(NodeProblem(node.node_id, node.hostname, "deregister", None, str(error)))
            return False
        if response.status_code != 200:
            self._record(NodeProblem(node.node_id, node.hostname, "deregister", response.status_code, response.text))
            return False
        node.revoked = True
        return True

    def _register(self, hostname: str, body: Mapping[str, Any], attempts: int = 4) -> SimulatedNode:
        """Mint a token and register; on 429/5xx start over with a fresh token (a failed attempt may have used it)."""
        mesh = NodeMesh()
        for attempt in range(1, attempts + 1):
            minted = self._retrying_post(
                f"/v1/projects/{self.project_id}/enrollment-tokens", headers=self._operator, json={}
            )
            if minted.status_code != 201:
                raise SimulatorError(f"enrollment token for {hostname}: {minted.status_code} {_problem_code(minted)}")
            request = {
                "token": minted.json()["token"],
                "hostname": hostname,
                "public_key": mesh.public_key,
                **body,
            }
            response = self._retrying_post("/v1/register", attempts=1, **wire.agent_body(request, {}))
            if response.status_code not in RETRYABLE_STATUSES or attempt == attempts:
                break
            time.sleep(0.25 * 2 ** (attempt - 1))
        if response.status_code != 201:
            retried = " (after a 5xx that may have registered it)" if attempt > 1 else ""
            raise SimulatorError(f"register {hostname}: {response.status_code} {_problem_code(response)}{retried}")
        registered = response.json()
        node = SimulatedNode(
            hostname=hostname,
            node_id=registered["node_id"],
            secret_key=registered["node_secret_key"],
            signing_public_key=registered["signing_public_key"],
            mesh_ip=registered.get("mesh_ip", ""),
            labels=dict(body["metadata"]),
            verifier=EnvelopeVerifier([registered["signing_public_key"]]),
            mesh=mesh,
        )
        self._mesh.load_registration(node, registered.get("peers"))
        return node

    def _retrying_post(self, url: str, *, attempts: int = 4, **kwargs: Any) -> httpx.Response:
        """POST, retrying transport errors and 429/5xx (not 501) with exponential backoff."""
        for attempt in range(1, attempts + 1):
            try:
                response = self._http.post(url, **kwargs)
            except httpx.TransportError as error:
                if attempt == attempts:
                    raise SimulatorError(f"POST {url}: {type(error).__name__}: {error}") from error
                time.sleep(0.25 * 2 ** (attempt - 1))
                continue
            if response.status_code not in RETRYABLE_STATUSES or attempt == attempts:
                return response
            time.sleep(0.25 * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    # -- what happened --

    @property
    def nodes(self) -> list[SimulatedNode]:
        with self._lock:
            return list(self._nodes)

    def node(self, node_id: str) -> SimulatedNode:
        with self._lock:
            return next(node for node in self._nodes if node.node_id == node_id)

    def events(self, node_id: str | None = None, event_type: str | None = None) -> list[ReceivedEvent]:
        """Verified events received, in arrival order."""
        with self._lock:
            return [
                event
                for event in self._events
                if (node_id is None or event.node_id == node_id)
                and (event_type is None or event.event_type == event_type)
            ]

    def action_requests(self, execution_id: str) -> dict[str, list[ReceivedEvent]]:
        """Verified ``action_request`` events for one execution, by node id."""
        by_node: dict[str, list[ReceivedEvent]] = {}
        for event in self.events(event_type="action_request"):
            if event.payload.get("execution_id") == execution_id:
                by_node.setdefault(event.node_id, []).append(event)
        return by_node

    @property
    def verification_failures(self) -> list[VerificationFailure]:
        with self._lock:
            return list(self._failures)

    def callbacks(self, node_id: str | None = None, execution_id: str | None = None) -> list[CallbackResponse]:
        with self._lock:
            return [
                sent
                for sent in self._callbacks
                if (node_id is None or sent.node_id == node_id)
                and (execution_id is None or sent.execution_id == execution_id)
            ]

    @property
    def callbacks_available(self) -> bool | None:
        """``False`` once a callback answered 501 (not provisioned), ``True`` once one got a 2xx, else ``None``."""
        with self._lock:
            if any(sent.not_provisioned for sent in self._callbacks):
                return False
            if any(sent.status_code is not None and sent.status_code < 300 for sent in self._callbacks):
                return True
            return None

    def heartbeats(self, node_id: str | None = None) -> list[HeartbeatSent]:
        with self._lock:
            return [beat for beat in self._heartbeats if node_id is None or beat.node_id == node_id]

    def reports_sent(self, node_id: str | None = None, kind: str | None = None) -> list[StateSent]:
        """The report and drift requests sent (optionally one node's, one kind's)."""
        with self._lock:
            return [
                sent
                for sent in self._state_sent
                if (node_id is None or sent.node_id == node_id) and (kind is None or sent.kind == kind)
            ]

    def peers(self, node_id: str) -> dict[str, Peer]:
        """A node's peer table now, by peer id."""
        return self.node(node_id).mesh.peers()

    def mesh_requests(self, node_id: str | None = None, kind: str | None = None) -> list[MeshSent]:
        """The key rotations (``rotate``) and endpoint reports (``endpoint``) sent."""
        with self._lock:
            return [
                sent
                for sent in self._mesh_sent
                if (node_id is None or sent.node_id == node_id) and (kind is None or sent.kind == kind)
            ]

    def set_endpoint(self, node_id: str, endpoint: str) -> MeshSent:
        """The node's NAT binding moved (as a STUN discovery would find): report it now, and
        from now on at every refresh."""
        node = self.node(node_id)
        node.mesh.endpoint = endpoint
        return self._mesh.report_endpoint(node)

    def telemetry_sent(self, node_id: str | None = None, kind: str | None = None) -> list[TelemetrySent]:
        """The telemetry batches sent (optionally one node's, one kind's), in order."""
        with self._lock:
            return [
                sent
                for sent in self._telemetry_sent
                if (node_id is None or sent.node_id == node_id) and (kind is None or sent.kind == kind)
            ]

    def telemetry_counts(self) -> dict[str, dict[str, Any]]:
        """By kind: batches, records and bytes taken; batches refused (and by status); records
        dropped by full buffers; records still buffered. Empty without telemetry."""
        if self._telemetry is None:
            return {}
        return self._telemetry.counts(self.telemetry_sent())

    def flush_telemetry(self) -> None:
        """Report every node's buffered telemetry now (what was collected so far)."""
        if self._telemetry is not None:
            self._telemetry.flush_all(float("inf"))

    @property
    def problems(self) -> list[NodeProblem]:
        with self._lock:
            return list(self._problems)

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` holds, or ``timeout``.

        The predicate runs without the fleet's lock (it may do I/O) and is
        re-checked on every recorded activity and at least every 0.25 s.
        """
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:
                self._changed.wait(min(remaining, 0.25))
        return True

    def summary(self) -> dict[str, int]:
        with self._lock:
            return {
                "nodes": len(self._nodes),
                "events": len(self._events),
                "action_requests": sum(event.event_type == "action_request" for event in self._events),
                "verification_failures": len(self._failures),
                "callbacks": len(self._callbacks),
                "callbacks_2xx": sum(c.status_code is not None and c.status_code < 300 for c in self._callbacks),
                "callbacks_501": sum(c.not_provisioned for c in self._callbacks),
                "heartbeats": len(self._heartbeats),
                "key_rotations": sum(m.kind == "rotate" and m.status_code == 200 for m in self._mesh_sent),
                "endpoint_reports": sum(m.kind == "endpoint" for m in self._mesh_sent),
                "telemetry_batches": sum(t.accepted for t in self._telemetry_sent),
                "telemetry_records": sum(t.records for t in self._telemetry_sent if t.accepted),
                "telemetry_refused": sum(not t.accepted for t in self._telemetry_sent),
                "problems": len(self._problems),
            }

    def _record(self, activity: Activity) -> None:
        with self._changed:
            match activity:
                case ReceivedEvent():
                    self._events.append(activity)
                case VerificationFailure():
                    self._failures.append(activity)
                case CallbackResponse():
                    self._callbacks.append(activity)
                case HeartbeatSent():
                    self._heartbeats.append(activity)
                case StateSent():
                    self._state_sent.append(activity)
                case MeshSent():
                    self._mesh_sent.append(activity)
                case TelemetrySent():
                    self._telemetry_sent.append(activity)
                case NodeProblem():
                    self._problems.append(activity)
            self._changed.notify_all()
        if self._listener is not None:
            self._listener(activity)

    def _worker_error(self, error: BaseException) -> None:
        self._record(NodeProblem(None, None, "worker", None, f"{type(error).__name__}: {error}"))

    # -- scheduling --

    def _schedule(self, node: SimulatedNode) -> None:
        assert self._streams is not None and self._workers is not None
        self._streams.call_soon(partial(self._read_events, node))
        self._workers.call_soon(partial(self._heartbeat, node))
        self._mesh.start(node)
        if self._telemetry is not None:
            self._telemetry.start(node)

    def _later(self, scheduler: _Scheduler | None, delay: float, task: Callable[[], None]) -> None:
        if scheduler is not None and not self._stopping.is_set():
            scheduler.call_at(time.monotonic() + delay, task)

    # -- the event stream --

    def _read_events(self, node: SimulatedNode) -> None:
        if self._stopping.is_set() or node.revoked:
            return
        node.last_poll_started = time.monotonic()
        try:
            delay = self._stream_once(node)
        except httpx.HTTPError as error:
            self._record(NodeProblem(node.node_id, node.hostname, "events", None, f"{type(error).__name__}: {error}"))
            delay = ERROR_BACKOFF_SECONDS
        finally:
            node.polls += 1
            node.last_poll_finished = time.monotonic()
            with self._changed:
                self._changed.notify_all()
        if not node.revoked:
            self._later(self._streams, delay, partial(self._read_events, node))

    def _stream_once(self, node: SimulatedNode) -> float:
        """One stream read; the delay before the next one."""
        headers = {**node.auth, "Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if node.last_event_id:
            headers["Last-Event-ID"] = node.last_event_id
        parser = wire.SseParser(node.last_event_id)
        with self._http.stream("GET", f"/v1/nodes/{node.node_id}/events", headers=headers) as response:
            if response.status_code != 200:
                response.read()
                return self._stream_refused(node, response)
            for line in response.iter_lines():
                message = parser.feed_line(line)
                if message is not None:
                    self._on_message(node, message)
                # SSE semantics: the id moves on even past a rejected event (a redelivery would be re-signed anyway).
                node.last_event_id = parser.last_event_id
                if self._stopping.is_set():
                    break
        if self._reconnect_delay is not None:
            return self._reconnect_delay
        return parser.retry_ms / 1000 if parser.retry_ms is not None else 1.0

    def _stream_refused(self, node: SimulatedNode, response: httpx.Response) -> float:
        if response.status_code in (401, 403, 404):
            node.revoked = True  # plexd would re-register; a simulated node just stops
        self._record(
            NodeProblem(node.node_id, node.hostname, "events", response.status_code, _problem_code(response) or "")
        )
        return ERROR_BACKOFF_SECONDS

    def _on_message(self, node: SimulatedNode, message: wire.SseMessage) -> None:
        try:
            event = node.verifier.verify(message.data)
        except EnvelopeRejected as rejected:
            self._fail(node, message.id, message.event, rejected.reason, rejected.detail)
            return
        if (message.id, message.event) != (event.event_id, event.event_type):
            detail = f"frame says {message.event}/{message.id}, envelope {event.event_type}/{event.event_id}"
            self._fail(node, message.id, message.event, "frame_mismatch", detail)
            return
        self._record(
            ReceivedEvent(
                node_id=node.node_id,
                hostname=node.hostname,
                event_id=event.event_id,
                event_type=event.event_type,
                issued_at=event.issued_at,
                payload=event.payload,
                received_at=datetime.now(UTC),
            )
        )
        if event.event_type == "action_request":
            self._on_action_request(node, event)
        elif event.event_type == "action_cancel":
            self._on_action_cancel(node, event)
        elif event.event_type == "signing_key_rotated":
            self._on_signing_key_rotated(node, event)
        elif event.event_type == "policy_updated":
            # plexd ignores the payload and reconciles: the rules come from /state.
            self._workers_call_soon(partial(self._pull_state, node))
        elif event.event_type == "node_state_updated":
            # plexd replaces its metadata and data entries with the payload's.
            node.metadata = dict(event.payload.get("metadata") or {})
            node.data = list(event.payload.get("data") or [])
        elif event.event_type == "node_secrets_updated":
            self._on_secrets_updated(node, event)
        elif event.event_type in MESH_EVENTS:
            self._mesh.on_event(node, event.event_id, event.event_type, event.payload)

    # -- secrets --

    def _on_secrets_updated(self, node: SimulatedNode, event: VerifiedEvent) -> None:
        """Replace the secret index with the event's ``secret_refs`` (as plexd does), forget
        values no longer granted, and fetch the ones whose version changed."""
        refs = event.payload.get("secret_refs") or []
        try:
            index = {str(ref["key"]): int(ref["version"]) for ref in refs}
        except (KeyError, TypeError, ValueError) as error:
            self._fail(node, event.event_id, event.event_type, "bad_payload", str(error))
            return
        with self._lock:
            node.secret_index = index
            for key in [k for k in node.secrets if k not in index]:
                del node.secrets[key]
            stale = [k for k, version in index.items() if node.secrets.get(k, (0, ""))[0] != version]
        for key in stale:
            self._workers_call_soon(partial(self._fetch_quietly, node, key))

    def _fetch_quietly(self, node: SimulatedNode, key: str) -> None:
        try:
            self.fetch_secret(node, key)
        except SimulatorError as error:
            self._record(NodeProblem(node.node_id, node.hostname, "secrets", None, str(error)))

    def fetch_secret(self, node: SimulatedNode, key: str) -> str:
        """``GET /v1/nodes/{id}/secrets/{key}`` and decrypt it with the node's NSK; the value is
        kept in ``node.secrets``. Raises :class:`SimulatorError` on a refusal."""
        try:
            response = self._http.get(f"/v1/nodes/{node.node_id}/secrets/{key}", headers=node.auth)
        except httpx.HTTPError as error:
            raise SimulatorError(f"secret {key}: {error}") from error
        if response.status_code != 200:
            raise SimulatorError(f"secret {key}: {response.status_code} {_problem_code(response)}")
        answer = _json_object(response)
        try:
            value = decrypt_secret(node.secret_key, answer)
        except (KeyError, ValueError) as error:
            raise SimulatorError(f"secret {key}: cannot decrypt ({type(error).__name__})") from error
        with self._lock:
            node.secrets[key] = (int(answer["version"]), value)
            self._changed.notify_all()
        return value

    def _fail(self, node: MeshNode, event_id: str | None, event_type: str | None, reason: str, detail: str) -> None:
        self._record(VerificationFailure(node.node_id, node.hostname, event_id, event_type, reason, detail))

    def _workers_call_soon(self, task: Callable[[], None]) -> None:
        self._later(self._workers, 0.0, task)

    # -- running actions --

    def _on_action_request(self, node: SimulatedNode, event: VerifiedEvent) -> None:
        try:
            request = ActionRequest.from_payload(event.payload)
        except ValueError as error:
            self._fail(node, event.event_id, event.event_type, "bad_payload", str(error))
            return
        if request.node_id != node.node_id:
            self._fail(node, event.event_id, event.event_type, "wrong_node", f"addressed to {request.node_id}")
            return
        key = (node.node_id, request.execution_id)
        with self._lock:
            if key in self._actions:
                return  # a redelivery: plexd runs an execution once
            running = _RunningAction(node, request, self._decide(node, request))
            self._actions[key] = running
        if running.outcome != "silent":
            self._workers_call_soon(partial(self._begin, running))

    def _on_action_cancel(self, node: SimulatedNode, event: VerifiedEvent) -> None:
        with self._lock:
            running = self._actions.get((node.node_id, str(event.payload.get("execution_id"))))
        if running is not None and running.outcome != "silent":
            self._workers_call_soon(partial(self._finish, running, "cancelled"))

    def _decide(self, node: SimulatedNode, request: ActionRequest) -> Outcome:
        outcome = self._outcome(node, request) if callable(self._outcome) else self._outcome
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        return outcome

    def _begin(self, running: _RunningAction) -> None:
        """Ack (or reject), then schedule the result after the fake duration (cut at the timeout)."""
        with running.lock:
            if running.done:
                return
            if running.outcome == "rejected":
                running.done = True
                self._send_ack(running, accepted=False)
                return
            self._send_ack(running, accepted=True)
            duration = self._duration(running.node, running.request) if callable(self._duration) else self._duration
            timeout = running.request.timeout_seconds
            if timeout is not None and duration > timeout:
                self._later(self._workers, timeout, partial(self._finish, running, "timeout"))
            else:
                self._later(self._workers, max(0.0, duration), partial(self._finish, running, running.outcome))

    def _finish(self, running: _RunningAction, status: str) -> None:
        with running.lock:
            if running.done:
                return
            running.done = True
            self._send_result(running, status, time.monotonic() - running.started)

    def _send_ack(self, running: _RunningAction, *, accepted: bool) -> None:
        request = running.request
        if self._callback_style == "unified":
            if accepted:
                self._callback(running, "callback", {"status": "ack"})
                self._callback(running, "callback", {"status": "started"})
            else:
                self._callback(running, "callback", {"status": "failed", "error": "rejected by plexd-sim"})
            return
        body = {
            "execution_id": request.execution_id,
            "status": "accepted" if accepted else "rejected",
            "reason": "" if accepted else "rejected by plexd-sim",
        }
        self._callback(running, "ack", body)

    def _send_result(self, running: _RunningAction, status: str, elapsed: float) -> None:
        node, request = running.node, running.request
        succeeded = status == "success"
        stdout = f"{request.action} {'done' if succeeded else status} on {node.hostname} (simulated)\n"
        stderr = "" if succeeded else f"{request.action}: simulated {status}\n"
        exit_code = 0 if succeeded else 1
        if self._callback_style == "unified":
            body: dict[str, Any] = {"status": "succeeded" if succeeded else "failed", "exit_code": exit_code}
            if not succeeded:
                body["error"] = stderr.strip()
            body["output"] = {"inline": base64.b64encode((stdout + stderr).encode()).decode("ascii")}
            self._callback(running, "callback", body, retries=self._result_retries)
            return
        body = {
            "execution_id": request.execution_id,
            "status": status,
            "exit_code": exit_code,
            "stdout": stdout,
            "stderr": stderr,
            "duration": wire.go_duration(elapsed),
            "finished_at": rfc3339_go(datetime.now(UTC)),
            "triggered_by": {"type": "control_plane", "session_id": "", "user_id": "", "email": ""},
        }
        self._callback(running, "result", body, retries=self._result_retries)

    def _callback(self, running: _RunningAction, kind: str, body: dict[str, Any], *, retries: int = 0) -> None:
        """POST one callback, retrying transport errors and 429/5xx (not 501) with exponential backoff."""
        node, request = running.node, running.request
        base = request.callback_url or f"{self.server}/v1/nodes/{node.node_id}/executions/{request.execution_id}"
        url = base if kind == "callback" else f"{base}/{kind}"
        status = str(body.get("status", ""))
        code: str | None = None
        status_code: int | None = None
        problem: str | None = None
        for attempt in range(1, retries + 2):
            try:
                response = self._http.post(url, **wire.agent_body(body, node.auth))
            except httpx.HTTPError as error:
                code, status_code, problem = None, None, f"{type(error).__name__}: {error}"
            else:
                code, status_code, problem = _problem_code(response), response.status_code, None
            retryable = status_code is None or status_code in RETRYABLE_STATUSES
            if not retryable or attempt > retries or self._stopping.wait(0.5 * 2 ** (attempt - 1)):
                break
        self._record(
            CallbackResponse(
                node.node_id,
                node.hostname,
                request.execution_id,
                kind,
                status,
                url,
                status_code,
                code,
                problem,
                attempt,
            )
        )

    # -- heartbeats and keys --

    def _heartbeat(self, node: SimulatedNode) -> None:
        if self._stopping.is_set() or node.revoked:
            return
        body = wire.heartbeat_body(
            node.node_id,
            rfc3339_go(datetime.now(UTC).replace(microsecond=0)),
            time.monotonic() - node.registered_at,
            peer_count=len(node.mesh.peers()),
            nat={"public_endpoint": node.mesh.endpoint, "type": node.mesh.nat_type},
        )
        try:
            response = self._http.post(f"/v1/nodes/{node.node_id}/heartbeat", **wire.agent_body(body, node.auth))
        except httpx.HTTPError as error:
            self._record(HeartbeatSent(node.node_id, node.hostname, None, False, False, str(error)))
        else:
            flags = _json_object(response)
            reconcile, rotate = bool(flags.get("reconcile")), bool(flags.get("rotate_keys"))
            self._record(HeartbeatSent(node.node_id, node.hostname, response.status_code, reconcile, rotate, None))
            if response.status_code == 401:
                node.revoked = True
                return
            if reconcile:
                self._refresh_signing_keys(node)
            if rotate:
                self._mesh.request_rotation(node)
        self._later(self._workers, self._heartbeat_interval, partial(self._heartbeat, node))

    def _on_signing_key_rotated(self, node: SimulatedNode, event: VerifiedEvent) -> None:
        """As plexd: trust the announced ``current`` and ``previous`` keys at once, before the
        next envelope of the same stream (signed with the new key) is verified."""
        keys = [event.payload.get(name) for name in ("current", "previous", "public_key")]
        trusted = list(dict.fromkeys(key for key in keys if isinstance(key, str) and key))
        try:
            node.verifier.set_keys(trusted)
        except ValueError as error:
            self._fail(node, event.event_id, event.event_type, "bad_payload", str(error))

    def _refresh_signing_keys(self, node: SimulatedNode) -> None:
        """Reconcile the trusted keys from ``GET /v1/nodes/{id}/state`` (``signing_keys.current/previous``)
        and the peers (``peers``)."""
        changes = node.mesh.changes
        try:
            response = self._http.get(f"/v1/nodes/{node.node_id}/state", headers=node.auth)
        except httpx.HTTPError as error:
            self._record(NodeProblem(node.node_id, node.hostname, "state", None, str(error)))
            return
        body = _json_object(response)
        keys = body.get("signing_keys") or {}
        trusted = [key for key in (keys.get("current"), keys.get("previous")) if isinstance(key, str) and key]
        if response.status_code != 200 or not trusted:
            self._record(NodeProblem(node.node_id, node.hostname, "state", response.status_code, "no signing keys"))
            return
        corrections = [fix.as_wire() for fix in self._mesh.reconcile(node, body.get("peers"), changes)]
        if sorted(trusted) != sorted(node.verifier.trusted_keys()):
            # e.g. a missed signing_key_rotated: the reconcile corrected it, so the agent reports drift
            detail = f"trusted signing keys replaced from /state ({len(trusted)} key(s))"
            corrections.append({"type": "signing_keys_updated", "detail": detail})
        node.verifier.set_keys(trusted)
        if corrections:
            self._send_drift(node, corrections)

    def _send_drift(self, node: SimulatedNode, corrections: list[dict[str, str]]) -> None:
        body = {"timestamp": rfc3339_go(datetime.now(UTC)), "corrections": corrections}
        self._post_state(node, "drift", body, tuple(c["type"] for c in corrections), ())

    def _post_state(
        self,
        node: SimulatedNode,
        kind: Literal["report", "drift"],
        body: dict[str, Any],
        keys: tuple[str, ...],
        deleted: tuple[str, ...],
    ) -> int | None:
        try:
            response = self._http.post(f"/v1/nodes/{node.node_id}/{kind}", **wire.agent_body(body, node.auth))
        except httpx.HTTPError as error:
            self._record(NodeProblem(node.node_id, node.hostname, kind, None, f"{type(error).__name__}: {error}"))
            self._record(StateSent(node.node_id, node.hostname, kind, keys, deleted, None, None, {}))
            return None
        self._record(
            StateSent(
                node.node_id,
                node.hostname,
                kind,
                keys,
                deleted,
                response.status_code,
                _problem_code(response),
                _json_object(response),
            )
        )
        return response.status_code

    # -- reports --

    def reconcile(self, node_id: str) -> None:
        """Reconcile one node now (``GET /state``), as on a heartbeat's ``reconcile: true``;
        it posts drift when it corrected something."""
        self._refresh_signing_keys(self.node(node_id))

    def set_report(self, node_id: str, key: str, payload: Any, *, content_type: str = "application/json") -> int:
        """Set a report entry on a node, as a local consumer of the agent would: its version
        goes up by one, and the change is synced after the debounce (when the fleet runs;
        :meth:`flush_reports` syncs at once). Returns the entry's new version."""
        node = self.node(node_id)
        with self._lock:
            version = node.report_versions.get(key, 0) + 1
            node.report_versions[key] = version
            node.pending_entries[key] = {
                "key": key,
                "content_type": content_type,
                "payload": payload,
                "version": version,
                "updated_at": rfc3339_go(datetime.now(UTC)),
            }
            if key in node.pending_deleted:
                node.pending_deleted.remove(key)
        self._schedule_report_sync(node)
        return version

    def delete_report(self, node_id: str, key: str) -> None:
        """Delete a report entry (synced like :meth:`set_report`)."""
        node = self.node(node_id)
        with self._lock:
            node.pending_entries.pop(key, None)
            node.report_versions.pop(key, None)
            if key not in node.pending_deleted:
                node.pending_deleted.append(key)
        self._schedule_report_sync(node)

    def flush_reports(self, node_id: str | None = None) -> None:
        """Sync pending report changes now (one node's, or every node's)."""
        for node in [self.node(node_id)] if node_id else self.nodes:
            self._sync_reports(node)

    def _schedule_report_sync(self, node: SimulatedNode) -> None:
        with self._lock:
            if node.report_sync_scheduled or not self.running:
                return
            node.report_sync_scheduled = True
        self._later(self._workers, self._report_debounce, partial(self._sync_reports, node))

    def _sync_reports(self, node: SimulatedNode) -> None:
        """One batch per call of everything pending (at most 100 items, as the server takes)."""
        with self._lock:
            node.report_sync_scheduled = False
            entries = list(node.pending_entries.values())[:REPORT_BATCH_ITEMS]
            deleted = node.pending_deleted[: REPORT_BATCH_ITEMS - len(entries)]
            for entry in entries:
                node.pending_entries.pop(entry["key"], None)
            del node.pending_deleted[: len(deleted)]
            more = bool(node.pending_entries or node.pending_deleted)
        if (not entries and not deleted) or node.revoked:
            return
        # Go's nil slices: an empty list goes out as null
        body = {"entries": entries or None, "deleted": deleted or None}
        status = self._post_state(node, "report", body, tuple(e["key"] for e in entries), tuple(deleted))
        if status is None or status in RETRYABLE_STATUSES:
            with self._lock:  # put back what is not newer, and try again later
                for entry in entries:
                    node.pending_entries.setdefault(entry["key"], entry)
                node.pending_deleted[:0] = [k for k in deleted if k not in node.pending_entries]
            more = True
        if more:
            self._schedule_report_sync(node)

    def _pull_state(self, node: SimulatedNode) -> None:
        """Reconcile from ``GET /v1/nodes/{id}/state``: keep its policies and data entries, correct
        the peers (drift when it did)."""
        changes = node.mesh.changes
        try:
            response = self._http.get(f"/v1/nodes/{node.node_id}/state", headers=node.auth)
        except httpx.HTTPError as error:
            self._record(NodeProblem(node.node_id, node.hostname, "state", None, str(error)))
            return
        body = _json_object(response)
        if response.status_code != 200:
            self._record(NodeProblem(node.node_id, node.hostname, "state", response.status_code, "state refused"))
            return
        node.policies = list(body.get("policies") or [])
        node.data = list(body.get("data") or [])
        node.state_pulls += 1
        corrections = [fix.as_wire() for fix in self._mesh.reconcile(node, body.get("peers"), changes)]
        if corrections:
            self._send_drift(node, corrections)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _problem_code(response: httpx.Response) -> str | None:
    code = _json_object(response).get("code")
    return code if isinstance(code, str) else None
