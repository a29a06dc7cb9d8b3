"""The client on a phone (390×844, touch) and the chat's polish (issue 15.8), in real headless
Chromium against the real server: no page or dialog scrolls sideways or opens off-screen,
message toolbars and toasts cover no text, and the chat stays usable during a call.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PASSWORD
from tests.browser.test_files_browser import upload

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

PHONE = (390, 844)
DESKTOP = (1280, 800)
MIN_CHAT_LIST_PX = 200  # a usable chat during a call: ten lines of messages, not two

# The document's width against the viewport, every open <dialog>'s box, and any visible element
# that scrolls sideways on its own (a horizontal scrollbar inside the page is a sideways scroll too).
FIT = """() => {
  const vw = window.innerWidth, vh = window.innerHeight;
  const box = (el) => { const r = el.getBoundingClientRect();
    return { left: Math.round(r.left), top: Math.round(r.top), right: Math.round(r.right), bottom: Math.round(r.bottom) }; };
  const name = (el) => el.dataset.testid || el.className || el.tagName;
  const dialogs = [...document.querySelectorAll('dialog[open]')].map((d) => ({ name: name(d), ...box(d) }));
  const scrollers = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.scrollWidth <= el.clientWidth + 1 || !el.checkVisibility()) continue;
    const ox = getComputedStyle(el).overflowX;
    if (ox === 'auto' || ox === 'scroll') scrollers.push({ name: name(el), scrollWidth: el.scrollWidth, clientWidth: el.clientWidth });
  }
  return { vw, vh, width: document.documentElement.scrollWidth, dialogs, scrollers };
}"""


def assert_fits(page: Page, where: str, size: tuple[int, int] = PHONE) -> dict:
    """No sideways scroll on ``page`` and every open dialog inside the viewport.

    A mobile browser widens its layout viewport to the page's content (innerWidth grows to fit
    an overflow), so the width is checked against the screen's own ``size`` too."""
    fit = page.evaluate(FIT)
    assert (fit["vw"], fit["vh"]) == size, f"{where}: the page was zoomed out to {fit['vw']}×{fit['vh']}: {fit}"
    assert fit["width"] <= fit["vw"], f"{where}: the page is {fit['width']} px wide on a {fit['vw']} px screen"
    assert not fit["scrollers"], f"{where}: parts scroll sideways: {fit['scrollers']}"
    for d in fit["dialogs"]:
        assert d["left"] >= 0 and d["top"] >= 0 and d["right"] <= fit["vw"] and d["bottom"] <= fit["vh"], \
            f"{where}: the dialog {d['name']} is not inside the {fit['vw']}×{fit['vh']} viewport: {d}"
    return fit


def drawer_open(page: Page, which: str = "people-panel") -> None:
    """Wait until a side drawer has slid all the way in."""
    page.wait_for_function("""(id) => { const r = document.getElementById(id).getBoundingClientRect();
      return getComputedStyle(document.getElementById(id)).visibility === 'visible' && r.left >= 0 && r.right <= innerWidth; }""", arg=which)
    page.wait_for_timeout(250)  # the slide's last frames


def box(locator) -> dict:
    b = locator.bounding_box()
    assert b is not None
    return b


def overlap(a: dict, b: dict) -> bool:
    """Whether two boxes share any area (touching edges do not)."""
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3
LONG_URL = "https://example.org/" + "a-very-long-path-segment/" * 8 + "?q=" + "x" * 60


