"""The web process: where it listens, its data directory and database, its web client, logs,
event loop, shutdown and metrics."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from server.config.environment import ConfigError, Environment


@dataclass(frozen=True)
class ProcessSettings:
    port: int = 8000
    host: str = "0.0.0.0"
    data_dir: Path = Path("data")
    database_url: str = "sqlite+aiosqlite:///./data/podium.db"
    production: bool = False
    web_dir: Path = field(default_factory=lambda: Path(__file__).resolve().parents[2] / "web")
    log_json: bool = False
    event_loop: str = "uvloop"  # or "asyncio" (server/event_loop.py; EVENT_LOOP)
    shutdown_spread_s: float = 3.0
    metrics_token: str | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def normalise_database_url(url: str) -> str:
    """Rewrite Heroku-style ``postgres://`` / ``postgresql://`` URLs for asyncpg, and plain
    ``sqlite://`` for aiosqlite. asyncpg takes libpq's ``sslmode`` as ``ssl`` (SQLAlchemy
    passes query parameters to it as keywords), so ``?sslmode=require`` becomes ``?ssl=require``."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+asyncpg://" + url[len(prefix):]
    if url.startswith("postgresql+asyncpg://") and "?" in url:
        base, query = url.split("?", 1)
        pairs = parse_qsl(query, keep_blank_values=True)
        if "ssl" not in {k for k, _ in pairs}:
            pairs = [("ssl" if k == "sslmode" else k, v) for k, v in pairs]
        else:
            pairs = [(k, v) for k, v in pairs if k != "sslmode"]
        return f"{base}?{urlencode(pairs)}" if pairs else base
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url[len("sqlite://"):]
    return url


def event_loop_name(name: str) -> str:
    """``EVENT_LOOP``: one of server/event_loop.py's loops (default uvloop)."""
    from server.event_loop import EVENT_LOOPS

    name = name.strip().lower() or "uvloop"
    if name not in EVENT_LOOPS:
        raise ConfigError(f"EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)} (got {name!r})")
    return name


def from_env(env: Environment) -> dict:
    """ProcessSettings' fields from the environment."""
    return dict(
        port=env.integer("PORT", 8000),
        host=env.get("HOST", "0.0.0.0"),
        data_dir=env.data_dir,
        database_url=normalise_database_url(
            env.get("DATABASE_URL") or f"sqlite+aiosqlite:///{env.data_dir.as_posix()}/podium.db"),
        production=env.production,
        log_json=env.flag("LOG_JSON", False),
        event_loop=event_loop_name(env.get("EVENT_LOOP", "uvloop")),
        metrics_token=env.optional("METRICS_TOKEN"),
    )
