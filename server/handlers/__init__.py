"""HTTP and WebSocket handlers, grouped by feature."""
