"""Roles come from the database (server/accounts/service.py): a token says who, the user row says
what they may do — at once on HTTP, within the bound on an open socket."""
from __future__ import annotations

import asyncio
import re
import time

import jwt
import pytest
from sqlalchemy import delete, update

from server.accounts.tokens import issue_token, issue_worker_token
from server.db.models import User
from tests.accounts.test_auth import private_pem, public_pem, rsa_key
from tests.wsclient import ProtocolError

RECHECK_S = 0.2


@pytest.fixture
def config_overrides():
    """An LMS key next to HS256, and a short re-check bound for open sockets."""
    return {"jwt_public_key": public_pem(rsa_key()), "jwt_algorithms": ("HS256", "RS256"),
            "role_recheck_s": RECHECK_S}


async def set_role(server, user: dict, role: str) -> None:
    async with server.deps.db.write() as s:
        await s.execute(update(User).where(User.id == int(user["id"])).values(role=role))


async def delete_user(server, user: dict) -> None:
    async with server.deps.db.write() as s:
        await s.execute(delete(User).where(User.id == int(user["id"])))


async def someone_elses_room(server) -> str:
    """A room the admin under test is not a member of (admins act as instructors in every room)."""
    _, owner = await server.user("olga", "instructor")
    return (await server.room(owner, name="Olga's course"))["id"]


def lms_token(user: dict, role: str) -> str:
    """An RS256 token from the LMS for ``user`` claiming ``role``."""
    now = int(time.time())
    return jwt.encode({"sub": user["id"], "name": user["display_name"], "role": role, "iat": now, "exp": now + 600},
                      private_pem(rsa_key()), algorithm="RS256")


async def test_demoted_admin_loses_admin_rights_at_once_on_http(server):
    """An admin demoted in the database is refused an admin-only action with the token minted while they were admin."""
    room = await someone_elses_room(server)
    admin, token = await server.user("ada", "admin")
    status, _ = await server.http("GET", f"/api/rooms/{room}", token)
    assert status == 200
    await set_role(server, admin, "student")
    status, body = await server.http("GET", f"/api/rooms/{room}", token)
    assert status == 403, body
    status, me = await server.http("GET", "/api/me", token)
    assert me["user"]["role"] == "student"


async def test_role_claim_cannot_raise_rights(server):
    """A student's token claiming admin (Podium's own or an LMS's) acts as the stored student."""
    room = await someone_elses_room(server)
    student, _ = await server.user("sam")
    for token in (issue_token(server.deps.config, int(student["id"]), "Sam", "admin"), lms_token(student, "admin")):
        status, me = await server.http("GET", "/api/me", token)
        assert status == 200 and me["user"]["role"] == "student", me
        status, _ = await server.http("GET", f"/api/rooms/{room}", token)
        assert status == 403


async def test_lms_token_for_a_user_without_a_row_is_unauthorized(server):
    """An LMS token naming a user id that has no row stays 401."""
    status, body = await server.http("GET", "/api/me", lms_token({"id": "424242", "display_name": "Ghost"}, "instructor"))
    assert status == 401 and body["error"]["code"] == "unauthorized"


async def test_deleted_users_token_stops_at_once(server):
    """Once the user row is deleted, their token gets 401 on the next request."""
    user, token = await server.user("dora")
    assert (await server.http("GET", "/api/me", token))[0] == 200
    await delete_user(server, user)
    status, body = await server.http("GET", "/api/me", token)
    assert status == 401 and body["error"]["code"] == "unauthorized"


async def test_open_socket_follows_a_demotion_within_the_bound(server):
    """A socket opened as admin acts as a student once the demotion is older than the re-check bound (2 × role_recheck_s)."""
    first, second = await someone_elses_room(server), (await server.room((await server.user("otto", "instructor"))[1]))["id"]
    admin, token = await server.user("ada", "admin")
    c = await server.client(token)
    await c.request("room.join", room=first)
    await set_role(server, admin, "student")
    await asyncio.sleep(2 * RECHECK_S + 0.1)
    with pytest.raises(ProtocolError) as err:
        await c.request("room.join", room=second)
    assert err.value.code == "forbidden"


