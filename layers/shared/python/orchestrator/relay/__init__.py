"""The event relay: agents' event streams served from one process, every other request forwarded."""
