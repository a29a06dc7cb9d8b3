"""Live calls in the browser client (web/): two headless Chromium users with fake camera and
microphone (CHROMIUM_ARGS) in one call, against the real server subprocess.

Each simulated user has its own browser context; they reach each other over loopback with
host ICE candidates (no STUN/TURN configured).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

MEDIA_TIMEOUT = 20_000  # ICE + first decoded frame on a loaded CI machine


def remote_video_playing(page: Page, timeout: int = MEDIA_TIMEOUT) -> dict:
    """Wait until a remote <video> shows decoded frames whose currentTime advances over ~1 s."""
    video = page.get_by_test_id("remote-video").first
    expect(video).to_be_attached(timeout=timeout)
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=remote-video]');"
        " return v && v.videoWidth > 0 && v.readyState >= 2 && v.currentTime > 0; }",
        timeout=timeout)
    first = video.evaluate("v => ({t: v.currentTime, w: v.videoWidth, h: v.videoHeight})")
    page.wait_for_timeout(1200)
    later = video.evaluate("v => ({t: v.currentTime, w: v.videoWidth, paused: v.paused})")
    assert first["w"] > 0 and first["h"] > 0, first
    assert later["t"] > first["t"] + 0.5, (first, later)
    assert not later["paused"], later
    return later


def start_and_join(api, open_page):
    """Instructor Ana starts a call in her course from the UI; student Ben joins from the banner."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    room = api.course(ana, "Physics 201", [ben])
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    ben_ctx, b = open_page(ben, f"/#/rooms/{room['id']}")
    expect(b.get_by_test_id("start-call")).to_be_hidden()  # students cannot start a course call
    a.get_by_test_id("start-call").click()
    expect(a.get_by_test_id("call-stage")).to_be_visible()
    expect(a.get_by_test_id("local-video")).to_be_attached()
    banner = b.get_by_test_id("call-banner")
    expect(banner).to_be_visible()  # call.started reached Ben's open page
    expect(banner).to_contain_text("Live call in progress")
    b.get_by_test_id("join-call").click()
    expect(b.get_by_test_id("call-stage")).to_be_visible()
    for page in (a, b):
        expect(page.get_by_test_id("video-tile")).to_have_count(2)
    return SimpleNamespace(ana=ana, ben=ben, room=room, a=a, b=b, ben_ctx=ben_ctx)


def test_two_users_see_each_others_video_playing(api, open_page):
    """Instructor and student in one call: each page plays the other's remote video (frames decoded, time advancing)."""
    call = start_and_join(api, open_page)
    a, b = call.a, call.b
    remote_video_playing(a)
    remote_video_playing(b)
    # Each remote tile is labelled with the other person and bound to their peer_id.
    expect(a.locator("[data-testid=video-tile]:not(.local)")).to_contain_text("Ben Okafor")
    expect(b.locator("[data-testid=video-tile]:not(.local)")).to_contain_text("Ana Lima")
    assert a.locator("[data-testid=video-tile]:not(.local)").get_attribute("data-peer-id")
    a.screenshot(path="/tmp/call-instructor.png")
    b.screenshot(path="/tmp/call-student.png")

    # Ben leaves: Ana's grid rearranges to her own tile; the banner offers Ben to join again.
    b.get_by_test_id("leave-call").click()
    expect(b.get_by_test_id("call-stage")).to_have_count(0)
    expect(a.get_by_test_id("video-tile")).to_have_count(1)
    expect(b.get_by_test_id("call-banner")).to_be_visible()


