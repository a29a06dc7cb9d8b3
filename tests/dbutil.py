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

# Every table emptied and every sequence restarted, as TRUNCATE ... RESTART IDENTITY CASCADE
# did: DELETE is ~4x faster than TRUNCATE for the few rows a test leaves (0.06 against
# 0.25 s a test, ~1,100 tests in the PostgreSQL pass); foreign-key triggers are off for this
# session so the order does not matter.
EMPTY_PG = (
    "SET session_replication_role = replica",
    """DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version' LOOP
    EXECUTE format('DELETE FROM public.%I', r.tablename);
  END LOOP;
  FOR r IN SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' LOOP
    EXECUTE format('ALTER SEQUENCE public.%I RESTART', r.sequencename);
  END LOOP;
END $$""",
)


def test_database_url() -> str | None:
    """The PostgreSQL pass's database; with pytest-xdist each worker has its own
    (``<name>_<worker>``, created when missing), since tests truncate it."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return None
    url = normalise_database_url(url)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        base, _, name = url.rpartition("/")
        url = f"{base}/{name.split('?')[0]}_{worker}"
    return url


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


async def _ensure_database(url: str) -> None:
    """Create the (per-worker) database if it does not exist yet."""
    import asyncpg
    base, _, name = url.replace("postgresql+asyncpg://", "postgresql://").rpartition("/")
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            except asyncpg.DuplicateDatabaseError:
                pass
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
    _in_thread(lambda: _ensure_database(url))
    _in_thread(lambda: _pg_exec(url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public"))
    migrate(Config(database_url=url, jwt_secret="x" * 32))
    return url


def fresh_database(template_url: str, tmp_path: Path) -> str:
    """A clean, migrated database for one test."""
    if template_url.startswith("sqlite"):
        src = Path(template_url.split("///", 1)[1])
        dst = tmp_path / "podium.db"
        shutil.copyfile(src, dst)
        return f"sqlite+aiosqlite:///{dst}"
    # A test that failed may leave a server's connection behind, idle in a transaction that
    # holds locks: TRUNCATE would wait on it forever and every later test would hang or error.
    # No connection of an earlier test is wanted here (each test builds its own server after
    # this), so they are ended first, and the TRUNCATE gives up instead of hanging.
    _in_thread(lambda: _pg_exec(
        template_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        "SET lock_timeout = '20s'",
        *EMPTY_PG))
    return template_url
