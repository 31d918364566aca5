"""``plexctl``: the operator CLI of the Action Orchestrator (SPEC §15).

A thin client over the operator API: every invariant is the server's; the CLI
validates what it can locally (exit 2 before any request), maps Problem+JSON
errors to a fixed exit-code table (:mod:`plexctl.errors`) and renders results
as tables, JSON or YAML.
"""

__version__ = "0.1.0"