def test_hand_mute_and_attendance(api, open_page):
    """Raised hand reaches the instructor, the instructor's Mute mutes the student, attendance shows a bar per attendee."""
    call = start_and_join(api, open_page)
    a, b = call.a, call.b
    remote_video_playing(b)

    # Ben raises his hand: Ana sees it on his tile and in the participant list.
    b.get_by_test_id("raise-hand").click()
    expect(b.get_by_test_id("raise-hand")).to_have_attribute("data-state", "on")
    ben_tile = a.locator("[data-testid=video-tile]:not(.local)")
    expect(ben_tile.get_by_test_id("hand-indicator")).to_be_visible()
    ben_row = a.get_by_test_id("participant-list").get_by_test_id("participant").filter(has_text="Ben Okafor")
    expect(ben_row.get_by_test_id("hand-indicator")).to_be_visible()
    a.screenshot(path="/tmp/call-hand.png")

    # Ana mutes Ben: his microphone turns off and he is told why.
    expect(b.get_by_test_id("toggle-mic")).to_have_attribute("data-state", "on")
    ben_row.get_by_test_id("mute-participant").click()
    expect(b.get_by_test_id("toggle-mic")).to_have_attribute("data-state", "off")
    expect(b.get_by_test_id("call-notice")).to_contain_text("Ana Lima muted your microphone")
    assert b.evaluate("() => document.querySelector('[data-testid=local-video]') !== null")
    expect(ben_tile.get_by_test_id("mic-indicator")).to_be_visible()  # call.media_changed reached Ana
    b.screenshot(path="/tmp/call-muted.png")

    # Record with no media worker connected: the recording is asked for (pending), and
    # pressing again withdraws it.
    a.get_by_test_id("record-call").click()
    expect(a.get_by_test_id("record-call")).to_have_attribute("data-state", "on")
    a.get_by_test_id("record-call").click()
    expect(a.get_by_test_id("record-call")).to_have_attribute("data-state", "off")

    # Ana ends the call for everyone; both stages close.
    a.wait_for_timeout(1100)  # attendance bars with some length
    a.get_by_test_id("end-call").click()
    expect(a.get_by_test_id("confirm-dialog")).to_contain_text("End the call for everyone?")
    a.get_by_test_id("confirm-ok").click()
    for page in (a, b):
        expect(page.get_by_test_id("call-stage")).to_have_count(0)
    expect(b.get_by_test_id("call-notice")).to_contain_text("The call has ended")
    expect(b.get_by_test_id("call-banner")).to_be_hidden()

    a.get_by_test_id("open-attendance").click()
    view = a.get_by_test_id("attendance-view")
    expect(view).to_be_visible()
    rows = view.get_by_test_id("attendance-row")
    expect(rows).to_have_count(2)
    for name in ("Ana Lima", "Ben Okafor"):
        row = rows.filter(has_text=name)
        expect(row.get_by_test_id("attendance-bar")).to_have_count(1)
        box = row.get_by_test_id("attendance-bar").bounding_box()
        assert box and box["width"] > 2, box
    expect(view.get_by_test_id("attendance-total").first).to_contain_text("min")
    with a.expect_download() as dl:
        view.get_by_test_id("download-csv").click()
    csv_text = open(dl.value.path(), encoding="utf-8").read()
    assert csv_text.splitlines()[0].startswith("user_id,username,display_name,joined_at,left_at")
    assert "Ben Okafor" in csv_text and "Ana Lima" in csv_text
    a.screenshot(path="/tmp/call-attendance.png")


