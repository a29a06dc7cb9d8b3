"""Schema management: `python -m server migrate` builds the schema, is idempotent, and the
models match the migrations."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from server.db.models import Base
from tests.dbutil import test_database_url

ROOT = Path(__file__).resolve().parents[2]
MODEL_TABLES = set(Base.metadata.tables)
# Objects the migrations create on purpose outside the models (full-text search).
FTS_NAMES = ("messages_fts", "ix_messages_content_fts")
HEAD = ScriptDirectory(str(ROOT / "migrations")).get_current_head()


def run_migrate(tmp_path: Path, db: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JWT_", "PODIUM_", "DATABASE_URL", "DATA_DIR", "TEST_DATABASE_URL"))}
    env.update(DATABASE_URL=f"sqlite:///{db}", DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.run([sys.executable, "-m", "server", "migrate"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc


def schema(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall(),
                      key=lambda r: (r[0], r[1]))


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """A fresh SQLite file migrated once by the real CLI in a subprocess."""
    tmp = tmp_path_factory.mktemp("migrate")
    db = tmp / "nested" / "podium.db"
    return tmp, db, run_migrate(tmp, db)


def test_migrate_creates_every_table_and_fts(migrated_sqlite):
    """`python -m server migrate` on an empty SQLite file creates every model table, the FTS5 table and its triggers."""
    _, db, proc = migrated_sqlite
    rows = schema(db)
    tables = {name for kind, name, _, _ in rows if kind == "table"}
    assert MODEL_TABLES <= tables, MODEL_TABLES - tables
    assert {"messages_fts", "alembic_version"} <= tables
    fts_sql = next(sql for kind, name, _, sql in rows if name == "messages_fts")
    assert "fts5" in fts_sql.lower()
    triggers = {name for kind, name, _, _ in rows if kind == "trigger"}
    assert {"messages_fts_ai", "messages_fts_ad", "messages_fts_au"} <= triggers
    indexes = {name for kind, name, _, _ in rows if kind == "index"}
    assert {"ix_memberships_user", "ix_messages_room_kind_seq", "ix_messages_room_sender"} <= indexes
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
    assert "Running upgrade" in proc.stderr


def test_fts_triggers_index_message_content(migrated_sqlite, tmp_path):
    """On the migrated schema, inserted, edited and deleted messages are kept in step in messages_fts."""
    _, src, _ = migrated_sqlite
    db = tmp_path / "copy.db"
    db.write_bytes(src.read_bytes())
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO users (id, username, display_name, role, created_at) "
                     "VALUES (1, 'ana', 'Ana', 'student', '2026-01-01')")
        conn.execute("INSERT INTO rooms (id, kind, name, created_by, created_at, last_seq, last_activity_at) "
                     "VALUES (1, 'course', 'R', 1, '2026-01-01', 2, '2026-01-01')")
        for mid, content in ((1, "alpha beta"), (2, "gamma")):
            conn.execute("INSERT INTO messages (id, room_id, seq, sender_id, kind, content, client_msg_id, "
                         "created_at) VALUES (?, 1, ?, 1, 'text', ?, ?, '2026-01-01')",
                         (mid, mid, content, f"c{mid}"))

        def match(q):
            return [r[0] for r in conn.execute(
                "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid", (q,))]

        assert match("alpha") == [1] and match("gam*") == [2]
        conn.execute("UPDATE messages SET content = 'delta' WHERE id = 1")
        assert match("alpha") == [] and match("delta") == [1]
        conn.execute("DELETE FROM messages WHERE id = 2")
        assert match("gamma") == []


def test_migrate_twice_is_a_noop(migrated_sqlite):
    """Running migrate again on a migrated database changes nothing and runs no migration."""
    tmp, db, _ = migrated_sqlite
    before = schema(db)
    proc = run_migrate(tmp, db)
    assert "Running upgrade" not in proc.stderr
    assert schema(db) == before


def _diffs(sync_conn) -> list:
    def include_name(name, type_, parent_names) -> bool:
        return not (name or "").startswith(FTS_NAMES)

    ctx = MigrationContext.configure(sync_conn, opts={
        "compare_type": True, "compare_server_default": True, "include_name": include_name,
        "render_as_batch": sync_conn.dialect.name == "sqlite"})
    return compare_metadata(ctx, Base.metadata)


async def _diffs_for(url: str) -> list:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_diffs)
    finally:
        await engine.dispose()


async def test_models_match_migrations_sqlite(migrated_sqlite):
    """Alembic autogenerate finds no difference between the models and a migrated SQLite database."""
    _, db, _ = migrated_sqlite
    assert await _diffs_for(f"sqlite+aiosqlite:///{db}") == []


needs_pg = pytest.mark.skipif(not (test_database_url() or "").startswith("postgresql"),
                              reason="TEST_DATABASE_URL does not name a PostgreSQL database")


@needs_pg
async def test_postgres_template_is_migrated(database_url):
    """On PostgreSQL the session's migrated database has every table and the GIN full-text index."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
            index = (await conn.execute(text(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'messages' "
                "AND indexname = 'ix_messages_content_fts'"))).scalar_one_or_none()
    finally:
        await engine.dispose()
    assert MODEL_TABLES | {"alembic_version"} <= tables, MODEL_TABLES - tables
    assert version == [HEAD]
    assert index is not None and "gin" in index.lower() and "to_tsvector" in index


@needs_pg
async def test_models_match_migrations_postgres(database_url):
    """Alembic autogenerate finds no difference between the models and the migrated PostgreSQL database."""
    assert await _diffs_for(database_url) == []
