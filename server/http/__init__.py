"""HTTP transport: the base handler every feature's handlers extend, health and metrics, the static web client."""
