"""``make serve``: the whole API on http://127.0.0.1:$PORT with local AWS services.

1. start a moto server on a free loopback port (Step Functions executes ASL);
2. create the template's resources in it and export the functions' environment;
3. route moto's Lambda invocations (workflow tasks) to a pool of worker processes, and
   deliver the table's stream to its consumer function there;
4. restore the state the last clean stop saved (``.local/state``), restarting the workflow
   runs of the Executions that had not ended;
5. start the event relay (``python -m orchestrator.relay``, the ECS service's code) as a process
   of its own on the agent port: agents' event streams, everything else forwarded to the API;
6. bootstrap the demo tenant (or keep the restored one) and write ``.local/credentials.json``;
7. serve the template's API events over HTTP until Ctrl-C (or the parent exits), then save
   the state for the next start (see :mod:`orchestrator_local.snapshot`).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from werkzeug.serving import make_server

from orchestrator_local import snapshot
from orchestrator_local.template import ROOT, Template

LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
    # Workers inherit it: Powertools warns on every invocation that published no metric.
    "PYTHONWARNINGS": "ignore:No application metrics to publish:UserWarning",
}


def start_moto() -> tuple[Any, str]:
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ["MOTO_PORT"] = str(port)  # moto's Step Functions calls back into this server
    # Step Functions in moto only runs definitions when asked to (moto's config API).
    httpx.post(
        f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=5
    ).raise_for_status()
    warm_moto(endpoint)
    return moto, endpoint


def warm_moto(endpoint: str) -> None:
    """Have moto build now what it builds on a service's first request: its request router (the
    service's botocore model, loaded and compiled to a URL map) and its Flask app, 0.3-0.5 s of
    this process's CPU. Deploying the template calls every service the stack uses but Lambda,
    which the workflow's first task calls: without this the first dispatch after a start paid
    it between its 201 and its fan-out."""
    import boto3

    boto3.client("lambda", endpoint_url=endpoint).list_functions(MaxItems=1)


CYCLE_COLLECTION_SECONDS = 30.0
FULL_COLLECTION_SECONDS = 600.0
STREAM_POLL_SECONDS = 0.2  # how often the table's stream is delivered to its consumers


def collect_cycles_on_a_timer(
    every: float = CYCLE_COLLECTION_SECONDS, full_every: float = FULL_COLLECTION_SECONDS
) -> threading.Event:
    """Run CPython's cycle collector on a timer instead of by allocation count, in the process
    that hosts moto (set the returned event to stop).

    moto keeps every item as many small Python objects. The collector, triggered by
    allocation counts, re-traverses all of them each time the heap has grown by a quarter:
    about 40% of moto's CPU while a 10,000-node dispatch writes its targets. Every ``every``
    seconds the timer collects the objects made since the last time (generations 0 and 1: a
    few ms); what survives joins the old generation, which only the full collection every
    ``full_every`` seconds walks (~0.5 s at 1,000 nodes: a pause that, every 30 s, often fell
    on a dispatch). Reference counting still frees everything that is not a cycle at once.
    The worker processes (the "Lambda containers") keep the default collector."""
    gc.disable()
    stop = threading.Event()

    def collect() -> None:
        last_full = time.monotonic()
        while not stop.wait(every):
            if time.monotonic() - last_full >= full_every:
                gc.collect()
                last_full = time.monotonic()
            else:
                gc.collect(1)

    threading.Thread(target=collect, name="cycle-collector", daemon=True).start()
    return stop


class LateInvoker:
    """The gateway's invoke, bound once the worker pool exists (the port is bound first,
    because the functions' environment needs the server's URL)."""

    def __init__(self) -> None:
        self.target: Any = None

    def __call__(self, logical_id: str, event: Any) -> Any:
        return self.target(logical_id, event)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("LOCAL_WORKERS", "4")))
    parser.add_argument(
        "--stream-workers",
        type=int,
        default=int(os.environ.get("LOCAL_STREAM_WORKERS", "2")),
        help="workers of their own for held node event streams (they never take a --workers one)",
    )
    parser.add_argument(
        "--agent-port",
        type=int,
        default=int(os.environ.get("AGENT_PORT", "0")),
        help="the event relay's port, the agents' base URL (0: any free port)",
    )
    parser.add_argument("--no-relay", action="store_true", help="no event relay: agents use the API's own stream")
    parser.add_argument(
        "--cold-workers",
        action="store_true",
        default=os.environ.get("LOCAL_COLD_WORKERS", "") not in ("", "0"),
        help="load each handler on its first request (default: every worker loads them once started)",
    )
    parser.add_argument(
        "--event-index-shards", type=int, default=int(os.environ.get("EVENT_INDEX_SHARDS", "2")), help=argparse.SUPPRESS
    )
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".local")
    parser.add_argument(
        "--exit-with-parent", action="store_true", help="stop when the process that started us exits (tests)"
    )
    parser.add_argument("--quiet", action="store_true", help="no access log")
    parser.add_argument(
        "--event-hold-seconds",
        type=float,
        default=float(os.environ.get("EVENT_HOLD_SECONDS", "2")),
        help="how long a node's event stream request waits for a first event",
    )
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "WARNING"))
    parser.add_argument("--fresh", action="store_true", help="start empty: forget the state the last clean stop saved")
    return parser.parse_args(argv)


def write_credentials(state_dir: Path, server_url: str, *, restored: bool, agent_url: str) -> Path:
    """Bootstrap the demo tenant (the previous one, when the state was restored) and write
    its credentials (owner-readable only), with the base URL agents are given."""
    from orchestrator_local.bootstrap import bootstrap

    path = state_dir / "credentials.json"
    previous = json.loads(path.read_text()) if restored and path.exists() else None
    credentials = bootstrap(server_url, previous)
    return write_atomically(path, {**credentials.as_dict(), "agent_url": agent_url})


def restore_state(stack: Any, state: Path, *, fresh: bool) -> int:
    """Load what the last clean stop saved (unless ``fresh``); returns the items restored."""
    if fresh:
        shutil.rmtree(state, ignore_errors=True)
    restored = snapshot.restore(stack, state)
    if restored:
        resumed = resume_live_executions(stack)
        print(f"  restored {restored} items from {state}; resumed {resumed} Executions", flush=True)
    return restored


RELAY_START_SECONDS = 60.0
RELAY_STOP_SECONDS = 10.0


class RelayProcess:
    """The event relay as a process of its own, as an ECS task runs it: the same module, the
    functions' environment, the local gateway as its upstream."""

    def __init__(self, state_dir: Path, upstream: str, port: int) -> None:
        ready = state_dir / "relay.json"
        ready.unlink(missing_ok=True)
        env = {
            **os.environ,
            "RELAY_HOST": "127.0.0.1",
            "RELAY_PORT": str(port),
            "RELAY_ADMIN_PORT": "0",
            "RELAY_UPSTREAM_URL": upstream,
            "RELAY_READY_FILE": str(ready),
            "RELAY_PARENT_PID": str(os.getpid()),
        }
        self.process = subprocess.Popen([sys.executable, "-m", "orchestrator.relay"], env=env)
        deadline = time.monotonic() + RELAY_START_SECONDS
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"the event relay did not start (exit status {self.process.poll()})")
            time.sleep(0.05)
        announced = json.loads(ready.read_text())
        self.url = f"http://127.0.0.1:{announced['port']}"
        self.admin_url = f"http://127.0.0.1:{announced['admin_port']}"

    def stop(self) -> None:
        """SIGTERM (as ECS stops a task): streams end, delivery cursors are stored."""
        self.process.terminate()
        try:
            self.process.wait(timeout=RELAY_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()


def resume_live_executions(stack: Any) -> int:
    """A new workflow run for every restored Execution that had not ended."""
    from orchestrator.services.context import context_for
    from orchestrator.services.workflow_port import StepFunctionsStarter
    from orchestrator_local.snapshot import live_execution_ids

    ctx = context_for("restore")
    starter = StepFunctionsStarter(stack.refs["ExecutionWorkflow"])
    resumed = 0
    for execution_id in live_execution_ids(stack):
        execution = ctx.executions.get(execution_id, consistent=True)
        if execution is not None:
            starter.start(execution)
            resumed += 1
    return resumed


def write_atomically(path: Path, document: dict[str, Any]) -> Path:
    """Owner-readable only, and whole or absent: readers polling for the file never see it half
    written (a rename within one folder is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(json.dumps(document, indent=2) + "\n")
    os.replace(partial, path)
    return path


def stop_event(exit_with_parent: bool) -> threading.Event:
    """Set on SIGINT/SIGTERM, or (tests) when the parent process goes away."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if exit_with_parent:
        parent = os.getppid()

        def watch_parent() -> None:
            while not stop.is_set():
                if os.getppid() != parent:
                    stop.set()
                time.sleep(0.5)

        threading.Thread(target=watch_parent, daemon=True).start()
    return stop


def announce(
    state_dir: Path, stack: Any, endpoint: str, server_url: str, relay: RelayProcess | None, *, restored: bool
) -> tuple[Path, str]:
    """Write ``services.json`` (where the local AWS services and the relay are, for tools and
    tests that look behind the API), then the credentials file, whose appearance tells waiting
    clients the server is ready; returns it and the agents' base URL."""
    agent_url = relay.url if relay else server_url
    write_atomically(
        state_dir / "services.json",
        {
            "pid": os.getpid(),
            "aws_endpoint": endpoint,
            "table": stack.refs["Table"],
            "bucket": stack.refs["OutputBucket"],
            "state_machine": stack.refs["ExecutionWorkflow"],
            "agent_url": agent_url,
            "relay_pid": relay.process.pid if relay else None,
            "relay_admin_url": relay.admin_url if relay else None,
        },
    )
    return write_credentials(state_dir, server_url, restored=restored, agent_url=agent_url), agent_url


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.update(LOCAL_ENV)
    os.environ["POWERTOOLS_LOG_LEVEL"] = args.log_level
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's and ours: the gateway logs access itself
    from orchestrator_local import moto_patches

    moto_patches.install()
    collect_cycles_on_a_timer()
    moto, endpoint = start_moto()
    os.environ["AWS_ENDPOINT_URL"] = endpoint

    from orchestrator_local.bootstrap import ADMIN_SUBJECT
    from orchestrator_local.gateway import Gateway
    from orchestrator_local.resources import deploy
    from orchestrator_local.runtime import install_moto_lambda_router
    from orchestrator_local.scheduler import Scheduler
    from orchestrator_local.streams import StreamPump
    from orchestrator_local.workers import RoutedPools

    template = Template()
    invoker = LateInvoker()
    httpd = make_server("127.0.0.1", args.port, Gateway(invoker, template, access_log=not args.quiet), threaded=True)
    server_url = f"http://127.0.0.1:{httpd.server_port}"
    # The bootstrapped admin administers the local deployment (rotates the signing key).
    stack = deploy(
        template,
        parameters={
            "PublicBaseUrl": server_url,
            "EventStreamHoldSeconds": str(args.event_hold_seconds),
            "EventIndexShards": str(args.event_index_shards),
            "DeploymentAdmins": ADMIN_SUBJECT,
        },
    )
    os.environ.update(stack.environment())
    os.environ.setdefault("EVENT_INDEX_SHARDS", str(args.event_index_shards))
    # After the environment: workers inherit it.
    pool = RoutedPools(args.workers, args.stream_workers, template, warm=not args.cold_workers)
    invoker.target = pool.invoke
    install_moto_lambda_router(pool.invoke, set(template.functions))
    state = args.state_dir / "state"
    restored = restore_state(stack, state, fresh=args.fresh)
    relay = None if args.no_relay else RelayProcess(args.state_dir, server_url, args.agent_port)
    credentials_file, agent_url = announce(args.state_dir, stack, endpoint, server_url, relay, restored=bool(restored))
    stop = stop_event(args.exit_with_parent)

    scheduler = Scheduler(pool.invoke, template.schedules)
    scheduler.start()
    streams = StreamPump(pool.invoke, template.stream_sources, stack.refs, lock=moto_patches.write_lock())
    stop_streams = streams.run_every(STREAM_POLL_SECONDS)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print(
        f"Action Orchestrator serving on {server_url}\n"
        f"  agents' base URL (event relay): {agent_url}\n"
        f"  credentials: {credentials_file}\n"
        f"  AWS services (moto): {endpoint}\n"
        "  Ctrl-C to stop.",
        flush=True,
    )
    # Wake now and then: a signal that another thread received runs its handler only once
    # the main thread runs Python code again.
    while not stop.wait(0.5):
        pass
    print("stopping...", flush=True)
    httpd.shutdown()
    if relay is not None:
        relay.stop()  # before the state is saved: it stores the delivery cursors it holds
    scheduler.stop()
    stop_streams.set()
    streams.pump()  # what the last requests wrote is folded before the state is saved
    saved = snapshot.save(stack, state)
    print(f"  saved {saved} items to {state} (the next start restores them; --fresh starts empty)", flush=True)
    pool.shutdown()
    moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
