"""The worker's configuration, read once from the environment (docs/RECORDING.md, "Running
workers")."""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from server.auth import mint_worker_token


class WorkerConfigError(RuntimeError):
    """The environment does not describe a startable worker."""


@dataclass(frozen=True)
class WorkerConfig:
    server_url: str  # http(s)://host[:port] of a web process
    worker_id: str  # stable across restarts, so a restarted worker reclaims its recordings
    capacity: int
    work_dir: Path
    token: str | None = None  # WORKER_TOKEN; else minted from jwt_secret on every connect
    jwt_secret: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    name: str = "Recorder"
    keep_files: bool = False
    loopback_only: bool = False  # tests: gather ICE candidates on 127.0.0.1 only
    shutdown_s: float = 25.0

    @property
    def ws_url(self) -> str:
        return self.server_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/ws"

    def current_token(self) -> str:
        if self.token:
            return self.token
        return mint_worker_token(self.jwt_secret, self.name, 24 * 3600, self.jwt_audience, self.jwt_issuer)


def load_worker_config(env: dict[str, str] | None = None) -> WorkerConfig:
    env = dict(os.environ if env is None else env)
    production = env.get("PODIUM_ENV", "").lower() == "production"
    token = env.get("WORKER_TOKEN") or None
    secret = env.get("JWT_SECRET") or None
    if token is None and secret is None:
        if production:
            raise WorkerConfigError("set WORKER_TOKEN or JWT_SECRET for the worker")
        secrets_file = Path(env.get("DATA_DIR", "data")) / "secrets.json"
        try:  # development: the secret the web process generated on its first start
            secret = json.loads(secrets_file.read_text())["jwt_secret"]
        except (OSError, ValueError, KeyError):
            raise WorkerConfigError(f"no WORKER_TOKEN or JWT_SECRET, and no {secrets_file} yet "
                                    "(start the web process once first)") from None
    try:
        capacity = int(env.get("WORKER_CAPACITY", "4"))
        shutdown_s = float(env.get("WORKER_SHUTDOWN_S", "25"))
    except ValueError as e:
        raise WorkerConfigError(f"malformed number in environment: {e}") from None
    if not 1 <= capacity <= 64:
        raise WorkerConfigError("WORKER_CAPACITY must be from 1 to 64")
    server_url = (env.get("SERVER_URL") or "http://127.0.0.1:8000").rstrip("/")
    if not server_url.startswith(("http://", "https://")):
        raise WorkerConfigError("SERVER_URL must start with http:// or https://")
    worker_id = env.get("WORKER_ID") or env.get("DYNO") or socket.gethostname()
    return WorkerConfig(
        server_url=server_url, worker_id=worker_id[:64], capacity=capacity,
        work_dir=Path(env.get("WORKER_DIR") or Path(env.get("DATA_DIR", "data")) / "worker"),
        token=token, jwt_secret=secret, jwt_audience=env.get("JWT_AUDIENCE") or None,
        jwt_issuer=env.get("JWT_ISSUER") or None, name=env.get("WORKER_NAME") or "Recorder",
        keep_files=env.get("WORKER_KEEP_FILES", "").lower() in ("1", "true", "yes"),
        loopback_only=env.get("WORKER_LOOPBACK_ONLY", "").lower() in ("1", "true", "yes"),
        shutdown_s=shutdown_s)
