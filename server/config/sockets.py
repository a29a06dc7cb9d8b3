"""WebSocket bounds (PROTOCOL §2, ARCHITECTURE principle 4): frame and content sizes, the
heartbeat, the auth deadline and the outgoing buffers. All but HEARTBEAT_S are fixed in code
(docs/CONFIGURATION.md "Bounds")."""
from __future__ import annotations

from dataclasses import dataclass

from server.config.environment import Environment


@dataclass(frozen=True)
class SocketSettings:
    max_frame_bytes: int = 64 * 1024
    max_content_bytes: int = 16 * 1024
    heartbeat_s: int = 25
    heartbeat_timeout_s: int = 20
    auth_timeout_s: float = 10.0
    outgoing_soft_bytes: int = 256 * 1024
    outgoing_max_bytes: int = 1024 * 1024
    # Kernel send buffer per WebSocket (Linux doubles it). Without it loopback autotuning lets
    # the kernel hold ~4 MB per slow reader on top of our own bounded queue.
    socket_sndbuf_bytes: int = 64 * 1024


def from_env(env: Environment) -> dict:
    """SocketSettings' fields from the environment."""
    return dict(heartbeat_s=env.integer("HEARTBEAT_S", 25))
