"""LTI 1.3 resource-link launch (issue 17.1, 17.2, 17.7) against a real platform implementation
(``lti1p3platform`` from PyPI, tests/lti/platform.py) on loopback: the platform initiates the
login, signs the id_token with its own key and serves its JWKS; Podium validates and lands the
user in the course room. Bad launches get an HTML error page and create nothing.

The HTTP client keeps cookies like a browser (:class:`Browser`): the login's state cookie goes
back with the launch. ``BROWSER`` is the test's browser (emptied by the ``lms`` fixture); a
test passes another one to play a second browser."""
from __future__ import annotations

import json
import re
import time
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from sqlalchemy import func, select
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from server.db import lti as q
from server.db.models import LtiContext, LtiUser, Membership, Room, User
from tests.lti.platform import INSTRUCTOR, LEARNER, MENTOR, TA, Platform, Scenario, new_key_pem


class Browser:
    """A browser's cookie jar, for what these tests need: cookies by host (not port, as
    browsers do) and path prefix, ``Max-Age`` (0 deletes), attributes kept for checks."""

    def __init__(self) -> None:
        self.cookies: dict[tuple[str, str], tuple[str, str, float | None, dict]] = {}

    def clear(self) -> None:
        self.cookies.clear()

    def take(self, url: str, resp) -> None:
        host = urlsplit(url).hostname
        for line in resp.headers.get_list("Set-Cookie"):
            first, *rest = [p.strip() for p in line.split(";")]
            name, _, value = first.partition("=")
            attrs = {k.strip().lower(): v.strip() for k, _, v in (a.partition("=") for a in rest)}
            path = attrs.get("path", "/")
            if "max-age" in attrs and int(attrs["max-age"]) <= 0:
                self.cookies.pop((host, name), None)
                continue
            expires = time.monotonic() + int(attrs["max-age"]) if "max-age" in attrs else None
            self.cookies[(host, name)] = (value, path, expires, attrs)

    def header(self, url: str) -> str | None:
        parts = urlsplit(url)
        now = time.monotonic()
        found = [f"{name}={value}" for (host, name), (value, path, expires, _) in self.cookies.items()
                 if host == parts.hostname and parts.path.startswith(path) and (expires is None or expires > now)]
        return "; ".join(found) or None

    def named(self, prefix: str) -> dict[str, tuple[str, dict]]:
        return {name: (value, attrs) for (_, name), (value, _, _, attrs) in self.cookies.items()
                if name.startswith(prefix)}


BROWSER = Browser()


@pytest.fixture
def lms(server, io_loop):
    BROWSER.clear()
    platform = Platform(server.base_url).start()

    async def register():
        async with server.deps.db.write() as s:
            await q.add_platform(s, platform.issuer, platform.client_id, [platform.deployment_id],
                                 platform.base + "/authorize", platform.base + "/jwks",
                                 platform.base + "/token", [platform.base])
        server.deps.lti.frames.forget()

    io_loop.run_sync(register)
    yield platform
    platform.stop()

    async def unregister():  # on PostgreSQL the table is not emptied between tests
        async with server.deps.db.write() as s:
            for p in await q.platforms_of(s, platform.issuer):
                await q.remove_platform(s, p.id)

    io_loop.run_sync(unregister)


async def fetch(url: str, method: str = "GET", form: dict | None = None, browser: Browser | None = BROWSER):
    """One request of ``browser`` (its cookies sent and kept; None: a client without cookies)."""
    body = urlencode(form) if form is not None else None
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
    if browser is not None and browser.header(url):
        headers["Cookie"] = browser.header(url)
    resp = await AsyncHTTPClient().fetch(HTTPRequest(url, method=method, body=body, headers=headers,
                                                     follow_redirects=False, request_timeout=30),
                                         raise_error=False)
    if browser is not None:
        browser.take(url, resp)
    return resp