async def test_deleted_users_socket_closes_4401(server):
    """An open socket of a deleted user is closed with 4401 at its next frame after the bound."""
    user, token = await server.user("dora")
    c = await server.client(token)
    await delete_user(server, user)
    await asyncio.sleep(2 * RECHECK_S + 0.1)
    c.conn.write_message('{"type":"presence.status","status":"away","id":"x"}')
    assert await c.wait_closed(timeout=5) == 4401


async def test_recorder_account_cannot_use_a_user_token_or_sign_in(server):
    """A user row with role recorder gets 401 for any user token and 403 for its right password: only WORKER_SECRET makes a worker."""
    rec, _ = await server.user("rec", "recorder")
    for token in (issue_token(server.deps.config, int(rec["id"]), "Rec", "student"), lms_token(rec, "student")):
        assert (await server.http("GET", "/api/me", token))[0] == 401
    status, body = await server.http("POST", "/api/auth/login", None, {"username": "rec", "password": "password1"})
    assert status == 403 and body["error"]["code"] == "forbidden"


async def test_worker_token_on_api_me_is_the_virtual_recorder(server):
    """GET /api/me with a media worker's token answers 200 with the worker's virtual user (id "0"), not 500."""
    status, body = await server.http("GET", "/api/me", issue_worker_token(server.deps.config, "Worker A"))
    assert status == 200, body
    assert body["user"] == {"id": "0", "username": "recorder", "display_name": "Worker A", "role": "recorder"}


@pytest.mark.parametrize("kind", ["student", "admin", "worker", "lms"])
@pytest.mark.parametrize("method,path,body", [
    ("GET", "/api/me", None), ("GET", "/api/users?q=a", None), ("GET", "/api/users", None),
    ("POST", "/api/auth/login", {}), ("POST", "/api/auth/login", {"username": "sam", "password": "x"}),
    ("POST", "/api/auth/register", {}), ("POST", "/api/auth/register", {"username": "n3w", "password": "violet-ladder-42"}),
])
async def test_no_valid_token_gives_a_500_on_the_accounts_routes(server, kind, method, path, body):
    """Every kind of valid token on every accounts route answers without a server error."""
    user, token = await server.user("sam", "admin" if kind == "admin" else "student")
    token = {"worker": issue_worker_token(server.deps.config), "lms": lms_token(user, "instructor")}.get(kind, token)
    status, resp = await server.http(method, path, token, body)
    assert status < 500, resp


async def test_connected_users_roles_are_read_together_not_per_socket(server):
    """Open sockets re-check their role every bound; the rows of all connected users are
    re-read together (one query for many users), so busy sockets do not each read their own
    row — and a demotion still reaches every socket within the bound."""
    from sqlalchemy import event
    engine = server.deps.db.engine.sync_engine
    single, batched = [], []

    def on_execute(_conn, _cursor, statement, params, _context, _many):
        flat = " ".join(statement.split()).lower()
        if flat.startswith("select") and "from users" in flat and "users.role" in flat:
            (batched if " in (" in flat or re.search(r"\bany ?\(", flat) else single).append(flat)

    users = [await server.user(f"u{i}") for i in range(12)]
    room = (await server.room((await server.user("ivy", "instructor"))[1],
                              members=[u["id"] for u, _ in users]))["id"]
    clients = [await server.client(tok) for _, tok in users]
    for c in clients:
        await c.request("room.join", room=room)
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        for _ in range(int(4 * RECHECK_S / 0.05)):  # every socket busy for 4 bounds
            for c in clients:
                await c.request("typing", room=room, active=True)
            await asyncio.sleep(0.05)
        assert batched, "the connected users' rows were not re-read together"
        assert len(single) <= len(clients), f"{len(single)} single-user reads for {len(clients)} sockets"
        await set_role(server, users[0][0], "admin")  # promoted: acts as instructor in any room
        await asyncio.sleep(2 * RECHECK_S + 0.1)
        other = await someone_elses_room(server)
        assert (await clients[0].request("room.join", room=other))["my_role"] == "instructor"
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
