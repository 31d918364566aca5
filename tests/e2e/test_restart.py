"""`make serve` stopped cleanly and started again keeps its Domains, nodes, node keys, tokens
and Executions; an Execution that was running when it stopped ends after the restart."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.e2e.conftest import bearer, project_with_nodes, start_server, stop_server

pytestmark = pytest.mark.e2e


def test_a_clean_restart_keeps_the_state(tmp_path: Path) -> None:
    # Given a server with a project, a node, a finished and a running Execution
    process, first = start_server(tmp_path)
    try:
        with httpx.Client(base_url=first["server"], timeout=30) as http:
            admin = bearer(first["operator_token"])
            fleet = project_with_nodes(http, admin, [("kept-01", {"env": "kept"}, ["restart-agent"])])
            node = fleet["nodes"][0]
            dispatch = f"/v1/projects/{fleet['project_id']}/executions:dispatch"
            body = {"action": "restart-agent", "node_id": node["id"], "timeout_seconds": 3}
            finished = http.post(dispatch, headers=admin, json=body | {"timeout_seconds": 60}).json()["id"]
            report = f"/v1/nodes/{node['id']}/executions/{finished}"
            output = {"inline": base64.b64encode(b"restarted ok\n").decode()}  # stored as a binary attribute
            done = http.post(report, headers=bearer(node["nsk"]), json={"status": "succeeded", "output": output})
            assert done.status_code == 200, done.text
            running = http.post(dispatch, headers=admin, json=body).json()["id"]
            # A secret sealed under the local KMS key, and the node's NSK sealed at registration
            secret = f"/v1/projects/{fleet['project_id']}/secrets/kept-secret"
            grants = {"node_ids": [node["id"]]}
            assert http.put(secret, headers=admin, json={"value": "kept value", "grants": grants}).status_code == 201
    finally:
        # When it is stopped cleanly and started again on the same state
        stop_server(process)
    assert (tmp_path / "state" / "table.jsonl").exists()
    process, second = start_server(tmp_path)
    try:
        with httpx.Client(base_url=second["server"], timeout=30) as http:
            # Then the demo tenant is the same one, and the old operator token still works
            assert (second["domain_id"], second["project_id"]) == (first["domain_id"], first["project_id"])
            admin = bearer(first["operator_token"])
            nodes = http.get(f"/v1/projects/{fleet['project_id']}/nodes", headers=admin)
            assert nodes.status_code == 200 and [n["id"] for n in nodes.json()["items"]] == [node["id"]]
            # The node's key still authenticates it
            beat = http.post(f"/v1/nodes/{node['id']}/heartbeat", headers=bearer(node["nsk"]), json={})
            assert beat.status_code == 200, beat.text
            # What the previous run sealed under KMS still opens: the node fetches and decrypts its secret
            fetched = http.get(f"/v1/nodes/{node['id']}/secrets/kept-secret", headers=bearer(node["nsk"]))
            assert fetched.status_code == 200, fetched.text
            sealed = fetched.json()
            aes = AESGCM(base64.b64decode(node["nsk"]))
            plain = aes.decrypt(base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ciphertext"]), None)
            assert plain == b"kept value"
            # The finished Execution reads as it ended; the running one ends (its deadline passed)
            read = f"/v1/projects/{fleet['project_id']}/executions/"
            kept = http.get(read + finished, headers=admin).json()
            assert kept["status"] == "succeeded"
            assert kept["targets"][0]["output_ref"]["inline_bytes"] == output["inline"]
            deadline = time.monotonic() + 30
            while (ended := http.get(read + running, headers=admin).json())["completed_at"] is None:
                assert time.monotonic() < deadline, ended
                time.sleep(0.5)
            assert ended["status"] == "timeout"
    finally:
        stop_server(process)


def test_fresh_forgets_the_saved_state(tmp_path: Path) -> None:
    process, first = start_server(tmp_path)
    stop_server(process)
    process, second = start_server(tmp_path, "--fresh")
    try:
        assert second["project_id"] != first["project_id"]
        with httpx.Client(base_url=second["server"], timeout=30) as http:
            gone = http.get(f"/v1/projects/{first['project_id']}/nodes", headers=bearer(second["operator_token"]))
            assert gone.status_code == 404
    finally:
        stop_server(process)
