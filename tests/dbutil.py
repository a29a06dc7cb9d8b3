"""Test databases: a migrated template per run, a clean database per test.

SQLite: every test gets a copy of a freshly migrated file. PostgreSQL
(``TEST_DATABASE_URL=postgresql+asyncpg://...``): the schema is rebuilt by the migrations once
per run, then tables are truncated before each test.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import threading
from pathlib import Path

from server.__main__ import migrate
from server.config import Config, normalise_database_url

TABLES = ("recording_marks", "recording_assets", "recordings", "files", "attendance_intervals", "call_sessions", "reactions", "read_positions", "messages", "memberships", "rooms", "users")


def test_database_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    return normalise_database_url(url) if url else None


def _in_thread(coro_fn) -> None:
    """Run an async function to completion on a private loop in another thread, so it never
    touches the test's own event loop."""
    err: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(coro_fn())
        except BaseException as e:  # re-raised in the caller's thread
            err.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if err:
        raise err[0]


async def _pg_exec(url: str, *statements: str) -> None:
    import asyncpg
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        for st in statements:
            await conn.execute(st)
    finally:
        await conn.close()


def prepare_template(tmp_root: Path) -> str:
    """Migrate a template database once; return its URL."""
    url = test_database_url()
    if url is None:
        path = tmp_root / "template.db"
        url = f"sqlite+aiosqlite:///{path}"
        migrate(Config(database_url=url, jwt_secret="x" * 32))
        return url
    _in_thread(lambda: _pg_exec(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public"))
    migrate(Config(database_url=url, jwt_secret="x" * 32))
    return url


def fresh_database(template_url: str, tmp_path: Path) -> str:
    """A clean, migrated database for one test."""
    if template_url.startswith("sqlite"):
        src = Path(template_url.split("///", 1)[1])
        dst = tmp_path / "podium.db"
        shutil.copyfile(src, dst)
        return f"sqlite+aiosqlite:///{dst}"
    _in_thread(lambda: _pg_exec(
        template_url, f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    return template_url
