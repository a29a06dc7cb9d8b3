"""The provisioning API for LMS back ends (issue 17.6): service credentials on
``/api/provision/…`` over real HTTP against the real server; idempotent by external id, user
tokens refused there and service credentials refused elsewhere, bad input → clear 400s."""
from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select

from server.db.models import ExternalIdentity, ExternalRoom, Membership, Room, User
from server.provision import credentials
from tests.jwksserver import JwksServer, SigningKey


async def credential(server, name: str = "moodle", issuer: str | None = None) -> str:
    secret, _ = await credentials.add(server.deps.db, name, issuer)
    return secret


async def counts(server) -> dict:
    async with server.deps.db.read() as s:
        return {t.__tablename__: (await s.execute(select(func.count()).select_from(t))).scalar()
                for t in (User, Room, Membership, ExternalIdentity, ExternalRoom)}


async def test_users_rooms_and_members_are_idempotent_by_external_id(server):
    svc = await credential(server)
    status, first = await server.http("PUT", "/api/provision/users/stu-1", svc,
                                      {"display_name": "Sam Student", "email": "sam@example.edu"})
    assert status == 201, first
    assert first["user"]["display_name"] == "Sam Student" and first["user"]["role"] == "student"
    assert first["email"] == "sam@example.edu" and first["external_id"] == "stu-1"
    status, again = await server.http("PUT", "/api/provision/users/stu-1", svc,
                                      {"display_name": "Sam Student", "email": "sam@example.edu"})
    assert status == 200 and again == first
    status, prof = await server.http("PUT", "/api/provision/users/prof-1", svc,
                                     {"display_name": "Pat Prof", "role": "instructor"})
    assert status == 201 and prof["user"]["role"] == "instructor"
    status, room = await server.http("PUT", "/api/provision/rooms/course%2F42", svc, {"name": "Biology 42"})
    assert status == 201 and room["room"]["kind"] == "course" and room["external_id"] == "course/42", room
    status, room2 = await server.http("PUT", "/api/provision/rooms/course%2F42", svc, {"name": "Biology 42"})
    assert status == 200 and room2 == room
    before = await counts(server)
    for expected in (201, 200, 200):
        status, m = await server.http("PUT", "/api/provision/rooms/course%2F42/members/stu-1", svc, {"role": "student"})
        assert status == expected, m
    status, m = await server.http("PUT", "/api/provision/rooms/course%2F42/members/prof-1", svc, {"role": "instructor"})
    assert status == 201 and m["member"]["role"] == "instructor"
    after = await counts(server)
    assert after["memberships"] == before["memberships"] + 2 and after["users"] == before["users"]
    # the members see the room as any room: sign in as the instructor
    status, signin = await server.http("POST", "/api/provision/users/prof-1/sign-in", svc, {"room": "course/42"})
    assert status == 200, signin
    assert signin["url"] == f"{server.base_url}/#lti-token={signin['token']}&room={room['room']['id']}"
    status, seen = await server.http("GET", f"/api/rooms/{room['room']['id']}", signin["token"])
    assert status == 200, seen
    assert {x["user"]["display_name"]: x["role"] for x in seen["members"]} == {
        "Sam Student": "student", "Pat Prof": "instructor"}
    # updates: a new name and role, the room renamed; still one row each
    status, upd = await server.http("PUT", "/api/provision/users/stu-1", svc,
                                    {"display_name": "Samantha Student", "role": "instructor"})
    assert status == 200 and upd["user"]["id"] == first["user"]["id"]
    assert upd["user"]["role"] == "instructor" and upd["email"] == "sam@example.edu"
    status, ren = await server.http("PUT", "/api/provision/rooms/course%2F42", svc, {"name": "Biology 42 (Spring)"})
    assert status == 200 and ren["room"]["name"] == "Biology 42 (Spring)"
    assert (await counts(server))["users"] == after["users"]


