"""The mesh at scale: AWS requests per registration and per ``/state`` call.

For a project of N nodes (default 1,000; ``--sizes``), the script deploys the template's
resources in moto (in-process), seeds N - 1 active nodes straight into the table in the
shape registration writes (node item and mesh address claim with its peer entry, the
project's ``mesh_version``), then calls the real handlers in-process with API Gateway
events and counts the requests made on the library's DynamoDB and S3 clients (a botocore
``before-call`` hook, as ``bench/dispatch.py`` counts):

* **register** - the N-th node registers (``RegisterNodeFunction``): token read, address
  counter, the registration transaction (which carries the ``mesh_version`` bump and the
  ``peer_added`` feed event), then the peers of its answer - as the first reader of the
  new version it builds the snapshot (the claims Query, a second version read, S3 PUT).
* **state (warm)** - ``GET /state`` in a container that holds the version;
* **state (cold)** - the same call in a container that does not (its memory cleared): one
  S3 GET more;
* **endpoint (same)** - the agent's 60 s refresh of an unchanged endpoint;
* **endpoint (new)**, **rotate** - a changed endpoint and a key rotation (one transaction
  each, then the peers of the answer from the writer's own build).

The floor of a registration is the per-node minimum: the token read, the address counter
and the one transaction that holds the node, its claims and the feed event (3 requests).
The floor of ``/state`` is the node's credential read, its open invocations and the
``mesh_version`` read (3); of an unchanged endpoint the credential read and the version
read of its answer (2); of a new endpoint or a rotation those and the one transaction (3).
ratio = requests / floor. The script prints figures and never
asserts.

Run: ``PYTHONPATH=layers/shared/python:tools .venv/bin/python bench/mesh.py --sizes 1000``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets as random
import sys
import time
from datetime import UTC, datetime
from typing import Any

from moto import mock_aws
from offline import Counting

from orchestrator import aws, secrets
from orchestrator.domain.credentials import mint_enrollment_token, mint_node_secret_key, secret_hash
from orchestrator.domain.models import Domain, EnrollmentToken, Node, Project
from orchestrator.services import mesh
from orchestrator.services.context import context_for
from orchestrator.services.nodes import mesh_ip
from orchestrator.settings import get_settings
from orchestrator.store import keys
from orchestrator.store.nodes import _mesh_claim_item, _node_item
from orchestrator_local import moto_patches
from orchestrator_local.resources import deploy
from orchestrator_local.runtime import InProcessRuntime

FLOORS = {"register": 3, "state (warm)": 3, "state (cold)": 3, "endpoint (same)": 2, "endpoint (new)": 3, "rotate": 3}


def public_key() -> str:
    return base64.b64encode(random.token_bytes(32)).decode()


def event(method: str, resource: str, path: str, params: dict[str, str] | None, *, body: Any, token: str | None) -> Any:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "requestId": "bench",
            "stage": "dev",
            "path": "/dev" + path,
            "httpMethod": method,
            "resourcePath": resource,
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def seed(size: int) -> tuple[str, str]:
    """A project of ``size`` - 1 active nodes and an enrollment token for one more."""
    ctx = context_for("bench")
    now = datetime.now(UTC)
    ctx.tenancy.create_domain(
        Domain(id="d", name="bench", live_execution_ceiling=10, created_at=now), admin_subject="bench"
    )
    ctx.tenancy.create_project(Project(id="p", domain_id="d", name="bench", created_at=now))
    items: list[dict[str, Any]] = []
    for index in range(1, size):
        node = Node(
            id=f"n-{index:05d}",
            project_id="p",
            domain_id="d",
            hostname=f"h{index}",
            mesh_ip=mesh_ip(index),
            public_key=public_key(),
            endpoint=f"198.51.100.{index % 250 + 1}:51820",
            registered_at=now,
            updated_at=now,
        )
        items += [{**_node_item(node), "nsk_hash": secret_hash(mint_node_secret_key())}, _mesh_claim_item(node)]
    ctx.table.batch_put(items)
    ctx.table.update(keys.project("p"), update="SET mesh_version = :v", values={":v": size - 1})
    ctx.table.update(keys.project_mesh_counter("p"), update="SET seq = :v", values={":v": size - 1})
    token = mint_enrollment_token()
    ctx.nodes.put_enrollment_token(
        EnrollmentToken(
            token_hash=secret_hash(token),
            project_id="p",
            domain_id="d",
            created_by="bench",
            created_at=now,
            expires_at=now.replace(year=now.year + 1),
        )
    )
    return "p", token


def measure(size: int) -> list[dict[str, Any]]:
    _, token = seed(size)
    runtime, counting = InProcessRuntime(), Counting(("dynamodb", "s3"))
    rows: list[dict[str, Any]] = []

    def call(name: str, function: str, request: Any, *, cold: bool = False) -> Any:
        if cold:
            mesh.CACHE.clear()
        counting.take()
        started = time.perf_counter()
        response = runtime.invoke(function, request)
        elapsed = time.perf_counter() - started
        assert response["statusCode"] < 300, response
        made = counting.take()
        rows.append({"size": size, "call": name, "requests": made, "ms": elapsed * 1000})
        return json.loads(response["body"]) if response.get("body") else None

    body = {"token": token, "hostname": "bench-new", "public_key": public_key()}
    registration = event("POST", "/v1/register", "/v1/register", None, body=body, token=None)
    registered = call("register", "RegisterNodeFunction", registration)
    node_id, nsk = registered["node_id"], registered["node_secret_key"]
    assert len(registered["peers"]) == size - 1
    state = event(
        "GET", "/v1/nodes/{node_id}/state", f"/v1/nodes/{node_id}/state", {"node_id": node_id}, body=None, token=nsk
    )
    call("state (warm)", "NodeStateFunction", state)
    call("state (cold)", "NodeStateFunction", state, cold=True)
    resource, path = "/v1/nodes/{node_id}/endpoint", f"/v1/nodes/{node_id}/endpoint"
    moved = {"public_endpoint": "203.0.113.10:51820", "nat_type": "full_cone"}
    call(
        "endpoint (new)",
        "ReportEndpointFunction",
        event("PUT", resource, path, {"node_id": node_id}, body=moved, token=nsk),
    )
    call(
        "endpoint (same)",
        "ReportEndpointFunction",
        event("PUT", resource, path, {"node_id": node_id}, body=moved, token=nsk),
    )
    rotation = {"node_id": node_id, "new_public_key": public_key()}
    call(
        "rotate",
        "RotateNodeKeyFunction",
        event("POST", "/v1/keys/rotate", "/v1/keys/rotate", None, body=rotation, token=nsk),
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    moto_patches.install()
    for size in (int(s) for s in args.sizes.split(",")):
        with mock_aws():
            os.environ.update(deploy(prefix="bench").environment())
            get_settings.cache_clear()
            aws.reset_clients()
            secrets.clear_cache()
            mesh.CACHE.clear()
            rows += measure(size)
    if args.json:
        print(json.dumps([r | {"requests": dict(r["requests"])} for r in rows], indent=2))
        return 0
    print("Mesh requests per call (moto in-process; requests on the library's DynamoDB and S3 clients)")
    print(f"{'nodes':>6}  {'call':<16} {'requests':>8} {'floor':>5} {'ratio':>6} {'ms':>8}  breakdown")
    for row in rows:
        total = sum(row["requests"].values())
        floor = FLOORS[row["call"]]
        breakdown = ", ".join(f"{name} {count}" for name, count in sorted(row["requests"].items()))
        print(
            f"{row['size']:>6}  {row['call']:<16} {total:>8} {floor:>5} {total / floor:>6.2f} {row['ms']:>8.1f}  "
            f"{breakdown}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
