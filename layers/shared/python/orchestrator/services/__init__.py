"""Use cases: orchestrate domain rules and the store for one operation each."""
