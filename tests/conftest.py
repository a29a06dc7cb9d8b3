"""Shared fixtures: a real Podium server on a free port, over a real database.

The database is SQLite (a fresh migrated file per test) unless ``TEST_DATABASE_URL`` names a
PostgreSQL database, as ``.ci/run`` does for the second pass.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
from dataclasses import dataclass, field
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.testing import bind_unused_port

from server.app import make_app
from server.accounts.passwords import hash_password
from server.accounts.tokens import issue_token
from server.config import Config
from server.db import users as uq
from server.deps import Deps
from server.http.serve import http_server
from tests import heavy
from tests.dbutil import fresh_database, prepare_template
from tests.hangdump import dump_tasks_before_timeout, pytest_timeout_set_timer  # noqa: F401  (task stacks before a timeout)
from tests.s3server import s3_server  # noqa: F401  (session fixture: a moto S3 server on loopback)
from tests.workerproc import worker_procs  # noqa: F401  (fixture: real media worker processes)
from tests.wsclient import LoopbackUrls, WsClient

JWT_SECRET = "test-secret-" + "k" * 40
WORKER_SECRET = "test-worker-secret-" + "w" * 40
_PASSWORD_HASH: list[str] = []


def password_hash() -> str:
    """One scrypt hash of ``password1`` shared by fixture users (hashing is slow on purpose)."""
    if not _PASSWORD_HASH:
        _PASSWORD_HASH.append(hash_password("password1"))
    return _PASSWORD_HASH[0]


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> str:
    return prepare_template(tmp_path_factory.mktemp("template"))


@pytest.fixture
def database_url(template_db: str, tmp_path) -> str:
    return fresh_database(template_db, tmp_path)


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Override in a test module (or with ``@pytest.mark.parametrize``) to change settings."""
    return {}


@pytest.fixture
def storage_settings() -> dict[str, Any]:
    """Storage configuration: disk under the test's data dir. Modules that test files take the
    parametrised ``storage_settings`` of tests/s3server.py to run on disk and on S3."""
    return {}


@pytest.fixture
def config(database_url: str, tmp_path, config_overrides, storage_settings) -> Config:
    values: dict[str, Any] = dict(database_url=database_url, data_dir=tmp_path, jwt_secret=JWT_SECRET, worker_secret=WORKER_SECRET,
                                  host="127.0.0.1", rate_per_s=1000.0, rate_burst=1000)
    values.update(storage_settings)
    if os.environ.get("TEST_REDIS_URL"):  # the PostgreSQL+Redis pass of .ci/run: the bus is on
        values.update(redis_url=os.environ["TEST_REDIS_URL"], redis_prefix="podium-test-" + secrets.token_hex(4))
    values.update(config_overrides)
    return Config(**values)


@dataclass
class LiveServer(LoopbackUrls):
    """A running server and helpers to talk to it like a client would."""

    deps: Deps
    port: int
    clients: list[WsClient] = field(default_factory=list)

    async def user(self, username: str, role: str = "student", display_name: str | None = None) -> tuple[dict, str]:
        """Create a user directly in the database; return ``(user, token)``."""
        async with self.deps.db.write() as s:
            u = await uq.create_user(s, username, display_name or username.capitalize(), password_hash(), role)
        user = {"id": str(u.id), "username": u.username, "display_name": u.display_name, "role": role}
        return user, issue_token(self.deps.config, u.id, u.display_name, role)

    async def http(self, method: str, path: str, token: str | None = None, body: Any = None,
                   headers: dict | None = None, raw_body: bytes | None = None) -> tuple[int, Any]:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = HTTPRequest(self.base_url + path, method=method, headers=hdrs, body=data,
                          allow_nonstandard_methods=True, request_timeout=30)
        resp = await AsyncHTTPClient().fetch(req, raise_error=False)
        try:
            payload = json.loads(resp.body) if resp.body else None
        except ValueError:
            payload = resp.body
        return resp.code, payload

    async def room(self, token: str, kind: str = "course", name: str = "Physics 101",
                   members: list[str] | None = None) -> dict:
        """Create a room through the REST API; ``members`` are user ids."""
        status, body = await self.http("POST", "/api/rooms", token,
                                       {"kind": kind, "name": name, "members": members or []})
        assert status == 201, body
        return body["room"]

    async def client(self, token: str | None, **kw: Any) -> WsClient:
        c = await WsClient.connect(self.ws_url, token, **kw)
        self.clients.append(c)
        return c


