"""AWS requests of one policy change, by the number of nodes in the project.

For each size (default 10, 1,000 and 10,000 nodes, ``--sizes`` to change), a fresh moto
account gets the template's resources, a Domain and Project, and N active nodes (half of
them labelled ``tier=web``) written directly in the item shape registration writes. Then,
through the use cases the handlers call, it counts the DynamoDB requests of: creating a
policy for ``tier=web``, replacing it with ``tier=db`` (its event concerns both halves),
deleting it, and one node's ``/state`` (which now reads the project's policies and the
node's data entries). A policy change must cost the same at every size: one event in the
project feed, whoever it concerns (docs/node-state-plane.md §3). Measured, never asserted.

Run: ``PYTHONPATH=layers/shared/python:tools .venv/bin/python bench/policies.py``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from moto import mock_aws
from offline import Counting

from orchestrator import aws, secrets
from orchestrator.domain.models import Node
from orchestrator.domain.policies import PolicyRule
from orchestrator.services import node_feed, policies, tenancy
from orchestrator.services.context import Context, context_for
from orchestrator.settings import get_settings
from orchestrator.store.nodes import _node_item
from orchestrator_local import moto_patches
from orchestrator_local.resources import deploy

ADMIN = "bench-admin"
RULES = [PolicyRule(src="*", dst="*", port=443, protocol="tcp", action="allow")]


def seed(ctx: Context, size: int) -> tuple[str, Node]:
    domain = tenancy.create_domain(ctx, ADMIN, name="bench", live_execution_ceiling=None)
    project = tenancy.create_project(ctx, ADMIN, domain.id, name="bench")
    now = datetime.now(UTC)
    nodes = [
        Node(
            id=ctx.ids.new_id(),
            project_id=project.id,
            domain_id=domain.id,
            hostname=f"h{index}",
            mesh_ip="10.100.0.1",
            labels={"tier": "web" if index % 2 == 0 else "db"},
            registered_at=now,
            updated_at=now,
        )
        for index in range(size)
    ]
    ctx.table.batch_put([_node_item(node) for node in nodes])
    return project.id, nodes[0]


def measure(size: int) -> dict[str, Any]:
    with mock_aws():
        os.environ.update(deploy(prefix="bench").environment())
        get_settings.cache_clear()
        aws.reset_clients()
        secrets.clear_cache()
        ctx, counting = context_for("bench"), Counting()
        project_id, node = seed(ctx, size)
        counting.take()
        steps: dict[str, Counter[str]] = {}
        policies.put_policy(ctx, ADMIN, project_id, "web", selector="tier=web", rules=RULES)
        steps["create"] = counting.take()
        policies.put_policy(ctx, ADMIN, project_id, "web", selector="tier=db", rules=RULES)
        steps["replace"] = counting.take()
        policies.delete_policy(ctx, ADMIN, project_id, "web")
        steps["delete"] = counting.take()
        node_feed.node_state(ctx, node)
        steps["state"] = counting.take()
    return {"nodes": size, **{name: dict(calls) for name, calls in steps.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    moto_patches.install()
    results = [measure(int(size)) for size in args.sizes.split(",")]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("DynamoDB requests per step (moto in-process), by nodes in the project")
    for result in results:
        cells = [
            f"{step} {sum(calls.values())} ({', '.join(f'{k} {v}' for k, v in sorted(calls.items()))})"
            for step, calls in result.items()
            if step != "nodes"
        ]
        print(f"{result['nodes']:>6} nodes: " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
