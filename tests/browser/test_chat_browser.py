"""The browser client (web/) against the real server, in real headless Chromium.

Each test starts its own server process over a fresh database and drives one browser context
per simulated user, through the same hooks (data-testid) a person would use.
"""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

OFFLINE_TEXT = "Offline — reconnecting…"


def contents(page: Page) -> list[str]:
    return page.locator("[data-testid=message] [data-testid=message-content]").all_text_contents()


def seqs(page: Page) -> list[int]:
    return [int(s) for s in page.eval_on_selector_all("[data-testid=message]", "els => els.map(e => e.dataset.seq)")]


def send(page: Page, text: str) -> None:
    page.get_by_test_id("composer").fill(text)
    page.get_by_test_id("send").click()


def message(page: Page, text: str):
    return page.get_by_test_id("message").filter(has=page.get_by_test_id("message-content").get_by_text(text, exact=True))


def sign_up(page: Page, username: str, display_name: str) -> None:
    page.get_by_test_id("show-signup").click()
    page.get_by_test_id("username").fill(username)
    page.get_by_test_id("display-name").fill(display_name)
    page.get_by_test_id("password").fill("violet-ladder-42")
    page.get_by_test_id("signup").click()
    expect(page.get_by_test_id("logout")).to_be_visible()


def test_instructor_and_student_chat_in_real_time(open_page):
    """Sign-up, course creation, add-by-username and live messages both ways work through the UI."""
    _, ana = open_page()
    _, ben = open_page()
    sign_up(ana, "ana", "Ana Lima")
    sign_up(ben, "ben", "Ben Okafor")

    ana.get_by_test_id("create-room").click()
    ana.get_by_test_id("room-name-input").fill("Biology 101")
    ana.get_by_test_id("room-kind-select").select_option("course")
    ana.get_by_test_id("create-room-submit").click()
    expect(ana.get_by_test_id("room-item")).to_have_count(1)
    room_id = ana.get_by_test_id("room-item").get_attribute("data-room-id")
    expect(ana).to_have_url(re.compile(rf"#/rooms/{room_id}$"))

    ana.get_by_test_id("add-member-input").fill("ben")
    ana.get_by_test_id("add-member-submit").click()
    # room.added reaches Ben's open page: the room appears without a reload and Ben's client
    # subscribes to it, so Ana sees him online.
    expect(ana.get_by_test_id("online-list")).to_contain_text("Ben Okafor")
    send(ana, "Hello class, welcome!")
    expect(message(ana, "Hello class, welcome!")).to_have_count(1)

    item = ben.locator(f"[data-testid=room-item][data-room-id='{room_id}']")
    expect(item).to_contain_text("Biology 101")
    expect(item.get_by_test_id("unread-count")).to_have_text("2")  # "Ana added Ben" + the welcome
    item.click()
    expect(message(ben, "Hello class, welcome!")).to_have_count(1)
    expect(item.get_by_test_id("unread-count")).to_have_count(0)
    expect(ana.get_by_test_id("online-list")).to_contain_text("Ben Okafor")

    send(ben, "Hi Professor Lima!")
    expect(message(ana, "Hi Professor Lima!")).to_have_count(1)
    send(ana, "Great to have you here.")
    expect(message(ben, "Great to have you here.")).to_have_count(1)

    expected = ["Ana Lima added Ben Okafor", "Hello class, welcome!", "Hi Professor Lima!", "Great to have you here."]
    for page in (ana, ben):
        expect(page.get_by_test_id("message")).to_have_count(4)
        assert contents(page) == expected
        assert seqs(page) == [1, 2, 3, 4]


