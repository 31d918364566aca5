"""Action Orchestrator shared library: domain rules, data access and HTTP mapping."""
