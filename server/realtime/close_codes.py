"""WebSocket close codes Podium uses (PROTOCOL §2): defined once, for the transport and shutdown."""
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # server shutting down
CLOSE_SLOW_CONSUMER = 4008  # outgoing queue overflow
CLOSE_UNAUTHORIZED = 4401  # bad or missing token, or no auth frame in time
CLOSE_RATE_LIMITED = 4429  # sustained rate-limit abuse