def test_offline_student_catches_up_in_order_once_each(api, open_page):
    """A student who drops offline sees the offline banner, then every missed message once, in order."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "Chemistry", [ben])
    api.send(ana, room["id"], "Before the break", "c-1")
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    ben_ctx, b = open_page(ben, f"/#/rooms/{room['id']}")
    expect(message(b, "Before the break")).to_have_count(1)
    expect(a.get_by_test_id("online-list")).to_contain_text("Ben Okafor")
    banner = b.get_by_test_id("offline-banner")
    expect(banner).to_be_hidden()

    ben_ctx.set_offline(True)
    expect(banner).to_be_visible()
    expect(banner).to_have_text(OFFLINE_TEXT)
    expect(a.get_by_test_id("offline-list")).to_contain_text("Ben Okafor")  # presence.left reached Ana
    missed = [f"Missed message {i}" for i in range(1, 6)]
    for text in missed:
        send(a, text)
    expect(a.get_by_test_id("message")).to_have_count(6)
    send(b, "Written while offline")
    expect(b.get_by_test_id("pending-message")).to_have_count(1)
    assert contents(b) == ["Before the break"]  # nothing arrived while offline

    ben_ctx.set_offline(False)
    expect(banner).to_be_hidden(timeout=15_000)
    expected = ["Before the break", *missed, "Written while offline"]
    for page in (a, b):
        expect(page.get_by_test_id("message")).to_have_count(len(expected))
        expect(page.get_by_test_id("pending-message")).to_have_count(0)
    b.wait_for_timeout(500)  # late duplicates would show up now
    for page in (a, b):
        assert contents(page) == expected
        assert seqs(page) == list(range(1, len(expected) + 1))
    assert [m["content"] for m in api.messages(ana, room["id"])] == expected


def test_message_queued_while_server_is_down_is_delivered_once(api, open_page, podium):
    """A message sent while the server is down waits in the outbox and is stored exactly once after it returns."""
    ana = api.register("ana", "Ana Lima")
    room = api.course(ana, "Physics", [])
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    expect(a.get_by_text("No messages yet")).to_be_visible()

    podium.kill()
    banner = a.get_by_test_id("offline-banner")
    expect(banner).to_be_visible()
    send(a, "Typed during the outage")
    expect(a.get_by_test_id("pending-message")).to_contain_text("Waiting for connection")

    podium.start()
    expect(banner).to_be_hidden(timeout=20_000)
    expect(message(a, "Typed during the outage")).to_have_count(1)
    expect(a.get_by_test_id("pending-message")).to_have_count(0)
    assert [m["content"] for m in api.messages(ana, room["id"])] == ["Typed during the outage"]


def test_html_in_a_message_renders_as_literal_text(api, open_page):
    """Markup in messages (and in reply quotes) is shown as text: no element is created, no script runs."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "Security 101", [ben])
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    _, b = open_page(ben, f"/#/rooms/{room['id']}")
    dialogs: list[str] = []
    for page in (a, b):
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    expect(a.get_by_test_id("online-list")).to_contain_text("Ben Okafor")

    payloads = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script><b>bold</b>",
                '<a href="javascript:alert(3)">click</a>']
    for text in payloads:
        send(a, text)
    for page in (a, b):
        expect(page.get_by_test_id("message")).to_have_count(3)
        assert contents(page) == payloads
    # Replying quotes the payload; the quote is text too.
    target = message(b, payloads[0])
    target.hover()
    target.get_by_test_id("reply").click()
    expect(b.get_by_test_id("reply-preview")).to_contain_text(payloads[0])
    send(b, "What does this do?")
    expect(a.get_by_test_id("reply-quote")).to_contain_text(payloads[0])

    a.wait_for_timeout(500)
    for page in (a, b):
        assert page.locator("[data-testid=message-list] img").count() == 0
        assert page.locator("[data-testid=message-list] script").count() == 0
        assert page.locator("[data-testid=message-list] b").count() == 0
        assert page.locator("[data-testid=message-list] a[href^='javascript']").count() == 0
    assert dialogs == []


