"""Agent releases end to end against the local server: a deployment admin publishes a binary
with plexctl, and a node downloads it the way plexd does (NSK bearer, then the 302)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import httpx
import pytest
import requests

from tests.e2e.conftest import bearer, problem, project_with_nodes
from tests.e2e.test_plexctl import Plexctl, private_file

pytestmark = pytest.mark.e2e

# What plexd's API client sends on every request.
AGENT_HEADERS = {"Accept": "application/json", "Accept-Encoding": "gzip", "User-Agent": "plexd/1.4.2"}


def as_go_downloads(server: str, path: str, nsk: str) -> requests.Response:
    """GET the artifact as Go's http.Client does: follow the 302, keeping Authorization only
    when the redirect stays on the same host (here 127.0.0.1, the moto server's port)."""
    first = requests.get(f"{server}{path}", headers={**AGENT_HEADERS, **bearer(nsk)}, allow_redirects=False, timeout=30)
    assert first.status_code == 302, first.text
    location = urljoin(server, first.headers["Location"])
    headers = dict(AGENT_HEADERS)
    if urlparse(location).hostname == urlparse(server).hostname:
        headers |= bearer(nsk)
    return requests.get(location, headers=headers, timeout=60)


def unique_version() -> str:
    return f"1.{os.getpid() % 1000}.{time.time_ns() % 1_000_000_000}"


def test_an_admin_publishes_with_plexctl_and_a_node_downloads_the_same_bytes(
    local_server: dict[str, Any], http: httpx.Client, tmp_path: Path
) -> None:
    server, token = local_server["server"], local_server["operator_token"]
    binary = tmp_path / "plexd"
    binary.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # several MiB: more than a Lambda may answer
    expected = hashlib.sha256(binary.read_bytes()).hexdigest()
    version = unique_version()

    # When the deployment's admin publishes it with plexctl
    plexctl = Plexctl(tmp_path, server=server, token_file=private_file(tmp_path / "token", token + "\n"))
    published = plexctl(
        "artifact", "publish", str(binary), "--version", version, "--os", "linux", "--arch", "amd64", "-o", "json"
    )
    # Then it is verified
    assert published.code == 0, published
    assert published.json()["status"] == "verified"
    assert published.json()["sha256"] == expected
    listed = plexctl("artifact", "list", "--all", "-o", "json")
    assert listed.code == 0, listed
    (item,) = [i for i in listed.json()["items"] if i["version"] == version]
    assert (item["os"], item["arch"], item["size"], item["status"]) == (
        "linux",
        "amd64",
        binary.stat().st_size,
        "verified",
    )
    table = plexctl("artifact", "list", "--all")
    assert expected in table.stdout

    # And a node of a fresh project downloads exactly those bytes
    admin = bearer(token)
    nsk = project_with_nodes(http, admin, [(f"upg-{time.time_ns()}", {}, [])])["nodes"][0]["nsk"]
    downloaded = as_go_downloads(server, f"/v1/artifacts/plexd/{version}/linux/amd64", nsk)
    assert downloaded.status_code == 200, downloaded.text
    assert hashlib.sha256(downloaded.content).hexdigest() == expected
    # As it does with requests' own redirect handling (Authorization dropped on another port)
    followed = requests.get(
        f"{server}/v1/artifacts/plexd/{version}/linux/amd64", headers={**AGENT_HEADERS, **bearer(nsk)}, timeout=60
    )
    assert hashlib.sha256(followed.content).hexdigest() == expected

    # And other platforms or versions are not there
    missing = http.get(f"/v1/artifacts/plexd/{version}/linux/arm64", headers={**AGENT_HEADERS, **bearer(nsk)})
    problem(missing, 404, "artifact_not_found")
    # And publishing it again is refused; the operator's token is no node key
    again = plexctl("artifact", "publish", str(binary), "--version", version, "--os", "linux", "--arch", "amd64")
    assert again.code == 1, again
    assert "artifact_exists" in again.stderr + again.stdout
    problem(http.get(f"/v1/artifacts/plexd/{version}/linux/amd64", headers=admin), 401, "nsk_revoked")


def test_an_upload_that_is_not_the_declared_binary_is_rejected(local_server: dict[str, Any], tmp_path: Path) -> None:
    # Given a declared checksum
    server, token = local_server["server"], local_server["operator_token"]
    version = unique_version()
    plexctl = Plexctl(tmp_path, server=server, token_file=private_file(tmp_path / "token", token + "\n"))
    admin = bearer(token)
    declared = requests.post(
        f"{server}/v1/artifacts/plexd/{version}/linux/amd64",
        headers=admin,
        json={"sha256": "0" * 64, "size": 5},
        timeout=30,
    )
    assert declared.status_code == 201, declared.text
    # When other bytes are uploaded to the URL
    assert requests.put(declared.json()["upload_url"], data=b"12345", timeout=30).status_code == 200
    # Then the publication is rejected and plexctl lists it so
    listed = plexctl("artifact", "list", "--all", "-o", "json")
    (item,) = [i for i in listed.json()["items"] if i["version"] == version]
    assert item["status"] == "rejected"
