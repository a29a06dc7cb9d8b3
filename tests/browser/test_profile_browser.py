"""Profiles in real headless Chromium against the real server (issue 19.2): a picture uploaded in
the profile dialog shows at once in the uploader's top bar and, live, next to their messages,
in the member list and on the other person's direct room; a new name reaches the others live;
a password change keeps this tab signed in and signs the user's other session out."""
from __future__ import annotations

import io

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.conftest import PASSWORD
from tests.browser.test_chat_browser import message, send

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


def picture_file(tmp_path) -> str:
    img = Image.new("RGB", (320, 240), (200, 40, 40))
    img.paste((40, 40, 200), (160, 0, 320, 240))
    path = tmp_path / "me.png"
    buf = io.BytesIO()
    img.save(buf, "PNG")
    path.write_bytes(buf.getvalue())
    return str(path)


def shown_picture(locator) -> str:
    """The src of a loaded avatar image under ``locator`` (fails when it did not decode)."""
    img = locator.get_by_test_id("avatar-img").first
    expect(img).to_be_visible()
    img.page.wait_for_function("el => el.complete && el.naturalWidth === 64", arg=img.element_handle())
    src = img.get_attribute("src")
    assert src.startswith("/avatars/") and src.endswith("/64"), src
    return src


def test_avatar_and_name_show_everywhere_and_password_change_signs_out_the_other_session(api, open_page, tmp_path):
    """Ana uploads a picture and renames herself in the profile dialog; Ben sees both live."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    course = api.course(ana, "Biology 101", [ben])
    status, body = api.call("POST", "/api/rooms", ben.token, {"kind": "direct", "name": "", "member_usernames": ["ana"]})
    assert status == 201, body
    direct = body["room"]
    api.send(ana, course["id"], "Welcome to Biology", "w1")

    _, ben_page = open_page(ben, f"/#/rooms/{course['id']}")
    expect(message(ben_page, "Welcome to Biology")).to_have_count(1)
    _, ana_page = open_page(ana, f"/#/rooms/{course['id']}")
    _, ana_phone = open_page(ana)  # a second session of Ana's
    expect(ana_phone.get_by_test_id("logout")).to_be_visible()

    ana_page.get_by_test_id("open-profile").click()
    dialog = ana_page.get_by_test_id("profile-dialog")
    dialog.get_by_test_id("avatar-input").set_input_files(picture_file(tmp_path))
    expect(dialog).to_contain_text("Picture updated.")
    src = shown_picture(ana_page.get_by_test_id("open-profile"))

    # Ben's open page follows (user.updated): message, member list, direct room in the list.
    ben_msg = message(ben_page, "Welcome to Biology")
    assert shown_picture(ben_msg) == src
    ana_person = ben_page.get_by_test_id("person").filter(has_text="Ana Lima")
    assert shown_picture(ana_person) == src
    assert shown_picture(ben_page.locator(f"[data-testid=room-item][data-room-id='{direct['id']}']")) == src

    dialog.get_by_test_id("profile-name").fill("Ana L. Lima")
    dialog.get_by_test_id("profile-name-save").click()
    expect(dialog).to_contain_text("Name saved.")
    expect(ana_page.get_by_test_id("me-name")).to_have_text("Ana L. Lima")
    expect(ben_page.get_by_test_id("person").filter(has_text="Ana L. Lima")).to_have_count(1)
    expect(ben_msg).to_contain_text("Ana L. Lima")
    expect(ben_page.locator(f"[data-testid=room-item][data-room-id='{course['id']}']").get_by_test_id("room-preview")
           ).to_have_text("Ana L. Lima: Welcome to Biology")

    # Password: a wrong current one is refused; the right one signs out the other session only.
    dialog.get_by_test_id("old-password").fill("not-my-password")
    dialog.get_by_test_id("new-password").fill("amber-tunnel-kite-91")
    dialog.get_by_test_id("password-save").click()
    expect(dialog.get_by_test_id("password-note")).to_contain_text("current password is wrong")
    dialog.get_by_test_id("old-password").fill(PASSWORD)
    dialog.get_by_test_id("password-save").click()
    expect(dialog.get_by_test_id("password-note")).to_contain_text("Password changed")
    expect(ana_phone.get_by_test_id("logout")).to_have_count(0)  # back at the sign-in form
    dialog.get_by_test_id("profile-close").click()
    expect(ana_page.get_by_test_id("logout")).to_be_visible()
    send(ana_page, "Still here after the change")
    expect(message(ben_page, "Still here after the change")).to_have_count(1)
    expect(ana_page.get_by_test_id("pending-message")).to_have_count(0)
