"""LTI 1.3 launch in Chromium (issue 17.2, 17.7): an LMS course page (the real platform of
tests/lti/platform.py, lti1p3platform on loopback) frames Podium; the iframe goes through the
OIDC login and the launch and opens the course room signed in, with the role the LMS gave.
The LMS is on 127.0.0.1 and Podium on localhost, so the frame is cross-site: this headless
Chromium blocks third-party cookies there, and keeps the login's state cookie only because it is
partitioned (CHIPS; Secure works on http://localhost, a potentially trustworthy origin).

Platform storage: a login naming ``lti_storage_target`` also puts its state in the LMS's
storage frame; a browser that refuses the cookie (its Set-Cookie dropped on the way, as a
browser blocking all cookies of Podium would) still lands signed in after the page found its
state there, and an id_token of someone else's login posted in the frame signs nobody in."""
from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from tests.lti.platform import INSTRUCTOR, LEARNER, Platform, Scenario

STATE_COOKIE = "podium_lti_state_"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
def lms(podium):
    platform = Platform(f"http://localhost:{podium.port}").start()
    r = podium.cli("lti", "add-platform", "--issuer", platform.issuer, "--client-id", platform.client_id,
                   "--deployment-id", platform.deployment_id, "--auth-login-url", platform.base + "/authorize",
                   "--key-set-url", platform.base + "/jwks", "--token-url", platform.base + "/token")
    assert r.returncode == 0, r.stderr
    yield platform
    platform.stop()


def open_course(browser, lms: Platform, scenario: Scenario, setup=None):
    """The LMS's course page in a new browser context; ``setup(ctx)`` runs before it loads.
    ``ctx.launches`` collects the Cookie header of each launch post to Podium."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(15_000)
    ctx.launches = []
    ctx.on("request", lambda r: ctx.launches.append(r.all_headers().get("cookie", ""))
           if r.url == lms.tool_base + "/lti/launch" else None)
    if setup:
        setup(ctx)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(lms.course_page_url(scenario))
    frame = page.frame_locator("#tool")
    return ctx, page, frame, errors


def drop_state_cookie(ctx) -> None:
    """Podium's login answers reach this browser without their Set-Cookie."""
    def without_cookie(route):
        resp = route.fetch(max_redirects=0)
        headers = {k: v for k, v in resp.headers.items() if k.lower() != "set-cookie"}
        route.fulfill(response=resp, headers=headers)
    ctx.route("**/lti/login?*", without_cookie)


def test_course_room_opens_signed_in_inside_the_lms_iframe_with_the_lms_role(browser, podium, lms):
    ctx, page, frame, errors = open_course(browser, lms, Scenario(
        "prof-9", name="Prof Plum", roles=[INSTRUCTOR], context_id="stat-1", context_title="Statistics 1"))
    try:
        frame.locator(".chat-title").filter(has_text="Statistics 1").wait_for()
        frame.locator("[data-testid=open-statistics]").wait_for(state="visible")  # instructors only
        [tool] = [f for f in page.frames if f.url.startswith(f"http://localhost:{podium.port}/")]
        assert tool.url.split("#", 1)[1].startswith("/rooms/"), tool.url
        room_id = tool.url.split("#/rooms/", 1)[1]
        assert "lti-token" not in tool.url and "lti-token" not in tool.evaluate("JSON.stringify(history.state)")
        assert tool.evaluate("podium.app.me.display_name") == "Prof Plum"
        assert tool.evaluate(f"podium.app.myRole({room_id!r})") == "instructor"
        [cookies] = ctx.launches  # the partitioned state cookie went back with the launch
        assert STATE_COOKIE in cookies, ctx.launches
    finally:
        ctx.close()

    # A learner of the same course, in another browser: the same room, as a student.
    ctx, page, frame, errors2 = open_course(browser, lms, Scenario(
        "stud-9", name="Sam Student", roles=[LEARNER], context_id="stat-1", context_title="Statistics 1"))
    try:
        frame.locator(".chat-title").filter(has_text="Statistics 1").wait_for()
        [tool] = [f for f in page.frames if f.url.startswith(f"http://localhost:{podium.port}/")]
        assert tool.url.split("#/rooms/", 1)[1] == room_id
        assert tool.evaluate("podium.app.me.display_name") == "Sam Student"
        assert tool.evaluate(f"podium.app.myRole({room_id!r})") == "student"
        assert not frame.locator("[data-testid=open-statistics]").is_visible()
    finally:
        ctx.close()
    assert not errors and not errors2, errors + errors2