async def platform_form(lms: Platform, scenario: Scenario, browser: Browser | None = BROWSER) -> tuple[str, dict]:
    """The LMS's side up to its auto-posting launch form: ``(action, {id_token, state})``, the
    login started by ``browser`` (which keeps the state cookie)."""
    r = await fetch(lms.start_url(scenario), browser=browser)
    assert r.code in (302, 307), r.body
    login_url = r.headers["Location"]
    assert login_url.startswith(lms.tool_base + "/lti/login?"), login_url
    r = await fetch(login_url, browser=browser)
    assert r.code == 302, r.body
    auth = r.headers["Location"]
    assert auth.startswith(lms.base + "/authorize?"), auth
    q_ = parse_qs(urlsplit(auth).query)
    assert q_["response_mode"] == ["form_post"] and q_["scope"] == ["openid"] and q_["prompt"] == ["none"]
    r = await fetch(auth, browser=browser)
    assert r.code == 200, r.body
    page = r.body.decode()
    action = unescape(re.search(r'action="([^"]+)"', page).group(1))
    fields = {name: unescape(value) for name, value in
              re.findall(r'name="(id_token|state)" value="([^"]*)"', page)}
    return action, fields


async def launch(lms: Platform, scenario: Scenario):
    action, fields = await platform_form(lms, scenario)
    assert action == lms.tool_base + "/lti/launch"
    return await fetch(action, "POST", fields), fields


def landing(resp) -> tuple[str, str]:
    page = resp.body.decode()
    m = re.search(r'id="podium-lti" data-token="([^"]+)" data-room="([^"]+)"', page)
    assert m, page
    assert '<script src="/lti-launch.js"></script>' in page
    return unescape(m.group(1)), m.group(2)


async def members(server, token: str, room_id: str) -> dict:
    """``{display name: room role}`` of the room, as GET /api/rooms/{id} shows it to ``token``."""
    status, body = await server.http("GET", f"/api/rooms/{room_id}", token)
    assert status == 200, body
    return {m["user"]["display_name"]: m["role"] for m in body["members"]}


async def counts(server) -> dict:
    async with server.deps.db.read() as s:
        return {t.__tablename__: (await s.execute(select(func.count()).select_from(t))).scalar()
                for t in (User, Room, Membership, LtiUser, LtiContext)}


async def test_first_launch_creates_user_and_course_room_and_signs_in(server, lms):
    resp, _ = await launch(lms, Scenario("u-ada", name="Ada Lovelace", roles=[LEARNER],
                                         context_id="phys", context_title="Physics 101"))
    assert resp.code == 200, resp.body
    assert resp.headers["Content-Type"].startswith("text/html")
    csp = resp.headers["Content-Security-Policy"]
    assert f"frame-ancestors 'self' {lms.base}" in csp and "script-src 'self'" in csp
    token, room_id = landing(resp)
    status, me = await server.http("GET", "/api/me", token)
    assert status == 200, me
    assert me["user"]["display_name"] == "Ada Lovelace"
    status, rooms = await server.http("GET", "/api/rooms", token)
    assert status == 200
    [room] = [r for r in rooms["rooms"] if r["id"] == room_id]
    assert room["name"] == "Physics 101" and room["kind"] == "course"
    assert await members(server, token, room_id) == {"Ada Lovelace": "student"}


async def test_second_launch_reuses_user_and_room_and_follows_roles(server, lms):
    r1, _ = await launch(lms, Scenario("u-1", name="Grace", roles=[INSTRUCTOR], context_id="c"))
    token1, room1 = landing(r1)
    r2, _ = await launch(lms, Scenario("u-2", name="Alan", roles=[TA], context_id="c"))
    _, room2 = landing(r2)
    r3, _ = await launch(lms, Scenario("u-3", name="Mia", roles=[MENTOR], context_id="c"))
    _, room3 = landing(r3)
    r4, _ = await launch(lms, Scenario("u-1", name="Grace Hopper", roles=[INSTRUCTOR], context_id="c"))
    token4, room4 = landing(r4)
    assert room1 == room2 == room3 == room4
    status, me1 = await server.http("GET", "/api/me", token1)
    status, me4 = await server.http("GET", "/api/me", token4)
    assert me1["user"]["id"] == me4["user"]["id"], "a second launch of the same sub made a second user"
    assert me4["user"]["display_name"] == "Grace Hopper"
    # a launch without a name (the LMS stopped sharing it) keeps the name Podium knows
    r6, _ = await launch(lms, Scenario("u-1", name="", roles=[INSTRUCTOR], context_id="c"))
    token6, _ = landing(r6)
    status, me6 = await server.http("GET", "/api/me", token6)
    assert me6["user"]["display_name"] == "Grace Hopper"
    assert await members(server, token4, room1) == {"Grace Hopper": "instructor", "Alan": "instructor", "Mia": "student"}
    # another course of the same LMS is another room
    r5, _ = await launch(lms, Scenario("u-1", roles=[LEARNER], context_id="other", context_title="Chemistry"))
    _, room5 = landing(r5)
    assert room5 != room1


