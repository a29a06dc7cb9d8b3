"""The worker's configuration, read once from the environment (docs/RECORDING.md, "Running
workers"). Nothing here imports the server: the worker may run on another machine and knows
Podium only by ``SERVER_URL`` and its own credential (``WORKER_SECRET`` or ``WORKER_TOKEN``)."""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from media_worker.credential import WorkerCredential

MIN_SECRET_BYTES = 32  # the server refuses a shorter WORKER_SECRET, so no token from it would pass


class WorkerConfigError(RuntimeError):
    """The environment does not describe a startable worker."""


@dataclass(frozen=True)
class WorkerConfig:
    server_url: str  # http(s)://host[:port] of a web process
    worker_id: str  # stable across restarts, so a restarted worker reclaims its recordings
    capacity: int
    work_dir: Path
    credential: WorkerCredential = field(default_factory=WorkerCredential)
    keep_files: bool = False
    loopback_only: bool = False  # tests: gather ICE candidates on 127.0.0.1 only
    shutdown_s: float = 25.0
    # tests: gather ICE candidates on these addresses only (e.g. a test network namespace's
    # own veth address, where Janus can reach the worker); overrides ``loopback_only``
    ice_addresses: tuple[str, ...] = ()
    # live segments of the class video (media_worker/live_render.py): seconds per segment
    # (0: off, the whole video is built after the stop) and the real-time factor past which
    # the worker gives up rendering live and processes after the class
    segment_s: float = 60.0
    live_max_rtf: float = 1.0

    @property
    def ws_url(self) -> str:
        return self.server_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/ws"

    def current_token(self) -> str:
        """The recorder token to present now (see ``WorkerCredential.current_token``)."""
        return self.credential.current_token()


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def load_credential(env: dict[str, str]) -> WorkerCredential:
    """``WORKER_TOKEN`` as given, else a credential minting from ``WORKER_SECRET``; in
    development (not ``PODIUM_ENV=production``) without either, the ``worker_secret`` the web
    process generated in ``$DATA_DIR/secrets.json`` on its first start. ``JWT_SECRET`` is never
    read: the server accepts worker tokens signed with ``WORKER_SECRET`` only. Raises
    :class:`WorkerConfigError` naming ``WORKER_SECRET`` when there is no credential."""
    production = env.get("PODIUM_ENV", "").lower() == "production"
    token = env.get("WORKER_TOKEN") or None
    secret = env.get("WORKER_SECRET") or None
    if token is None and secret is None:
        if production:
            raise WorkerConfigError("WORKER_SECRET (or WORKER_TOKEN) is required when PODIUM_ENV=production")
        secrets_file = Path(env.get("DATA_DIR") or "data") / "secrets.json"
        try:
            secret = json.loads(secrets_file.read_text(encoding="utf-8"))["worker_secret"]
        except (OSError, ValueError, KeyError, TypeError):
            raise WorkerConfigError(f"no WORKER_SECRET or WORKER_TOKEN, and no worker_secret in "
                                    f"{secrets_file} (start the web process once first)") from None
        if not isinstance(secret, str) or not secret:
            raise WorkerConfigError(f"{secrets_file} has an empty worker_secret")
    if token is None and len(secret.encode()) < MIN_SECRET_BYTES:
        raise WorkerConfigError(f"WORKER_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    return WorkerCredential(token=token, secret=secret, name=env.get("WORKER_NAME") or "Recorder",
                            audience=env.get("JWT_AUDIENCE") or None, issuer=env.get("JWT_ISSUER") or None)


def load_worker_config(env: dict[str, str] | None = None) -> WorkerConfig:
    """The configuration from ``env`` (default: ``os.environ``); raises :class:`WorkerConfigError`
    with a message naming the variable at fault."""
    env = dict(os.environ if env is None else env)
    credential = load_credential(env)
    try:
        capacity = int(env.get("WORKER_CAPACITY", "4"))
        shutdown_s = float(env.get("WORKER_SHUTDOWN_S", "25"))
        segment_s = float(env.get("WORKER_SEGMENT_S", "60"))
        live_max_rtf = float(env.get("WORKER_LIVE_MAX_RTF", "1.0"))
    except ValueError as e:
        raise WorkerConfigError(f"malformed number in environment: {e}") from None
    if not 1 <= capacity <= 64:
        raise WorkerConfigError("WORKER_CAPACITY must be from 1 to 64")
    if segment_s != 0 and not 2 <= segment_s <= 3600:
        raise WorkerConfigError("WORKER_SEGMENT_S must be 0 (off) or from 2 to 3600 seconds")
    if not live_max_rtf > 0:
        raise WorkerConfigError("WORKER_LIVE_MAX_RTF must be a positive number")
    server_url = (env.get("SERVER_URL") or "http://127.0.0.1:8000").rstrip("/")
    if not server_url.startswith(("http://", "https://")):
        raise WorkerConfigError("SERVER_URL must start with http:// or https://")
    worker_id = env.get("WORKER_ID") or env.get("DYNO") or socket.gethostname()
    return WorkerConfig(
        server_url=server_url, worker_id=worker_id[:64], capacity=capacity,
        work_dir=Path(env.get("WORKER_DIR") or Path(env.get("DATA_DIR") or "data") / "worker"),
        credential=credential, keep_files=_truthy(env.get("WORKER_KEEP_FILES")),
        loopback_only=_truthy(env.get("WORKER_LOOPBACK_ONLY")), shutdown_s=shutdown_s,
        segment_s=segment_s, live_max_rtf=live_max_rtf,
        ice_addresses=tuple(a.strip() for a in (env.get("WORKER_ICE_ADDRESSES") or "").split(",") if a.strip()))
