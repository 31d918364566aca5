"""Network policies (SPEC §18): which nodes of a project a policy concerns, and the rules the
agent can enforce.

The rules are shaped to what plexd does with them (its ``internal/policy``): ``src`` and
``dst`` name a node by id, or ``*`` for any node (the agent resolves them to mesh addresses
from its peer list, so an address or CIDR would resolve to nothing and break its firewall
apply); ``port`` is one destination port, 0 for any; ``protocol`` is ``tcp``, ``udp`` or
``any`` (the agent's empty string: it skips a rule with any other protocol), and a port needs
``tcp`` or ``udp``; ``action`` is ``allow`` or ``deny``. The agent denies by default.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from orchestrator.domain.selectors import parse_selector

POLICY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ANY_NODE = "*"
MAX_PORT = 65_535
# 256 rules of at most ~200 bytes each: a policy item stays near 50 KB, far under DynamoDB's
# 400 KB, and a node's /state stays readable when several policies concern it.
MAX_RULES = 256

Protocol = Literal["tcp", "udp", "any"]
RuleAction = Literal["allow", "deny"]


def is_policy_id(value: str) -> bool:
    return bool(POLICY_ID.fullmatch(value))


def rule_endpoint_problem(value: str) -> str | None:
    """Why ``value`` cannot be a rule's ``src`` or ``dst`` (None when it can)."""
    if value == ANY_NODE:
        return None
    try:
        canonical = str(uuid.UUID(value))
    except ValueError:
        return "must be a node id or '*' (the agent resolves rule ends by node id, not by address)"
    if canonical != value:
        return "must be a node id in canonical form (lowercase, hyphenated) or '*'"
    return None


def rule_problem(src: str, dst: str, port: int, protocol: str) -> str | None:
    """Why a rule cannot be enforced by the agent (None when it can)."""
    for name, value in (("src", src), ("dst", dst)):
        problem = rule_endpoint_problem(value)
        if problem:
            return f"{name} {problem}"
    if not 0 <= port <= MAX_PORT:
        return f"port must be 0 (any) to {MAX_PORT}"
    if port and protocol == "any":
        return "a port needs protocol tcp or udp"
    return None


class PolicyRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    src: str
    dst: str
    port: int = 0
    protocol: Protocol = "any"
    action: RuleAction

    def for_agent(self) -> dict[str, Any]:
        """The rule as plexd's ``PolicyRule`` reads it (``any`` is its empty protocol)."""
        return {
            "src": self.src,
            "dst": self.dst,
            "port": self.port,
            "protocol": "" if self.protocol == "any" else self.protocol,
            "action": self.action,
        }


class Policy(BaseModel):
    """A project's policy: the rules for the nodes its selector matches (SPEC §7)."""

    model_config = ConfigDict(frozen=True)

    project_id: str
    id: str
    selector: str
    rules: tuple[PolicyRule, ...]
    version: int
    updated_at: datetime
    updated_by: str

    def concerns(self, labels: Mapping[str, str]) -> bool:
        return parse_selector(self.selector).matches(labels)

    def for_agent(self) -> dict[str, Any]:
        """The policy as ``GET /state`` carries it (plexd's ``Policy``: ``id, rules``)."""
        return {"id": self.id, "rules": [rule.for_agent() for rule in self.rules]}
