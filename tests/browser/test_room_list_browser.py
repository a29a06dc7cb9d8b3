"""The room list shows each room's last message, live (issue 19.3), in real headless Chromium
against the real server: what another user sends, edits or deletes changes the preview on an
open page without a reload, and the room moves to the top with its unread count."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_chat_browser import send
from tests.browser.test_files_browser import png, upload

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


def item(page: Page, room_id: str):
    return page.locator(f"[data-testid=room-item][data-room-id='{room_id}']")


def room_ids(page: Page) -> list[str]:
    return page.eval_on_selector_all("[data-testid=room-item]", "els => els.map(e => e.dataset.roomId)")


def test_preview_follows_what_another_user_sends_edits_and_deletes(api, open_page):
    """Ben's list shows the last message of each room with its sender and time, and follows
    Ana's new message, edit, attachment and deletion live; the room rises to the top."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    course = api.course(ana, "Biology 101", [ben])
    lab = api.course(ana, "Lab", [ben])
    api.send(ana, course["id"], "Welcome\n\nto   Biology", "w1")
    api.send(ben, lab["id"], "lab notes are up", "b1")

    _, ben_page = open_page(ben)
    course_item = item(ben_page, course["id"])
    expect(course_item.get_by_test_id("room-preview")).to_have_text("Ana Lima: Welcome to Biology")
    expect(item(ben_page, lab["id"]).get_by_test_id("room-preview")).to_have_text("You: lab notes are up")
    expect(course_item.get_by_test_id("room-time")).not_to_have_text("")
    assert room_ids(ben_page) == [lab["id"], course["id"]]

    # Ana, in her own browser, writes in the course: Ben's open list follows at once.
    _, ana_page = open_page(ana, f"/#/rooms/{course['id']}")
    send(ana_page, "Homework is on page 12")
    expect(course_item.get_by_test_id("room-preview")).to_have_text("Ana Lima: Homework is on page 12")
    expect(course_item.get_by_test_id("unread-count")).to_have_text("2")
    expect(ben_page.get_by_test_id("room-item").first).to_have_attribute("data-room-id", course["id"])

    last = api.messages(ana, course["id"])[-1]
    status, _ = api.call("PATCH", f"/api/messages/{last['id']}", ana.token, {"content": "Homework is on page 14"})
    assert status == 200
    expect(course_item.get_by_test_id("room-preview")).to_have_text("Ana Lima: Homework is on page 14")

    f = upload(api, ana, "cells.png", png(16, 16))
    status, body = api.call("POST", f"/api/rooms/{course['id']}/messages", ana.token,
                            {"client_msg_id": "img1", "kind": "image", "content": "", "file_id": f["id"]})
    assert status == 201, body
    expect(course_item.get_by_test_id("room-preview")).to_have_text("Ana Lima: 📎 file")

    # Deleting the newest message brings back the one before it; its text never shows again.
    status, _ = api.call("DELETE", f"/api/messages/{body['message']['id']}", ana.token)
    assert status == 200
    expect(course_item.get_by_test_id("room-preview")).to_have_text("Ana Lima: Homework is on page 14")
    status, _ = api.call("DELETE", f"/api/messages/{last['id']}", ana.token)
    assert status == 200
    expect(course_item.get_by_test_id("room-preview")).to_have_text("Ana Lima: Welcome to Biology")
    expect(ben_page.get_by_test_id("room-list")).not_to_contain_text("page 14")