async def test_removing_a_member_tells_them_and_is_idempotent(server):
    svc = await credential(server)
    await server.http("PUT", "/api/provision/users/s1", svc, {"display_name": "Sid"})
    _, room = await server.http("PUT", "/api/provision/rooms/r1", svc, {"name": "Room one"})
    await server.http("PUT", "/api/provision/rooms/r1/members/s1", svc, {})
    await server.http("PUT", "/api/provision/users/t1", svc, {"display_name": "Tia", "role": "instructor"})
    await server.http("PUT", "/api/provision/rooms/r1/members/t1", svc, {"role": "instructor"})
    _, teacher = await server.http("POST", "/api/provision/users/t1/sign-in", svc, {})
    tia = await server.client(teacher["token"])
    await tia.request("room.join", room=room["room"]["id"])
    _, signin = await server.http("POST", "/api/provision/users/s1/sign-in", svc, {"ttl_s": 600})
    assert signin["expires_in"] == 600 and "url" not in signin
    sid = await server.client(signin["token"])
    status, body = await server.http("DELETE", "/api/provision/rooms/r1/members/s1", svc)
    assert status == 200 and body == {"removed": True}
    event = await sid.next_event("room.removed")
    assert event["room"]["id"] == room["room"]["id"] and event["reason"] == "lms"
    note = await tia.next_event("message.new")
    assert note["message"]["content"] == "Sid was removed by the LMS"
    gone = await tia.next_event("member.removed")
    assert gone["user_id"] == signin["user"]["id"] and gone["members_count"] == 1
    status, body = await server.http("DELETE", "/api/provision/rooms/r1/members/s1", svc)
    assert status == 200 and body == {"removed": False}
    status, _ = await server.http("GET", f"/api/rooms/{room['room']['id']}", signin["token"])
    assert status == 403


async def test_concurrent_first_puts_make_one_row(server):
    svc = await credential(server)
    before = await counts(server)
    answers = await asyncio.gather(*(server.http("PUT", "/api/provision/users/race", svc, {"display_name": "R"})
                                     for _ in range(6)),
                                   *(server.http("PUT", "/api/provision/rooms/race", svc, {"name": "R"})
                                     for _ in range(6)))
    assert sorted(s for s, _ in answers) == [200] * 10 + [201] * 2
    after = await counts(server)
    assert after["users"] == before["users"] + 1 and after["rooms"] == before["rooms"] + 1


async def test_credentials_keep_their_own_external_ids(server):
    a, b = await credential(server, "lms-a"), await credential(server, "lms-b")
    _, ua = await server.http("PUT", "/api/provision/users/42", a, {"display_name": "A's 42"})
    _, ub = await server.http("PUT", "/api/provision/users/42", b, {"display_name": "B's 42"})
    assert ua["user"]["id"] != ub["user"]["id"]
    # a second credential for the same issuer manages the same users (credential rotation)
    a2 = await credential(server, "lms-a-2", "urn:podium:service:lms-a")
    status, again = await server.http("PUT", "/api/provision/users/42", a2, {"display_name": "A's 42"})
    assert status == 200 and again["user"]["id"] == ua["user"]["id"]


async def test_user_tokens_refused_there_and_credentials_refused_elsewhere(server):
    svc = await credential(server)
    _, token = await server.user("ursula", role="admin")
    status, body = await server.http("PUT", "/api/provision/users/x", token, {"display_name": "X"})
    assert status == 401 and "user tokens are not accepted here" in body["error"]["reason"]
    status, body = await server.http("PUT", "/api/provision/users/x", None, {"display_name": "X"})
    assert status == 401
    for method, path in (("GET", "/api/me"), ("GET", "/api/rooms")):
        status, body = await server.http(method, path, svc)
        assert status == 401 and "service credential" in body["error"]["reason"], body
    ws = await server.client(svc, wait_hello=False)
    await asyncio.wait_for(ws.closed.wait(), 10)
    assert ws.close_code == 4401
    status, body = await server.http("PUT", "/api/provision/users/x", svc + "x", {"display_name": "X"})
    assert status == 401 and "unknown or revoked" in body["error"]["reason"]
    assert await credentials.revoke(server.deps.db, "moodle")
    status, body = await server.http("PUT", "/api/provision/users/x", svc, {"display_name": "X"})
    assert status == 401 and "unknown or revoked" in body["error"]["reason"]


