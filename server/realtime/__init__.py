"""Real-time layer: the /ws transport, the op dispatcher, the connection registry and fan-out, and (with REDIS_URL) the bus, typed notices, ordering and shared directories."""
