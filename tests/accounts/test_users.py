"""Finding users (``GET /api/users``, server/accounts): the prefix search used to add members."""
from __future__ import annotations

from tests.api import assert_error


async def test_user_prefix_search(server):
    """GET /api/users?q= finds roommates by username or display-name prefix, case-insensitively, never recorders."""
    _, tok = await server.user("alice", display_name="Alice A")
    others = [await server.user("alina"), await server.user("zed", display_name="Albert Zed"),
              await server.user("bob"), await server.user("al_rec", "recorder")]
    await server.room(tok, members=[u["id"] for u, _ in others])  # prefixes find only roommates (tests/accounts/test_user_search.py)

    async def find(q):
        status, body = await server.http("GET", f"/api/users?q={q}", tok)
        assert status == 200, body
        return [u["username"] for u in body["users"]]

    assert await find("ali") == ["alice", "alina"]
    assert await find("AL") == ["alice", "alina", "zed"]
    assert await find("bo") == ["bob"]
    assert await find("lice") == []
    assert await find("%25") == []  # a literal %, not a wildcard
    assert await find("_") == []    # a literal _, not a wildcard
    assert len(await find("a&limit=2")) == 2
    status, body = await server.http("GET", "/api/users?q=al")
    assert_error(status, body, 401, "unauthorized")
