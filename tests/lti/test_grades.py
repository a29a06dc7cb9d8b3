"""Attendance to the LMS gradebook (issue 17.4, 17.7) against the real platform of
tests/lti/platform.py (``lti1p3platform``'s AssignmentsGradesService checks the access token
and its scopes): the instructor previews, then sends; the platform receives one line item per
session and a score per student with the percent attended; sending again updates the scores
on the same line item."""
from __future__ import annotations

import asyncio

from server.lti.services import AGS_LINEITEM, AGS_SCORE
from tests.calls.helpers import calls_settle  # noqa: F401  (autouse fixture)
from tests.lti.platform import INSTRUCTOR, LEARNER, Scenario
from tests.lti.test_launch import landing, launch, lms, members  # noqa: F401  (fixture)
from tests.lti.test_roster import until


async def test_preview_then_send_attendance_to_the_gradebook(server, lms):
    lms.roster["c-g"] = [lms.member("t-1", "Tess Teacher", [INSTRUCTOR]), lms.member("s-1", "Sam One"),
                         lms.member("s-2", "Sue Two"), lms.member("s-3", "Sid Three")]
    r, _ = await launch(lms, Scenario("t-1", name="Tess Teacher", roles=[INSTRUCTOR], context_id="c-g", services=True))
    teacher, room = landing(r)
    r, _ = await launch(lms, Scenario("s-1", name="Sam One", roles=[LEARNER], context_id="c-g", services=True))
    sam, _ = landing(r)
    r, _ = await launch(lms, Scenario("s-2", name="Sue Two", roles=[LEARNER], context_id="c-g", services=True))
    sue, _ = landing(r)

    async def synced():
        return len(await members(server, teacher, room)) == 4
    assert await until(synced)
    guest, guest_token = await server.user("guest", display_name="Guest")  # not from the LMS
    await server.http("POST", f"/api/rooms/{room}/members", teacher, {"user_id": guest["id"]})

    t = await server.client(teacher)
    session = (await t.request("call.start", room=room))["session"]["id"]
    await t.request("call.join", session=session)
    s1 = await server.client(sam)
    await s1.request("call.join", session=session)  # Sam stays to the end
    s2 = await server.client(sue)
    await s2.request("call.join", session=session)
    g = await server.client(guest_token)
    await g.request("call.join", session=session)
    await asyncio.sleep(0.6)
    await s2.request("call.leave", session=session)  # Sue leaves early; Sid never comes
    await asyncio.sleep(0.6)

    # while live: the preview works, sending waits for the end
    status, body = await server.http("GET", f"/api/sessions/{session}/lti-grades", teacher)
    assert status == 200 and body["grades"]["live"] is True
    status, body = await server.http("POST", f"/api/sessions/{session}/lti-grades", teacher)
    assert status == 409 and "live" in body["error"]["reason"]
    await t.request("call.end", session=session)

    status, body = await server.http("GET", f"/api/sessions/{session}/lti-grades", sam)
    assert status == 403
    status, body = await server.http("GET", f"/api/sessions/{session}/lti-grades", teacher)
    assert status == 200, body
    preview = body["grades"]
    assert preview["label"].startswith("Attendance — ") and preview["line_item"] is None
    scores = {s["user"]["display_name"]: s for s in preview["scores"]}
    assert set(scores) == {"Sam One", "Sue Two", "Sid Three"}
    assert scores["Sid Three"]["percent"] == 0 and scores["Sid Three"]["minutes"] == 0
    assert 70 <= scores["Sam One"]["percent"] <= 100
    assert 20 <= scores["Sue Two"]["percent"] < scores["Sam One"]["percent"]
    assert {s["lms_user_id"] for s in preview["scores"]} == {"s-1", "s-2", "s-3"}
    assert {(s["user"]["display_name"], s["reason"]) for s in preview["skipped"]} == {
        ("Tess Teacher", "instructor"), ("Guest", "not from the LMS")}
    assert lms.scores == [] and lms.lineitems == {}, "the preview sent something"

    status, body = await server.http("POST", f"/api/sessions/{session}/lti-grades", teacher)
    assert status == 200, body
    sent = body["grades"]
    assert sent["sent"] == 3 and sent["failed"] == []
    [(item_id, item)] = lms.lineitems.items()
    assert sent["line_item"] == item["id"]
    assert item["label"] == preview["label"] and item["scoreMaximum"] == 100
    assert item["resourceId"] == f"podium-session-{session}" and item["tag"] == "attendance"
    received = {score["userId"]: score for line, score in lms.scores}
    assert set(received) == {"s-1", "s-2", "s-3"} and {line for line, _ in lms.scores} == {item_id}
    for sub, name in (("s-1", "Sam One"), ("s-2", "Sue Two"), ("s-3", "Sid Three")):
        got = received[sub]
        assert got["scoreGiven"] == scores[name]["percent"] and got["scoreMaximum"] == 100
        assert got["activityProgress"] == "Completed" and got["gradingProgress"] == "FullyGraded"
        assert got["timestamp"].endswith("Z")
    [token_request] = [r for r in lms.token_requests if AGS_SCORE in r["scope"]]
    assert set(token_request["scope"].split()) == {AGS_LINEITEM, AGS_SCORE}
    assert all(auth.startswith("Bearer ") for _, path, auth in lms.service_requests if path.startswith("/ags/"))

    # sending again: the same line item, fresh scores
    status, body = await server.http("POST", f"/api/sessions/{session}/lti-grades", teacher)
    assert status == 200 and body["grades"]["line_item"] == item["id"]
    assert len(lms.lineitems) == 1 and len(lms.scores) == 6
    status, body = await server.http("GET", f"/api/sessions/{session}/lti-grades", teacher)
    assert body["grades"]["line_item"] == item["id"]

    # the column was deleted in the LMS: sending makes it again
    lms.lineitems.clear()
    status, body = await server.http("POST", f"/api/sessions/{session}/lti-grades", teacher)
    assert status == 200 and body["grades"]["sent"] == 3, body
    [(new_id, new_item)] = lms.lineitems.items()
    assert body["grades"]["line_item"] == new_item["id"] != item["id"]
    assert sorted(score["userId"] for line, score in lms.scores if line == new_id) == ["s-1", "s-2", "s-3"]


