"""Every key shape of the single table, in one place (see docs/table-design.md).

Attribute names: ``PK``/``SK`` (table), ``GSI1PK``/``GSI1SK`` (GSI1, generic
"children of a parent, in creation order"), ``GSI2PK``/``GSI2SK`` and
``GSI3PK``/``GSI3SK`` (filtered listings, used by executions), ``GSI5PK``/``GSI5SK``
(the event index: every node and feed event by minute and shard, read by the event relay),
``ttl`` (epoch seconds, DynamoDB TTL).
"""

from __future__ import annotations

from typing import TypedDict

from orchestrator.domain.event_index import index_bucket


class Key(TypedDict):
    PK: str
    SK: str


def domain(domain_id: str) -> Key:
    return {"PK": f"DOMAIN#{domain_id}", "SK": "DOMAIN"}


def domain_member(domain_id: str, subject: str) -> Key:
    return {"PK": f"DOMAIN#{domain_id}", "SK": f"MEMBER#{subject}"}


def project(project_id: str) -> Key:
    return {"PK": f"PROJECT#{project_id}", "SK": "PROJECT"}


def domain_projects_gsi1(domain_id: str) -> str:
    return f"DOMAIN#{domain_id}#PROJECTS"


def project_member(project_id: str, subject: str) -> Key:
    return {"PK": f"PROJECT#{project_id}", "SK": f"MEMBER#{subject}"}


def hostname_claim(project_id: str, hostname: str) -> Key:
    return {"PK": f"PROJECT#{project_id}", "SK": f"HOSTNAME#{hostname.lower()}"}


def node(node_id: str) -> Key:
    return {"PK": f"NODE#{node_id}", "SK": "NODE"}


def project_nodes_gsi1(project_id: str) -> str:
    return f"PROJECT#{project_id}#NODES"


def nsk_index(nsk_hash: str) -> Key:
    return {"PK": f"NSK#{nsk_hash}", "SK": "NSK"}


def enrollment_token(token_hash: str) -> Key:
    return {"PK": f"ENROLL#{token_hash}", "SK": "ENROLL"}


def mesh_ip_claim(project_id: str, mesh_ip: str) -> Key:
    """One per address in use in the project's mesh: no two nodes can hold it. It also holds
    what the node's peers need of it (public key, key version, endpoint): the project's peer
    list is one strongly consistent Query of its partition."""
    return {"PK": f"PROJECT#{project_id}", "SK": f"{MESH_IP_CLAIM_PREFIX}{mesh_ip}"}


MESH_IP_CLAIM_PREFIX = "MESHIP#"


def mesh_snapshot_object(project_id: str, mesh_version: int) -> str:
    """The S3 key of a project's peer snapshot at ``mesh_version`` (docs/node-state-plane.md §1):
    written once per version, never changed."""
    return f"mesh/{project_id}/{mesh_version:012d}.json.gz"


SECRET_PREFIX = "SECRET#"


TELEMETRY_PREFIX = "telemetry/"


def telemetry_hour_prefix(kind: str, project_id: str, date: str, hour: int) -> str:
    """Every node's ``kind`` records of a project's hour (``date`` ``YYYY-MM-DD``, UTC): what
    the Glue tables project as partitions (``project``, ``date``, ``hour``). The delivery
    stream writes them (``TelemetryStream``'s prefix in ``template.yaml``)."""
    return f"{TELEMETRY_PREFIX}{kind}/project={project_id}/date={date}/hour={hour:02d}/"


def telemetry_node_prefix(kind: str, project_id: str, node_id: str, date: str, hour: int) -> str:
    """One node's ``kind`` records of an hour: the objects a node's read lists."""
    return f"{telemetry_hour_prefix(kind, project_id, date, hour)}node={node_id}/"


def telemetry_budget(node_id: str, minute: str) -> Key:
    """The telemetry bytes a node sent in a minute (``YYYY-MM-DDTHH:MM``), expiring soon after."""
    return {"PK": f"NODE#{node_id}", "SK": f"TELEMETRY#{minute}"}


def project_secret(project_id: str, key: str) -> Key:
    """A project secret (its current version), listed by name under the project."""
    return {"PK": f"PROJECT#{project_id}", "SK": f"{SECRET_PREFIX}{key}"}


def project_partition(project_id: str) -> str:
    return f"PROJECT#{project_id}"


def project_mesh_counter(project_id: str) -> Key:
    return {"PK": f"PROJECT#{project_id}", "SK": "COUNTER#MESH"}


# What a node reports (SPEC §18): report entries by key, drift reports by id (UUIDv7).
REPORT_PREFIX = "REPORT#"
DRIFT_PREFIX = "DRIFT#"


def node_report(node_id: str, key: str) -> Key:
    return {"PK": f"NODE#{node_id}", "SK": f"{REPORT_PREFIX}{key}"}


def node_reports_gsi1(node_id: str) -> str:
    """GSI1 partition of a node's report entries; the sort key is a UUIDv7 minted per write,
    so the newest write sorts last."""
    return f"NODE#{node_id}#REPORTS"


def node_drift(node_id: str, drift_id: str) -> Key:
    return {"PK": f"NODE#{node_id}", "SK": f"{DRIFT_PREFIX}{drift_id}"}


def deployment_signing() -> Key:
    """How many times the deployment's signing key was rotated (no key material)."""
    return {"PK": "DEPLOYMENT", "SK": "SIGNING"}


# Feeds: events that concern many nodes, written once and merged into each node's stream at
# delivery (docs/node-state-plane.md §3). One per project, one for the deployment.
DEPLOYMENT_FEED = "FEED#DEPLOYMENT"


