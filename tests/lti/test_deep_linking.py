"""Deep Linking (issue 17.5, 17.7) against the real platform of tests/lti/platform.py: the
platform sends an LtiDeepLinkingRequest; the instructor picks the live class room or a ready
recording on Podium's page; Podium's signed LtiDeepLinkingResponse is accepted by the
platform (``lti1p3platform``'s ``validate_deeplinking_resp`` checks it against Podium's JWKS);
a launch of the link lands in the room or on the recording. Bad requests: an error page,
nothing created."""
from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape

import jwt

from server.db.models import Recording
from server.kernel.clock import utcnow
from tests.calls.helpers import calls_settle  # noqa: F401  (autouse fixture)
from tests.lti.platform import INSTRUCTOR, LEARNER, Scenario, new_key_pem
from tests.lti.test_launch import counts, fetch, landing, launch, lms, platform_form  # noqa: F401  (fixture)

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"


async def ready_recording(server, teacher: str, room: str, title: str) -> int:
    t = await server.client(teacher)
    session = (await t.request("call.start", room=room))["session"]["id"]
    await t.request("call.end", session=session)
    now = utcnow()
    _, me = await server.http("GET", "/api/me", teacher)
    async with server.deps.db.write() as s:
        rec = Recording(session_id=int(session), room_id=int(room), requested_by=int(me["user"]["id"]), status="ready",
                        requested_at=now - timedelta(minutes=50), started_at=now - timedelta(minutes=50),
                        stopped_at=now, duration_s=3000.0, title=title)
        s.add(rec)
        await s.flush()
        return rec.id


def selection_page(resp) -> tuple[str, list[str]]:
    page = resp.body.decode()
    assert resp.code == 200, page
    assert "form-action 'self'" in resp.headers["Content-Security-Policy"]
    selection = unescape(re.search(r'name="selection" value="([^"]+)"', page).group(1))
    picks = re.findall(r'name="pick" value="([^"]+)"', page)
    return selection, picks


async def deep_link_request(server, lms, user: str, roles: list[str], context_id: str, **kw):
    action, fields = await platform_form(lms, Scenario(user, name="Tess Teacher", roles=roles, context_id=context_id,
                                                       deep_linking=True, **kw))
    assert action == lms.tool_base + "/lti/launch"
    claims = jwt.decode(fields["id_token"], options={"verify_signature": False})
    assert claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiDeepLinkingRequest"
    return await fetch(action, "POST", fields)


async def pick(server, lms, selection: str, choice: str) -> tuple[str, str]:
    """Post the pick; the auto-posting form's action and JWT."""
    resp = await fetch(server.base_url + "/lti/deep-link", "POST", {"selection": selection, "pick": choice})
    page = resp.body.decode()
    assert resp.code == 200, page
    assert f"form-action {lms.base}" in resp.headers["Content-Security-Policy"]
    assert '<script src="/lti-autopost.js"></script>' in page
    action = unescape(re.search(r'<form id="podium-autopost" method="post" action="([^"]+)"', page).group(1))
    token = unescape(re.search(r'name="JWT" value="([^"]+)"', page).group(1))
    return action, token