def test_typing_indicator_reactions_and_read_receipts_reach_the_other_user(api, open_page):
    """Typing shows "… is typing…" and clears after idle; reactions toggle live; "Seen by" follows reads."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "History", [ben])
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    _, b = open_page(ben, f"/#/rooms/{room['id']}")
    expect(a.get_by_test_id("online-list")).to_contain_text("Ben Okafor")

    b.get_by_test_id("composer").press_sequentially("I think")
    expect(a.get_by_test_id("typing-indicator")).to_have_text("Ben Okafor is typing…")
    expect(a.get_by_test_id("typing-indicator")).to_have_text("", timeout=8_000)  # 3 s idle → stop

    # Sending ends the typing at once: the message clears the indicator, and Ben's client sends
    # no active:false for it (that cost every member a frame); typing again shows it again.
    frames: list[str] = []
    b.on("websocket", lambda ws: ws.on("framesent", lambda payload: frames.append(payload)))
    b.reload()
    expect(a.get_by_test_id("online-list")).to_contain_text("Ben Okafor")
    b.get_by_test_id("composer").fill("")  # "I think" may still be in it
    b.get_by_test_id("composer").press_sequentially("Page 12")
    expect(a.get_by_test_id("typing-indicator")).to_have_text("Ben Okafor is typing…")
    b.get_by_test_id("send").click()
    expect(message(a, "Page 12")).to_be_visible()
    expect(a.get_by_test_id("typing-indicator")).to_have_text("", timeout=2_000)  # the message, not the 3 s idle
    typing = [json.loads(f) for f in frames if isinstance(f, str) and '"typing"' in f]
    assert [t["active"] for t in typing] == [True], typing
    b.get_by_test_id("composer").press_sequentially("or 13")
    expect(a.get_by_test_id("typing-indicator")).to_have_text("Ben Okafor is typing…")

    send(a, "Read chapter 4 for Monday.")
    expect(a.get_by_test_id("seen-by")).to_have_text("Seen by Ben Okafor")

    target = message(b, "Read chapter 4 for Monday.")
    target.hover()
    target.locator("[data-testid=react][data-emoji='👍']").click()
    chip = message(a, "Read chapter 4 for Monday.").locator("[data-testid=reaction][data-emoji='👍']")
    expect(chip).to_have_text("👍1")
    expect(chip).to_have_attribute("title", "Ben Okafor")

    message(b, "Read chapter 4 for Monday.").locator("[data-testid=reaction][data-emoji='👍']").click()
    expect(chip).to_have_count(0)


def test_edit_delete_and_announcements_follow_room_roles(api, open_page):
    """Authors edit their messages, instructors delete any message, only instructors post announcements."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "Maths", [ben])
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    _, b = open_page(ben, f"/#/rooms/{room['id']}")
    expect(a.get_by_test_id("online-list")).to_contain_text("Ben Okafor")

    send(b, "teh answer is 42")
    mine = message(b, "teh answer is 42")
    mine.hover()
    mine.get_by_test_id("edit").click()
    b.get_by_test_id("edit-input").fill("the answer is 42")
    b.get_by_test_id("edit-input").press("Enter")
    edited = message(a, "the answer is 42")
    expect(edited).to_have_count(1)
    expect(edited).to_contain_text("(edited)")

    # Ben (student) sees no announcement switch and cannot delete Ana's messages.
    expect(b.get_by_test_id("announcement-toggle")).to_be_hidden()
    a.get_by_test_id("announcement-toggle").check()
    send(a, "Exam moved to Friday")
    announcement = message(b, "Exam moved to Friday")
    expect(announcement).to_have_attribute("data-kind", "announcement")
    expect(announcement).to_contain_text("Announcement")
    announcement.hover()
    expect(announcement.get_by_test_id("delete")).to_have_count(0)

    # Ana (room instructor) deletes Ben's message; both see the tombstone.
    target = message(a, "the answer is 42")
    target.hover()
    target.get_by_test_id("delete").click()
    target.get_by_test_id("confirm-delete").click()
    for page in (a, b):
        expect(page.get_by_test_id("message").first.get_by_test_id("message-content")).to_have_text("message deleted")
        expect(page.get_by_text("the answer is 42")).to_have_count(0)


def test_scrolling_up_loads_older_history_in_order(api, open_page):
    """The room opens on the latest 50 messages; scrolling up pages in older ones until the first."""
    ana = api.register("ana", "Ana Lima")
    room = api.course(ana, "Archive", [])
    for i in range(1, 131):
        api.send(ana, room["id"], f"note {i}", f"n-{i}")
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    expect(a.get_by_test_id("message")).to_have_count(50)
    assert seqs(a) == list(range(81, 131))

    scroller = a.locator(".messages")
    for _ in range(10):
        if a.get_by_test_id("message").count() == 130:
            break
        scroller.evaluate("el => { el.scrollTop = 0; }")
        a.wait_for_timeout(300)
    expect(a.get_by_test_id("message")).to_have_count(130)
    assert seqs(a) == list(range(1, 131))
    expect(a.get_by_text("This is the beginning of Archive.")).to_be_visible()


def test_edits_and_deletes_made_while_offline_reach_the_returning_student(api, open_page):
    """Edits and deletions of messages a student already had, made while they were offline,
    show once they reconnect (room.changes), without a reload."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "History", [ben])
    first = api.send(ana, room["id"], "Homework is page 10", "h-1")
    second = api.send(ana, room["id"], "Wrong room, sorry", "h-2")
    ben_ctx, b = open_page(ben, f"/#/rooms/{room['id']}")
    expect(message(b, "Wrong room, sorry")).to_have_count(1)

    ben_ctx.set_offline(True)
    expect(b.get_by_test_id("offline-banner")).to_be_visible()
    status, _ = api.call("PATCH", f"/api/messages/{first['id']}", ana.token, {"content": "Homework is page 12"})
    assert status == 200
    status, _ = api.call("DELETE", f"/api/messages/{second['id']}", ana.token)
    assert status == 200
    assert "Homework is page 10" in contents(b)  # nothing changes while offline

    ben_ctx.set_offline(False)
    expect(b.get_by_test_id("offline-banner")).to_be_hidden(timeout=15_000)
    expect(message(b, "Homework is page 12")).to_have_count(1)
    expect(message(b, "Homework is page 10")).to_have_count(0)
    expect(message(b, "Wrong room, sorry")).to_have_count(0)
