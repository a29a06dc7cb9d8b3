"""Real-time layer: wire codec, connection registry, bounded outgoing queues, rate limits."""