async def test_gradebook_needs_the_service_and_reports_the_lms_refusal(server, lms):
    """A launch without AGS: 409 saying what to enable; the LMS failing: 503 with its answer."""
    r, _ = await launch(lms, Scenario("t-2", name="Tom", roles=[INSTRUCTOR], context_id="c-n"))
    teacher, room = landing(r)
    t = await server.client(teacher)
    session = (await t.request("call.start", room=room))["session"]["id"]
    await t.request("call.end", session=session)
    status, body = await server.http("GET", f"/api/sessions/{session}/lti-grades", teacher)
    assert status == 409 and "Assignment and Grade" in body["error"]["reason"]

    lms.roster["c-f"] = [lms.member("t-3", "Tia", [INSTRUCTOR]), lms.member("s-9", "Sal")]
    r, _ = await launch(lms, Scenario("t-3", name="Tia", roles=[INSTRUCTOR], context_id="c-f", services=True))
    teacher, room = landing(r)
    assert await until(lambda: _has(server, teacher, room, 2))
    t = await server.client(teacher)
    session = (await t.request("call.start", room=room))["session"]["id"]
    await t.request("call.end", session=session)
    lms.failing = True
    status, body = await server.http("POST", f"/api/sessions/{session}/lti-grades", teacher)
    assert status == 503 and "HTTP 500" in body["error"]["reason"], body
    assert lms.lineitems == {}


async def _has(server, token, room, n):
    return len(await members(server, token, room)) == n
