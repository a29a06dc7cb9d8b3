"""The chat's rules in the browser (issue 16.4): an instructor locks the chat and turns slow
mode on from the chat header; the student's composer says so and is disabled while locked;
a ban from the people panel removes the student, who loses the room. Real server, real
headless Chromium."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_chat_browser import contents, send

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]


def test_lock_slow_mode_and_ban_from_the_ui(api, open_page):
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "Chemistry 1", [ben])
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    _, b = open_page(ben, f"/#/rooms/{room['id']}")
    expect(b.get_by_test_id("lock-chat")).to_be_hidden()  # instructors only
    send(b, "hello before")
    expect(a.get_by_test_id("message-content").get_by_text("hello before")).to_be_visible()

    a.get_by_test_id("lock-chat").click()
    expect(a.get_by_test_id("lock-chat")).to_have_attribute("data-state", "on")
    note = b.get_by_test_id("chat-rules-note")
    expect(note).to_contain_text("locked the chat")
    expect(b.get_by_test_id("composer")).to_be_disabled()
    expect(b.get_by_test_id("message-content").get_by_text("Ana Lima locked the chat", exact=False)).to_be_visible()
    send(a, "instructors still write")
    expect(b.get_by_test_id("message-content").get_by_text("instructors still write")).to_be_visible()
    a.get_by_test_id("lock-chat").click()
    expect(b.get_by_test_id("composer")).to_be_enabled()
    expect(note).to_be_hidden()

    a.get_by_test_id("slow-mode").select_option("30")
    expect(note).to_contain_text("Slow mode")
    send(b, "one in slow mode")
    expect(a.get_by_test_id("message-content").get_by_text("one in slow mode")).to_be_visible()
    expect(note).to_contain_text("you can send again in")
    a.get_by_test_id("slow-mode").select_option("0")
    expect(note).to_be_hidden()
    send(b, "free again")
    expect(a.get_by_test_id("message-content").get_by_text("free again")).to_be_visible()

    ben_row = a.get_by_test_id("person").filter(has_text="Ben Okafor")
    ben_row.get_by_test_id("ban-member").click()
    a.get_by_test_id("confirm-ban").click()
    expect(a.get_by_test_id("member-action-note")).to_contain_text("Ben Okafor was banned")
    expect(a.get_by_test_id("person").filter(has_text="Ben Okafor")).to_have_count(0)
    expect(b.get_by_test_id("room-item")).to_have_count(0)
    assert "Ana Lima banned Ben Okafor" in contents(a)