def project_feed_partition(project_id: str) -> str:
    return f"PROJECT#{project_id}#FEED"


def feed_event(partition: str, event_id: str) -> Key:
    return {"PK": partition, "SK": f"EVENT#{event_id}"}


# Executions ----------------------------------------------------------------------
COUNTER_SHARDS = 8


def execution(execution_id: str) -> Key:
    return {"PK": f"EXEC#{execution_id}", "SK": "EXEC"}


# Sort-key prefixes of an Execution's partition (queried with begins_with).
TARGET_PREFIX = "TARGET#"
COUNTER_PREFIX = "COUNTER#"
AUDIT_PREFIX = "AUDIT#"
EVENT_PREFIX = "EVENT#"
EVENTS_END = "EVENT$"  # sorts right after every "EVENT#..." key


def execution_partition(execution_id: str) -> str:
    """The partition of an Execution's item, targets, counter shards and audit events."""
    return execution(execution_id)["PK"]


def node_partition(node_id: str) -> str:
    """The partition of a node's item and event stream."""
    return node(node_id)["PK"]


def target(execution_id: str, node_id: str) -> Key:
    return {"PK": f"EXEC#{execution_id}", "SK": f"TARGET#{node_id}"}


def counter_shard(execution_id: str, shard: int) -> Key:
    return {"PK": f"EXEC#{execution_id}", "SK": f"COUNTER#{shard:02d}"}


def shard_of(node_id: str) -> int:
    """Stable shard of a node's counter deltas (spreads one Execution's writes)."""
    return sum(node_id.encode()) % COUNTER_SHARDS


def project_executions_gsi1(project_id: str) -> str:
    return f"PROJECT#{project_id}#EXECS"


def project_status_gsi2(project_id: str, status: str) -> str:
    return f"PROJECT#{project_id}#STATUS#{status}"


def project_action_gsi3(project_id: str, action: str) -> str:
    return f"PROJECT#{project_id}#ACTION#{action}"


def project_action_status_gsi4(project_id: str, action: str, status: str) -> str:
    return f"PROJECT#{project_id}#ACTION#{action}#STATUS#{status}"


def node_open_targets_gsi2(node_id: str) -> str:
    """Sparse: only non-terminal targets released to their node carry it (a target held back
    by rate control gets it when released)."""
    return f"NODE#{node_id}#OPEN"


def node_event(node_id: str, event_id: str) -> Key:
    return {"PK": f"NODE#{node_id}", "SK": f"EVENT#{event_id}"}


EVENT_INDEX = "GSI5"


def event_index_partition(minute: str, shard: int) -> str:
    """GSI5 partition of the events minted in ``minute`` (yyyymmddHHMM) filed under ``shard``."""
    return f"EVENTS#{minute}#{shard}"


def event_index_keys(event_id: str, shards: int) -> dict[str, str]:
    """The GSI5 attributes of an event item (none when events are not indexed)."""
    bucket = index_bucket(event_id, shards)
    if bucket is None:
        return {}
    return {"GSI5PK": event_index_partition(*bucket), "GSI5SK": event_id}


def hook_baseline(project_id: str, hook: str) -> Key:
    return {"PK": f"PROJECT#{project_id}", "SK": f"BASELINE#{hook}"}


# Policies live in their project's partition (one Query reads them all); a node's data entries
# in the node's (one Query reads them all, beside its item and event stream).
POLICY_PREFIX = "POLICY#"
DATA_PREFIX = "DATA#"


def policy(project_id: str, policy_id: str) -> Key:
    return {"PK": f"PROJECT#{project_id}", "SK": f"{POLICY_PREFIX}{policy_id}"}


def node_data(node_id: str, key: str) -> Key:
    return {"PK": f"NODE#{node_id}", "SK": f"{DATA_PREFIX}{key}"}


# Admissions: one marker per Execution from the transaction that took its Domain slot until
# its workflow is recorded as started; what is left behind is a dispatch that died between.
ADMISSION_SHARDS = 4


def admission(execution_id: str) -> Key:
    return {"PK": f"ADMISSION#{sum(execution_id.encode()) % ADMISSION_SHARDS}", "SK": f"EXEC#{execution_id}"}


def admission_partitions() -> list[str]:
    return [f"ADMISSION#{shard}" for shard in range(ADMISSION_SHARDS)]


def audit_event(execution_id: str, event_id: str) -> Key:
    return {"PK": f"EXEC#{execution_id}", "SK": f"AUDIT#{event_id}"}


# Release artifacts (SPEC §19): one partition per artifact name (a handful of items a release),
# sorted by version string, then platform. The bytes live in the artifact bucket under a key
# that names the declared SHA-256: an upload to an older declaration's key is recognisably stale.
ARTIFACT_OBJECT_PREFIX = "plexd/"


def artifacts_partition(name: str) -> str:
    return f"ARTIFACTS#{name}"


def artifact(name: str, version: str, os: str, arch: str) -> Key:
    return {"PK": artifacts_partition(name), "SK": f"{version}#{os}#{arch}"}


def artifact_object(name: str, version: str, os: str, arch: str, sha256: str) -> str:
    """The S3 key of an artifact's bytes (``plexd/<version>/<os>/<arch>/<sha256>``)."""
    return f"{name}/{version}/{os}/{arch}/{sha256}"


def parse_artifact_object(key: str) -> tuple[str, str, str, str, str] | None:
    """``(name, version, os, arch, sha256)`` of an artifact object key, or None for any other."""
    parts = key.split("/")
    if len(parts) != 5 or not all(parts):
        return None
    name, version, os, arch, sha256 = parts
    return name, version, os, arch, sha256