def test_glare_three_people_screen_share_and_camera(api, open_page):
    """Three-way mesh survives simultaneous renegotiation (glare); camera off and screen share reach the others."""
    call = start_and_join(api, open_page)
    a, b = call.a, call.b
    cleo = api.register("cleo", "Cleo Park")
    status, _ = api.call("POST", f"/api/rooms/{call.room['id']}/members", call.ana.token, {"username": "cleo"})
    assert status in (200, 201)
    _, c = open_page(cleo, f"/#/rooms/{call.room['id']}")  # the banner comes from GET /sessions
    c.get_by_test_id("join-call").click()
    for page in (a, b, c):
        expect(page.get_by_test_id("video-tile")).to_have_count(3)
        expect(page.get_by_test_id("remote-video")).to_have_count(2)
    for page in (a, b, c):
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=remote-video]')].every(v => v.videoWidth > 0 && v.currentTime > 0)",
            timeout=MEDIA_TIMEOUT)

    # Glare: at the same instant every page renegotiates every connection (ICE restart), so
    # each pair offers to each other at once. Perfect negotiation must settle every pair.
    logs = {p: [] for p in (a, b, c)}
    for page in (a, b, c):
        page.on("console", lambda msg, page=page: logs[page].append(msg.text))
    at = a.evaluate("() => Date.now() + 400")
    for page in (a, b, c):
        page.evaluate("at => setTimeout(() => { for (const p of podium.app.calls.peers.values()) p.pc.restartIce(); }, at - Date.now())", at)
    a.wait_for_timeout(2500)
    collided = sum(1 for p in logs.values() for line in p if "offers collided" in line)
    assert collided >= 1, "expected at least one offer collision"
    for page in (a, b, c):
        page.wait_for_function(
            "() => [...podium.app.calls.peers.values()].every(p => p.pc.signalingState === 'stable' && p.pc.connectionState === 'connected')",
            timeout=MEDIA_TIMEOUT)
        t0 = page.evaluate("() => [...document.querySelectorAll('[data-testid=remote-video]')].map(v => v.currentTime)")
        page.wait_for_timeout(800)
        t1 = page.evaluate("() => [...document.querySelectorAll('[data-testid=remote-video]')].map(v => v.currentTime)")
        assert len(t0) == 2 and all(y > x for x, y in zip(t0, t1)), (t0, t1)

    # Camera off: the others see Ben's avatar instead of video.
    b.get_by_test_id("toggle-camera").click()
    expect(b.get_by_test_id("toggle-camera")).to_have_attribute("data-state", "off")
    ben_tile_on_a = a.locator("[data-testid=video-tile][data-video=off]")
    expect(ben_tile_on_a).to_contain_text("Ben Okafor")
    expect(ben_tile_on_a.get_by_test_id("camera-indicator")).to_be_visible()

    # Screen share: Cleo presents; the others see the indicator on her tile.
    c.get_by_test_id("share-screen").click()
    expect(c.get_by_test_id("share-screen")).to_have_attribute("data-state", "on")
    expect(a.locator("[data-testid=video-tile][data-screen=on]").get_by_test_id("screen-indicator")).to_be_visible()
    a.screenshot(path="/tmp/call-three.png")
    c.get_by_test_id("share-screen").click()
    expect(a.locator("[data-testid=video-tile][data-screen=on]")).to_have_count(0)


def test_dropped_student_rejoins_and_removed_student_cannot(api, open_page):
    """A student whose connection drops rejoins by itself; a removed student is told why and cannot rejoin."""
    call = start_and_join(api, open_page)
    a, b = call.a, call.b
    remote_video_playing(a)
    old_peer = b.evaluate("() => podium.app.calls.peerId")

    call.ben_ctx.set_offline(True)
    expect(b.get_by_test_id("call-stage")).to_contain_text("rejoining")
    expect(a.get_by_test_id("video-tile")).to_have_count(1)  # the server dropped Ben's socket
    call.ben_ctx.set_offline(False)
    expect(a.get_by_test_id("video-tile")).to_have_count(2, timeout=15_000)
    # Ana sees Ben's new participant as soon as the server announces it, a moment before Ben's
    # own client has the join ack with its new peer id.
    b.wait_for_function("old => podium.app.calls.peerId && podium.app.calls.peerId !== old", arg=old_peer,
                        timeout=10_000)
    remote_video_playing(a)
    remote_video_playing(b)

    ben_row = a.get_by_test_id("participant-list").get_by_test_id("participant").filter(has_text="Ben Okafor")
    ben_row.get_by_test_id("remove-participant").click()
    ben_row.get_by_test_id("confirm-remove").click()
    expect(b.get_by_test_id("call-stage")).to_have_count(0)
    expect(b.get_by_test_id("call-notice")).to_contain_text("Ana Lima removed you from the call")
    expect(a.get_by_test_id("video-tile")).to_have_count(1)
    b.get_by_test_id("join-call").click()
    expect(b.get_by_test_id("call-notice")).to_contain_text("You cannot join this call")
    expect(b.get_by_test_id("call-stage")).to_have_count(0)