async def test_never_matched_to_an_existing_account_by_name(server, lms):
    existing, _ = await server.user("ada", display_name="Ada Lovelace")
    resp, _ = await launch(lms, Scenario("ada", name="Ada Lovelace"))
    token, _ = landing(resp)
    status, me = await server.http("GET", "/api/me", token)
    assert me["user"]["id"] != existing["id"] and me["user"]["username"] != "ada"


async def test_learner_claiming_instructor_in_custom_claim_stays_student(server, lms):
    resp, _ = await launch(lms, Scenario("u-x", roles=[LEARNER],
                                         custom={"role": "instructor", "roles": INSTRUCTOR}))
    token, room = landing(resp)
    assert list((await members(server, token, room)).values()) == ["student"]


async def test_replayed_launch_is_refused(server, lms):
    resp, fields = await launch(lms, Scenario("u-r"))
    landing(resp)
    before = await counts(server)
    again = await fetch(lms.tool_base + "/lti/launch", "POST", fields)
    assert again.code == 400 and "already used" in again.body.decode()
    # the same id_token with the state of a fresh login: its nonce is not that login's
    _, fresh = await platform_form(lms, Scenario("u-r"))
    again = await fetch(lms.tool_base + "/lti/launch", "POST", {"id_token": fields["id_token"], "state": fresh["state"]})
    assert again.code == 400 and "nonce" in again.body.decode()
    assert await counts(server) == before


async def refused(server, lms, fields: dict, words: str) -> None:
    before = await counts(server)
    resp = await fetch(lms.tool_base + "/lti/launch", "POST", fields)
    page = resp.body.decode()
    assert resp.code == 400, page
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "Podium could not open this course" in page and words in page, page
    assert "podium-lti" not in page
    assert await counts(server) == before, "a refused launch created something"


async def test_expired_token_is_refused(server, lms):
    _, fields = await platform_form(lms, Scenario("u-e", lifetime_s=-60))
    await refused(server, lms, fields, "expired")


async def test_wrong_audience_is_refused(server, lms):
    _, fields = await platform_form(lms, Scenario("u-a", extra_claims={"aud": "someone-else"}))
    await refused(server, lms, fields, "audience")


async def test_unknown_deployment_is_refused(server, lms):
    _, fields = await platform_form(lms, Scenario(
        "u-d", extra_claims={"https://purl.imsglobal.org/spec/lti/claim/deployment_id": "dep-unknown"}))
    await refused(server, lms, fields, "deployment")


async def test_wrong_message_type_is_refused(server, lms):
    _, fields = await platform_form(lms, Scenario(
        "u-m", extra_claims={"https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiSubmissionReviewRequest"}))
    await refused(server, lms, fields, "LtiResourceLinkRequest")


async def test_deep_linking_request_without_return_url_is_refused(server, lms):
    _, fields = await platform_form(lms, Scenario(
        "u-m2", roles=[INSTRUCTOR],
        extra_claims={"https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiDeepLinkingRequest"}))
    await refused(server, lms, fields, "deep_link_return_url")


async def test_forged_token_is_refused(server, lms):
    _, fields = await platform_form(lms, Scenario("u-f"))
    claims = jwt.decode(fields["id_token"], options={"verify_signature": False})
    header = jwt.get_unverified_header(fields["id_token"])
    other_private, _ = new_key_pem()
    forged = jwt.encode(claims, other_private, algorithm="RS256", headers={"kid": header["kid"]})
    await refused(server, lms, dict(fields, id_token=forged), "not valid")


