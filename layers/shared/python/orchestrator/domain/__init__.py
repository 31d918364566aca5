"""Pure rules of the orchestrator: no I/O, no boto3."""
