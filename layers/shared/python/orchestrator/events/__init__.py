"""Events to nodes: signed envelopes and their SSE framing (SPEC §11)."""
