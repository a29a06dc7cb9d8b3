"""Operations: health checks and logs that name the connection and the user."""
import asyncio
import logging

import io
import json

from server.logs import make_handler
from tests.api import assert_error


async def test_socket_log_lines_name_connection_and_user(server, caplog):
    """Every log line a socket writes carries its connection id and user id, and the
    formatted line shows both."""
    _, tok = await server.user("logged_user")
    with caplog.at_level(logging.INFO, logger="podium.ws"):
        c = await server.client(tok)
        c.close()
        for _ in range(500):  # up to 10 s under load
            if any("disconnected" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.02)
    records = [r for r in caplog.records if r.name == "podium.ws"]
    assert {"connected", "disconnected"} <= {r.getMessage().split(" ")[0] for r in records}
    conn_id = c.hello["connection_id"]
    user_id = c.hello["user"]["id"]
    for r in records:
        assert r.conn == conn_id and str(r.user) == user_id
    for json_lines in (False, True):
        out = io.StringIO()
        handler = make_handler(json_lines, out)
        handler.handle(records[0])
        line = out.getvalue()
        if json_lines:
            parsed = json.loads(line)
            assert parsed["conn"] == conn_id and parsed["user"] == user_id
        else:
            assert f"conn={conn_id}" in line and f"user={user_id}" in line


async def test_healthz(server):
    """GET /healthz answers 200 {status: ok} while the database answers."""
    status, body = await server.http("GET", "/healthz")
    assert status == 200 and body["status"] == "ok"


async def test_healthz_reports_an_unreachable_database_as_503(server):
    """/healthz answers 503 when the database does not answer."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from server.db.engine import make_engine
    broken = make_engine("sqlite+aiosqlite:////nonexistent-dir/podium.db") if server.deps.db.is_sqlite \
        else make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    server.deps.db.sessions = async_sessionmaker(broken, expire_on_commit=False)
    status, body = await server.http("GET", "/healthz")
    assert status == 503 and body["status"] == "unavailable"
    await broken.dispose()


async def test_unknown_api_path_is_json_404(server):
    """An unknown /api path answers a JSON not_found error, not an HTML page."""
    _, tok = await server.user("ana")
    status, body = await server.http("GET", "/api/nothing-here", tok)
    assert_error(status, body, 404, "not_found")
