"""Names and Role Provisioning (issue 17.3, 17.7) against the real platform of
tests/lti/platform.py (``lti1p3platform``'s token endpoint and NRPS service): Podium gets an
access token with a client-credentials assertion signed by its tool key, pages through the
context memberships (Link rel=next) and syncs the course room: on launch in the background,
on demand, and periodically; people who left the course lose access, members added by hand
stay; students who never launched are absent in attendance."""
from __future__ import annotations

import asyncio
import json
import time

import jwt
import pytest

from server.lti.services import ASSERTION_TYPE, NRPS_SCOPE
from tests.calls.helpers import calls_settle  # noqa: F401  (autouse fixture)
from tests.lti.platform import INSTRUCTOR, LEARNER, TA, Scenario
from tests.lti.test_launch import fetch, landing, launch, lms, members  # noqa: F401  (fixture)


def course(lms, context_id: str) -> None:
    lms.roster[context_id] = [
        lms.member("t-1", "Tess Teacher", [INSTRUCTOR]),
        lms.member("s-1", "Sam One"), lms.member("s-2", "Sue Two"),
        lms.member("s-3", "Sid Three"), lms.member("s-4", "Sia Four"),
    ]


async def until(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def teacher_launch(server, lms, context_id: str, services: bool = True) -> tuple[str, str]:
    resp, _ = await launch(lms, Scenario("t-1", name="Tess Teacher", roles=[INSTRUCTOR],
                                         context_id=context_id, services=services))
    return landing(resp)


async def test_launch_syncs_the_roster_in_the_background_and_absent_students_show_in_attendance(server, lms):
    """The instructor's launch lands at once; the roster (5 people over 3 pages) follows:
    every student is a member before ever launching, and absent in the session's attendance."""
    course(lms, "c-bg")
    t0 = time.monotonic()
    teacher, room = await teacher_launch(server, lms, "c-bg")
    launched_s = time.monotonic() - t0

    async def synced():
        found = await members(server, teacher, room)
        return found if len(found) == 5 else None
    found = await until(synced)
    assert found == {"Tess Teacher": "instructor", "Sam One": "student", "Sue Two": "student",
                     "Sid Three": "student", "Sia Four": "student"}
    nrps = [r for r in lms.service_requests if r[1] == "/nrps/c-bg/memberships"]
    assert len(nrps) == 3, "the roster has 3 pages of 2 (Link rel=next)"
    assert all(auth.startswith("Bearer ") for _, _, auth in nrps)
    assert launched_s < 10

    # the access token request: a client-credentials grant with an assertion signed by the tool key
    [req] = lms.token_requests
    assert req["grant_type"] == "client_credentials" and req["client_assertion_type"] == ASSERTION_TYPE
    assert req["scope"] == NRPS_SCOPE
    r = await fetch(server.base_url + "/lti/jwks")
    key_set = jwt.PyJWKSet.from_dict(json.loads(r.body))
    header = jwt.get_unverified_header(req["client_assertion"])
    assert header["alg"] == "RS256" and header["kid"] == key_set.keys[0].key_id
    claims = jwt.decode(req["client_assertion"], key_set.keys[0].key, algorithms=["RS256"],
                        audience=lms.base + "/token")
    assert claims["iss"] == claims["sub"] == lms.client_id
    assert claims["jti"] and 0 < claims["exp"] - claims["iat"] <= 600

    # a call the students never joined: each is listed, absent
    c = await server.client(teacher)
    session = (await c.request("call.start", room=room))["session"]["id"]
    await c.request("call.join", session=session)
    await asyncio.sleep(0.3)
    await c.request("call.end", session=session)
    status, body = await server.http("GET", f"/api/sessions/{session}/attendance", teacher)
    assert status == 200, body
    rows = {a["user"]["display_name"]: a["absent"] for a in body["attendees"]}
    assert rows == {"Tess Teacher": False, "Sam One": True, "Sue Two": True, "Sid Three": True, "Sia Four": True}


async def test_on_demand_sync_removes_who_left_follows_roles_and_keeps_hand_added_members(server, lms):
    """Left the course, Inactive or Deleted: removed (their token loses the room); a new
    student appears; a student made TA becomes instructor; a member the instructor added by
    hand is never touched; students may not sync; the room's sockets get one members.changed
    with the new count."""
    course(lms, "c-od")
    teacher, room = await teacher_launch(server, lms, "c-od")
    assert await until(lambda: _count(server, teacher, room, 5))
    r, _ = await launch(lms, Scenario("s-2", name="Sue Two", roles=[LEARNER], context_id="c-od"))
    sue, _ = landing(r)
    guest, _ = await server.user("guest", display_name="Guest Speaker")
    status, body = await server.http("POST", f"/api/rooms/{room}/members", teacher, {"user_id": guest["id"]})
    assert status in (200, 201), body
    status, _ = await server.http("POST", f"/api/rooms/{room}/lti/roster-sync", sue)
    assert status == 403
    sue_socket, teacher_socket = await server.client(sue), await server.client(teacher)
    await teacher_socket.request("room.join", room=room)

    lms.roster["c-od"] = [
        lms.member("t-1", "Tess Teacher", [INSTRUCTOR]),
        lms.member("s-1", "Sam One", [TA]),
        lms.member("s-3", "Sid Three", status="Inactive"),
        lms.member("s-4", "Sia Four", status="Deleted"),
        lms.member("s-5", "Sol Five"),
    ]
    status, body = await server.http("POST", f"/api/rooms/{room}/lti/roster-sync", teacher)
    assert status == 200, body
    assert body["sync"] | {"synced_at": None} == {
        "members": 3, "added": 1, "removed": 3, "updated": 1, "roster": True, "gradebook": True,
        "synced_at": None, "sync_error": None, "sync_interval_s": server.deps.config.lti_roster_sync_s}
    assert await members(server, teacher, room) == {
        "Tess Teacher": "instructor", "Sam One": "instructor", "Sol Five": "student", "Guest Speaker": "student"}
    event = await sue_socket.next_event("room.removed")
    assert event["room"]["id"] == room and event["reason"] == "lms_roster"
    event = await teacher_socket.next_event("members.changed")  # the people panel and count follow
    assert (event["room"], event["added"], event["removed"], event["members_count"]) == (room, 1, 3, 4), event
    status, _ = await server.http("GET", f"/api/rooms/{room}", sue)
    assert status == 403, "a student who left the course kept the room"
    # a second sync changes nothing
    status, body = await server.http("POST", f"/api/rooms/{room}/lti/roster-sync", teacher)
    assert (body["sync"]["added"], body["sync"]["removed"], body["sync"]["updated"]) == (0, 0, 0)
    # someone banned from the room stays out though the LMS lists them
    _, detail = await server.http("GET", f"/api/rooms/{room}", teacher)
    [sol] = [m["user"]["id"] for m in detail["members"] if m["user"]["display_name"] == "Sol Five"]
    status, _ = await server.http("POST", f"/api/rooms/{room}/bans", teacher, {"user_id": sol})
    assert status == 201
    status, body = await server.http("POST", f"/api/rooms/{room}/lti/roster-sync", teacher)
    assert status == 200 and body["sync"]["added"] == 0
    assert "Sol Five" not in await members(server, teacher, room)


async def _count(server, token, room, n):
    return len(await members(server, token, room)) == n


async def test_a_broken_roster_answer_changes_nothing(server, lms):
    """An empty roster, or an LMS whose roster service fails: 503 with the reason, the room's
    members as they were, the error shown in the room's LMS status."""
    course(lms, "c-bad")
    teacher, room = await teacher_launch(server, lms, "c-bad")
    assert await until(lambda: _count(server, teacher, room, 5))
    lms.roster["c-bad"] = []
    status, body = await server.http("POST", f"/api/rooms/{room}/lti/roster-sync", teacher)
    assert status == 503 and "nobody" in body["error"]["reason"], body
    lms.roster["c-bad"] = [lms.member("t-1", "Tess Teacher", [INSTRUCTOR])]
    lms.failing = True  # the LMS's roster service answers 500
    status, body = await server.http("POST", f"/api/rooms/{room}/lti/roster-sync", teacher)
    assert status == 503 and "HTTP 500" in body["error"]["reason"], body
    assert len(await members(server, teacher, room)) == 5
    status, body = await server.http("GET", f"/api/rooms/{room}/lti", teacher)
    assert status == 200 and "HTTP 500" in body["lti"]["sync_error"]


async def test_rooms_without_the_service(server, lms):
    """A launch without NRPS: sync is 409 with what to enable; a room not from an LMS: lti null."""
    teacher, room = await teacher_launch(server, lms, "c-none", services=False)
    status, body = await server.http("POST", f"/api/rooms/{room}/lti/roster-sync", teacher)
    assert status == 409 and "Names and Role" in body["error"]["reason"]
    status, body = await server.http("GET", f"/api/rooms/{room}/lti", teacher)
    assert status == 200 and body["lti"]["roster"] is False and body["lti"]["gradebook"] is False
    own, token = await server.user("own", "instructor")
    plain = await server.room(token)
    status, body = await server.http("GET", f"/api/rooms/{plain['id']}/lti", token)
    assert status == 200 and body == {"lti": None}


@pytest.mark.parametrize("config_overrides", [{"lti_roster_sync_s": 0.5}])
async def test_periodic_sync(server, lms):
    """With LTI_ROSTER_SYNC_S set, a roster change reaches the room without a launch or a click."""
    course(lms, "c-per")
    teacher, room = await teacher_launch(server, lms, "c-per")
    assert await until(lambda: _count(server, teacher, room, 5))
    lms.roster["c-per"].append(lms.member("s-9", "Sky Nine"))
    assert await until(lambda: _count(server, teacher, room, 6), timeout=8)
