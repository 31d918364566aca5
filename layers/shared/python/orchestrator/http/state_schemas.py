"""Request models and projections of the node state plane's operator routes (SPEC §18):
policies and node data entries."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, StrictInt, field_validator, model_validator

from orchestrator.clock import rfc3339
from orchestrator.domain.node_data import CONTENT_TYPE, DATA_KEY, MAX_PAYLOAD_BYTES, is_data_key
from orchestrator.domain.policies import (
    MAX_PORT,
    MAX_RULES,
    POLICY_ID,
    Policy,
    PolicyRule,
    Protocol,
    RuleAction,
    is_policy_id,
    rule_problem,
)
from orchestrator.errors import InvalidParameter
from orchestrator.events.envelope import go_json
from orchestrator.http.schemas import OperatorBody

RULE_END = "A node id of the project (canonical UUID) or `*` for any node; plexd resolves rule ends by node id."


class PolicyRuleIn(OperatorBody):
    """One rule, as the agent enforces it (else 400 `invalid_body` naming the field)."""

    model_config = ConfigDict(title="PolicyRule")

    src: Annotated[str, Field(min_length=1, max_length=36)] = Field(description=RULE_END, examples=["*"])
    dst: Annotated[str, Field(min_length=1, max_length=36)] = Field(description=RULE_END, examples=["*"])
    port: Annotated[StrictInt, Field(ge=0, le=MAX_PORT)] = Field(
        0, description="Destination port; 0 is any port. A port needs `protocol` `tcp` or `udp`."
    )
    protocol: Protocol = Field("any", description="`tcp`, `udp` or `any` (served to the agent as its empty protocol).")
    action: RuleAction

    @model_validator(mode="after")
    def _enforceable(self) -> PolicyRuleIn:
        problem = rule_problem(self.src, self.dst, self.port, self.protocol)
        if problem:
            raise ValueError(problem)
        return self

    def to_domain(self) -> PolicyRule:
        return PolicyRule(src=self.src, dst=self.dst, port=self.port, protocol=self.protocol, action=self.action)


class PolicyRequest(OperatorBody):
    """The whole policy: it replaces the stored one (unknown fields are refused)."""

    selector: Annotated[str, Field(min_length=1, max_length=1024)] = Field(
        description="Label selector (SPEC §7) of the nodes the policy concerns; malformed → 400 `malformed_selector`"
        " with the 0-based `position`.",
        examples=["env=prod,role in (web,api)"],
    )
    rules: Annotated[list[PolicyRuleIn], Field(max_length=MAX_RULES)] = Field(
        description=f"At most {MAX_RULES} rules; the agent denies what no `allow` rule permits."
    )

    def domain_rules(self) -> list[PolicyRule]:
        return [rule.to_domain() for rule in self.rules]


class NodeDataRequest(OperatorBody):
    """One data entry for the node (unknown fields are refused)."""

    content_type: Annotated[str, Field(max_length=255, pattern=CONTENT_TYPE.pattern)] = Field(
        description="A media type, e.g. `application/json`.", examples=["application/json"]
    )
    payload: Any = Field(
        description=f"Any JSON value, at most {MAX_PAYLOAD_BYTES // 1024} KiB as the agent's JSON encodes it. All of a"
        " node's entries together must fit in one `node_state_updated` event (else 422 `node_data_too_large`).",
        examples=[{"region": "eu-1"}],
    )

    @field_validator("payload")
    @classmethod
    def _bounded(cls, payload: Any) -> Any:
        size = len(go_json(payload).encode())
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload encodes to {size} bytes of JSON; at most {MAX_PAYLOAD_BYTES}")
        return payload


def checked_policy_id(policy_id: str) -> str:
    """A policy id from the path (400 ``invalid_parameter``)."""
    if not is_policy_id(policy_id):
        raise InvalidParameter(f"The policy id must match {POLICY_ID.pattern}.")
    return policy_id


def checked_data_key(key: str) -> str:
    """A data entry key from the path (400 ``invalid_parameter``): it names a file on the node."""
    if not is_data_key(key):
        raise InvalidParameter(f"The data key must match {DATA_KEY.pattern}.")
    return key


def policy_view(policy: Policy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "project_id": policy.project_id,
        "selector": policy.selector,
        "rules": [rule.model_dump() for rule in policy.rules],
        "version": policy.version,
        "updated_at": rfc3339(policy.updated_at),
        "updated_by": f"user:{policy.updated_by}",
    }
