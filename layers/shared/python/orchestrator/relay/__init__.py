"""The event relay (SPEC §20, docs/event-relay.md): agents' event streams held by one asyncio
process per task instead of one Lambda invocation per node, fed by the event index."""
