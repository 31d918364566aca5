"""Network policies (SPEC §18): admins write, viewers read. Each change is one transaction of
the policy item and ONE ``policy_updated`` event in the project feed, delivered to the nodes
the policy concerned before or after the change (its old selector or its new one); the agent
answers it by pulling ``/state`` (docs/node-state-plane.md §3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.domain.feed import Audience, FeedEvent
from orchestrator.domain.models import Permission
from orchestrator.domain.policies import Policy, PolicyRule
from orchestrator.domain.selectors import parse_selector
from orchestrator.errors import PolicyConflict, PolicyNotFound
from orchestrator.services.access import authorize_project
from orchestrator.services.context import Context
from orchestrator.store.feeds import project_feed
from orchestrator.store.policies import PolicyChanged

POLICY_UPDATED = "policy_updated"
WRITE_ATTEMPTS = 3  # re-read and retry when another admin's write came first


@dataclass(frozen=True)
class PolicyWrite:
    policy: Policy
    created: bool


def put_policy(
    ctx: Context, subject: str, project_id: str, policy_id: str, *, selector: str, rules: Sequence[PolicyRule]
) -> PolicyWrite:
    """Create the policy (version 1) or replace it (version + 1). Project admins only. A
    malformed selector is 400 ``malformed_selector`` before anything else."""
    parse_selector(selector)
    authorize_project(ctx.tenancy, subject, project_id, Permission.ADMIN)
    for _ in range(WRITE_ATTEMPTS):
        current = ctx.policies.get(project_id, policy_id)
        now = ctx.clock.now()
        policy = Policy(
            project_id=project_id,
            id=policy_id,
            selector=selector,
            rules=tuple(rules),
            version=(current.version if current else 0) + 1,
            updated_at=now,
            updated_by=subject,
        )
        event = _policy_event(ctx, current, policy, policy.version, deleted=False)
        try:
            ctx.policies.put(
                policy,
                previous_version=current.version if current else None,
                with_ops=[ctx.feeds.append_op(project_feed(project_id), event, now)],
            )
        except PolicyChanged:
            continue
        return PolicyWrite(policy, created=current is None)
    raise PolicyConflict(f"Policy {policy_id} kept changing concurrently; retry.")


def delete_policy(ctx: Context, subject: str, project_id: str, policy_id: str) -> None:
    """Delete the policy (404 ``policy_not_found`` when absent). Project admins only."""
    authorize_project(ctx.tenancy, subject, project_id, Permission.ADMIN)
    for _ in range(WRITE_ATTEMPTS):
        current = ctx.policies.get(project_id, policy_id)
        if current is None:
            raise PolicyNotFound(f"Policy {policy_id} does not exist in this project.")
        now = ctx.clock.now()
        event = _policy_event(ctx, current, None, current.version + 1, deleted=True)
        try:
            ctx.policies.delete(
                project_id,
                policy_id,
                version=current.version,
                with_ops=[ctx.feeds.append_op(project_feed(project_id), event, now)],
            )
        except PolicyChanged:
            continue
        return
    raise PolicyConflict(f"Policy {policy_id} kept changing concurrently; retry.")


def get_policy(ctx: Context, subject: str, project_id: str, policy_id: str) -> Policy:
    authorize_project(ctx.tenancy, subject, project_id, Permission.READ)
    policy = ctx.policies.get(project_id, policy_id)
    if policy is None:
        raise PolicyNotFound(f"Policy {policy_id} does not exist in this project.")
    return policy


def list_policies(
    ctx: Context, subject: str, project_id: str, *, limit: int, start_key: dict[str, Any] | None
) -> tuple[list[Policy], dict[str, Any] | None]:
    authorize_project(ctx.tenancy, subject, project_id, Permission.READ)
    return ctx.policies.list_policies(project_id, limit=limit, start_key=start_key)


def _policy_event(
    ctx: Context, before: Policy | None, after: Policy | None, version: int, *, deleted: bool
) -> FeedEvent:
    """The one feed event of a change. plexd ignores the payload and reconciles from
    ``/state``, so it names the policy and its version, never the rules."""
    policy = after or before
    assert policy is not None
    selectors = tuple(dict.fromkeys(p.selector for p in (before, after) if p is not None))
    fields = {"policy_id": policy.id, "version": version, "deleted": deleted}
    return FeedEvent.new(
        ctx.ids.new_id(), POLICY_UPDATED, ctx.clock.now(), fields, audience=Audience(selectors=selectors)
    )


def node_policies(ctx: Context, project_id: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    """The project's policies whose selector matches ``labels``, as ``/state`` carries them."""
    return [p.for_agent() for p in ctx.policies.all_policies(project_id) if p.concerns(labels)]
