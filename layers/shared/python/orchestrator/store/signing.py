"""The deployment's signing-key rotation count: a small item read by every ``/state``, so a
container whose cached keyring is older than the last rotation fetches it again (the keyring
itself, with the seeds, stays in the secret store)."""

from __future__ import annotations

from datetime import datetime

from orchestrator.clock import rfc3339
from orchestrator.store import keys
from orchestrator.store.table import ConditionFailed, Table


class SigningStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def rotations(self) -> int:
        """The number of rotations published (0 before the first)."""
        item = self.table.get(keys.deployment_signing(), attributes=("rotations",))
        return int((item or {}).get("rotations", 0))

    def published(self, rotations: int, now: datetime) -> None:
        """Record that the keyring of rotation ``rotations`` is stored (never backwards)."""
        try:
            self.table.put(
                {
                    **keys.deployment_signing(),
                    "type": "signing_rotations",
                    "rotations": rotations,
                    "rotated_at": rfc3339(now),
                },
                condition="attribute_not_exists(PK) OR rotations < :n",
                values={":n": rotations},
            )
        except ConditionFailed:
            return  # a later rotation was published first