BAD = [
    ("PUT", "/api/provision/users/u", {}, 400, "display_name"),
    ("PUT", "/api/provision/users/u", {"display_name": " "}, 400, "display_name"),
    ("PUT", "/api/provision/users/u", {"display_name": "U", "role": "admin"}, 400, "site admins"),
    ("PUT", "/api/provision/users/u", {"display_name": "U", "email": "not-an-address"}, 400, "email"),
    ("PUT", "/api/provision/users/u", {"display_name": "U", "password": "x"}, 400, "unknown field(s): password"),
    ("PUT", "/api/provision/users/a%01b", {"display_name": "U"}, 400, "control characters"),
    ("PUT", "/api/provision/users/" + "x" * 256, {"display_name": "U"}, 400, "1-255"),
    ("PUT", "/api/provision/rooms/r", {"name": "R", "kind": "direct"}, 400, "kind"),
    ("PUT", "/api/provision/rooms/r", {"name": ""}, 400, "name"),
    ("PUT", "/api/provision/rooms/nope/members/u0", {"role": "student"}, 404, "PUT /api/provision/rooms"),
    ("PUT", "/api/provision/rooms/r0/members/nobody", {"role": "student"}, 404, "PUT /api/provision/users"),
    ("PUT", "/api/provision/rooms/r0/members/u0", {"role": "admin"}, 400, "role"),
    ("DELETE", "/api/provision/rooms/r0/members/nobody", None, 404, "no user"),
    ("POST", "/api/provision/users/u0/sign-in", {"ttl_s": 5}, 400, "ttl_s"),
    ("POST", "/api/provision/users/u0/sign-in", {"room": "r1"}, 409, "not a member"),
    ("PUT", "/api/provision/rooms/r0", {"name": "R", "kind": "group"}, 409, "kind cannot change"),
]


async def test_bad_input_is_a_clear_error_and_changes_nothing(server):
    """Each case on one server (one set-up for all: the suite's time budget)."""
    svc = await credential(server)
    await server.http("PUT", "/api/provision/users/u0", svc, {"display_name": "U0"})
    await server.http("PUT", "/api/provision/rooms/r0", svc, {"name": "R0"})
    await server.http("PUT", "/api/provision/rooms/r1", svc, {"name": "R1"})
    before = await counts(server)
    for method, path, body, status, words in BAD:
        got, answer = await server.http(method, path, svc, body)
        assert got == status, (method, path, body, answer)
        assert words in answer["error"]["reason"], (method, path, body, answer)
    assert await counts(server) == before


async def test_malformed_json_is_400(server):
    svc = await credential(server)
    status, body = await server.http("PUT", "/api/provision/users/u", svc, raw_body=b"{not json",
                                     headers={"Content-Type": "application/json"})
    assert status == 400 and body["error"]["code"] == "bad_request"


ISSUER = "https://idp.example.test"


@pytest.fixture
def idp(io_loop):
    key = SigningKey("k1")
    srv = JwksServer([key.jwk()])
    srv.key = key
    yield srv
    srv.stop()


@pytest.fixture
def config_overrides(idp):
    return {"jwt_jwks_url": idp.url, "jwt_issuer": ISSUER, "jwt_audience": "podium",
            "jwt_algorithms": ("HS256", "RS256")}


async def test_provisioned_users_sign_in_with_the_identity_providers_tokens(server, idp):
    """A credential with the provider's issuer links users the provider's tokens then sign in as
    (JWT_AUTO_PROVISION off: only provisioned identities get in)."""
    svc = await credential(server, "sso", ISSUER)
    now = int(time.time())
    token = idp.key.sign({"iss": ISSUER, "aud": "podium", "sub": "emp-7", "exp": now + 60})
    status, body = await server.http("GET", "/api/me", token)
    assert status == 401 and "not linked" in body["error"]["reason"]
    _, made = await server.http("PUT", "/api/provision/users/emp-7", svc, {"display_name": "Eve Employee"})
    status, body = await server.http("GET", "/api/me", token)
    assert status == 200 and body["user"]["id"] == made["user"]["id"]
