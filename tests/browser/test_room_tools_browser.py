"""What the API can do, the browser can do (issue 16.6): searching a room and jumping to a
result far back in its history, the instructors' Statistics dialog, and the status picker with
automatic away. Real server (with Redis when the suite runs on PostgreSQL+Redis), real headless
Chromium."""
from __future__ import annotations

import os
import re
import secrets
from datetime import datetime, timezone

import pytest
from playwright.sync_api import expect

from tests.browser.test_chat_browser import message, send, seqs

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


@pytest.fixture
def server_env() -> dict[str, str]:
    """Presence statuses across the shared store when the suite has a Redis."""
    url = os.environ.get("TEST_REDIS_URL")
    return {"REDIS_URL": url, "REDIS_PREFIX": "podium-test-" + secrets.token_hex(4)} if url else {}


def person(page, name: str):
    return page.get_by_test_id("person").filter(has_text=name)


def test_search_jumps_to_a_message_far_back_in_history(api, open_page):
    """A search result 250 messages back loads the history back to it and shows it highlighted."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "Physics 2", [ben])
    api.send(ana, room["id"], "Welcome to Physics 2", "w-0")
    target = api.send(ben, room["id"], "Where is the pendulum worksheet?", "q-1")
    for i in range(1, 251):
        api.send(ana, room["id"], f"note {i}", f"n-{i}")
    api.send(ana, room["id"], "The pendulum demo is on Friday", "n-last")

    _, b = open_page(ben, f"/#/rooms/{room['id']}")
    expect(b.get_by_test_id("message")).to_have_count(50)
    assert target["seq"] not in seqs(b)

    b.get_by_test_id("open-search").click()
    b.get_by_test_id("search-input").fill("pendul")
    results = b.get_by_test_id("search-result")
    expect(results).to_have_count(2)
    expect(b.get_by_test_id("search-status")).to_have_text("2 messages found")
    expect(results.first).to_contain_text("The pendulum demo is on Friday")  # newest first
    expect(results.nth(1).locator("mark")).to_have_text("pendulum")

    results.nth(1).click()
    hit = b.locator(f"[data-testid=message][data-seq='{target['seq']}']")
    expect(hit).to_have_class(re.compile(r"\bhighlight\b"))
    expect(hit).to_be_in_viewport()
    expect(hit.get_by_test_id("message-content")).to_have_text("Where is the pendulum worksheet?")
    # The window reaches back to the message with a little context, and stays contiguous.
    loaded = seqs(b)
    assert loaded[0] <= target["seq"] - 1 and loaded == list(range(loaded[0], loaded[-1] + 1))
    assert loaded[-1] == target["seq"] + 251
    # The list folded away for the chat; Newer steps to the next result, Show results brings the list back.
    expect(b.get_by_test_id("search-results")).to_be_hidden()
    expect(b.get_by_test_id("search-status")).to_have_text("2 of 2 messages")
    expect(b.get_by_test_id("search-older")).to_be_disabled()
    b.get_by_test_id("search-newer").click()
    newest = b.locator(f"[data-testid=message][data-seq='{target['seq'] + 251}']")
    expect(newest).to_have_class(re.compile(r"\bhighlight\b"))
    expect(newest).to_be_in_viewport()
    expect(b.get_by_test_id("search-status")).to_have_text("1 of 2 messages")
    b.get_by_test_id("search-older").click()  # loaded by now: a plain jump back up
    expect(hit).to_be_in_viewport()
    expect(newest).not_to_be_in_viewport()
    expect(b.get_by_test_id("search-status")).to_have_text("2 of 2 messages")
    b.get_by_test_id("search-show-results").click()
    expect(results).to_have_count(2)
    expect(results.nth(1)).to_have_attribute("aria-current", "true")

    b.get_by_test_id("search-input").fill("nothing-like-this")
    expect(b.get_by_test_id("search-status")).to_contain_text("No messages match")
    b.get_by_test_id("search-input").press("Escape")
    expect(b.get_by_test_id("search-panel")).to_be_hidden()


def test_statistics_for_instructors_only(api, open_page):
    """The instructor's Statistics dialog counts what was sent: per day, per member, files; a student has no Statistics."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    cleo = api.register("cleo", "Cleo Park")
    room = api.course(ana, "Biology", [ben, cleo])
    for i in range(3):
        api.send(ana, room["id"], f"reading {i}", f"a-{i}")
    for i in range(5):
        api.send(ben, room["id"], f"question {i}", f"b-{i}")
    gone = api.send(ben, room["id"], "oops", "b-gone")
    assert api.call("DELETE", f"/api/messages/{gone['id']}", ben.token)[0] == 200
    api.send(cleo, room["id"], "goodbye, I am changing course", "c-0")
    assert api.call("DELETE", f"/api/rooms/{room['id']}/members/{cleo.user['id']}", ana.token)[0] in (200, 204)
    status, body = api.call("GET", f"/api/rooms/{room['id']}/statistics", ana.token)
    assert status == 200
    system = body["by_kind"].get("system", 0)  # notices the server itself wrote (a removal may write one)

    _, b = open_page(ben, f"/#/rooms/{room['id']}")
    expect(message(b, "question 4")).to_have_count(1)
    expect(b.get_by_test_id("open-statistics")).to_be_hidden()

    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    # A file shared in the room (uploaded through the page, as a user would).
    a.get_by_test_id("open-files").click()
    a.get_by_test_id("files-upload-input").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"cells and membranes\n" * 10}])
    expect(a.get_by_test_id("files-item")).to_have_count(1)
    a.get_by_test_id("close-files").click()

    a.get_by_test_id("open-statistics").click()
    panel = a.get_by_test_id("stats-panel")
    expect(panel.get_by_test_id("stats-total-value")).to_have_text(str(9 + system))
    expect(panel.get_by_test_id("stats-active-value")).to_have_text("2 of 2")  # Cleo left
    expect(panel.get_by_test_id("stats-files-value")).to_have_text("1")
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    day = panel.locator(f"[data-testid=stats-day][data-day='{today}']")
    expect(day.get_by_test_id("stats-day-count")).to_have_text(str(9 + system))
    members = panel.get_by_test_id("stats-member")
    expect(members).to_have_count(3)
    expect(members.first).to_contain_text("Ben Okafor")
    expect(members.first.get_by_test_id("stats-member-count")).to_contain_text("5")
    expect(members.nth(1)).to_contain_text("Ana Lima")
    expect(members.nth(1).get_by_test_id("stats-member-count")).to_contain_text("3")
    expect(members.nth(2)).to_contain_text("Cleo Park (left)")
    expect(members.nth(2).get_by_test_id("stats-member-count")).to_contain_text("1")
    expect(panel.locator("[data-testid=stats-category][data-category]")).to_have_count(1)
    a.get_by_test_id("close-stats").click()
    expect(panel).to_have_count(0)


