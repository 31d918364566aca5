"""plexctl node logs against the local server: log batches posted as the agent posts them
(Go's JSON, gzipped over 1 KiB) are shown oldest first, and --follow picks up a new batch."""

from __future__ import annotations

import gzip
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.plexd_wire import go_marshal
from tests.e2e.test_plexctl import Plexctl, new_project, private_file, register

pytestmark = pytest.mark.e2e


def post_logs(server: str, node: dict[str, Any], messages: list[str]) -> None:
    records = [
        {
            "timestamp": "2025-01-15T10:30:00.123456789Z",
            "source": "journald",
            "unit": "plexd",
            "message": message,
            "severity": "info",
            "hostname": "web-01",
        }
        for message in messages
    ]
    body = go_marshal(records)
    headers = {"Authorization": f"Bearer {node['node_secret_key']}", "Content-Type": "application/json"}
    if len(body) > 1024:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    response = httpx.post(f"{server}/v1/nodes/{node['node_id']}/logs", content=body, headers=headers, timeout=30)
    assert response.status_code == 202, response.text


@pytest.fixture(scope="module")
def logged_node(local_server: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(
        base_url=local_server["server"],
        headers={"Authorization": f"Bearer {local_server['operator_token']}"},
        timeout=30,
    ) as api:
        tenant = new_project(api, {})
        node = register(api, tenant["project_id"], "web-01", {"env": "logs"})
    post_logs(local_server["server"], node, [f"boot step {n}" for n in range(40)])  # gzipped, as plexd sends it
    time.sleep(1.05)  # local objects are named to the second
    post_logs(local_server["server"], node, ["reconciled"])
    return {**node, "project_id": tenant["project_id"]}


@pytest.fixture(scope="module")
def admin(local_server: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Plexctl:
    home: Path = tmp_path_factory.mktemp("plexctl-logs")
    token_file = private_file(home / "tokens" / "admin", local_server["operator_token"] + "\n")
    return Plexctl(home, server=local_server["server"], token_file=token_file)


def test_plexctl_shows_the_agents_logs_oldest_first(admin: Plexctl, logged_node: dict[str, Any]) -> None:
    result = admin("node", "logs", logged_node["node_id"], "--project", logged_node["project_id"], "--since", "1h")

    assert result.code == 0, result
    shown = result.stdout.splitlines()
    assert len(shown) == 41
    assert shown[0].endswith(" info plexd: boot step 0")
    assert shown[-1].endswith(" info plexd: reconciled")


def test_plexctl_logs_as_json_is_the_apis_page(admin: Plexctl, logged_node: dict[str, Any]) -> None:
    args = ("node", "logs", logged_node["node_id"], "--project", logged_node["project_id"], "--limit", "2")
    document = admin(*args, "-o", "json").json()
    assert [item["record"]["message"] for item in document["items"]] == ["reconciled", "boot step 39"]
    assert document["next_cursor"]


def test_follow_prints_a_new_batch_once_and_ctrl_c_exits_cleanly(
    admin: Plexctl, logged_node: dict[str, Any], local_server: dict[str, Any]
) -> None:
    process = admin.spawn(
        "node", "logs", logged_node["node_id"], "--project", logged_node["project_id"], "--limit", "1", "-f"
    )
    try:
        time.sleep(3)  # the first page
        post_logs(local_server["server"], logged_node, ["after follow started"])
        time.sleep(11)  # two polls at least (one every 5 s)
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, (stdout, stderr)
    assert "Traceback" not in stderr
    shown = stdout.splitlines()
    assert shown[0].endswith("info plexd: reconciled"), (stdout, stderr)
    assert [line for line in shown if line.endswith("after follow started")] == [shown[-1]], (stdout, stderr)
    assert len(shown) == 2, (stdout, stderr)
