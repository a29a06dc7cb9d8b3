"""Polls in the browser (issue 16.1): an instructor asks, two students vote, results are live —
real server process, real headless Chromium, one browser context per person."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


def card(page: Page):
    return page.get_by_test_id("poll-card")


def option(page: Page, index: int):
    return card(page).locator(f"[data-testid=poll-option][data-index='{index}']")


def vote(page: Page, index: int) -> None:
    option(page, index).get_by_test_id("poll-choice").check()
    card(page).get_by_test_id("poll-vote").click()


def test_instructor_creates_two_students_vote_and_results_are_live(api, open_page):
    """Ana asks a quiz from the composer; Ben and Cat see it at once and vote; Ana's card shows
    the counts and who chose what live while the students see none; "Show results to everyone"
    gives the students live counts (Cat's changed vote moves every card); Close reveals the
    correct answer and tells each student how they did; the CSV has the counts."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    cat = api.register("cat", "Cat Silva")
    room = api.course(ana, "Physics 101", [ben, cat])
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    _, b = open_page(ben, f"/#/rooms/{room['id']}")
    _, c = open_page(cat, f"/#/rooms/{room['id']}")
    expect(b.get_by_test_id("new-poll")).to_be_hidden()  # students cannot ask

    a.get_by_test_id("new-poll").click()
    dialog = a.get_by_test_id("poll-composer")
    dialog.get_by_test_id("poll-question-input").fill("What is the unit of force?")
    dialog.get_by_test_id("poll-add-option").click()
    inputs = dialog.get_by_test_id("poll-option-input")
    for i, text in enumerate(["Joule", "Newton", "Watt"]):
        inputs.nth(i).fill(text)
    dialog.get_by_test_id("poll-option-correct").nth(1).check()
    dialog.get_by_test_id("poll-submit").click()
    expect(dialog).to_have_count(0)

    for page in (a, b, c):
        expect(card(page).get_by_test_id("poll-question")).to_have_text("What is the unit of force?")
        expect(card(page).get_by_test_id("poll-option")).to_have_count(3)
    expect(option(b, 1).get_by_test_id("poll-correct")).to_have_count(0)  # the answer stays hidden

    vote(b, 1)
    vote(c, 0)
    expect(card(b).get_by_test_id("poll-status")).to_contain_text("Your answer: Newton")
    expect(option(a, 0).get_by_test_id("poll-count")).to_have_text("1 · 50%")
    expect(option(a, 1).get_by_test_id("poll-count")).to_have_text("1 · 50%")
    expect(option(a, 1).get_by_test_id("poll-voters")).to_have_text("Ben Okafor")
    expect(option(a, 1).get_by_test_id("poll-correct")).to_have_count(1)  # instructors see it
    expect(card(b).get_by_test_id("poll-count")).to_have_count(0)  # private until shared
    expect(card(b).get_by_test_id("poll-close")).to_have_count(0)  # no controls for students
    expect(card(b)).not_to_contain_text("null")

    card(a).get_by_test_id("poll-share").click()
    expect(option(b, 1).get_by_test_id("poll-count")).to_have_text("1 · 50%")
    option(c, 1).get_by_test_id("poll-choice").check()
    card(c).get_by_test_id("poll-vote").click()
    for page in (a, b, c):
        expect(option(page, 1).get_by_test_id("poll-count")).to_have_text("2 · 100%")
        expect(option(page, 0).get_by_test_id("poll-count")).to_have_text("0 · 0%")
    expect(option(b, 1).get_by_test_id("poll-voters")).to_have_count(0)  # names stay with instructors

    card(a).get_by_test_id("poll-close").click()
    for page in (b, c):
        expect(card(page).get_by_test_id("poll-closed")).to_be_visible()
        expect(option(page, 1).get_by_test_id("poll-correct")).to_have_count(1)
        expect(card(page).get_by_test_id("poll-vote")).to_have_count(0)
    expect(card(b).get_by_test_id("poll-status")).to_contain_text("Right!")

    with a.expect_download() as dl:
        card(a).get_by_test_id("poll-csv").click()
    rows = list(csv.reader(io.StringIO(Path(dl.value.path()).read_text())))
    assert [(r[3], r[4], r[6]) for r in rows[1:]] == [("Joule", "0", "no"), ("Newton", "2", "yes"), ("Watt", "0", "no")]


def test_a_poll_survives_a_reload_and_a_reconnect(api, open_page):
    """After a reload the poll is in the history with the student's own answer checked and
    their status; what the instructor does while the student is offline (share the results,
    close) shows on the student's card once it reconnects."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "Physics 101", [ben])
    status, body = api.call("POST", f"/api/rooms/{room['id']}/messages", ben.token,
                            {"client_msg_id": "x", "kind": "poll", "content": "nope"})
    assert status == 400, body  # polls are made with poll.create only
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    b_ctx, b = open_page(ben, f"/#/rooms/{room['id']}")
    a.get_by_test_id("new-poll").click()
    dialog = a.get_by_test_id("poll-composer")
    dialog.get_by_test_id("poll-question-input").fill("Ready for the test?")
    dialog.get_by_test_id("poll-option-input").nth(0).fill("Yes")
    dialog.get_by_test_id("poll-option-input").nth(1).fill("No")
    dialog.get_by_test_id("poll-submit").click()
    vote(b, 0)
    expect(card(b).get_by_test_id("poll-status")).to_contain_text("Your answer: Yes")
    b.reload()
    expect(option(b, 0).get_by_test_id("poll-choice")).to_be_checked()
    expect(card(b).get_by_test_id("poll-status")).to_contain_text("Your answer: Yes")
    b_ctx.set_offline(True)
    expect(b.get_by_text("Offline — reconnecting…")).to_be_visible()
    card(a).get_by_test_id("poll-share").click()
    card(a).get_by_test_id("poll-close").click()
    expect(card(a).get_by_test_id("poll-closed")).to_be_visible()
    expect(card(b).get_by_test_id("poll-closed")).to_have_count(0)
    b_ctx.set_offline(False)
    expect(card(b).get_by_test_id("poll-closed")).to_be_visible()
    expect(option(b, 0).get_by_test_id("poll-count")).to_have_text("1 · 100%")


def test_a_poll_during_a_call(api, open_page):
    """In a live call (both on the call stage) the instructor asks and the student answers from
    the chat below the stage; the instructor's card counts it live."""
    from tests.browser.test_call_browser import start_and_join

    call = start_and_join(api, open_page)
    a, b = call.a, call.b
    a.get_by_test_id("new-poll").click()
    dialog = a.get_by_test_id("poll-composer")
    dialog.get_by_test_id("poll-question-input").fill("Can you hear me?")
    dialog.get_by_test_id("poll-option-input").nth(0).fill("Yes")
    dialog.get_by_test_id("poll-option-input").nth(1).fill("No")
    dialog.get_by_test_id("poll-submit").click()
    expect(b.get_by_test_id("call-stage")).to_be_visible()
    vote(b, 0)
    expect(option(a, 0).get_by_test_id("poll-count")).to_have_text("1 · 100%")
    expect(a.get_by_test_id("call-stage")).to_be_visible()
