"""E2E fixtures: the local server (`make serve`'s entry point) as a subprocess on a free port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import jwt
import pytest
from plexd_sim import SimulatedFleet

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def start_server(state_dir: Path, *extra: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """The local server (``make serve``'s entry point) on a free port, once its credentials
    file is written; its log goes to ``state_dir/server.log``."""
    credentials_file = state_dir / "credentials.json"
    before = _identity(credentials_file)  # a restart reads the previous file, then replaces it
    log = (state_dir / "server.log").open("a")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers/shared/python"), str(ROOT / "tools")])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator_local",
            "--port",
            str(free_port()),
            "--state-dir",
            str(state_dir),
            "--workers",
            "2",
            "--exit-with-parent",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + 120
    while _identity(credentials_file) in (None, before):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("local server did not start:\n" + (state_dir / "server.log").read_text())
        time.sleep(0.2)
    return process, json.loads(credentials_file.read_text()) | {"state_dir": str(state_dir)}


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """A clean stop (SIGTERM, as Ctrl-C): the server saves its state and exits."""
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Start the server, wait for its credentials file, stop it at the end of the session."""
    process, credentials = start_server(tmp_path_factory.mktemp("local"))
    try:
        yield credentials
    finally:
        stop_server(process)


@pytest.fixture
def http(local_server: dict[str, Any]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server["server"], timeout=30) as client:
        yield client


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["correlation_id"] == response.headers["x-correlation-id"]
    return body


def local_services(local_server: dict[str, Any]) -> dict[str, Any]:
    """Where the local server's AWS services are (its ``services.json``)."""
    services: dict[str, Any] = json.loads((Path(local_server["state_dir"]) / "services.json").read_text())
    return services


def local_aws(local_server: dict[str, Any], service: str) -> Any:
    """A boto3 client of the local server's moto."""
    return boto3.client(
        service,
        endpoint_url=local_services(local_server)["aws_endpoint"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def operator_jwt(local_server: dict[str, Any], subject: str) -> str:
    """A valid operator JWT for ``subject``, signed with the local server's dev key (read from
    its secret store), e.g. for a subject that holds no relation."""
    key = local_aws(local_server, "secretsmanager").get_secret_value(SecretId="local/JwtKeySecret")["SecretString"]
    now = datetime.now(UTC)
    claims = {
        "sub": subject,
        "iss": "plexsphere-local",
        "aud": "plexsphere",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    return str(jwt.encode(claims, key, algorithm="HS256"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def project_with_nodes(
    http: httpx.Client, admin: dict[str, str], nodes: list[tuple[str, dict[str, str], list[str]]]
) -> dict[str, Any]:
    """A fresh Domain and Project (so its ceiling is the caller's) with ``nodes`` registered over
    the API, each ``(hostname, metadata, builtin action names)``; returns ids and node credentials."""
    domain = http.post("/v1/domains", headers=admin, json={"name": f"d-{time.monotonic_ns()}"}).json()
    project = http.post(f"/v1/domains/{domain['id']}/projects", headers=admin, json={"name": "p"}).json()
    registered = []
    for hostname, metadata, actions in nodes:
        token = http.post(f"/v1/projects/{project['id']}/enrollment-tokens", headers=admin, json={}).json()["token"]
        response = http.post(
            "/v1/register",
            json={
                "token": token,
                "hostname": hostname,
                "metadata": metadata,
                "capabilities": {"builtin_actions": [{"name": name} for name in actions]},
            },
        )
        assert response.status_code == 201, response.text
        registered.append({"id": response.json()["node_id"], "nsk": response.json()["node_secret_key"]})
    return {"domain_id": domain["id"], "project_id": project["id"], "nodes": registered}


@contextmanager
def simulated_fleet(local_server: dict[str, Any], project_id: str, **options: Any) -> Iterator[SimulatedFleet]:
    """A node simulator for the project, as the bootstrap admin; stopped, its nodes
    deregistered (their hostnames and selectors freed in the shared server) and closed after."""
    fleet = SimulatedFleet(local_server["server"], local_server["operator_token"], project_id, **options)
    try:
        yield fleet
    finally:
        fleet.stop()
        fleet.deregister_all()
        fleet.close()
