"""Against the local server: enrollment, registration and node lifecycle over real HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import bearer, problem

pytestmark = pytest.mark.e2e


def test_credentials_file_describes_a_working_tenant(local_server: dict[str, Any], http: httpx.Client) -> None:
    assert set(local_server) >= {"server", "domain_id", "project_id", "operator_token", "enrollment_token"}
    response = http.get(
        f"/v1/projects/{local_server['project_id']}/nodes", headers=bearer(local_server["operator_token"])
    )
    assert response.status_code == 200


def test_operator_enrolls_two_nodes_and_manages_them(local_server: dict[str, Any], http: httpx.Client) -> None:
    project, admin = local_server["project_id"], bearer(local_server["operator_token"])

    # The operator mints a token per node.
    tokens = []
    for _ in range(2):
        minted = http.post(f"/v1/projects/{project}/enrollment-tokens", headers=admin, json={})
        assert minted.status_code == 201
        tokens.append(minted.json()["token"])

    # Two nodes register.
    nodes = []
    for token, hostname in zip(tokens, ("e2e-web-01", "e2e-web-02"), strict=True):
        registered = http.post(
            "/v1/register",
            json={"token": token, "hostname": hostname, "metadata": {"env": "prod", "role": hostname[-2:]}},
        )
        assert registered.status_code == 201, registered.text
        nodes.append(registered.json())

    # The same token again, and the same hostname again.
    problem(
        http.post("/v1/register", json={"token": tokens[0], "hostname": "e2e-web-03"}), 401, "enrollment_token_invalid"
    )
    fresh = http.post(f"/v1/projects/{project}/enrollment-tokens", headers=admin, json={}).json()["token"]
    problem(
        http.post("/v1/register", json={"token": fresh, "hostname": "e2e-web-01"}), 409, "hostname_already_registered"
    )

    first, second = nodes
    nsk1, nsk2 = bearer(first["node_secret_key"]), bearer(second["node_secret_key"])

    # Capabilities, with both 422 codes.
    updated = http.put(
        f"/v1/nodes/{first['node_id']}/capabilities",
        headers=nsk1,
        json={"builtin_actions": [{"name": "restart-agent"}]},
    )
    assert updated.status_code == 200
    problem(
        http.put(f"/v1/nodes/{first['node_id']}/capabilities", headers=nsk1, json={"builtin_actions": [{"name": ""}]}),
        422,
        "builtin_action_invalid",
    )
    problem(
        http.put(
            f"/v1/nodes/{first['node_id']}/capabilities",
            headers=nsk1,
            json={"builtin_actions": [{"name": "a"}, {"name": "a"}]},
        ),
        422,
        "builtin_action_duplicate",
    )

    # Heartbeats, and the NSK errors.
    assert http.post(f"/v1/nodes/{first['node_id']}/heartbeat", headers=nsk1, json={}).json() == {
        "reconcile": False,
        "rotate_keys": False,
    }
    problem(http.post(f"/v1/nodes/{first['node_id']}/heartbeat", headers=nsk2, json={}), 403, "nsk_node_mismatch")
    problem(http.post(f"/v1/nodes/{first['node_id']}/heartbeat", json={}), 401, "nsk_revoked")

    # Listing shows both, with no secret in sight.
    listed = http.get(f"/v1/projects/{project}/nodes", headers=admin)
    mine = {n["id"]: n for n in listed.json()["items"] if n["id"] in {first["node_id"], second["node_id"]}}
    assert mine[first["node_id"]]["capabilities"]["builtin_actions"] == ["restart-agent"]
    assert mine[first["node_id"]]["last_heartbeat_at"] is not None
    for secret in (first["node_secret_key"], second["node_secret_key"], *tokens):
        assert secret not in listed.text

    # Deregistration revokes the credential.
    assert http.post(f"/v1/nodes/{second['node_id']}/deregister", headers=nsk2).status_code == 200
    problem(http.post(f"/v1/nodes/{second['node_id']}/heartbeat", headers=nsk2, json={}), 401, "nsk_revoked")
    listed = http.get(f"/v1/projects/{project}/nodes", headers=admin).json()["items"]
    assert {n["id"]: n["status"] for n in listed}[second["node_id"]] == "deregistered"


def test_error_cases_are_problems(local_server: dict[str, Any], http: httpx.Client) -> None:
    project, admin = local_server["project_id"], bearer(local_server["operator_token"])
    problem(http.get(f"/v1/projects/{project}/nodes"), 401, "unauthenticated")
    problem(http.get(f"/v1/projects/{project}/nodes", headers=bearer("x.y.z")), 401, "unauthenticated")
    problem(http.get(f"/v1/projects/{project}/nodes", headers=admin, params={"limit": 0}), 400, "invalid_limit")
    problem(http.get(f"/v1/projects/{project}/nodes", headers=admin, params={"cursor": "nope"}), 400, "invalid_cursor")
    problem(
        http.post("/v1/register", content=b"{oops", headers={"content-type": "application/json"}), 400, "invalid_body"
    )
    problem(http.get("/v1/unknown"), 404, "route_not_found")
    problem(http.delete(f"/v1/projects/{project}/executions/x", headers=admin), 404, "execution_not_found")


def child_pids(parent: int) -> list[str]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[1] == str(parent):
            found.append(stat.parent.name)
    return found


def test_ctrl_c_stops_the_server_and_everything_it_started(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.e2e.conftest import ROOT, free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers/shared/python"), str(ROOT / "tools")])
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator_local",
            "--port",
            str(port),
            "--state-dir",
            str(tmp_path),
            "--workers",
            "1",
            "--quiet",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "credentials.json").exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    credentials = __import__("json").loads((tmp_path / "credentials.json").read_text())
    with httpx.Client(base_url=credentials["server"]) as client:  # warm a worker process
        client.get(f"/v1/projects/{credentials['project_id']}/nodes", headers=bearer(credentials["operator_token"]))
    children = child_pids(process.pid)
    assert children, "the server should have started worker processes"

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0

    def alive(pid: str) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().split(")")[-1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while any(alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [c for c in children if alive(c)], "worker processes outlived the server"
    with pytest.raises(httpx.ConnectError):
        httpx.get(credentials["server"] + "/v1/register", timeout=2)