def test_every_page_and_dialog_fits_a_phone(api, open_page, podium):
    """On a 390×844 touch screen nothing scrolls sideways and every dialog opens inside the screen:
    sign-in, the room list, a room with long words, a link, an image and a poll, People, Files,
    Recordings, Attendance, search, statistics, profile, status, a file's and the room's
    Rename/Move/Delete/Archive questions, a call with its device check, device menu, waiting
    room and breakouts, the playback page, and the page of a dead download link. The greeting uses the whole display
    name and says who may create rooms."""
    ana = api.register("ana", "Ms. Ana Lee")  # the first account: the site admin
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "Physics 201 — Mechanics, waves and thermodynamics for engineers", [ben])
    api.send(ben, room["id"], f"{LONG_WORD} {LONG_URL}", "m1")
    picture = upload(api, ben, "diagram-with-a-rather-long-file-name-for-a-phone.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64,
                     room=room["id"])
    status, body = api.call("POST", f"/api/rooms/{room['id']}/messages", ben.token,
                            {"client_msg_id": "f1", "kind": "file", "content": "", "file_id": picture["id"]})
    assert status in (200, 201), body
    status, body = api.call("POST", "/api/rooms", ana.token, {"kind": "group", "name": "Last year's seminar", "members": []})
    assert status == 201, body
    status, body = api.call("PATCH", f"/api/rooms/{body['room']['id']}", ana.token, {"archived": True})
    assert status == 200, body

    _, page = open_page(None, "/", viewport=PHONE, device_check=True, phone=True)
    expect(page.get_by_test_id("username")).to_be_visible()
    assert_fits(page, "sign-in")
    page.get_by_test_id("username").fill("ana")
    page.get_by_test_id("password").fill(PASSWORD)
    page.get_by_test_id("login").click()
    welcome = page.locator(".welcome-card")
    expect(welcome.get_by_role("heading")).to_have_text("Welcome, Ms. Ana Lee")  # the whole name, not "Ms."
    expect(welcome).to_contain_text("Anyone can create a room: you become its instructor")
    assert_fits(page, "welcome")
    page.get_by_role("button", name="Show rooms").click()
    drawer_open(page, "sidebar")
    assert_fits(page, "room list")
    page.get_by_test_id("create-room").click()
    expect(page.get_by_test_id("create-room-note")).to_contain_text("You become the room’s instructor")
    assert_fits(page, "new room form")
    page.get_by_test_id("toggle-archived").click()  # archived rooms shown too
    expect(page.get_by_test_id("room-item")).to_have_count(2)
    assert_fits(page, "room list with archived rooms")
    page.get_by_test_id("room-item").filter(has_text="Physics 201").click()

    # The room: a long word and link, an image, a poll.
    expect(page.get_by_test_id("message-content").filter(has_text="Pneumono")).to_be_visible()
    page.get_by_test_id("new-poll").click()
    poll = page.get_by_test_id("poll-composer")
    assert_fits(page, "poll composer")
    poll.get_by_test_id("poll-question-input").fill("Which of these units measures the work done by a force over a distance?")
    poll.get_by_test_id("poll-option-input").nth(0).fill("The joule, a newton-metre")
    poll.get_by_test_id("poll-option-input").nth(1).fill("The watt")
    poll.get_by_test_id("poll-submit").click()
    expect(page.get_by_test_id("poll-card")).to_be_visible()
    expect(page.get_by_test_id("attachment")).to_be_visible()
    assert_fits(page, "room with history")

    page.get_by_test_id("toggle-people").click()
    drawer_open(page)
    assert_fits(page, "people")
    page.keyboard.press("Escape")

    open_dialog(page, "open-files", "files-panel", check=lambda view: file_actions_fit(page, view))
    for opener, dialog in (("open-recordings", "recordings-panel"), ("open-statistics", "stats-panel"),
                           ("open-profile", "profile-dialog")):
        open_dialog(page, opener, dialog)
    # The room's Rename and Archive ask first.
    for opener, dialog, cancel in (("rename-room", "ask-text-dialog", "ask-text-cancel"),
                                   ("archive-room", "confirm-dialog", "confirm-cancel")):
        page.get_by_test_id(opener).click()
        expect(page.get_by_test_id(dialog)).to_be_visible()
        assert_fits(page, opener)
        page.get_by_test_id(cancel).click()
        expect(page.get_by_test_id(dialog)).to_have_count(0)

    page.get_by_test_id("open-search").click()
    page.get_by_test_id("search-input").fill("Pneumono")
    page.get_by_test_id("search-input").press("Enter")
    expect(page.get_by_test_id("search-result").first).to_be_visible()
    assert_fits(page, "search")
    page.get_by_test_id("close-search").click()

    expect(page.get_by_test_id("status-picker")).to_be_in_viewport()
    page.get_by_test_id("my-status").select_option("busy")
    assert_fits(page, "status")

    # A call with a waiting room: the device check, the stage, the queue, the breakouts board;
    # the chat stays usable on the phone and on Ben's desktop.
    _, desk = open_page(ben, f"/#/rooms/{room['id']}", viewport=DESKTOP)
    page.get_by_test_id("start-with-waiting-room").check()
    page.get_by_test_id("start-call").click()
    expect(page.get_by_test_id("device-check")).to_be_visible()
    assert_fits(page, "device check")
    page.get_by_test_id("device-check-join").click()
    expect(page.get_by_test_id("local-video")).to_be_attached()
    assert_fits(page, "call")
    desk.get_by_test_id("join-call").click()
    expect(desk.get_by_test_id("call-notice")).to_contain_text("Waiting for the instructor to let you in")
    page.get_by_test_id("toggle-people").click()
    drawer_open(page)
    queue = page.get_by_test_id("waiting-room-queue")
    expect(queue.get_by_test_id("waiting-person")).to_have_count(1)
    assert_fits(page, "waiting room")
    queue.get_by_test_id("admit").click()
    expect(page.get_by_test_id("video-tile")).to_have_count(2, timeout=20_000)
    page.get_by_test_id("breakout-open-form").click()
    expect(page.get_by_test_id("breakout-board")).to_be_visible()
    assert_fits(page, "breakouts")
    page.keyboard.press("Escape")
    expect(page.locator("#people-panel")).not_to_be_in_viewport()
    assert_fits(page, "call")
    page.get_by_test_id("device-menu").click()
    expect(page.get_by_test_id("device-menu-dialog")).to_be_visible()
    assert_fits(page, "device menu")
    page.get_by_test_id("device-menu-done").click()
    page.get_by_test_id("end-call").click()
    expect(page.get_by_test_id("confirm-dialog")).to_be_visible()
    assert_fits(page, "end the call?")
    page.get_by_test_id("confirm-cancel").click()
    check_chat_usable_in_call(page, "phone")
    check_chat_usable_in_call(desk, "desktop")
    expect(desk.get_by_test_id("message-content").filter(has_text="from the phone")).to_be_visible()
    page.get_by_test_id("end-call").click()
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("call-stage")).to_have_count(0)
    open_dialog(page, "open-attendance", "attendance-view",  # the call's two attendees, a bar each
                check=lambda view: (expect(view.get_by_test_id("attendance-row")).to_have_count(2),
                                    expect(view).not_to_contain_text("null")))

    # The playback page's own frame (a recording that is not there; the playback test checks a
    # real one at 390 px).
    page.goto(f"{podium.base_url}/#/recordings/999999")
    expect(page.get_by_test_id("playback-error")).to_be_visible()
    assert_fits(page, "playback page")

    # A dead download link: a friendly page with a way back.
    page.goto(f"{podium.base_url}/dl/{picture['id']}/a.png?exp=1&u=1&disp=attachment&kid=k&sig=bad")
    expect(page.get_by_role("heading")).to_have_text("This link no longer works")
    expect(page.get_by_test_id("link-error")).to_contain_text("Ask for a fresh link")
    assert_fits(page, "dead link page")
    page.get_by_test_id("back-to-podium").click()
    expect(page.get_by_test_id("composer").or_(page.locator(".welcome-card"))).to_be_visible()  # back in Podium


