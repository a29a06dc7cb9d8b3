"""Ringing in the browser (issue 19.1): Ana, in a course room, presses "Call" on Ben in its
people panel: their direct room opens and its call rings Ben's two tabs — on another room —
(dialog with her name and picture, the tab's title) and he accepts in one, which stops the
other: both are in the call. A second call he declines (Ana reads "declined"); a third he
does not answer becomes a missed call in the room with an unread badge (and rings in a tab
he opens meanwhile). Real server, real headless Chromium."""
from __future__ import annotations


import pytest
from playwright.sync_api import expect

from tests.browser.test_pictures_browser import png

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
def server_env() -> dict[str, str]:
    # Long enough for the checks while it rings on a loaded machine; the missed call waits it out.
    return {"RING_TIMEOUT_S": "12"}


def test_a_call_rings_the_other_tab_accept_decline_then_a_missed_call(api, open_page, podium):
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    course = api.course(ana, "Elsewhere", [ben])
    api.set_avatar(ana, png((200, 60, 60)))
    _, a = open_page(ana, f"/#/rooms/{course['id']}")
    _, b = open_page(ben, f"/#/rooms/{course['id']}", device_check=True)  # Ben is in another room
    phone = b.context.new_page()  # and signed in in a second tab
    phone.goto(f"{podium.base_url}/#/rooms/{course['id']}")
    expect(phone.get_by_test_id("logout")).to_be_visible()
    # "Call" on Ben in the course's people panel: the direct room (made now) and its call.
    a.get_by_test_id("person").filter(has_text="Ben Okafor").get_by_test_id("call-person").click()
    dialog = b.get_by_test_id("incoming-call")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("incoming-caller")).to_have_text("Ana Lima")
    caller_picture = dialog.get_by_test_id("avatar-img")
    expect(caller_picture).to_be_visible()
    assert caller_picture.get_attribute("src").startswith("/avatars/")
    direct = a.evaluate("() => location.hash").removeprefix("#/rooms/")
    assert direct != course["id"]
    assert api.call("GET", f"/api/rooms/{direct}", ben.token)[1]["room"]["kind"] == "direct"
    b.wait_for_function("() => document.title.includes('calling')", timeout=5000)
    # It rings aloud until silenced (the call keeps ringing, without sound).
    assert b.evaluate("() => podium.app.calls.ringing.ringingAudibly") is True
    dialog.get_by_test_id("silence-ring").click()
    expect(dialog.get_by_test_id("silence-ring")).to_be_hidden()
    assert b.evaluate("() => podium.app.calls.ringing.ringingAudibly") is False
    expect(dialog).to_be_visible()
    expect(phone.get_by_test_id("incoming-caller")).to_have_text("Ana Lima")  # both tabs ring
    dialog.get_by_test_id("accept-call").click()
    expect(dialog).to_be_hidden()
    expect(phone.get_by_test_id("incoming-call")).to_be_hidden()  # accepted in one: the other stops
    phone.close()
    # Accepting offers the camera and microphone choice before joining.
    check = b.get_by_test_id("device-check")
    expect(check).to_be_visible()
    expect(check.get_by_test_id("device-check-join")).to_be_enabled(timeout=15_000)
    check.get_by_test_id("device-check-join").click()
    for page in (a, b):
        expect(page.get_by_test_id("video-tile")).to_have_count(2, timeout=20_000)
    assert b.evaluate("() => location.hash") == f"#/rooms/{direct}"
    assert "calling" not in b.evaluate("() => document.title")
    a.get_by_test_id("end-call").click()
    a.get_by_test_id("confirm-ok").click()
    expect(b.get_by_test_id("call-stage")).to_have_count(0)

    # Ana calls again from the direct room's header; Ben declines: Ana reads it.
    expect(a.get_by_test_id("start-call")).to_be_visible()
    a.get_by_test_id("start-call").click()
    expect(dialog).to_be_visible()
    dialog.get_by_test_id("decline-call").click()
    expect(dialog).to_be_hidden()
    expect(a.get_by_test_id("call-notice")).to_contain_text("Ben Okafor declined the call")
    assert "calling" not in b.evaluate("() => document.title")
    a.get_by_test_id("end-call").click()
    a.get_by_test_id("confirm-ok").click()
    expect(a.get_by_test_id("call-stage")).to_have_count(0)

    # Ben goes elsewhere and his tab is in the background, notifications allowed: the next
    # call also shows a desktop notification (the real Notification, counted on its way).
    b.context.grant_permissions(["notifications"])
    b.evaluate("""() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      const Real = window.Notification; window.__notes = [];
      window.Notification = class extends Real { constructor(title, o) { super(title, o); window.__notes.push(title); } };
      window.Notification.permission = Real.permission;
    }""")
    # Ana calls again and nobody answers: a missed call.
    b.evaluate(f"() => {{ location.hash = '#/rooms/{course['id']}'; }}")
    a.get_by_test_id("start-call").click()
    expect(dialog).to_be_visible()
    assert b.evaluate("() => window.__notes") == ["Ana Lima is calling you"]
    # A tab Ben opens while it rings rings too.
    b2 = b.context.new_page()
    b2.goto(f"{podium.base_url}/#/rooms/{course['id']}")
    expect(b2.get_by_test_id("incoming-caller")).to_have_text("Ana Lima")
    expect(b2.get_by_test_id("incoming-call")).to_be_hidden(timeout=20_000)  # the ring timed out
    expect(dialog).to_be_hidden()
    expect(b.get_by_test_id("call-notice")).to_contain_text("Missed call from Ana Lima")
    expect(a.get_by_test_id("call-notice")).to_contain_text("No answer from Ben Okafor")
    item = b.locator(f"[data-testid=room-item][data-room-id='{direct}']")
    expect(item).to_contain_text("Missed call from Ana Lima")
    expect(item.get_by_test_id("unread-count")).to_be_visible()

    # A ring whose end never reaches the tab (a dropped socket, a restarted server) stops by
    # itself a little after its ``ring_s``: the frame is handed to the tab's handler directly.
    b.evaluate(f"""() => podium.app.calls.ringing.onRinging({{ session: '987654', room: '{direct}', ring_s: 0.5,
        caller: {{ id: '987654', display_name: 'Lost Caller' }}, expires_at: new Date().toISOString() }})""")
    expect(dialog.get_by_test_id("incoming-caller")).to_have_text("Lost Caller")
    expect(dialog).to_be_hidden(timeout=6_000)
    expect(b.get_by_test_id("call-notice")).to_contain_text("Missed call from Lost Caller")
    assert "calling" not in b.evaluate("() => document.title")
