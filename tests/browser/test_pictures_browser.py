"""Pictures in the browser (issue 19.2): an instructor sets a course room's picture from the
chat header and the student's room list shows it live; in a call — the student joins it by
accepting the instructor's "Ring members" (issue 19.1) — a participant whose camera is off
shows their avatar on their tile. Real server, real headless Chromium."""
from __future__ import annotations

import io

import pytest
from PIL import Image
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


def png(color=(30, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (120, 120), color).save(buf, "PNG")
    return buf.getvalue()


def test_room_picture_in_the_room_list_and_avatar_on_a_call_tile(api, open_page, tmp_path):
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "Art 1", [ben])
    api.set_avatar(ben, png((200, 60, 60)))
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    _, b = open_page(ben, f"/#/rooms/{room['id']}")
    item = b.locator(f"[data-testid=room-item][data-room-id='{room['id']}']")
    expect(item.get_by_test_id("room-picture")).to_have_count(0)
    picture = tmp_path / "room.png"
    picture.write_bytes(png())
    a.get_by_test_id("room-picture-input").set_input_files(str(picture))
    expect(item.get_by_test_id("room-picture")).to_be_visible()  # live, through room.updated
    b.wait_for_function(f"""() => {{ const i = document.querySelector("[data-room-id='{room['id']}'] [data-testid=room-picture]");
                                      return i && i.complete && i.naturalWidth === 64; }}""", timeout=30_000)

    a.get_by_test_id("start-call").click()
    expect(b.get_by_test_id("call-banner")).to_be_visible()
    expect(b.get_by_test_id("incoming-call")).to_be_hidden()  # a course call does not ring by itself
    # The instructor rings the members not in the call (issue 19.1): Ben's tab rings; he accepts.
    a.get_by_test_id("ring-members").click()
    expect(a.get_by_test_id("call-notice")).to_contain_text("Ringing 1 member")
    expect(b.get_by_test_id("incoming-caller")).to_have_text("Ana Lima")
    b.get_by_test_id("accept-call").click()
    expect(a.get_by_test_id("video-tile")).to_have_count(2, timeout=20_000)
    b.get_by_test_id("toggle-camera").click()  # Ben's camera off: his picture on his tile
    ben_tile = a.locator("[data-testid=video-tile]:not(.local)")
    expect(ben_tile.get_by_test_id("tile-avatar-img")).to_be_attached(timeout=10_000)
    a.wait_for_function("""() => { const i = document.querySelector('[data-testid=video-tile]:not(.local) [data-testid=tile-avatar-img]');
                                   return i && i.complete && i.naturalWidth === 256; }""")