async def test_instructor_picks_the_room_or_a_recording_and_the_link_launches_there(server, lms):
    resp, _ = await launch(lms, Scenario("t-1", name="Tess Teacher", roles=[INSTRUCTOR], context_id="c-dl"))
    teacher, room = landing(resp)
    rec_id = await ready_recording(server, teacher, room, "Week 1 lecture")

    resp = await deep_link_request(server, lms, "t-1", [INSTRUCTOR], "c-dl")
    selection, picks = selection_page(resp)
    assert picks == ["room", f"recording:{rec_id}"]
    assert "Week 1 lecture" in resp.body.decode()

    # the live class room
    action, token = await pick(server, lms, selection, "room")
    assert action == lms.base + "/deep_link_return"
    r = await fetch(action, "POST", {"JWT": token})
    assert r.code == 200 and "Content added" in r.body.decode(), r.body
    [[item]] = lms.deep_link_items
    assert item["type"] == "ltiResourceLink" and item["url"] == server.base_url + "/lti/launch"
    assert item["custom"]["podium_room"] == room
    # what the platform checked, and what it did not (audience, nonce, deployment, data)
    jwks = json.loads((await fetch(server.base_url + "/lti/jwks")).body)
    key = jwt.PyJWKSet.from_dict(jwks).keys[0]
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=lms.issuer)
    assert claims["iss"] == lms.client_id and claims["nonce"] and claims["exp"] > claims["iat"]
    assert claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == lms.deployment_id
    assert claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiDeepLinkingResponse"
    assert claims["https://purl.imsglobal.org/spec/lti/claim/version"] == "1.3.0"
    assert claims[DL + "data"] == {"opaque": "c-dl"}
    assert jwt.get_unverified_header(token)["kid"] == key.key_id

    # a learner's launch of that link (the LMS sends the item's custom parameters): the room
    resp, _ = await launch(lms, Scenario("s-1", name="Sam", roles=[LEARNER], context_id="c-dl", custom=item["custom"]))
    _, landed = landing(resp)
    assert landed == room and "data-recording" not in resp.body.decode()

    # the recording
    action, token = await pick(server, lms, selection, f"recording:{rec_id}")
    r = await fetch(action, "POST", {"JWT": token})
    assert r.code == 200, r.body
    item = lms.deep_link_items[-1][0]
    assert item["custom"] == {"podium_room": room, "podium_recording": str(rec_id)}
    assert "Week 1 lecture" in item["title"]
    resp, _ = await launch(lms, Scenario("s-1", name="Sam", roles=[LEARNER], context_id="c-dl", custom=item["custom"]))
    _, landed = landing(resp)
    assert landed == room and f'data-recording="{rec_id}"' in resp.body.decode()


async def test_refused_deep_linking(server, lms):
    """A Learner (also one claiming instructor rights in a custom claim), a forged selection, a
    recording of another course, an unknown pick: an error page, nothing created or sent."""
    resp, _ = await launch(lms, Scenario("t-1", name="Tess Teacher", roles=[INSTRUCTOR], context_id="c-a"))
    teacher, room = landing(resp)
    resp, _ = await launch(lms, Scenario("t-1", name="Tess Teacher", roles=[INSTRUCTOR], context_id="c-b"))
    _, other_room = landing(resp)
    other_rec = await ready_recording(server, teacher, other_room, "Other course")

    before = await counts(server)
    # a Deep Linking request re-signed with a key that is not the platform's
    _, fields = await platform_form(lms, Scenario("t-9", roles=[INSTRUCTOR], context_id="c-new", deep_linking=True))
    claims = jwt.decode(fields["id_token"], options={"verify_signature": False})
    forged = jwt.encode(claims, new_key_pem()[0], algorithm="RS256",
                        headers={"kid": jwt.get_unverified_header(fields["id_token"])["kid"]})
    r = await fetch(lms.tool_base + "/lti/launch", "POST", dict(fields, id_token=forged))
    assert r.code == 400 and "not valid" in r.body.decode()
    for custom in (None, {"roles": INSTRUCTOR, "role": "instructor"}):
        resp = await deep_link_request(server, lms, "s-x", [LEARNER], "c-a", custom=custom)
        assert resp.code == 403 and "only instructors" in resp.body.decode()
        assert "podium-dl-pick" not in resp.body.decode()
    assert await counts(server) == before

    resp = await deep_link_request(server, lms, "t-1", [INSTRUCTOR], "c-a")
    selection, _ = selection_page(resp)
    for bad_selection, choice, words in (
            (selection[:-4] + "AAAA", "room", "did not come from Podium"),
            (jwt.encode({"aud": "podium:lti-deep-linking-selection", "iss": "podium", "pid": 1, "ret": "http://x/",
                         "room": int(room), "iat": 1, "exp": 9999999999}, "a-guessed-secret-" * 3, algorithm="HS256"),
             "room", "did not come from Podium"),
            (selection, f"recording:{other_rec}", "not a ready recording of this course"),
            (selection, "room:1", "pick the live class room")):
        r = await fetch(server.base_url + "/lti/deep-link", "POST", {"selection": bad_selection, "pick": choice})
        page = r.body.decode()
        assert r.code == 400 and words in page, page
        assert "podium-autopost" not in page
    assert lms.deep_link_items == []
