"""Who ``GET /api/users?q=`` finds (docs/SECURITY.md): prefixes among people who share a room with
the caller, an exact username anywhere, everyone for a site admin."""
from __future__ import annotations

from server.accounts.tokens import issue_worker_token


async def find(server, token: str, q: str) -> list[str]:
    status, body = await server.http("GET", f"/api/users?q={q}", token)
    assert status == 200, body
    return [u["username"] for u in body["users"]]


async def test_prefix_finds_only_people_who_share_a_room(server):
    """A prefix finds roommates by username or display name, and no one the caller shares no room with."""
    _, alice = await server.user("alice")
    bob, _ = await server.user("bob", display_name="Bob Stone")
    await server.user("bella", display_name="Bella Stark")  # shares no room with alice
    await server.room(alice, members=[bob["id"]])
    assert await find(server, alice, "b") == ["bob"]
    assert await find(server, alice, "Bob%20St") == ["bob"]
    assert await find(server, alice, "Bella%20St") == []
    assert await find(server, alice, "") == ["alice", "bob"]


async def test_exact_username_found_without_a_shared_room(server):
    """The user whose username is exactly the query (any case) is found wherever they are, so anyone can be added by username."""
    _, alice = await server.user("alice")
    await server.user("carol")
    await server.user("carolyn")
    assert await find(server, alice, "caro") == []
    assert await find(server, alice, "Carol") == ["carol"]


async def test_exact_match_listed_first(server):
    """The exact username match comes before prefix matches of roommates."""
    _, alice = await server.user("alice")
    alan, _ = await server.user("alan", display_name="Benedict Alan")
    await server.user("ben")
    await server.room(alice, members=[alan["id"]])
    assert await find(server, alice, "ben") == ["ben", "alan"]


async def test_a_room_left_is_no_longer_shared(server):
    """Once the only shared room is left, the other person is found by exact username only."""
    dan, dan_token = await server.user("dan")
    _, erin = await server.user("erin")
    room = await server.room(erin, members=[dan["id"]])
    assert await find(server, erin, "d") == ["dan"]
    status, _ = await server.http("DELETE", f"/api/rooms/{room['id']}/members/{dan['id']}", dan_token)
    assert status == 200
    assert await find(server, erin, "d") == []
    assert await find(server, erin, "dan") == ["dan"]


async def test_admin_finds_everyone_by_prefix(server):
    """A site admin (an instructor in every room) finds users by prefix without sharing a room."""
    _, admin = await server.user("ada", "admin")
    await server.user("bob")
    await server.user("bella")
    assert await find(server, admin, "b") == ["bella", "bob"]


async def test_instructor_adds_a_stranger_by_username(server):
    """An instructor still adds someone they share no room with, by exact username (search, then add)."""
    _, prof = await server.user("prof", "instructor")
    await server.user("newbie")
    room = await server.room(prof)
    assert await find(server, prof, "newbie") == ["newbie"]
    status, body = await server.http("POST", f"/api/rooms/{room['id']}/members", prof, {"username": "newbie"})
    assert status in (200, 201), body
    assert await find(server, prof, "new") == ["newbie"]


async def test_worker_may_not_search(server):
    """A media worker's token gets 403 from user search (it has no business there), not a 500."""
    status, body = await server.http("GET", "/api/users?q=a", issue_worker_token(server.deps.config))
    assert status == 403 and body["error"]["code"] == "forbidden"