async def test_unsigned_token_is_refused(server, lms):
    _, fields = await platform_form(lms, Scenario("u-n"))
    claims = jwt.decode(fields["id_token"], options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    await refused(server, lms, dict(fields, id_token=unsigned), "RS256")


async def test_token_signed_by_a_rotated_out_key_and_rotation(server, lms):
    """The platform rotates its key: launches signed with the new key pass (unknown kid →
    the key set is fetched again); a token signed with the old key after rotation does not."""
    _, old = await platform_form(lms, Scenario("u-k"))
    lms.rotate_key()
    resp, _ = await launch(lms, Scenario("u-k2"))
    landing(resp)
    await refused(server, lms, old, "not signed by a key of the platform")


async def test_unregistered_platform_login_is_refused(server, lms):
    r = await fetch(server.base_url + "/lti/login?" + urlencode({"iss": "https://unknown.example", "login_hint": "x"}))
    assert r.code == 400 and "not registered" in r.body.decode()
    assert r.headers["Content-Type"].startswith("text/html")


async def test_login_by_post_and_tool_jwks(server, lms):
    r = await fetch(server.base_url + "/lti/login", "POST",
                    {"iss": lms.issuer, "login_hint": "u-p", "target_link_uri": server.base_url + "/lti/launch",
                     "client_id": lms.client_id, "lti_deployment_id": lms.deployment_id})
    assert r.code == 302 and r.headers["Location"].startswith(lms.base + "/authorize?")
    r = await fetch(server.base_url + "/lti/jwks")
    keys = json.loads(r.body)["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["kid"]
    assert "d" not in keys[0], "the private exponent leaked"
    assert (server.deps.config.data_dir / "lti_tool_key.pem").stat().st_mode & 0o077 == 0


async def test_index_page_may_be_framed_by_registered_platforms_only(server, lms):
    r = await fetch(server.base_url + "/")
    ancestors = r.headers["Content-Security-Policy"].split("frame-ancestors ")[1].split(";")[0].split()
    assert ancestors[0] == "'self'" and lms.base in ancestors and "'none'" not in ancestors


async def test_launch_time_bound(server, lms):
    t0 = time.monotonic()
    resp, _ = await launch(lms, Scenario("u-t"))
    landing(resp)
    assert time.monotonic() - t0 < 10


async def test_a_new_member_is_announced_and_a_banned_one_stays_out(server, lms):
    r1, _ = await launch(lms, Scenario("t-1", name="Tess Teacher", roles=[INSTRUCTOR], context_id="ban"))
    teacher, room = landing(r1)
    watcher = await server.client(teacher)
    await watcher.request("room.join", room=room)
    r2, _ = await launch(lms, Scenario("s-1", name="Sid Student", roles=[LEARNER], context_id="ban"))
    student, _ = landing(r2)
    event = await watcher.next_event("message.new")
    assert event["message"]["kind"] == "system"
    assert event["message"]["content"] == "Sid Student joined from the LMS"
    _, me = await server.http("GET", "/api/me", student)
    status, body = await server.http("POST", f"/api/rooms/{room}/bans", teacher, {"user_id": me["user"]["id"]})
    assert status == 201, body
    _, fields = await platform_form(lms, Scenario("s-1", name="Sid Student", roles=[LEARNER], context_id="ban"))
    before = await counts(server)
    resp = await fetch(lms.tool_base + "/lti/launch", "POST", fields)
    assert resp.code == 403 and "banned" in resp.body.decode()
    assert await counts(server) == before
    assert await members(server, teacher, room) == {"Tess Teacher": "instructor"}


async def test_state_is_bound_to_the_browser_that_started_the_login(server, lms):
    """Login CSRF: an id_token and state from a login someone else's browser started are
    refused, with or without cookies of its own, and with a cookie of the wrong value; the
    browser that started the login launches. The state cookie is partitioned, Secure,
    HttpOnly, SameSite=None, for /lti/ and the login's lifetime."""
    victim, attacker = Browser(), Browser()
    action, theirs = await platform_form(lms, Scenario("mallory", name="Mallory"), attacker)
    [(name, (value, attrs))] = attacker.named("podium_lti_state_").items()
    assert name == "podium_lti_state_" + theirs["state"] and value == theirs["state"]
    assert attrs["samesite"] == "None" and attrs["path"] == "/lti/" and attrs["max-age"] == "600"
    assert {"secure", "httponly", "partitioned"} <= set(attrs)
    _, mine = await platform_form(lms, Scenario("victim", name="Victor Victim"), victim)
    assert victim.named("podium_lti_state_"), "the victim's own login cookie"

    before = await counts(server)
    for form, browser in ((theirs, victim), ((await platform_form(lms, Scenario("mallory"), attacker))[1], None)):
        resp = await fetch(action, "POST", form, browser=browser)
        page = resp.body.decode()
        assert resp.code == 403 and resp.headers["Content-Type"].startswith("text/html"), page
        assert "Podium could not open this course" in page and "did not start in this browser" in page
        assert "podium-lti" not in page
    _, third = await platform_form(lms, Scenario("mallory"), attacker)
    wrong = await AsyncHTTPClient().fetch(HTTPRequest(  # the cookie of the state holding another state
        action, method="POST", body=urlencode(third),
        headers={"Cookie": f"podium_lti_state_{third['state']}={mine['state']}"}), raise_error=False)
    assert wrong.code == 403, wrong.body
    assert await counts(server) == before, "a refused launch created something"
    again = await fetch(action, "POST", theirs, browser=attacker)  # the refused launch used the state
    assert again.code == 400 and "already used" in again.body.decode()

    resp = await fetch(action, "POST", mine, browser=victim)
    token, _ = landing(resp)
    _, me = await server.http("GET", "/api/me", token)
    assert me["user"]["display_name"] == "Victor Victim"
    assert not victim.named("podium_lti_state_"), "the used login's cookie was not removed"


async def test_login_with_platform_storage_puts_the_state_there_and_checks_it_without_the_cookie(server, lms):
    """A login naming ``lti_storage_target`` answers a page that puts the state in the LMS's
    storage before going on; its launch without the cookie answers the hand-off hidden behind
    the storage check (the browser, tests/browser, checks it), with the cookie the plain one;
    a Deep Linking page without the cookie keeps its form hidden behind the same check."""
    pages = []
    for browser, scenario in ((Browser(), Scenario("s-store")), (Browser(), Scenario("s-store")),
                              (Browser(), Scenario("t-store", roles=[INSTRUCTOR], deep_linking=True))):
        scenario.storage_target = "post_message_forwarding"
        r = await fetch(lms.start_url(scenario), browser=browser)
        login_url = r.headers["Location"]
        assert "lti_storage_target=post_message_forwarding" in login_url
        r = await fetch(login_url, browser=browser)
        page = r.body.decode()
        assert r.code == 200 and r.headers["Content-Type"].startswith("text/html"), page
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        m = re.search(r'<div id="podium-lti-login" data-target="([^"]+)" data-origin="([^"]+)" '
                      r'data-state="([^"]+)" data-next="([^"]+)">', page)
        assert m and '<script src="/lti-storage.js"></script>' in page, page
        target, origin, state, auth = (unescape(g) for g in m.groups())
        assert (target, origin) == ("post_message_forwarding", lms.base)
        assert [(name, value) for name, (value, _) in browser.named("podium_lti_state_").items()] \
            == [(f"podium_lti_state_{state}", state)]
        r = await fetch(auth, browser=browser)
        fields = dict(re.findall(r'name="(id_token|state)" value="([^"]*)"', r.body.decode()))
        assert fields["state"] == state
        pages.append((browser, fields))

    (with_cookie, f1), (_, f2), (_, f3) = pages
    plain = (await fetch(lms.tool_base + "/lti/launch", "POST", f1, browser=with_cookie)).body.decode()
    assert "podium-lti-check" not in plain and "lti-storage.js" not in plain
    resp = await fetch(lms.tool_base + "/lti/launch", "POST", f2, browser=None)
    page = resp.body.decode()
    assert resp.code == 200 and "script-src 'self'" in resp.headers["Content-Security-Policy"], page
    m = re.search(r'<div id="podium-lti-check" data-target="post_message_forwarding" data-origin="([^"]+)" '
                  r'data-state="([^"]+)" hidden><div id="podium-lti" data-token=', page)
    assert m and unescape(m.group(1)) == lms.base and unescape(m.group(2)) == f2["state"], page
    assert page.index('src="/lti-storage.js"') < page.index('src="/lti-launch.js"')
    resp = await fetch(lms.tool_base + "/lti/launch", "POST", f3, browser=None)
    page = resp.body.decode()
    assert resp.code == 200 and "script-src 'self'" in resp.headers["Content-Security-Policy"], page
    assert re.search(r'<div id="podium-lti-check" [^>]* hidden><h1>Add Podium to this course</h1>', page), page
    assert page.index('src="/lti-storage.js"') < page.index('src="/lti-launch.js"')
    # a storage target that is not a plain frame name is ignored: cookie only
    r = await fetch(server.base_url + "/lti/login?" + urlencode(
        {"iss": lms.issuer, "login_hint": "x", "lti_storage_target": "a\"><script>"}), browser=None)
    assert r.code == 302
