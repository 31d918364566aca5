"""Local mode's worker pool behaves as Lambda does when an invocation goes wrong: a timeout
ends it, a crash is reported, the pool keeps its size, and no worker outlives the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator_local.runtime import FunctionError
from orchestrator_local.template import Template
from orchestrator_local.workers import WorkerPool

ROOT = Path(__file__).resolve().parents[2]
HANDLER = """
import os, signal, time

def lambda_handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("die"):
        os.kill(os.getpid(), signal.SIGKILL)
    return {"pid": os.getpid(), "remaining_ms": context.get_remaining_time_in_millis()}
"""


def template_of(tmp_path: Path) -> Template:
    code = tmp_path / "fn"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(textwrap.dedent(HANDLER))
    function = {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": str(code), "Timeout": 1}}
    return Template({"Globals": {"Function": {"Handler": "app.lambda_handler"}}, "Resources": {"Fn": function}})


@pytest.fixture
def pool(tmp_path: Path) -> Any:
    workers = WorkerPool(2, template_of(tmp_path))
    yield workers
    workers.shutdown()


def until(condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_an_invocation_past_its_timeout_is_ended_and_its_worker_replaced(pool: WorkerPool) -> None:
    before = set(pool.pids())
    assert pool.invoke("Fn", {})["remaining_ms"] <= 1000  # the handler sees its function's timeout
    with pytest.raises(FunctionError) as ended:
        pool.invoke("Fn", {"sleep": 10})
    assert ended.value.error_type == "Sandbox.Timedout"
    # The pool is whole again: a fresh worker took the place of the one that overran
    until(lambda: len(pool.pids()) == 2)
    assert set(pool.pids()) != before
    assert {pool.invoke("Fn", {})["pid"] for _ in range(4)} <= set(pool.pids())


def test_a_worker_that_dies_is_reported_and_replaced(pool: WorkerPool) -> None:
    with pytest.raises(FunctionError) as died:
        pool.invoke("Fn", {"die": True})
    assert died.value.error_type == "Runtime.ExitError"
    until(lambda: len(pool.pids()) == 2)
    results = [pool.invoke("Fn", {}) for _ in range(4)]
    assert all(r["pid"] in pool.pids() for r in results)


def test_no_worker_outlives_a_killed_server(tmp_path: Path) -> None:
    # Given a process that holds a pool (as the local server does), killed without a chance to clean up
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        sys.path[:0] = {[str(ROOT / "layers/shared/python"), str(ROOT / "tools"), str(ROOT)]!r}
        from tests.integration.test_worker_pool import template_of
        from orchestrator_local.workers import WorkerPool
        pool = WorkerPool(2, template_of(Path({str(tmp_path)!r})))
        print(" ".join(map(str, pool.pids())), flush=True)
        time.sleep(600)
        """
    )
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    pids = [int(p) for p in server.stdout.readline().split()]
    assert len(pids) == 2
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie is gone for our purpose (nobody reaps it until its new parent does)
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"

    # Then its workers exit by themselves
    until(lambda: all(gone(pid) for pid in pids), seconds=10)


@pytest.mark.parametrize(
    ("error_type", "status", "code"),
    [("Sandbox.Timedout", 504, "gateway_timeout"), ("Runtime.ExitError", 500, "internal_error")],
)
def test_the_gateway_answers_a_function_that_timed_out_or_died_with_a_problem(
    error_type: str, status: int, code: str
) -> None:
    from werkzeug.test import Client

    from orchestrator_local.gateway import Gateway

    def failing(logical_id: str, event: Any) -> Any:
        raise FunctionError(error_type, "as the worker pool reports it")

    response = Client(Gateway(failing, Template())).get("/v1/ping")
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json["code"] == code and response.json["status"] == status
    assert response.json["instance"] == "/v1/ping"


def test_a_warm_pool_loads_its_handlers_before_the_first_event(tmp_path: Path) -> None:
    # Given a handler module that leaves a mark, per process, when it is imported
    template = template_of(tmp_path)
    marks = tmp_path / "imported"
    marks.mkdir()
    code = Path(template.functions["Fn"].module_path)
    code.write_text(f"import os, pathlib\npathlib.Path({str(marks)!r}, str(os.getpid())).touch()\n" + code.read_text())
    # When a pool is asked to keep it warm, and no event is sent
    warm = WorkerPool(2, template, warm=("Fn",))
    try:
        # Then every worker has imported it by itself
        until(lambda: {p.name for p in marks.iterdir()} == {str(pid) for pid in warm.pids()})
        assert warm.invoke("Fn", {})["pid"] in warm.pids()  # and serves from that import
        assert len(list(marks.iterdir())) == 2
    finally:
        warm.shutdown()


def test_a_cold_pool_loads_a_handler_on_its_first_event(tmp_path: Path, pool: WorkerPool) -> None:
    module = Path(pool._template.functions["Fn"].module_path)
    module.write_text(
        "import os\nos.makedirs(os.path.join(os.path.dirname(__file__), 'seen'), exist_ok=True)\n" + module.read_text()
    )
    time.sleep(1)
    assert not (module.parent / "seen").exists()
    pool.invoke("Fn", {})
    assert (module.parent / "seen").exists()
