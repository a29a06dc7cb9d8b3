"""The media workers' own credential (WORKER_SECRET, docs/RECORDING.md): a worker mints its
recorder token from it, and worker tokens verify with it alone."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from server.config.environment import ConfigError, Environment


@dataclass(frozen=True)
class WorkerSettings:
    worker_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))


def from_env(env: Environment, jwt_secret: str) -> dict:
    """WorkerSettings' fields from the environment: WORKER_SECRET (a generated dev secret when
    unset, outside production), which may not be ``jwt_secret``."""
    worker_secret = env.secret("WORKER_SECRET", "worker_secret")
    if worker_secret == jwt_secret:
        raise ConfigError("WORKER_SECRET must differ from JWT_SECRET")
    return dict(worker_secret=worker_secret)