def test_refused_launch_shows_an_error_page_in_the_iframe(browser, podium, lms):
    ctx, page, frame, errors = open_course(browser, lms, Scenario("late-1", lifetime_s=-120))
    try:
        frame.locator("#lti-error").filter(has_text="expired").wait_for()
        assert "Podium could not open this course" in frame.locator("h1").inner_text()
    finally:
        ctx.close()


def test_launch_in_a_new_window_keeps_the_session(browser, podium, lms):
    """Launched in a window of its own (not framed), the session is kept like after a sign-in:
    a reload stays signed in, in the room."""
    ctx = browser.new_context()
    ctx.set_default_timeout(15_000)
    try:
        page = ctx.new_page()
        page.goto(lms.start_url(Scenario("win-1", name="Wendy Window", roles=[LEARNER],
                                         context_id="c-win", context_title="Windowed course")))
        page.locator(".chat-title").filter(has_text="Windowed course").wait_for()
        assert "#/rooms/" in page.url and "lti-token" not in page.url
        assert page.evaluate("localStorage instanceof Storage && !!localStorage.getItem('podium.token')")
        page.reload()
        page.locator(".chat-title").filter(has_text="Windowed course").wait_for()
        assert page.evaluate("podium.app.me.display_name") == "Wendy Window"
    finally:
        ctx.close()


def test_platform_storage_proves_the_login_when_the_cookie_is_refused(browser, podium, lms):
    scenario = Scenario("store-1", name="Stella Storage", roles=[LEARNER], context_id="c-store",
                        context_title="Stored course", storage_target="post_message_forwarding")
    ctx, page, frame, errors = open_course(browser, lms, scenario, drop_state_cookie)
    try:
        frame.locator(".chat-title").filter(has_text="Stored course").wait_for()
        [tool] = [f for f in page.frames if f.url.startswith(f"http://localhost:{podium.port}/")]
        assert tool.evaluate("podium.app.me.display_name") == "Stella Storage"
        assert [STATE_COOKIE in c for c in ctx.launches] == [False], ctx.launches
        stored = page.frame(name="post_message_forwarding").evaluate("window.stored")
        [(key, value)] = stored[f"http://localhost:{podium.port}"].items()
        assert key == f"lti_state_{value}"
    finally:
        ctx.close()
    assert not errors, errors

    # Someone else's launch: their login (in a window of their own, no storage frame) up to
    # the LMS's auto-posting form, whose post they stop and keep; then this browser's LMS frame
    # posts it. The storage of this browser does not hold their state: nobody signs in.
    attacker = browser.new_context()
    attacker.set_default_timeout(15_000)
    try:
        attacker.route(lms.tool_base + "/lti/launch", lambda route: route.abort())
        page = attacker.new_page()
        with page.expect_request(lms.tool_base + "/lti/launch") as launch:
            page.goto(lms.start_url(Scenario("mallory", name="Mallory", context_id="c-store",
                                             storage_target="post_message_forwarding")))
        theirs = dict(parse_qsl(launch.value.post_data))
    finally:
        attacker.close()
    assert set(theirs) >= {"id_token", "state"}

    ctx = browser.new_context()
    ctx.set_default_timeout(15_000)
    try:
        page = ctx.new_page()
        page.goto(lms.replay_page_url(lms.tool_base + "/lti/launch", theirs))
        page.frame_locator("#tool").locator("#lti-error").filter(has_text="did not start in this browser").wait_for()
        [tool] = [f for f in page.frames if f.url.startswith(f"http://localhost:{podium.port}/")]
        assert tool.url == lms.tool_base + "/lti/launch"  # not handed off to the client
        assert tool.evaluate("document.getElementById('podium-lti') === null")  # the token is gone too
    finally:
        ctx.close()