def test_browser_answers_a_receive_only_recorder_and_never_offers_to_it(api, open_page, podium):
    """A recorder (aiortc, receive-only) joining the call gets the browser's media by answering its offer; no tile, no offer to it."""
    import asyncio
    import threading

    from server.accounts.tokens import issue_worker_token
    from server.config import Config
    from tests.procserver import JWT_SECRET, WORKER_SECRET
    from tests.rtcpeer import RtcPeer

    call = start_and_join(api, open_page)
    a, b = call.a, call.b
    remote_video_playing(a)
    # A media worker's own token, minted from the server's WORKER_SECRET as a worker does.
    token = issue_worker_token(Config(jwt_secret=JWT_SECRET, worker_secret=WORKER_SECRET), "Recorder")
    session = a.evaluate("() => podium.app.calls.session.id")

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    async def connect():
        return await RtcPeer.connect(podium.ws_url, token, label="recorder", media=False)

    rec = run(connect())
    try:
        ack = run(rec.join(session))
        peers = {p["peer_id"]: p["user"]["display_name"] for p in ack["participants"]}
        assert sorted(peers.values()) == ["Ana Lima", "Ben Okafor"]
        run(rec.wait_connected(list(peers), timeout=20), timeout=25)
        for peer_id in peers:
            link = run(rec.wait_media(peer_id, video=10, audio=10, timeout=20), timeout=25)
            assert link.video_frames >= 10 and link.audio_frames >= 10
        # The browsers answered: only answers and ICE came back, never an offer.
        kinds = {s["type"] for s in rec.signals}
        assert "rtc.answer" in kinds and "rtc.offer" not in kinds, kinds
        for page in (a, b):
            expect(page.get_by_test_id("video-tile")).to_have_count(2)  # no tile for the recorder
            expect(page.get_by_test_id("participant-list")).to_contain_text("Recorder")
        remote_video_playing(b)  # the browser-to-browser call is unaffected
    finally:
        run(rec.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_instructor_lowers_hands_and_turns_students_cameras_off(api, open_page):
    """Ana lowers Ben's raised hand from the participant list (he is told), then turns
    students' cameras off: Ben's camera stops, its button is disabled and says why, the
    server refuses it meanwhile; allowed again, Ben turns it back on (issue 16.4)."""
    call = start_and_join(api, open_page)
    a, b = call.a, call.b
    remote_video_playing(b)
    b.get_by_test_id("raise-hand").click()
    ben_row = a.get_by_test_id("participant-list").get_by_test_id("participant").filter(has_text="Ben Okafor")
    expect(ben_row.get_by_test_id("hand-indicator")).to_be_visible()
    expect(a.get_by_test_id("lower-all-hands")).to_be_visible()
    ben_row.get_by_test_id("lower-hand").click()
    expect(b.get_by_test_id("raise-hand")).to_have_attribute("data-state", "off")
    expect(b.get_by_test_id("call-notice")).to_contain_text("Ana Lima lowered your hand")
    expect(ben_row.get_by_test_id("hand-indicator")).to_have_count(0)
    expect(a.get_by_test_id("lower-all-hands")).to_be_hidden()

    cams = a.get_by_test_id("students-cameras")
    expect(cams).to_have_attribute("data-state", "on")
    expect(b.get_by_test_id("students-cameras")).to_be_hidden()  # instructors only
    expect(b.get_by_test_id("toggle-camera")).to_have_attribute("data-state", "on")
    cams.click()
    expect(cams).to_have_attribute("data-state", "off")
    expect(b.get_by_test_id("toggle-camera")).to_have_attribute("data-state", "off")
    expect(b.get_by_test_id("toggle-camera")).to_be_disabled()
    expect(b.get_by_test_id("call-notice")).to_contain_text("cameras are off for students")
    expect(ben_row.get_by_test_id("camera-indicator")).to_be_visible()
    code = b.evaluate("""() => podium.app.calls.socket.request('call.media', {session: podium.app.calls.session.id, video: true})
                           .then(() => 'ack', (e) => e.code)""")
    assert code == "forbidden"
    expect(a.get_by_test_id("toggle-camera")).to_be_enabled()  # instructors keep theirs
    cams.click()
    expect(cams).to_have_attribute("data-state", "on")
    expect(b.get_by_test_id("toggle-camera")).to_be_enabled()
    b.get_by_test_id("toggle-camera").click()
    expect(b.get_by_test_id("toggle-camera")).to_have_attribute("data-state", "on")
    expect(ben_row.get_by_test_id("camera-indicator")).to_have_count(0)


@pytest.mark.timeout(120)
def test_the_waiting_room_admits_and_turns_away(api, open_page):
    """Ana starts the call with a waiting room: Ben and Cleo wait (their pages say so, their
    own preview on the stage); Ana sees both in the queue, admits Ben — his page joins and
    both play each other — and denies Cleo, who is told. Turning the waiting room off lets
    the next one in directly (issue 16.3)."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    cleo = api.register("cleo", "Cleo Park")
    room = api.course(ana, "Physics 301", [ben, cleo])
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    _, b = open_page(ben, f"/#/rooms/{room['id']}")
    _, c = open_page(cleo, f"/#/rooms/{room['id']}")
    a.get_by_test_id("start-with-waiting-room").check()
    a.get_by_test_id("start-call").click()
    expect(a.get_by_test_id("call-stage")).to_be_visible()
    expect(a.get_by_test_id("waiting-room")).to_have_attribute("data-state", "on")
    for page in (b, c):
        expect(page.get_by_test_id("call-banner")).to_be_visible()
        page.get_by_test_id("join-call").click()
        expect(page.get_by_test_id("call-notice")).to_contain_text("Waiting for the instructor to let you in")
        assert page.evaluate("() => podium.app.calls.state") == "waiting"
    queue = a.get_by_test_id("waiting-room-queue")
    expect(queue.get_by_test_id("waiting-person")).to_have_count(2)
    expect(a.get_by_test_id("video-tile")).to_have_count(1)  # nobody is in yet
    queue.get_by_test_id("waiting-person").filter(has_text="Ben Okafor").get_by_test_id("admit").click()
    for page in (a, b):
        expect(page.get_by_test_id("video-tile")).to_have_count(2, timeout=MEDIA_TIMEOUT)
    remote_video_playing(b)
    queue.get_by_test_id("waiting-person").filter(has_text="Cleo Park").get_by_test_id("deny").click()
    expect(c.get_by_test_id("call-notice")).to_contain_text("Ana Lima did not let you into the call")
    expect(c.get_by_test_id("call-stage")).to_have_count(0)
    expect(queue).to_be_hidden()
    a.get_by_test_id("waiting-room").click()
    expect(a.get_by_test_id("waiting-room")).to_have_attribute("data-state", "off")
    c.get_by_test_id("join-call").click()
    expect(c.get_by_test_id("video-tile")).to_have_count(3, timeout=MEDIA_TIMEOUT)


@pytest.mark.timeout(150)  # three pages, two moves each
def test_breakout_rooms_split_broadcast_and_bring_everyone_back(api, open_page):
    """Ana splits the call into groups by dragging people between the groups' columns (and
    with a group select from the keyboard), with a short timer: each student's page moves to
    its group's room and call; Ana's broadcast reaches both rooms; when the timer runs out both
    students are back in the main call with Ana (issue 16.2)."""
    ana = api.register("ana", "Ana Lima")
    ben = api.register("ben", "Ben Okafor")
    cleo = api.register("cleo", "Cleo Park")
    room = api.course(ana, "Biology 9", [ben, cleo])
    _, a = open_page(ana, f"/#/rooms/{room['id']}")
    _, b = open_page(ben, f"/#/rooms/{room['id']}")
    _, c = open_page(cleo, f"/#/rooms/{room['id']}")
    a.get_by_test_id("start-call").click()
    expect(a.get_by_test_id("call-stage")).to_be_visible()
    for page in (b, c):
        expect(page.get_by_test_id("call-banner")).to_be_visible()
        page.get_by_test_id("join-call").click()
    expect(a.get_by_test_id("video-tile")).to_have_count(3, timeout=MEDIA_TIMEOUT)
    main = a.evaluate("() => podium.app.calls.session.id")

    a.get_by_test_id("breakout-open-form").click()
    a.get_by_test_id("breakout-count").select_option("3")
    a.get_by_test_id("breakout-minutes").fill("0.25")  # 15 s
    columns = a.get_by_test_id("breakout-column")
    expect(columns).to_have_count(3)
    person = a.get_by_test_id("breakout-person")
    # Ben is dragged into Group 3, then Cleo into Group 3 too, then (from the keyboard) back to Group 1.
    person.filter(has_text="Ben Okafor").locator(".person-name").drag_to(columns.nth(2))
    expect(columns.nth(2).get_by_test_id("breakout-person").filter(has_text="Ben Okafor")).to_have_count(1)
    person.filter(has_text="Cleo Park").locator(".person-name").drag_to(columns.nth(2))
    expect(columns.nth(2).get_by_test_id("breakout-person")).to_have_count(2)
    person.filter(has_text="Cleo Park").get_by_test_id("breakout-assign").select_option("0")
    expect(columns.nth(0).get_by_test_id("breakout-person").filter(has_text="Cleo Park")).to_have_count(1)
    expect(columns.nth(2).get_by_test_id("breakout-person")).to_have_count(1)
    expect(a.get_by_test_id("breakout-minutes")).to_have_value("0.25")  # moving people keeps the timer
    a.get_by_test_id("breakout-start").click()  # Group 2 is empty: Ana is told, nothing opens
    expect(a.get_by_test_id("breakouts")).to_contain_text("Group 2 is empty")
    expect(columns).to_have_count(3)
    person.filter(has_text="Ben Okafor").locator(".person-name").drag_to(columns.nth(1))  # from Group 3 to Group 2
    expect(columns.nth(2).get_by_test_id("breakout-person")).to_have_count(0)
    a.get_by_test_id("breakout-count").select_option("2")  # fewer groups: dealt again, at random
    expect(columns).to_have_count(2)
    if columns.nth(0).get_by_test_id("breakout-person").filter(has_text="Ben Okafor").count():
        person.filter(has_text="Ben Okafor").locator(".person-name").drag_to(columns.nth(1))
        person.filter(has_text="Cleo Park").locator(".person-name").drag_to(columns.nth(0))
    a.get_by_test_id("breakout-start").click()
    expect(a.get_by_test_id("breakout-group")).to_have_count(2)
    for page, group in ((b, "Group 2"), (c, "Group 1")):
        page.wait_for_function("main => podium.app.calls.state === 'live' && podium.app.calls.session.id !== main",
                               arg=main, timeout=MEDIA_TIMEOUT)
        expect(page.get_by_test_id("call-notice")).to_contain_text(f"Breakout rooms: you are in {group}")
    groups = {b.evaluate("() => podium.app.calls.session.id"), c.evaluate("() => podium.app.calls.session.id")}
    assert len(groups) == 2  # one student per group
    a.get_by_test_id("breakout-broadcast-text").fill("Two minutes left")
    a.wait_for_timeout(1500)  # the countdown ticks meanwhile: what was typed stays
    expect(a.get_by_test_id("breakout-broadcast-text")).to_have_value("Two minutes left")
    a.get_by_test_id("breakout-broadcast").click()
    for page in (b, c):
        expect(page.get_by_test_id("message-content").get_by_text("Two minutes left")).to_be_visible()
    for page in (b, c):  # the timer brings them back
        page.wait_for_function("main => podium.app.calls.state === 'live' && podium.app.calls.session.id === main",
                               arg=main, timeout=30_000)
    expect(a.get_by_test_id("breakout-group")).to_have_count(0)
    expect(a.get_by_test_id("video-tile")).to_have_count(3, timeout=MEDIA_TIMEOUT)