def open_dialog(page: Page, opener: str, dialog: str, check=lambda view: None) -> None:
    """Open a dialog, ``check`` it and its fit once it has loaded, close it with Esc."""
    page.get_by_test_id(opener).click()
    view = page.get_by_test_id(dialog)
    expect(view).to_be_visible()
    expect(view).not_to_contain_text("Loading")
    check(view)
    assert_fits(page, dialog)
    page.keyboard.press("Escape")
    expect(page.get_by_test_id(dialog)).to_have_count(0)


def file_actions_fit(page: Page, files) -> None:
    """The Files panel's Rename, Move and Delete of a file each ask in a dialog that fits too."""
    expect(files.get_by_test_id("files-item")).to_have_count(1)
    for action, dialog, cancel in (("file-rename", "ask-text-dialog", "ask-text-cancel"),
                                   ("file-move", "ask-text-dialog", "ask-text-cancel"),
                                   ("file-delete", "confirm-dialog", "confirm-cancel")):
        files.get_by_test_id(action).click()
        expect(page.get_by_test_id(dialog)).to_be_visible()
        assert_fits(page, action)
        page.get_by_test_id(cancel).click()
        expect(page.get_by_test_id(dialog)).to_have_count(0)


def check_chat_usable_in_call(page: Page, where: str) -> None:
    """During the call the message list has room for several lines and the composer sends."""
    page.wait_for_timeout(300)
    chat = box(page.locator(".messages"))
    composer = page.get_by_test_id("composer")
    expect(composer).to_be_in_viewport()
    assert chat["height"] >= MIN_CHAT_LIST_PX, f"{where}: the chat's messages get {chat['height']} px during a call"
    text = f"Sent during the call from the {where}"
    composer.fill(text)
    composer.press("Enter")
    expect(page.get_by_test_id("message-content").filter(has_text=text)).to_be_in_viewport()