def test_status_picker_and_automatic_away(api, open_page):
    """Busy chosen in the picker shows to others; idle past the threshold turns Online into Away, activity back."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "Music", [ben])
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    _, b = open_page(ben, f"/#/rooms/{room['id']}")
    expect(person(a, "Ben Okafor")).to_have_attribute("data-status", "online")
    expect(b.get_by_test_id("my-status")).to_have_value("online")

    b.get_by_test_id("my-status").select_option("busy")
    expect(person(a, "Ben Okafor")).to_have_attribute("data-status", "busy")
    expect(person(b, "Ben Okafor")).to_have_attribute("data-status", "busy")
    # Kept across a reload (the server forgot it when the last socket closed).
    b.reload()
    expect(b.get_by_test_id("my-status")).to_have_value("busy")
    expect(person(a, "Ben Okafor")).to_have_attribute("data-status", "busy")
    b.get_by_test_id("my-status").select_option("online")
    expect(person(a, "Ben Okafor")).to_have_attribute("data-status", "online")

    # Automatic away: a 60 s threshold for this browser, and a fake clock to get past it
    # (fast_forward fires each due timer once: the socket's own timers see one jump, not a minute of ticks).
    b.evaluate("localStorage.setItem('podium.awayAfterS', '60')")
    b.clock.install()
    b.reload()
    send(b, "back from the break")
    expect(a.get_by_test_id("message").last).to_contain_text("back from the break")
    b.clock.fast_forward(30_000)
    expect(b.get_by_test_id("status-picker")).to_have_attribute("data-status", "online")
    b.clock.fast_forward(40_000)
    expect(b.get_by_test_id("status-picker")).to_have_attribute("data-status", "away")
    expect(b.get_by_test_id("status-picker")).to_have_attribute("data-auto", "true")
    expect(person(a, "Ben Okafor")).to_have_attribute("data-status", "away")
    b.mouse.move(200, 200)
    b.mouse.move(240, 260)
    expect(b.get_by_test_id("status-picker")).to_have_attribute("data-status", "online")
    expect(person(a, "Ben Okafor")).to_have_attribute("data-status", "online")
    # Busy does not turn into away.
    b.get_by_test_id("my-status").select_option("busy")
    expect(person(a, "Ben Okafor")).to_have_attribute("data-status", "busy")
    b.clock.fast_forward(120_000)
    expect(b.get_by_test_id("status-picker")).to_have_attribute("data-status", "busy")
    expect(person(a, "Ben Okafor")).to_have_attribute("data-status", "busy")


def test_activity_in_one_tab_keeps_the_other_tabs_online(api, open_page):
    """Automatic away counts activity in any tab of the browser: an idle tab beside a used one does not send away."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "Music", [ben])
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    ctx, b1 = open_page(ben, f"/#/rooms/{room['id']}")
    b1.evaluate("localStorage.setItem('podium.awayAfterS', '60')")
    ctx.clock.install()
    b1.reload()
    b2 = ctx.new_page()
    b2.goto(b1.url)
    for page in (b1, b2):
        expect(page.get_by_test_id("status-picker")).to_have_attribute("data-status", "online")
    expect(person(a, "Ben Okafor")).to_have_attribute("data-status", "online")

    ctx.clock.fast_forward(40_000)
    b1.mouse.move(100, 300)
    b1.mouse.move(300, 320)  # only the first tab is used
    ctx.clock.fast_forward(40_000)  # 80 s since the second tab saw anything of its own
    b2.wait_for_timeout(500)
    expect(b2.get_by_test_id("status-picker")).to_have_attribute("data-status", "online")
    expect(person(a, "Ben Okafor")).to_have_attribute("data-status", "online")

    ctx.clock.fast_forward(70_000)  # nothing in either tab for 70 s
    for page in (b1, b2):
        expect(page.get_by_test_id("status-picker")).to_have_attribute("data-status", "away")
    expect(person(a, "Ben Okafor")).to_have_attribute("data-status", "away")
