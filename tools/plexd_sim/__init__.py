"""A node simulator that speaks the ``plexd`` agent's wire format (SPEC §16).

Library first: :class:`SimulatedFleet` enrolls nodes, follows their signed
event streams, answers action requests, sends telemetry batches at the agent's
cadence (:mod:`plexd_sim.telemetry`) and records everything it saw;
:class:`EnvelopeVerifier` is the receiving side of SPEC §11 on its own.
``python -m plexd_sim --help`` runs a fleet from the command line.
"""

from plexd_sim.mesh import MeshSent, NodeMesh, Peer
from plexd_sim.simulator import (
    ActionRequest,
    Activity,
    CallbackResponse,
    CallbackStyle,
    HeartbeatSent,
    NodeProblem,
    Outcome,
    ReceivedEvent,
    SimulatedFleet,
    SimulatedNode,
    SimulatorError,
    StateSent,
    VerificationFailure,
    decrypt_secret,
)
from plexd_sim.telemetry import AGENT_CADENCE, Cadence, TelemetryOptions, TelemetrySent
from plexd_sim.verifier import EnvelopeRejected, EnvelopeVerifier, VerifiedEvent, load_public_key

__all__ = [
    "AGENT_CADENCE",
    "ActionRequest",
    "Activity",
    "Cadence",
    "CallbackResponse",
    "CallbackStyle",
    "EnvelopeRejected",
    "EnvelopeVerifier",
    "HeartbeatSent",
    "MeshSent",
    "NodeMesh",
    "NodeProblem",
    "Outcome",
    "Peer",
    "ReceivedEvent",
    "SimulatedFleet",
    "SimulatedNode",
    "SimulatorError",
    "StateSent",
    "TelemetryOptions",
    "TelemetrySent",
    "VerificationFailure",
    "VerifiedEvent",
    "decrypt_secret",
    "load_public_key",
]