def text_boxes(page: Page, message) -> list[dict]:
    """The boxes of a message's author line and text."""
    return [box(part) for part in message.locator(".msg-meta, [data-testid=message-content]").all()]


def test_message_toolbars_and_toasts_cover_no_text(api, open_page):
    """A hovered message's toolbar covers neither its author line and text nor the message above,
    on a desktop and on a phone; a toast covers neither the room's header, the messages nor the composer."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "Biology 101", [ben])
    api.send(ben, room["id"], "A question about the lab report: " + "how long should each section be? " * 12, "b1")
    api.send(ana, room["id"], "Two pages at most for the discussion, the rest as short as it can be while complete.", "a1")
    api.send(ana, room["id"], "And cite every source you used, in any style, as long as it is consistent throughout.", "a2")
    _, page = open_page(ana, f"/#/rooms/{room['id']}")
    messages = page.get_by_test_id("message").filter(has=page.locator(".msg-actions, .msg-body"))
    expect(messages).to_have_count(3)  # the question, two answers (the second continues the first)
    expect(messages.nth(2)).to_have_class(re.compile(r"\bcontinued\b"))

    for size in (DESKTOP, PHONE):
        page.set_viewport_size({"width": size[0], "height": size[1]})
        for i in (0, 1, 2):
            message = messages.nth(i)
            message.locator(".msg-row").hover()
            toolbar = message.locator(".msg-actions")
            expect(toolbar).to_be_visible()
            page.wait_for_timeout(50)  # the hover's relayout
            bar = box(toolbar)
            texts = text_boxes(page, message) + (text_boxes(page, messages.nth(i - 1)) if i else [])
            covered = [t for t in texts if overlap(bar, t)]
            assert not covered, f"{size}: the toolbar of message {i} {bar} covers text {covered}"
            assert bar["x"] >= 0 and bar["x"] + bar["width"] <= size[0], f"{size}: the toolbar {bar} leaves the screen"

    # Saving an edit as empty text is refused with a toast: it covers neither the messages nor the composer.
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    last = messages.nth(2)
    last.locator(".msg-row").hover()
    last.get_by_test_id("edit").click()
    page.get_by_test_id("edit-input").fill("")
    page.get_by_test_id("edit-save").click()
    toast = page.get_by_role("alert").filter(has_text="A message cannot be empty")
    expect(toast).to_be_visible()
    note = box(toast)
    for part in (page.locator(".chat-header"), page.locator(".messages"), page.get_by_test_id("composer"), messages.nth(1)):
        assert not overlap(note, box(part)), f"the toast {note} covers {part}: {box(part)}"
    expect(page.get_by_test_id("edit-input")).to_be_in_viewport()  # the last message, being edited, still shows
