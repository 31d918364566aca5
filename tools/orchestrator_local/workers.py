"""A pool of worker processes, each one a warm "Lambda container".

Every worker loads handlers on first use and runs one event at a time, like a Lambda
execution environment; the pool gives the local server real concurrency across requests
and workflow tasks. As Lambda does:

- an invocation that overruns its function's ``Timeout`` is ended: its worker is killed
  and replaced, and the caller gets a ``Sandbox.Timedout`` function error (the gateway
  answers 504, Step Functions sees a failed task);
- a worker that dies mid-invocation (killed, out of memory, a crash in C code) is replaced,
  and the caller gets a ``Runtime.ExitError`` (the gateway answers 500);

so one bad invocation never leaves the pool short of a worker. Workers exit when the
server's process goes away, even when it is killed outright: none outlives it.

A pool can be asked to keep its workers warm (``warm=``, the functions each may run): once a
worker has said it is ready, a thread of its own imports those handlers and creates the AWS
clients, as a Lambda container's init does before its first event, so the first request of
each kind does not pay it (a 1,000-node dispatch was ~0.5 s slower on a cold worker).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from orchestrator_local.runtime import FunctionError, InProcessRuntime
from orchestrator_local.template import Template

PARENT_CHECK_SECONDS = 0.5
TIMEOUT_GRACE_SECONDS = 1.0  # Lambda's clock starts before the handler's; ours is a little generous
HAND_OVER_SECONDS = 10.0  # an idle worker answers at once; one that does not is taken for dead


def _watch_parent(parent_pid: int) -> None:
    """Exit as soon as the server process is gone (its children are re-parented)."""
    while True:
        if os.getppid() != parent_pid:
            os._exit(0)
        time.sleep(PARENT_CHECK_SECONDS)


def _serve(connection: Connection, parent_pid: int, document: dict[str, Any], warm: tuple[str, ...] = ()) -> None:
    """A worker's life: take one event at a time from ``connection``, answer on it (after
    saying it is ready, ``warm``'s handlers are loaded in the background)."""
    # Ctrl-C reaches the whole process group; the server shuts the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()
    runtime = InProcessRuntime(Template(document))
    connection.send(("ready", None))
    if warm:
        threading.Thread(target=runtime.warm, args=(warm,), name="warm-up", daemon=True).start()
    while True:
        try:
            logical_id, event = connection.recv()
            connection.send(("started", None))  # from here on, the event is this worker's
        except (EOFError, OSError):
            return
        try:
            answer: tuple[str, Any] = ("ok", runtime.invoke(logical_id, event))
        except FunctionError as error:
            answer = ("error", error.payload())
        connection.send(answer)


@dataclass(eq=False)  # one per process: compared (and hashed) by identity
class _Worker:
    process: multiprocessing.process.BaseProcess
    connection: Connection
    _ending: threading.Lock = field(default_factory=threading.Lock)
    _ended: bool = False

    def end(self) -> None:
        """Kill the process and close its pipe, once (the pool's shutdown and a replacement
        may both get here)."""
        with self._ending:
            if self._ended:
                return
            self._ended = True
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()


class WorkerPool:
    def __init__(self, workers: int, template: Template | None = None, *, warm: tuple[str, ...] = ()) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._template = template or Template()
        self._warm = warm
        self._timeouts = {name: f.timeout_seconds for name, f in self._template.functions.items()}
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        for worker in [self._spawn() for _ in range(workers)]:
            self._ready(worker)
            self._idle.put(worker)

    def _spawn(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(theirs, os.getpid(), self._template.document, self._warm),
            name="lambda-worker",
            daemon=True,
        )
        process.start()
        theirs.close()
        worker = _Worker(process, ours)
        with self._lock:
            self._all.add(worker)
        return worker

    @staticmethod
    def _ready(worker: _Worker) -> None:
        if not worker.connection.poll(120) or worker.connection.recv() != ("ready", None):
            raise RuntimeError("a worker process did not start")

    def _replace(self, worker: _Worker) -> None:
        """End ``worker`` and put a fresh one in its place (started in the background)."""
        worker.end()
        with self._lock:
            self._all.discard(worker)
            if self._closed:
                return

        def start() -> None:
            fresh = self._spawn()
            try:
                self._ready(fresh)
            except (RuntimeError, EOFError, OSError):
                self._replace(fresh)  # a no-op once the pool is shut down
                return
            self._idle.put(fresh)

        threading.Thread(target=start, name="worker-replace", daemon=True).start()

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Run one event on an idle worker; :class:`FunctionError` as Lambda reports failures.
        A worker found dead before it took the event (killed while idle) is replaced and the
        event goes to another: it never ran, so nothing runs twice."""
        timeout = self._timeouts.get(logical_id, 3) + TIMEOUT_GRACE_SECONDS
        while True:
            worker = self._idle.get()
            if worker.process.is_alive() and self._hand_over(worker, logical_id, event):
                break
            self._replace(worker)
        try:
            if not worker.connection.poll(timeout):
                self._replace(worker)
                raise FunctionError("Sandbox.Timedout", f"Task timed out after {timeout:.2f} seconds")
            status, value = worker.connection.recv()
        except (EOFError, OSError) as exc:
            self._replace(worker)
            raise FunctionError("Runtime.ExitError", "RequestId: local Error: Runtime exited unexpectedly") from exc
        self._idle.put(worker)
        if status == "error":
            raise FunctionError(value["errorType"], value["errorMessage"])
        return value

    @staticmethod
    def _hand_over(worker: _Worker, logical_id: str, event: Any) -> bool:
        """Send the event; True once the worker said it took it."""
        try:
            worker.connection.send((logical_id, event))
            return bool(worker.connection.poll(HAND_OVER_SECONDS) and worker.connection.recv() == ("started", None))
        except (EOFError, OSError):
            return False

    def warm_up(self, logical_id: str, event: Any) -> None:
        self.invoke(logical_id, event)

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._all if w.process.pid is not None]

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.end()


EVENT_STREAM_PATH = "/v1/nodes/{node_id}/events"


class RoutedPools:
    """Two pools: one for the functions that hold a request open (the nodes' event streams),
    one for everything else, so a node holding its stream never makes another request wait
    for a worker."""

    def __init__(self, workers: int, stream_workers: int, template: Template, *, warm: bool = False) -> None:
        self.holding = {r.function for r in template.routes if r.path == EVENT_STREAM_PATH}
        others = tuple(sorted(set(template.functions) - self.holding)) if warm else ()
        self.main = WorkerPool(workers, template, warm=others)
        self.streams = WorkerPool(stream_workers, template, warm=tuple(sorted(self.holding)) if warm else ())

    def invoke(self, logical_id: str, event: Any) -> Any:
        return (self.streams if logical_id in self.holding else self.main).invoke(logical_id, event)

    def shutdown(self) -> None:
        self.main.shutdown()
        self.streams.shutdown()
