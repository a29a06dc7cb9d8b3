"""LTI Advantage in Chromium (issue 17.3, 17.4, 17.5): inside the LMS's iframe (the real
platform of tests/lti/platform.py, lti1p3platform on 127.0.0.1; Podium on localhost,
cross-site), an instructor picks the live class room on Podium's Deep Linking page and the LMS
receives the link; in an LMS course room the people panel's "Sync roster now" brings in a
student added in the LMS, and the attendance dialog's "Send to gradebook" previews each
student's score and, once confirmed, the LMS receives the scores."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.browser.test_lti_browser import lms, open_course  # noqa: F401  (fixture)
from tests.lti.platform import INSTRUCTOR, Scenario
from tests.wsclient import WsClient

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def test_deep_linking_page_in_the_lms_frame_returns_the_room_link(browser, podium, lms):
    ctx, page, frame, errors = open_course(browser, lms, Scenario(
        "prof-dl", name="Prof Plum", roles=[INSTRUCTOR], context_id="dl-1", context_title="Optics", deep_linking=True))
    try:
        room_choice = frame.get_by_test_id("pick-room")
        room_choice.wait_for()
        assert room_choice.is_checked()
        assert "Optics" in frame.locator("label").first.inner_text()
        frame.get_by_test_id("deep-link-add").click()
        frame.locator("#dl-done").wait_for()  # the LMS's page, after it checked Podium's signed response
        [[item]] = lms.deep_link_items
        assert item["type"] == "ltiResourceLink" and item["url"] == f"http://localhost:{podium.port}/lti/launch"
        assert item["title"] == "Optics — live class" and item["custom"]["podium_room"]
    finally:
        ctx.close()
    assert not errors, errors


def test_send_to_gradebook_previews_then_sends_from_the_attendance_dialog(browser, podium, lms, api):
    lms.roster["gb-1"] = [lms.member("prof-gb", "Prof Plum", [INSTRUCTOR]),
                          lms.member("st-1", "Stu Dent"), lms.member("st-2", "Ada Absent")]
    ctx, page, frame, errors = open_course(browser, lms, Scenario(
        "prof-gb", name="Prof Plum", roles=[INSTRUCTOR], context_id="gb-1", context_title="Mechanics", services=True))
    try:
        frame.locator(".chat-title").filter(has_text="Mechanics").wait_for()
        [tool] = [f for f in page.frames if f.url.startswith(f"http://localhost:{podium.port}/")]
        room_id = tool.url.split("#/rooms/", 1)[1]
        token = tool.evaluate("localStorage.getItem('podium.token')")
        deadline = time.monotonic() + 10  # the launch's roster sync, in the background
        while len(api.call("GET", f"/api/rooms/{room_id}", token)[1]["members"]) < 3:
            assert time.monotonic() < deadline, "the roster was not synced"
            time.sleep(0.1)

        async def a_call() -> None:
            c = await WsClient.connect(podium.ws_url, token)
            try:
                session = (await c.request("call.start", room=room_id))["session"]["id"]
                await c.request("call.join", session=session)
                await asyncio.sleep(0.5)
                await c.request("call.end", session=session)
            finally:
                c.close()
        done: list = []
        runner = threading.Thread(target=lambda: done.append(asyncio.run(a_call())))  # playwright's loop runs here
        runner.start()
        runner.join(20)
        assert done, "the call did not run"

        # the people panel's roster box: a student added in the LMS appears on "Sync roster now"
        lms.roster["gb-1"].append(lms.member("st-3", "Neil New"))
        frame.get_by_test_id("lti-roster-sync").click()
        frame.get_by_test_id("lti-roster-note").filter(has_text="4 in the LMS course, 1 added").wait_for()
        frame.get_by_test_id("person").filter(has_text="Neil New").wait_for()

        frame.get_by_test_id("open-attendance").click()
        frame.get_by_test_id("attendance-view").wait_for()
        frame.get_by_test_id("attendance-row").first.wait_for()  # the call's attendance has loaded
        frame.get_by_test_id("send-gradebook").click()
        rows = frame.get_by_test_id("gradebook-row")
        rows.first.wait_for()
        assert sorted(rows.all_inner_texts()) == ["Ada Absent\t0\t0", "Neil New\t0\t0", "Stu Dent\t0\t0"]
        assert lms.scores == [], "the preview sent scores"
        frame.get_by_test_id("confirm-gradebook").click()
        frame.get_by_test_id("gradebook-note").filter(has_text="Sent 3 scores").wait_for()
        assert sorted(score["userId"] for _, score in lms.scores) == ["st-1", "st-2", "st-3"]
        assert all(score["scoreGiven"] == 0 and score["scoreMaximum"] == 100 for _, score in lms.scores)
    finally:
        ctx.close()
    assert not errors, errors
