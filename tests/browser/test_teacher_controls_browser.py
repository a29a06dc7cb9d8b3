"""The teacher controls what was shared (issue 15.5) in real headless Chromium: rename, move and
delete files and folders in the Files panel; delete a message's attachment with the message;
rename and archive a room; and a student's member count following additions live (15.8)."""
from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Account, Api
from tests.browser.test_files_browser import open_room, room_files, upload

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


def status_of(url: str) -> tuple[int, bytes]:
    """GET a signed link as a person's browser would (HTML wanted)."""
    req = urllib.request.Request(url, headers={"Accept": "text/html"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def link(api: Api, who: Account, file_id: str) -> str:
    status, body = api.call("POST", f"/api/files/{file_id}/signed-url", who.token, {"disposition": "attachment"})
    assert status == 200, body
    return body["url"]


def answer(page: Page, text: str) -> None:
    page.get_by_test_id("ask-text-input").fill(text)
    page.get_by_test_id("ask-text-ok").click()


def class_of(api: Api) -> tuple[Account, Account, dict]:
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    return ana, ben, api.course(ana, "Biology 101", [ben])


def test_rename_move_and_delete_files_and_folders(api, open_page):
    ana, ben, room = class_of(api)
    rid = room["id"]
    notes = upload(api, ana, "notes.txt", b"chapter one\n", room=rid, folder="week 1")
    lab = upload(api, ben, "lab.txt", b"microscopes\n", room=rid, folder="week 2")
    upload(api, ana, "old.txt", b"old\n", room=rid, folder="old/drafts")
    bens_link = link(api, ben, lab["id"])  # handed out before the delete
    b = open_room(open_page, ben, room)  # Ben's Files panel stays open and follows
    b.get_by_test_id("open-files").click()
    bpanel = b.get_by_test_id("files-panel")
    expect(bpanel.get_by_test_id("file-name")).to_have_count(3)
    a = open_room(open_page, ana, room)
    a.get_by_test_id("open-files").click()
    panel = a.get_by_test_id("files-panel")
    expect(panel.get_by_test_id("files-folder-name")).to_have_text(["old / drafts", "week 1", "week 2"])

    # Rename a file: the extension stays.
    panel.locator("[data-folder='week 1'] [data-testid=file-rename]").click()
    answer(a, "Chapter 1")
    expect(panel.locator("[data-folder='week 1'] [data-testid=file-name]")).to_have_text(["Chapter 1.txt"])
    # Move Ben's file into week 1: week 2 disappears.
    panel.locator("[data-folder='week 2'] [data-testid=file-move]").click()
    answer(a, "week 1")
    expect(panel.get_by_test_id("files-folder-name")).to_have_text(["old / drafts", "week 1"])
    expect(panel.locator("[data-folder='week 1'] [data-testid=file-name]")).to_have_text(["Chapter 1.txt", "lab.txt"])
    # Rename the folder.
    panel.locator("[data-folder='week 1'] [data-testid=folder-rename]").click()
    answer(a, "Unit 1")
    expect(panel.get_by_test_id("files-folder-name")).to_have_text(["old / drafts", "Unit 1"])
    # A name clash is said, nothing changes.
    panel.locator("[data-folder='Unit 1'] [data-testid=files-item]").filter(has_text="lab.txt").get_by_test_id("file-rename").click()
    answer(a, "chapter 1.txt")
    expect(panel.get_by_test_id("files-note")).to_have_text(re.compile("already has a file named"))
    # Delete a file (asks first): its link, obtained earlier, is dead at once.
    panel.locator("[data-folder='Unit 1'] [data-testid=files-item]").filter(has_text="lab.txt").get_by_test_id("file-delete").click()
    a.get_by_test_id("confirm-ok").click()
    expect(panel.locator("[data-folder='Unit 1'] [data-testid=file-name]")).to_have_text(["Chapter 1.txt"])
    code, body = status_of(bens_link)
    assert code == 410 and b"microscopes" not in body and b"This link no longer works" in body
    # Delete a folder with what is in it (the dialog counts the files).
    panel.locator("[data-folder='old/drafts'] [data-testid=folder-delete]").click()
    expect(a.get_by_test_id("confirm-dialog")).to_contain_text("1 file")
    a.get_by_test_id("confirm-ok").click()
    expect(panel.get_by_test_id("files-folder-name")).to_have_text(["Unit 1"])
    assert sorted((f["folder"], f["name"]) for f in room_files(api, ben, rid)) == [("Unit 1", "Chapter 1.txt")]
    assert notes["id"] in [f["id"] for f in room_files(api, ben, rid)]

    # Ben's open panel followed every change; a student manages only their own files, no folders.
    expect(bpanel.get_by_test_id("files-folder-name")).to_have_text(["Unit 1"])
    expect(bpanel.get_by_test_id("file-name")).to_have_text(["Chapter 1.txt"])
    expect(bpanel.get_by_test_id("file-delete")).to_have_count(0)
    expect(bpanel.get_by_test_id("folder-delete")).to_have_count(0)


def test_deleting_a_message_can_delete_its_file_too(api, open_page):
    ana, ben, room = class_of(api)
    rid = room["id"]
    f = upload(api, ben, "essay.txt", b"my essay\n", room=rid)
    status, _ = api.call("POST", f"/api/rooms/{rid}/messages", ben.token,
                         {"client_msg_id": "att-1", "kind": "file", "content": "", "file_id": f["id"]})
    assert status == 201
    g = upload(api, ben, "notes.txt", b"my notes\n", room=rid)
    status, _ = api.call("POST", f"/api/rooms/{rid}/messages", ben.token,
                         {"client_msg_id": "att-2", "kind": "file", "content": "", "file_id": g["id"]})
    assert status == 201
    old_link = link(api, ana, f["id"])
    _, a = open_page(ana, f"/#/rooms/{rid}")
    msg = a.locator("[data-testid=message][data-kind=file]").filter(has_text="essay.txt")
    expect(msg).to_contain_text("essay.txt")
    msg = a.locator(f"[data-message-id='{msg.get_attribute('data-message-id')}']")  # by id: it loses its chip
    msg.hover()
    msg.get_by_test_id("delete").click()
    dialog = a.get_by_test_id("confirm-dialog")
    expect(dialog).to_contain_text("essay.txt")
    dialog.get_by_test_id("confirm-choice").check()
    dialog.get_by_test_id("confirm-ok").click()
    expect(msg.get_by_test_id("message-content")).to_have_text("message deleted")
    a.get_by_test_id("open-files").click()
    panel = a.get_by_test_id("files-panel")
    expect(panel.get_by_test_id("file-name")).to_have_text(["notes.txt"])  # essay.txt went with its message
    assert [x["name"] for x in room_files(api, ben, rid)] == ["notes.txt"]
    code, body = status_of(old_link)
    assert code == 410 and b"my essay" not in body
    # A file deleted from the Files panel: its message stays, its chip says the file is gone.
    expect(a.locator("[data-testid=message][data-kind=file]").last.get_by_test_id("attachment-error")).to_have_count(0)
    panel.get_by_test_id("file-delete").click()
    a.get_by_test_id("confirm-ok").click()
    expect(a.get_by_test_id("files-empty")).to_be_visible()
    a.get_by_test_id("close-files").click()
    expect(a.locator("[data-testid=message][data-kind=file]").last.get_by_test_id("attachment-error")).to_have_text(
        "This file is no longer available.")
    assert room_files(api, ben, rid) == []


def test_rename_and_archive_a_room_and_live_member_counts(api, open_page):
    ana, ben, room = class_of(api)
    rid = room["id"]
    b = open_room(open_page, ben, room)
    expect(b.get_by_test_id("chat-subtitle")).to_contain_text("2 members")
    carl = api.register("carl", "Carl Diaz")
    status, _ = api.call("POST", f"/api/rooms/{rid}/members", ana.token, {"username": "carl"})
    assert status == 201
    expect(b.get_by_test_id("chat-subtitle")).to_contain_text("3 members")  # live, no reload
    expect(b.locator("[data-testid=person]").filter(has_text="Carl Diaz")).to_have_count(1)

    _, a = open_page(ana, f"/#/rooms/{rid}")  # the room has a message now: "Ana Lima added Carl Diaz"
    expect(a.get_by_test_id("message-content").last).to_have_text("Ana Lima added Carl Diaz")
    a.get_by_test_id("rename-room").click()
    answer(a, "Biology 101 — autumn")
    for page in (a, b):
        expect(page.get_by_test_id("chat-title")).to_have_text("Biology 101 — autumn")
        expect(page.get_by_test_id("room-item")).to_have_text(re.compile("Biology 101 — autumn"))
    expect(b.get_by_test_id("message-content").last).to_have_text("Ana Lima renamed the room to “Biology 101 — autumn”")

    # A call is going on: archiving says it ends it, and it does.
    a.evaluate("(rid) => podium.app.socket.request('call.start', { room: rid })", rid)
    expect(b.get_by_test_id("call-banner")).to_be_visible()
    a.get_by_test_id("archive-room").click()
    expect(a.get_by_test_id("confirm-dialog")).to_contain_text("The call going on in it ends for everyone.")
    a.get_by_test_id("confirm-ok").click()
    expect(b.get_by_test_id("call-banner")).to_be_hidden()
    for page in (a, b):  # hidden from the list, read-only, said so
        expect(page.get_by_test_id("room-item")).to_have_count(0)
        expect(page.get_by_test_id("composer")).to_be_disabled()
        expect(page.get_by_test_id("chat-rules-note")).to_contain_text("archived")
    expect(a.get_by_test_id("start-call")).to_be_hidden()
    expect(b.get_by_test_id("message-content").filter(has_text="archived the room")).to_have_text(
        "Ana Lima archived the room: it is read-only now")
    expect(b.get_by_test_id("message-content").last).to_have_text(re.compile(r"^The call ended"))
    # Carl has unread notes in the room, but a hidden archived room does not count in the title.
    _, c = open_page(carl, "/")
    expect(c.get_by_test_id("toggle-archived")).to_have_text("Show archived (1)")
    expect(c).to_have_title("Podium")
    c.get_by_test_id("toggle-archived").click()
    expect(c).to_have_title(re.compile(r"^\(\d+\) Podium$"))
    b.get_by_test_id("toggle-archived").click()
    expect(b.get_by_test_id("room-item")).to_have_text(re.compile(r"\(archived\)"))
    b.get_by_test_id("toggle-archived").click()
    expect(b.get_by_test_id("room-item")).to_have_count(0)

    a.get_by_test_id("archive-room").click()  # Unarchive
    expect(b.get_by_test_id("composer")).to_be_enabled()
    expect(b.get_by_test_id("room-item")).to_have_count(1)
    expect(a.get_by_test_id("start-call")).to_be_visible()
