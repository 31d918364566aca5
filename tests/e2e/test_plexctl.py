"""`plexctl` (SPEC §15) against the local server with simulated nodes: every subcommand, and each
row of the exit-code table, asserted on real stdout, stderr and exit codes of a subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from plexd_sim import ActionRequest, SimulatedFleet, SimulatedNode

from tests.e2e.conftest import bearer, free_port, operator_jwt

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RESTART_AGENT = {
    "name": "restart-agent",
    "parameters": [
        {"name": "fail", "type": "boolean"},
        {"name": "level", "type": "integer"},
        {"name": "note", "type": "string"},
    ],
}
HOOK_BASELINE = "sha256:" + "a" * 64
HOOK_DRIFTED = "sha256:" + "b" * 64
UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DEAD_SERVER = f"http://127.0.0.1:{free_port()}"  # nothing listens: a request would exit 1, not 2


def private_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


# --- running the CLI ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Plexctl:
    """Runs ``python -m plexctl`` with a private HOME/XDG_CONFIG_HOME, outside any checkout."""

    home: Path
    server: str | None = None
    token_file: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
        completed = subprocess.run(
            self.argv(*args),
            cwd=cwd or self.home,
            env=self.environment(env),
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        """The same command, running in the background."""
        return subprocess.Popen(
            self.argv(*args),
            cwd=self.home,
            env=self.environment(None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def argv(self, *args: str) -> list[str]:
        argv = [sys.executable, "-m", "plexctl"]
        if self.token_file:
            argv += ["--token-file", str(self.token_file)]
        return [*argv, *args]

    def environment(self, extra: dict[str, str] | None) -> dict[str, str]:
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "PLEXSPHERE_", "PLEXCTL_", "XDG_")) and key != "COLUMNS"
        }
        base |= {
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tools"), str(ROOT / "layers/shared/python")]),
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
        }
        if self.server:
            base["PLEXSPHERE_URL"] = self.server
        return base | self.env | (extra or {})


def assert_problem(result: Result, exit_code: int, code: str) -> None:
    """The error is on stderr (title, detail, code, correlation id), nothing on stdout."""
    assert result.code == exit_code, result
    assert result.stdout == "", result
    assert f"code: {code}" in result.stderr, result
    assert "detail: " in result.stderr, result
    assert "correlation id: " in result.stderr, result


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("plexctl-home")


@pytest.fixture(scope="module")
def admin_token_file(home: Path, local_server: dict[str, Any]) -> Path:
    return private_file(home / "tokens" / "admin", local_server["operator_token"] + "\n")


@pytest.fixture(scope="module")
def admin(home: Path, local_server: dict[str, Any], admin_token_file: Path) -> Plexctl:
    """The bootstrap admin, through PLEXSPHERE_URL and a root-level --token-file."""
    return Plexctl(home, server=local_server["server"], token_file=admin_token_file)


@pytest.fixture(scope="module")
def mallory(home: Path, local_server: dict[str, Any]) -> Plexctl:
    """A valid JWT for a subject with no relation to any project (signed with the local dev key)."""
    token = operator_jwt(local_server, "mallory@example.com")
    return Plexctl(home, server=local_server["server"], token_file=private_file(home / "tokens" / "mallory", token))


# --- tenants ---------------------------------------------------------------------------------------------


def new_project(http: httpx.Client, admin_headers: dict[str, str]) -> dict[str, str]:
    domain = http.post("/v1/domains", headers=admin_headers, json={"name": f"plexctl-{time.time_ns()}"})
    assert domain.status_code == 201, domain.text
    project = http.post(f"/v1/domains/{domain.json()['id']}/projects", headers=admin_headers, json={"name": "p"})
    assert project.status_code == 201, project.text
    return {"domain_id": domain.json()["id"], "project_id": project.json()["id"]}


@pytest.fixture(scope="module")
def api(local_server: dict[str, Any]) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=local_server["server"], headers=bearer(local_server["operator_token"]), timeout=30
    ) as client:
        yield client


@pytest.fixture(scope="module")
def fleet_project(local_server: dict[str, Any], api: httpx.Client) -> Iterator[dict[str, Any]]:
    """A fresh project with two simulated env=prod nodes; with ``fail=true`` the first one fails."""
    tenant = new_project(api, {})

    def outcome(node: SimulatedNode, request: ActionRequest) -> Any:
        return "failure" if request.parameters.get("fail") and node.hostname.endswith("-001") else "success"

    fleet = SimulatedFleet(
        local_server["server"],
        local_server["operator_token"],
        tenant["project_id"],
        outcome=outcome,
        duration=0.2,
        heartbeat_interval=30,
        stream_concurrency=1,  # the test server has two workers: leave one for the CLI and the workflow
    )
    nodes = fleet.enroll(2, labels={"env": "prod"}, builtin_actions=[RESTART_AGENT], hostname_prefix="plexctl")
    fleet.start()
    try:
        yield tenant | {"fleet": fleet, "nodes": [node.node_id for node in nodes]}
    finally:
        fleet.stop()
        fleet.deregister_all()
        fleet.close()


def register(api: httpx.Client, project_id: str, hostname: str, labels: dict[str, str], **caps: Any) -> dict[str, Any]:
    token = api.post(f"/v1/projects/{project_id}/enrollment-tokens", json={}).json()["token"]
    registered = httpx.post(
        f"{api.base_url}/v1/register",
        json={"token": token, "hostname": hostname, "metadata": labels, "capabilities": caps},
        timeout=30,
    )
    assert registered.status_code == 201, registered.text
    return dict(registered.json())


@pytest.fixture(scope="module")
def capped_project(api: httpx.Client) -> dict[str, Any]:
    """A fresh Domain with a live-execution ceiling of 1 and one silent node whose hook has drifted."""
    tenant = new_project(api, {})
    assert api.patch(f"/v1/domains/{tenant['domain_id']}", json={"live_execution_ceiling": 1}).status_code == 200
    hook = {"name": "rotate-keys", "checksum": HOOK_BASELINE}
    node = register(
        api, tenant["project_id"], "silent-01", {"env": "capped"}, builtin_actions=[RESTART_AGENT], hooks=[hook]
    )
    # The first checksum reported became the baseline; the node now reports another one.
    changed = httpx.put(
        f"{api.base_url}/v1/nodes/{node['node_id']}/capabilities",
        headers=bearer(node["node_secret_key"]),
        json={"builtin_actions": [RESTART_AGENT], "hooks": [hook | {"checksum": HOOK_DRIFTED}]},
        timeout=30,
    )
    assert changed.status_code == 200, changed.text
    return tenant | {"node_id": node["node_id"]}


@pytest.fixture(scope="module")
def succeeded(admin: Plexctl, fleet_project: dict[str, Any]) -> tuple[Result, dict[str, Any]]:
    """`dispatch --selector env=prod --wait` against the simulator, in table mode, and the Execution it made."""
    result = admin(
        "action",
        "dispatch",
        "--project",
        fleet_project["project_id"],
        "--selector",
        "env=prod",
        "--action",
        "restart-agent",
        "--param",
        "level=3",
        "--param",
        "note=x",
        "--timeout-seconds",
        "30",
        "--interval",
        "0.5",
        "--wait",
    )
    execution_id = UUID_PATTERN.search(result.stdout.splitlines()[0])
    assert execution_id, result
    got = admin("action", "get", "--project", fleet_project["project_id"], "--id", execution_id[0], "-o", "json")
    return result, got.json()


# --- dispatch --wait ---------------------------------------------------------------------------------


def test_dispatch_wait_shows_progress_and_exits_0_when_every_target_succeeds(
    succeeded: tuple[Result, dict[str, Any]], fleet_project: dict[str, Any]
) -> None:
    result, execution = succeeded
    assert result.code == 0, result
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    # Plain progress lines (stdout is not a TTY), the last one terminal, then the final Execution.
    assert lines[0].startswith("[") and f"{execution['id']} pending 0/2 done  pending=2" in lines[0]
    assert any("succeeded 2/2 done  succeeded=2" in line for line in lines)
    assert "status        succeeded" in result.stdout
    for node_id in fleet_project["nodes"]:
        assert f"{node_id}  succeeded  0" in result.stdout
    # --param values are JSON when they parse, strings otherwise.
    assert execution["parameters"] == {"level": 3, "note": "x"}


def test_dispatch_wait_exits_1_when_a_target_fails_and_json_mode_keeps_stdout_pure(
    admin: Plexctl, fleet_project: dict[str, Any]
) -> None:
    result = admin(
        "action",
        "dispatch",
        "--project",
        fleet_project["project_id"],
        "--selector",
        "env=prod",
        "--action",
        "restart-agent",
        "--param",
        "fail=true",
        "--timeout-seconds",
        "30",
        "--interval",
        "0.5",
        "--wait",
        "--output",
        "json",
    )
    assert result.code == 1, result
    execution = result.json()  # stdout is exactly one JSON document
    assert execution["status"] == "failed"
    assert execution["parameters"] == {"fail": True}
    assert sorted(target["status"] for target in execution["targets"]) == ["failed", "succeeded"]
    # Progress went to stderr, then the outcome as JSON.
    assert "failed 2/2 done  succeeded=1 failed=1" in result.stderr
    last = json.loads(result.stderr.splitlines()[-1])
    assert last["exit_code"] == 1
    assert "ended failed" in last["error"]["title"]


# --- reading -------------------------------------------------------------------------------------------


def test_get_watch_list_and_output_of_a_finished_execution(
    admin: Plexctl, fleet_project: dict[str, Any], succeeded: tuple[Result, dict[str, Any]], tmp_path: Path
) -> None:
    project, execution_id = fleet_project["project_id"], succeeded[1]["id"]
    node_id = fleet_project["nodes"][0]
    # One more, without --wait: the table of the Execution as admitted.
    another = admin("action", "dispatch", "--project", project, "--node", node_id, "--action", "restart-agent")
    assert another.code == 0, another
    assert "status        pending" in another.stdout and f"{node_id}  pending" in another.stdout

    got = admin("action", "get", "--project", project, "--id", execution_id)
    assert got.code == 0 and got.stderr == ""
    assert f"id            {execution_id}" in got.stdout
    assert "action        restart-agent (builtin)" in got.stdout

    as_yaml = admin("action", "get", "--project", project, "--id", execution_id, "-o", "yaml")
    assert as_yaml.code == 0
    assert yaml.safe_load(as_yaml.stdout)["id"] == execution_id

    watched = admin("action", "watch", "--project", project, "--id", execution_id)
    assert watched.code == 0, watched
    assert "succeeded 2/2 done  succeeded=2" in watched.stdout.splitlines()[0]

    # --all walks next_cursor: one item per page, every Execution of the project, no cursor left.
    listed = admin("action", "list", "--project", project, "--limit", "1", "--all", "-o", "json").json()
    assert execution_id in [item["id"] for item in listed["items"]]
    assert len(listed["items"]) >= 2 and "next_cursor" not in listed
    page = admin("action", "list", "--project", project, "--limit", "1", "--action-name", "restart-agent")
    assert page.code == 0
    assert page.stdout.splitlines()[0].split() == ["ID", "ACTION", "TYPE", "STATUS", "TARGETS", "CREATED", "COMPLETED"]
    assert len(page.stdout.splitlines()) == 2
    assert page.stderr.startswith("more: --cursor ")
    filtered = admin("action", "list", "--project", project, "--status", "succeeded", "-o", "json")
    assert filtered.code == 0 and all(item["status"] == "succeeded" for item in filtered.json()["items"])

    output = ("action", "output", "--project", project, "--id", execution_id, "--node", node_id)
    printed = admin(*output)
    assert printed.code == 0, printed
    assert json.loads(printed.stdout)["stdout"].startswith("restart-agent done on plexctl-")
    saved = tmp_path / "out.json"
    to_file = admin(*output, "--to", str(saved))
    assert to_file.code == 0 and to_file.stdout == ""
    assert saved.read_text() == printed.stdout
    described = admin(*output, "-o", "json")
    assert described.json()["kind"] == "inline"


def test_watch_follows_a_running_execution_until_it_ends(admin: Plexctl, api: httpx.Client) -> None:
    project = new_project(api, {})["project_id"]
    node = register(api, project, "watched-01", {"env": "watched"}, builtin_actions=[RESTART_AGENT])
    execution = api.post(
        f"/v1/projects/{project}/executions:dispatch",
        json={"action": "restart-agent", "node_id": node["node_id"], "timeout_seconds": 60},
    ).json()
    watcher = admin.spawn("action", "watch", "--project", project, "--id", execution["id"], "--interval", "0.3")
    assert watcher.stdout is not None
    first = watcher.stdout.readline()  # the watch is running before the node moves
    assert "pending 0/1 done  pending=1" in first, first
    report = f"{api.base_url}/v1/nodes/{node['node_id']}/executions/{execution['id']}"
    for status in ("ack", "started", "succeeded"):
        sent = httpx.post(report, headers=bearer(node["node_secret_key"]), json={"status": status}, timeout=30)
        assert sent.status_code == 200, sent.text
        time.sleep(1.0)  # a few redraws in each state
    rest, stderr = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, (rest, stderr)
    lines = [first, *rest.splitlines()]
    # One line per redraw, following the target through every state it took, the last one terminal.
    for seen in ("pending 0/1 done  pending=1", "ack 0/1 done  ack=1", "started 0/1 done  started=1"):
        assert any(seen in line for line in lines), (seen, lines)
    assert any("succeeded 1/1 done  succeeded=1" in line for line in lines), lines
    assert stderr == ""


def test_output_from_the_object_store_is_downloaded_and_digest_checked(
    admin: Plexctl, api: httpx.Client, fleet_project: dict[str, Any], tmp_path: Path
) -> None:
    # Given a node that reports 40 KiB of stdout (over the inline ceiling: stored in S3)
    project = fleet_project["project_id"]
    node = register(api, project, f"bulky-{time.time_ns()}", {"env": "bulky"}, builtin_actions=[RESTART_AGENT])
    dispatched = admin(
        "action", "dispatch", "--project", project, "--node", node["node_id"], "--action", "restart-agent", "-o", "json"
    )  # fmt: skip
    assert dispatched.code == 0, dispatched
    execution_id = dispatched.json()["id"]
    big = "x" * 40 * 1024
    reported = httpx.post(
        f"{api.base_url}/v1/nodes/{node['node_id']}/executions/{execution_id}/result",
        headers=bearer(node["node_secret_key"]),
        json={
            "execution_id": execution_id,
            "status": "success",
            "exit_code": 0,
            "stdout": big,
            "stderr": "",
            "duration": "1s",
            "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "triggered_by": {"type": "control_plane"},
        },
        timeout=30,
    )
    assert reported.status_code == 200, reported.text
    # When the operator saves it
    saved = tmp_path / "big.json"
    output = ("action", "output", "--project", project, "--id", execution_id, "--node", node["node_id"])
    result = admin(*output, "--to", str(saved))
    # Then the presigned object was downloaded
    assert result.code == 0, result
    assert result.stderr.startswith(f"wrote {saved.stat().st_size} bytes to ")
    assert json.loads(saved.read_text())["stdout"] == big
    described = admin(*output, "-o", "json")
    assert described.json()["kind"] == "object_store" and described.json()["url"].startswith("http")


def test_node_list_and_enroll(admin: Plexctl, fleet_project: dict[str, Any]) -> None:
    project = fleet_project["project_id"]
    table = admin("node", "list", "--project", project)
    assert table.code == 0 and table.stderr == ""
    for node_id in fleet_project["nodes"]:
        assert node_id in table.stdout
    assert "env=prod" in table.stdout and "restart-agent" in table.stdout
    walked = admin("node", "list", "--project", project, "--limit", "1", "--all", "-o", "json").json()
    assert set(fleet_project["nodes"]) <= {item["id"] for item in walked["items"]}

    minted = admin("enroll", "--project", project)
    assert minted.code == 0, minted
    assert minted.stdout.startswith("token       plx_enroll_")
    assert "expires_at  " in minted.stdout
    as_json = admin("enroll", "--project", project, "--ttl-seconds", "600", "-o", "json").json()
    assert as_json["token"].startswith("plx_enroll_") and as_json["expires_at"].endswith("Z")


def test_node_reports_and_drift(admin: Plexctl, fleet_project: dict[str, Any]) -> None:
    project, node_id = fleet_project["project_id"], fleet_project["nodes"][0]
    fleet: SimulatedFleet = fleet_project["fleet"]
    # Given a node that synced two report entries and reported drift after a reconcile
    fleet.set_report(node_id, "app-health", {"status": "healthy"})
    fleet.set_report(node_id, "disk", {"free_gb": 12})
    fleet.flush_reports(node_id)
    fleet.node(node_id).verifier.set_keys([Ed25519PrivateKey.generate().public_key()])  # a missed rotation
    fleet.reconcile(node_id)
    assert [s.status_code for s in fleet.reports_sent(node_id)] == [200, 200]

    # Then the table shows each entry, the most recently written first
    table = admin("node", "reports", node_id, "--project", project)
    assert table.code == 0 and table.stderr == "", table
    lines = table.stdout.splitlines()
    assert lines[0].split()[:2] == ["KEY", "VERSION"]
    assert [line.split()[0] for line in lines[1:]] == ["disk", "app-health"]
    assert '{"status":"healthy"}' in table.stdout
    as_json = admin("node", "reports", node_id, "--project", project, "--limit", "1", "--all", "-o", "json").json()
    assert [item["key"] for item in as_json["items"]] == ["disk", "app-health"]
    as_yaml = yaml.safe_load(admin("node", "reports", node_id, "--project", project, "-o", "yaml").stdout)
    assert as_yaml["items"][1]["payload"] == {"status": "healthy"}

    drift = admin("node", "drift", node_id, "--project", project)
    assert drift.code == 0, drift
    assert "signing_keys_updated" in drift.stdout and "trusted signing keys replaced" in drift.stdout
    drift_json = admin("node", "drift", node_id, "--project", project, "-o", "json").json()
    assert drift_json["items"][0]["corrections"][0]["type"] == "signing_keys_updated"


def test_node_reports_refuses_a_malformed_node_id_locally_and_a_foreign_one_is_1(
    admin: Plexctl, fleet_project: dict[str, Any]
) -> None:
    project = fleet_project["project_id"]
    malformed = admin("node", "drift", "not-a-uuid", "--project", project)
    assert malformed.code == 2 and "is not a UUID" in malformed.stderr
    unknown = admin("node", "reports", "0190a8b8-a0c0-7a0a-8a0a-a0a0a0a0a0c0", "--project", project)
    assert_problem(unknown, 1, "node_not_found")


def test_node_rotate_keys_reaches_the_nodes_heartbeat(admin: Plexctl, api: httpx.Client) -> None:
    project = new_project(api, {})["project_id"]
    node = register(api, project, "plexctl-rotate", {})
    # When an operator asks the node to rotate its mesh key
    result = admin("node", "rotate-keys", node["node_id"], "--project", project, "-o", "json")
    # Then the request is recorded, and the node's next heartbeat says so
    assert result.code == 0, result
    assert result.json() == {"node_id": node["node_id"], "rotate_keys": True}
    headers = {"Authorization": f"Bearer {node['node_secret_key']}"}
    heartbeat = httpx.post(f"{api.base_url}/v1/nodes/{node['node_id']}/heartbeat", headers=headers, json={})
    assert heartbeat.json()["rotate_keys"] is True
    # An unknown node is a 404 the CLI reports with exit code 1
    missing = admin("node", "rotate-keys", "01900000-0000-7000-8000-000000000000", "--project", project)
    assert missing.code == 1 and "node_not_found" in missing.stderr
    assert admin("node", "rotate-keys", "nope", "--project", project).code == 2


# --- exit codes from the server ------------------------------------------------------------------------


def test_capacity_exceeded_is_1_then_cancel_frees_the_slot_and_a_second_cancel_is_1(
    admin: Plexctl, capped_project: dict[str, Any]
) -> None:
    project, node_id = capped_project["project_id"], capped_project["node_id"]
    dispatch = ("action", "dispatch", "--project", project, "--node", node_id, "--action", "restart-agent")
    first = admin(*dispatch, "--timeout-seconds", "600", "-o", "json")
    assert first.code == 0, first
    execution_id = first.json()["id"]
    assert first.json()["status"] == "pending"

    over = admin(*dispatch)
    assert_problem(over, 1, "capacity_exceeded")
    assert "dimension: action_executions" in over.stderr

    cancelled = admin("action", "cancel", "--project", project, "--id", execution_id)
    assert cancelled.code == 0, cancelled
    assert "status        cancelled" in cancelled.stdout
    again = admin("action", "cancel", "--project", project, "--id", execution_id)
    assert_problem(again, 1, "execution_already_terminal")
    watched = admin("action", "watch", "--project", project, "--id", execution_id)
    assert watched.code == 1 and "ended cancelled" in watched.stderr


def test_hook_integrity_violation_is_1(admin: Plexctl, capped_project: dict[str, Any]) -> None:
    result = admin(
        "action", "dispatch", "--project", capped_project["project_id"], "--node", capped_project["node_id"],
        "--type", "hook", "--action", "rotate-keys",
    )  # fmt: skip
    assert_problem(result, 1, "hook_integrity_violation")
    assert "Error: Hook integrity violation (HTTP 409)" in result.stderr
    assert capped_project["node_id"] in result.stderr  # the drifting node is named


def test_empty_cohort_and_malformed_selector_are_2(admin: Plexctl, capped_project: dict[str, Any]) -> None:
    dispatch = ("action", "dispatch", "--project", capped_project["project_id"], "--action", "restart-agent")
    assert_problem(admin(*dispatch, "--selector", "env=nowhere"), 2, "selector_empty_cohort")
    assert_problem(admin(*dispatch, "--selector", "env=(prod"), 2, "malformed_selector")


def test_errors_in_json_mode_are_json_on_stderr_and_nothing_on_stdout(
    admin: Plexctl, capped_project: dict[str, Any]
) -> None:
    result = admin(
        "-o", "json", "action", "dispatch", "--project", capped_project["project_id"],
        "--selector", "env=nowhere", "--action", "restart-agent",
    )  # fmt: skip
    assert result.code == 2 and result.stdout == ""
    problem = json.loads(result.stderr)["error"]
    assert problem["code"] == "selector_empty_cohort"
    assert {"type", "title", "status", "detail", "instance", "code", "correlation_id"} <= set(problem)


def test_signing_key_show_and_a_refused_rotation(admin: Plexctl, mallory: Plexctl, api: httpx.Client) -> None:
    keys = api.get("/v1/signing-keys").json()
    shown = admin("signing-key", "show", "-o", "json")
    assert shown.code == 0, shown
    assert shown.json() == keys
    assert keys["current"] in admin("signing-key", "show").stdout
    # Only the deployment's admins rotate it; a refusal changes nothing.
    assert_problem(mallory("signing-key", "rotate"), 77, "rebac_denied")
    assert api.get("/v1/signing-keys").json() == keys


def test_rebac_denied_is_77(mallory: Plexctl, fleet_project: dict[str, Any]) -> None:
    result = mallory("action", "list", "--project", fleet_project["project_id"])
    assert_problem(result, 77, "rebac_denied")
    assert "Error: Permission denied (HTTP 403)" in result.stderr
    assert "relation_path: " in result.stderr


def test_other_403_is_4(admin: Plexctl, mallory: Plexctl, fleet_project: dict[str, Any]) -> None:
    # A cursor minted for the admin, replayed by someone else: 403 cursor_binding_mismatch.
    project = fleet_project["project_id"]
    cursor = admin("node", "list", "--project", project, "--limit", "1", "-o", "json").json()["next_cursor"]
    result = mallory("node", "list", "--project", project, "--limit", "1", "--cursor", cursor)
    assert_problem(result, 4, "cursor_binding_mismatch")


def test_401_is_3(home: Path, local_server: dict[str, Any], fleet_project: dict[str, Any]) -> None:
    forged = private_file(home / "tokens" / "forged", "not-a-jwt")
    result = Plexctl(home)(
        "action", "list", "--project", fleet_project["project_id"],
        "--server", local_server["server"], "--token-file", str(forged),
    )  # fmt: skip
    assert_problem(result, 3, "unauthenticated")


def test_unreachable_server_is_1(home: Path, admin_token_file: Path, fleet_project: dict[str, Any]) -> None:
    result = Plexctl(home, server=DEAD_SERVER, token_file=admin_token_file)(
        "action", "list", "--project", fleet_project["project_id"]
    )
    assert result.code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: cannot reach {DEAD_SERVER}: ConnectError")


@pytest.fixture
def failing_server() -> Iterator[str]:
    """A loopback server that answers every request 503 ``datastore_unavailable``, as the API does
    in a datastore outage (the local stack cannot be made to fail on demand)."""
    problem = {
        "type": "urn:plexsphere:problem:datastore_unavailable",
        "title": "Service unavailable",
        "status": 503,
        "detail": "The datastore is temporarily unavailable.",
        "instance": "/v1/projects/x/executions",
        "code": "datastore_unavailable",
        "correlation_id": "corr-503",
    }

    class Outage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(problem).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/problem+json")
            self.send_header("X-Correlation-Id", "corr-503")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Outage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_5xx_is_1_with_the_problem_on_stderr(home: Path, admin_token_file: Path, failing_server: str) -> None:
    result = Plexctl(home, server=failing_server, token_file=admin_token_file)("action", "list", "--project", PROJECT)
    assert_problem(result, 1, "datastore_unavailable")
    assert "The datastore is temporarily unavailable." in result.stderr
    assert "corr-503" in result.stderr


# --- local input errors: exit 2 before any request (the server is a dead port: a request would be 1) --------

NODE = "01a2078e-b0e9-7a7f-8d7c-7f583122bc1a"
PROJECT = "01a2078e-b132-7529-bc5c-da073fa3c18a"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (f"action dispatch --project {PROJECT} --action a --node {NODE} --selector env=prod", "exactly one of --node"),
        (f"action dispatch --project {PROJECT} --action a", "exactly one of --node or --selector"),
        (f"action dispatch --project {PROJECT} --action a --node web-01", "'web-01' is not a UUID"),
        ("action dispatch --project p-1 --action a --selector env=prod", "'p-1' is not a UUID"),
        (f"action dispatch --project {PROJECT} --selector env=prod", "Missing option '--action'"),
        (f"action dispatch --project {PROJECT} --action a --selector x --param novalue", "'novalue' is not k=v"),
        (f"action dispatch --project {PROJECT} --action a --selector x --param k=1 --param k=2", "'k' given twice"),
        (f"action dispatch --project {PROJECT} --action a --selector x --timeout-seconds 0", "'--timeout-seconds'"),
        (f"action get --project {PROJECT} --id 42", "'42' is not a UUID"),
        (f"action get --project {PROJECT}", "Missing option '--id'"),
        (f"action cancel --project {PROJECT} --id x", "'x' is not a UUID"),
        (f"action watch --project {PROJECT} --id {NODE}-0", "is not a UUID"),
        (f"action output --project {PROJECT} --id {NODE}", "Missing option '--node'"),
        (f"action list --project {PROJECT} --status done", "'--status'"),
        (f"action list --project {PROJECT} --limit 0", "'--limit'"),
        ("node list --project nope", "'nope' is not a UUID"),
        (f"enroll --project {PROJECT} --ttl-seconds 5", "'--ttl-seconds'"),
    ],
)
def test_local_input_errors_are_2_before_any_request(
    home: Path, admin_token_file: Path, command: str, message: str
) -> None:
    result = Plexctl(home, server=DEAD_SERVER, token_file=admin_token_file)(*command.split())
    assert result.code == 2, result
    assert result.stdout == ""
    assert message in result.stderr


# --- credentials: flags, env, profiles, .local/credentials.json -----------------------------------------------


def test_missing_credentials_are_3(home: Path, tmp_path: Path, admin_token_file: Path) -> None:
    nothing = Plexctl(home)("action", "list", "--project", PROJECT, cwd=tmp_path)
    assert nothing.code == 3 and nothing.stdout == ""
    assert nothing.stderr.startswith("Error: no server: pass --server, set PLEXSPHERE_URL")
    no_token = Plexctl(home, server=DEAD_SERVER)("action", "list", "--project", PROJECT, cwd=tmp_path)
    assert no_token.code == 3 and "no token for" in no_token.stderr
    missing_file = Plexctl(home, server=DEAD_SERVER, token_file=tmp_path / "absent")("node", "list", cwd=tmp_path)
    assert missing_file.code == 3 and "cannot be read" in missing_file.stderr


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_token_file_readable_by_others_is_refused_with_3(
    home: Path, tmp_path: Path, local_server: dict[str, Any], mode: int
) -> None:
    shared = private_file(tmp_path / "token", local_server["operator_token"], mode)
    result = Plexctl(home, server=local_server["server"], token_file=shared)("node", "list", "--project", PROJECT)
    assert result.code == 3 and result.stdout == ""
    assert f"is accessible by other users (mode {mode:04o}); run: chmod 600 {shared}" in result.stderr


def test_login_stores_a_private_profile_that_later_commands_use(
    tmp_path: Path, local_server: dict[str, Any], admin_token_file: Path, fleet_project: dict[str, Any]
) -> None:
    plexctl = Plexctl(tmp_path)  # a fresh HOME: no config yet
    logged_in = plexctl(
        "login", "--server", local_server["server"], "--token-file", str(admin_token_file),
        "--profile", "ops", "--project", fleet_project["project_id"],
    )  # fmt: skip
    assert logged_in.code == 0, logged_in
    config = tmp_path / ".config" / "plexctl" / "config.yaml"
    assert config.stat().st_mode & 0o777 == 0o600
    stored = yaml.safe_load(config.read_text())
    assert stored["current_profile"] == "ops"
    assert stored["profiles"]["ops"] == {
        "server": local_server["server"],
        "token": local_server["operator_token"],
        "project": fleet_project["project_id"],
    }

    # No --server, no env, no --project: the profile (current, or named) supplies all three.
    listed = plexctl("node", "list", "-o", "json")
    assert listed.code == 0, listed
    assert set(fleet_project["nodes"]) <= {item["id"] for item in listed.json()["items"]}
    assert plexctl("action", "list", "--profile", "ops").code == 0
    unknown = plexctl("action", "list", "--profile", "staging")
    assert unknown.code == 2 and "no profile 'staging'" in unknown.stderr

    # A config file others can read no longer yields its token.
    config.chmod(0o644)
    insecure = plexctl("node", "list")
    assert insecure.code == 3 and "config file" in insecure.stderr and "chmod 600" in insecure.stderr


def test_login_refuses_an_insecure_token_file(tmp_path: Path, local_server: dict[str, Any]) -> None:
    shared = private_file(tmp_path / "token", local_server["operator_token"], 0o644)
    result = Plexctl(tmp_path)("login", "--server", local_server["server"], "--token-file", str(shared))
    assert result.code == 3
    assert not (tmp_path / ".config" / "plexctl" / "config.yaml").exists()


def test_without_server_env_or_profile_the_local_credentials_file_is_used(
    tmp_path: Path, local_server: dict[str, Any]
) -> None:
    # Given a checkout where `make serve` wrote .local/credentials.json, and a shell in a subdirectory
    checkout = tmp_path / "checkout"
    credentials = checkout / ".local" / "credentials.json"
    credentials.parent.mkdir(parents=True)
    shutil.copy(Path(local_server["state_dir"]) / "credentials.json", credentials)
    credentials.chmod(0o600)
    deeper = checkout / "tools" / "deeper"
    deeper.mkdir(parents=True)
    plexctl = Plexctl(tmp_path)

    # When the operator types plain commands, they reach the local server's demo project
    listed = plexctl("action", "list", "-o", "json", cwd=deeper)
    assert listed.code == 0, listed
    assert "items" in listed.json()
    nodes = plexctl("node", "list", cwd=deeper)
    assert nodes.code == 0 and nodes.stdout.startswith("ID")
    minted = plexctl("enroll", "-o", "yaml", cwd=deeper)
    assert minted.code == 0 and yaml.safe_load(minted.stdout)["token"].startswith("plx_enroll_")

    # ... but never when the file is readable by others
    credentials.chmod(0o644)
    refused = plexctl("action", "list", cwd=deeper)
    assert refused.code == 3 and "credentials file" in refused.stderr


def test_secret_set_list_delete_and_the_simulated_nodes_decrypt_what_was_set(
    admin: Plexctl, fleet_project: dict[str, Any], tmp_path: Path
) -> None:
    project, fleet = fleet_project["project_id"], fleet_project["fleet"]
    value = "p@ss <word> & more\n"
    # Given a secret set from stdin for the env=prod nodes
    completed = subprocess.run(
        admin.argv("secret", "set", "db-password", "--project", project, "--selector", "env=prod", "-o", "json"),
        input=value,
        cwd=admin.home,
        env=admin.environment(None),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert completed.returncode == 0, completed
    written = json.loads(completed.stdout)
    assert written["version"] == 1 and written["grants"]["selector"] == "env=prod"
    assert value.strip() not in completed.stdout
    # Then every simulated node hears node_secrets_updated, fetches it and decrypts the value
    nodes = fleet.nodes
    assert fleet.wait_until(lambda: all(n.secrets.get("db-password") == (1, value) for n in nodes), timeout=30)
    # When it is rewritten from a file for one node only
    source = private_file(tmp_path / "value.txt", "second value")
    again = admin(
        "secret", "set", "db-password", "--project", project, "--from-file", str(source), "--node", nodes[0].node_id
    )
    assert again.code == 0, again
    assert fleet.wait_until(lambda: nodes[0].secrets.get("db-password") == (2, "second value"), timeout=30)
    # Then the node that lost it forgets it, and the list shows names and versions only
    assert fleet.wait_until(lambda: "db-password" not in nodes[1].secret_index, timeout=30)
    listed = admin("secret", "list", "--project", project, "-o", "json").json()
    assert [(s["key"], s["version"]) for s in listed["items"]] == [("db-password", 2)]
    table = admin("secret", "list", "--project", project)
    assert table.code == 0 and "db-password" in table.stdout and "second value" not in table.stdout
    # And a delete is 0, a second one 404 → exit 1, a bad selector exit 2
    assert admin("secret", "delete", "db-password", "--project", project).code == 0
    assert_problem(admin("secret", "delete", "db-password", "--project", project), 1, "secret_not_found")
    bad = admin("secret", "set", "k", "--project", project, "--value", "v", "--selector", "env=,")
    assert_problem(bad, 2, "malformed_selector")
