"""Several web processes (docs/SCALING.md): the Redis that carries notices between them."""
from __future__ import annotations

from dataclasses import dataclass

from server.config.environment import ConfigError, Environment


@dataclass(frozen=True)
class ScalingSettings:
    redis_url: str | None = None
    redis_prefix: str = "podium"
    redis_verify_tls: bool = True
    redis_max_connections: int = 16


def from_env(env: Environment) -> dict:
    """ScalingSettings' fields from the environment."""
    max_connections = env.integer("REDIS_MAX_CONNECTIONS", 16)
    if not 4 <= max_connections <= 1000:
        raise ConfigError("REDIS_MAX_CONNECTIONS must be from 4 to 1000")
    return dict(redis_url=env.optional("REDIS_URL"), redis_prefix=env.optional("REDIS_PREFIX") or "podium",
                redis_verify_tls=env.flag("REDIS_VERIFY_TLS", True), redis_max_connections=max_connections)