@pytest.fixture
def deps(config: Config, io_loop):
    d = Deps.build(config)
    io_loop.run_sync(d.start)
    if d.registry.bus is not None:
        io_loop.run_sync(lambda: asyncio.wait_for(d.registry.bus.connected.wait(), 10))
    yield d
    io_loop.run_sync(d.close)


@pytest.fixture
def server(deps: Deps, io_loop):
    sock, port = bind_unused_port("127.0.0.1")
    # The same server as ``python -m server`` builds, from the test's configuration.
    httpd = http_server(make_app(deps), deps.config)
    httpd.add_sockets([sock])
    live = LiveServer(deps, port)
    yield live
    for c in live.clients:
        c.close()
    httpd.stop()
    io_loop.run_sync(httpd.close_all_connections, timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- tests that run in one of the two passes -------------------------------------------------------
# scripts/test.sh runs the suite twice at once, on SQLite and on PostgreSQL + Redis, and sets
# TEST_PASS=sqlite / TEST_PASS=pg when both passes run. Three kinds of test run in one of them:
# - The media worker's own modules, the kernel and the import rules use neither a database nor
#   Redis: running them twice would repeat the same thing. The media worker's in the SQLite
#   pass, the kernel and the import rules in the PostgreSQL pass: the PostgreSQL pass, with the
#   scale-out tests and every SFU test, was ~2.5 min the longer (15:45 against 13:15 in the same
#   run), the media worker's tests are ~1 min. A test under these paths that asks for a
#   database-backed fixture is an error, so the lists cannot hide one.
# - The SFU tests whose server runs inside a private network namespace (with the real Janus,
#   tests/sfu/test_signaling.py) cannot reach the machine's PostgreSQL or Redis: they use SQLite
#   and no bus in both passes (the ``sqlite_template`` fixture). PostgreSQL pass (it has the
#   shorter heavy part).
# - The browser tests (real Chromium) test the web client against a real server: SQLite pass,
#   the configuration the README's run command gives. The server code they drive runs on both
#   databases in the server tests; running every Chromium test twice made the suite twice its
#   time budget on the 2-core CI machine.
DB_FREE_PATHS = {
    "sqlite": ("tests/worker/post/", "tests/worker/live/", "tests/worker/test_timeline.py",
               "tests/worker/test_package.py", "tests/worker/test_live_render.py", "tests/worker/test_peers.py"),
    "pg": ("tests/kernel/", "tests/architecture/"),
}
DB_FIXTURES = {"template_db", "database_url", "config", "deps", "server", "api", "open_page"}
SQLITE_ALWAYS = "sqlite_template"
BROWSER_PATH = "tests/browser/"


def home_pass(item: pytest.Item, root: str) -> str | None:
    """"sqlite" or "pg" for a test that runs in one pass only; None for one that runs in both."""
    path = os.path.relpath(str(item.path), root)
    fixtures = getattr(item, "fixturenames", ())
    for db_free_pass, paths in DB_FREE_PATHS.items():
        if path.startswith(paths):
            used = DB_FIXTURES.intersection(fixtures)
            if used:
                raise pytest.UsageError(f"{item.nodeid} is under DB_FREE_PATHS but uses {sorted(used)}")
            return db_free_pass
    if SQLITE_ALWAYS in fixtures:
        return "pg"
    if path.startswith(BROWSER_PATH):
        return "sqlite"
    return None


def pytest_collection_modifyitems(config, items):
    root = str(config.rootpath)
    this = os.environ.get("TEST_PASS", "")
    if this not in ("", "sqlite", "pg"):
        raise pytest.UsageError(f"TEST_PASS must be 'sqlite' or 'pg', not {this!r}")
    if this:
        here, elsewhere = [], []
        for item in items:
            (here if home_pass(item, root) in (None, this) else elsewhere).append(item)
        if elsewhere:
            config.hook.pytest_deselected(items=elsewhere)
            items[:] = here
    heavy.order(items, root, os.environ.get("TEST_HEAVY", ""))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """A heavy test waits its turn (tests/heavy.py) outside its own timeout."""
    lock = os.environ.get("TEST_HEAVY_LOCK")
    if lock and heavy.is_heavy(item, str(item.config.rootpath)):
        with heavy.turn(lock):
            yield
    else:
        yield
