"""``python -m plexd_sim``: run a simulated fleet against a control plane until Ctrl-C.

    python -m plexd_sim --nodes 5 --label env=prod --action restart-agent --duration 1 --outcome success

Server, operator token and project come from ``.local/credentials.json``
(what ``make serve`` writes) unless given as flags. One line is printed per
received event, rejected event, callback answer, failed heartbeat and refused
telemetry batch; a summary at the end. Nodes send metrics, logs and audit batches
at the agent's cadence (metrics every 60 s, logs 30 s, audit 15 s; --telemetry-speed 60
makes a minute a second) unless --no-telemetry. Nodes are deregistered on exit unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from plexd_sim.mesh import MeshSent
from plexd_sim.simulator import (
    OUTCOMES,
    ActionRequest,
    Activity,
    CallbackResponse,
    HeartbeatSent,
    NodeProblem,
    Outcome,
    OutcomeRule,
    ReceivedEvent,
    SimulatedFleet,
    SimulatedNode,
    SimulatorError,
    VerificationFailure,
)
from plexd_sim.telemetry import KINDS, Kind, TelemetryOptions, TelemetrySent

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CREDENTIALS = ROOT / ".local" / "credentials.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m plexd_sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    target = parser.add_argument_group("control plane (default: from --credentials)")
    target.add_argument("--credentials", type=Path, default=DEFAULT_CREDENTIALS, help="%(default)s")
    target.add_argument("--server", help="base URL, e.g. http://127.0.0.1:3000")
    target.add_argument("--token", help="operator JWT (admin: it mints enrollment tokens)")
    target.add_argument("--project", help="project id")
    fleet = parser.add_argument_group("fleet")
    fleet.add_argument("--nodes", type=int, default=5, help="how many nodes to register (default %(default)s)")
    fleet.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="node label (repeatable)")
    fleet.add_argument("--action", action="append", default=[], help="declared builtin action (default restart-agent)")
    fleet.add_argument("--hook", action="append", default=[], help="declared hook (repeatable)")
    fleet.add_argument("--hostname-prefix", help="hostnames are PREFIX-001... (default sim-<random>)")
    behaviour = parser.add_argument_group("behaviour")
    behaviour.add_argument("--duration", type=float, default=1.0, help="seconds each action 'runs' (%(default)s)")
    behaviour.add_argument("--outcome", choices=OUTCOMES, default="success", help="(default %(default)s)")
    behaviour.add_argument("--failure-rate", type=float, help="fail this fraction of requests at random instead")
    behaviour.add_argument("--callback-style", choices=("plexd", "unified"), default="plexd")
    behaviour.add_argument("--heartbeat-interval", type=float, default=30.0, help="seconds (%(default)s)")
    behaviour.add_argument(
        "--concurrency", type=int, help="event stream readers (default: one per node, as each agent holds its stream)"
    )
    telemetry = parser.add_argument_group("telemetry")
    telemetry.add_argument("--no-telemetry", action="store_true", help="send no metrics, logs or audit batches")
    telemetry.add_argument(
        "--telemetry-speed", type=float, default=1.0, help="run the agent's intervals this much faster (%(default)s)"
    )
    telemetry.add_argument(
        "--telemetry-kinds", default=",".join(KINDS), help="which kinds to send, comma-separated (%(default)s)"
    )
    telemetry.add_argument(
        "--metric-groups",
        choices=("seed", "agent"),
        default="seed",
        help="seed: node_resources/tunnel_health (seed 003); agent: system/tunnel/latency (shipped collectors)",
    )
    telemetry.add_argument(
        "--respect-retry-after", action="store_true", help="wait out a 429's Retry-After (the agent does not)"
    )
    behaviour.add_argument("--run-for", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    behaviour.add_argument("--keep", action="store_true", help="do not deregister the nodes on exit")
    behaviour.add_argument("--quiet", action="store_true", help="only the summary")
    args = parser.parse_args(argv)
    if args.nodes < 1:
        parser.error("--nodes must be at least 1")
    if args.failure_rate is not None and not 0 <= args.failure_rate <= 1:
        parser.error("--failure-rate must be between 0 and 1")
    if args.telemetry_speed <= 0:
        parser.error("--telemetry-speed must be positive")
    kinds = [kind.strip() for kind in args.telemetry_kinds.split(",") if kind.strip()]
    if not set(kinds) <= set(KINDS):
        parser.error(f"--telemetry-kinds takes {', '.join(KINDS)}")
    args.kinds = tuple(kinds)
    try:
        args.labels = dict(iter_labels(args.label))
    except ValueError as error:
        parser.error(str(error))
    return args


def iter_labels(pairs: Sequence[str]) -> Iterator[tuple[str, str]]:
    """``key=value`` strings as pairs."""
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise ValueError(f"label must be key=value: {pair!r}")
        yield key, value


def connection(args: argparse.Namespace) -> tuple[str, str, str]:
    """Server, operator token, project: flags first, then the credentials file."""
    stored: dict[str, Any] = {}
    if not (args.server and args.token and args.project):
        try:
            stored = json.loads(args.credentials.read_text())
        except (OSError, ValueError) as error:
            raise SystemExit(
                f"plexd-sim: cannot read {args.credentials} ({error}); run `make serve` or pass flags"
            ) from error
    return (
        # Agents' requests go to the agents' base URL (the event relay) when there is one.
        args.server or stored.get("agent_url") or stored["server"],
        args.token or stored["operator_token"],
        args.project or stored["project_id"],
    )


def outcome_rule(args: argparse.Namespace) -> OutcomeRule:
    if args.failure_rate is None:
        outcome: Outcome = args.outcome
        return outcome
    rate: float = args.failure_rate
    chance = random.Random()  # noqa: S311 - a demo's coin, not a secret

    def decide(_node: SimulatedNode, _request: ActionRequest) -> Outcome:
        return "failure" if chance.random() < rate else "success"

    return decide


def telemetry_options(args: argparse.Namespace) -> TelemetryOptions | None:
    if args.no_telemetry:
        return None
    kinds: tuple[Kind, ...] = args.kinds
    return TelemetryOptions(
        speed=args.telemetry_speed,
        kinds=kinds,
        metric_groups=args.metric_groups,
        respect_retry_after=args.respect_retry_after,
    )


def describe(activity: Activity) -> str | None:
    """The line printed for one activity, or ``None`` for routine heartbeats and batches."""
    if isinstance(activity, TelemetrySent):
        return describe_telemetry(activity)
    return describe_node_plane(activity)


def describe_telemetry(sent: TelemetrySent) -> str | None:
    """A refused telemetry batch (which the node keeps for its next report)."""
    if sent.accepted:
        return None
    answer = sent.error or f"{sent.status_code}{f' {sent.code}' if sent.code else ''}"
    if sent.retry_after is not None:
        answer += f" (Retry-After {sent.retry_after} s)"
    return f"{sent.hostname}  {sent.kind} batch of {sent.records} -> {answer}; kept for the next report"


def describe_node_plane(activity: Activity) -> str | None:
    match activity:
        case ReceivedEvent(hostname=host, event_type=kind, event_id=event_id, payload=payload):
            extra = ""
            if "execution_id" in payload:
                extra = f" execution={payload['execution_id']} action={payload.get('action', '')}"
            return f"{host}  event {kind} id={event_id}{extra}"
        case VerificationFailure(hostname=host, event_type=kind, event_id=event_id, reason=reason, detail=detail):
            return f"{host}  REJECTED {kind} id={event_id}: {reason} ({detail})"
        case CallbackResponse(hostname=host, kind=kind, status=status, execution_id=execution_id):
            answer = activity.error or f"{activity.status_code}{f' {activity.code}' if activity.code else ''}"
            if activity.not_provisioned:
                answer += " (callbacks not available)"
            return f"{host}  {kind} {status} execution={execution_id} -> {answer}"
        case HeartbeatSent(hostname=host, status_code=status_code, error=error):
            return None if status_code == 200 else f"{host}  heartbeat -> {error or status_code}"
        case MeshSent(hostname=host, kind="rotate", status_code=status_code, public_key=key, peers=peers):
            answer = activity.error or f"{status_code}{f' {activity.code}' if activity.code else ''}"
            return f"{host}  key rotated to {key} -> {answer} ({peers} peers re-keyed)"
        case MeshSent(hostname=host, kind="endpoint", status_code=status_code, endpoint=endpoint):
            answer = activity.error or f"{status_code}{f' {activity.code}' if activity.code else ''}"
            return None if status_code == 200 else f"{host}  endpoint {endpoint} -> {answer}"
        case NodeProblem(hostname=host, where=where, status_code=status_code, detail=detail):
            return f"{host or '-'}  problem in {where}: {status_code or ''} {detail}".rstrip()
    return None


class Printer:
    """Prints one timestamped line per activity, whole lines even from many threads."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, activity: Activity) -> None:
        line = describe(activity)
        if line is not None:
            self.line(line)

    def line(self, text: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
        with self._lock:
            print(f"{stamp}  {text}", file=self._stream, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    server, token, project = connection(args)
    printer = Printer(sys.stdout)
    fleet = SimulatedFleet(
        server,
        token,
        project,
        outcome=outcome_rule(args),
        duration=args.duration,
        heartbeat_interval=args.heartbeat_interval,
        stream_concurrency=args.concurrency or max(1, args.nodes),
        callback_style=args.callback_style,
        telemetry=telemetry_options(args),
        listener=None if args.quiet else printer,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        try:
            nodes = fleet.enroll(
                args.nodes,
                labels=args.labels,
                builtin_actions=args.action or ["restart-agent"],
                hooks=args.hook,
                hostname_prefix=args.hostname_prefix,
            )
        except SimulatorError as error:
            printer.line(f"enrollment failed: {error}")
            return 1
        for node in nodes:
            printer.line(f"{node.hostname}  registered node_id={node.node_id} mesh_ip={node.mesh_ip}")
        fleet.start()
        printer.line(f"{len(nodes)} nodes following {server}; Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            done.wait(args.run_for)
        printer.line("stopping...")
        fleet.stop()
        if not args.keep:
            printer.line(f"deregistered {fleet.deregister_all()} nodes")
        printer.line("summary " + json.dumps(fleet.summary(), sort_keys=True))
        if fleet.telemetry_counts():
            printer.line("telemetry " + json.dumps(fleet.telemetry_counts(), sort_keys=True))
        return 0
    finally:
        fleet.close()
