"""Profiles (issue 19.2; server/accounts/service.py rename/change_password,
docs/PROTOCOL-ADDITIONS.md): a person changes their display name, and their password — the old
one required — which signs every other token and socket of theirs out."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update

from server.db.models import User

from tests.api import assert_error, send

NEW_PASSWORD = "amber-tunnel-kite-91"


async def login(server, username: str, password: str) -> tuple[int, dict]:
    return await server.http("POST", "/api/auth/login", None, {"username": username, "password": password})


async def change(server, token: str, old: str, new: str) -> tuple[int, dict]:
    return await server.http("POST", "/api/me/password", token, {"old_password": old, "new_password": new})


async def test_rename_shows_everywhere(server):
    """PATCH /api/me {display_name} renames the caller: /api/me, member lists and past messages show the new name."""
    ana, ana_tok = await server.user("ana", "instructor")
    ben, ben_tok = await server.user("ben")
    room = await server.room(ana_tok, members=[ben["id"]])
    await send(server, ben_tok, room["id"], "hello")
    status, body = await server.http("PATCH", "/api/me", ben_tok, {"display_name": "  Ben Okafor "})
    assert status == 200 and body["user"]["display_name"] == "Ben Okafor"
    assert (await server.http("GET", "/api/me", ben_tok))[1]["user"]["display_name"] == "Ben Okafor"
    _, detail = await server.http("GET", f"/api/rooms/{room['id']}", ana_tok)
    assert {m["user"]["id"]: m["user"]["display_name"] for m in detail["members"]}[ben["id"]] == "Ben Okafor"
    _, hist = await server.http("GET", f"/api/rooms/{room['id']}/messages", ana_tok)
    assert hist["messages"][-1]["sender"]["display_name"] == "Ben Okafor"
    c = await server.client(ben_tok)  # a socket sends under the new name at once
    ack = await c.request("message.send", room=room["id"], client_msg_id="r1", kind="text", content="renamed")
    assert ack["message"]["sender"]["display_name"] == "Ben Okafor"


@pytest.mark.parametrize("body", [{}, {"display_name": ""}, {"display_name": "   "}, {"display_name": 5},
                                  {"display_name": "x" * 129}])
async def test_rename_refuses_bad_names(server, body):
    """A missing, blank, non-string or over-128-character display name is a 400 and changes nothing."""
    _, tok = await server.user("ana")
    status, resp = await server.http("PATCH", "/api/me", tok, body)
    assert_error(status, resp, 400, "bad_request")
    assert (await server.http("GET", "/api/me", tok))[1]["user"]["display_name"] == "Ana"


async def test_password_change_needs_the_old_password_and_a_good_new_one(server):
    """A wrong old password is 403, a guessable new one 400; neither changes the password."""
    _, tok = await server.user("ana")
    status, body = await change(server, tok, "wrong-password", NEW_PASSWORD)
    assert_error(status, body, 403, "forbidden")
    status, body = await change(server, tok, "password1", "password")
    assert_error(status, body, 400, "bad_request")
    status, body = await server.http("POST", "/api/me/password", tok, {"new_password": NEW_PASSWORD})
    assert_error(status, body, 400, "bad_request")
    assert (await login(server, "ana", "password1"))[0] == 200
    assert (await server.http("GET", "/api/me", tok))[0] == 200  # the token still works


async def test_password_change_signs_out_other_tokens_and_sockets(server):
    """After a change: the new password logs in and the old does not; the returned token works;
    every token minted before (HTTP) is 401 and every socket opened with one is closed 4401 at
    once; a socket opened with the new token stays."""
    ana, tok = await server.user("ana")
    status, other = await login(server, "ana", "password1")  # a second session
    assert status == 200
    phone = await server.client(other["token"])
    tab = await server.client(tok)
    status, body = await change(server, tok, "password1", NEW_PASSWORD)
    assert status == 200, body
    assert body["user"]["id"] == ana["id"]
    new_tok = body["token"]
    assert await phone.wait_closed(timeout=5) == 4401
    assert await tab.wait_closed(timeout=5) == 4401
    for old in (tok, other["token"]):
        status, resp = await server.http("GET", "/api/me", old)
        assert_error(status, resp, 401, "unauthorized")
        assert "password was changed" in resp["error"]["reason"]
    assert (await server.http("GET", "/api/me", new_tok))[0] == 200
    fresh = await server.client(new_tok)
    assert (await fresh.request("presence.status", status="away"))["status"] == "away"
    assert (await login(server, "ana", "password1"))[0] == 401
    assert (await login(server, "ana", NEW_PASSWORD))[0] == 200
    await asyncio.sleep(0.3)
    assert (await fresh.request("presence.status", status="online"))["status"] == "online"


@pytest.mark.parametrize("config_overrides", [{"role_recheck_s": 1.0}])
async def test_another_process_closes_sockets_after_a_password_change(server):
    """A socket on a process that did not handle the change is closed 4401 within the re-check
    bound even if it only listens (``keep_fresh`` sees the new token version)."""
    _, tok = await server.user("ana")
    listener = await server.client(tok)
    # Make the change as another process would: straight in the database.
    async with server.deps.db.write() as s:
        await s.execute(update(User).where(User.username == "ana").values(token_version=User.token_version + 1))
    bound = server.deps.config.role_recheck_s
    assert await listener.wait_closed(timeout=2 * bound + 5) == 4401
