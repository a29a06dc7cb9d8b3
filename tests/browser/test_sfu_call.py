"""An SFU call in the browser client (web/js/call/sfu.js): four headless Chromium users (fake
camera and microphone) in one call through the real Janus.

Janus cannot do ICE on loopback, so everything runs inside the test's private network
namespace (tests/sfu/netns.py): Janus, the Podium server (in-process, started while the test
thread is inside it, as in tests/sfu) and Chromium — Playwright is started from the thread
inside the namespace, so its driver and the Chromium it forks are there too, and the pages
reach the server on the namespace's own 127.0.0.1.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import math
import struct
import subprocess
import wave

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, SKIP_DEVICE_CHECK
from tests.sfu.conftest import in_netns, janus, netns, wait_until  # noqa: F401  (fixtures)
# SQLite even in the PostgreSQL pass: the server runs inside the namespace (fixtures).
from tests.sfu.test_signaling import database_url, sqlite_template  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(170)]

# Janus ignores mDNS candidates: the pages must offer their real (namespace) addresses.
ARGS = [*CHROMIUM_ARGS, "--disable-features=WebRtcHideLocalIpsWithMdns"]
MEDIA_TIMEOUT = 45_000  # four browsers encoding and decoding on a small shared machine

# Every RTCPeerConnection a page makes, kept for inspection.
COUNT_PCS = """
(() => {
  const Real = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = function (...args) { const pc = new Real(...args); window.__pcs.push(pc); return pc; };
  window.RTCPeerConnection.prototype = Real.prototype;
  Object.setPrototypeOf(window.RTCPeerConnection, Real);
})();
"""

# Every remote <video>: decoded size and time, by the participant it shows.
REMOTE_VIDEOS = """() => [...document.querySelectorAll('[data-testid=video-tile]:not(.local)')].map(t => {
  const v = t.querySelector('video');
  return {peer: t.dataset.peerId, w: v.videoWidth, h: v.videoHeight, t: v.currentTime, paused: v.paused,
          rs: v.readyState};
})"""

# What the page sends and on how many connections (the publish connection is the one with senders).
SENDING = """async () => {
  const pcs = window.__pcs.filter(pc => pc.connectionState !== 'closed');
  const out = [];
  for (const pc of pcs) {
    const stats = await pc.getStats();
    const rtp = [...stats.values()].filter(s => s.type === 'outbound-rtp' && s.kind === 'video');
    const inbound = [...stats.values()].filter(s => s.type === 'inbound-rtp' && s.kind === 'video');
    const video = pc.getSenders().filter(s => s.track && s.track.kind === 'video');
    out.push({
      state: pc.connectionState,
      videoSenders: video.length,
      encodings: video.map(s => s.getParameters().encodings.map(e => ({rid: e.rid, scale: e.scaleResolutionDownBy}))),
      outbound: rtp.map(s => ({rid: s.rid, bytes: s.bytesSent, w: s.frameWidth})),
      inboundVideo: inbound.length,
    });
  }
  return {pcs: window.__pcs.length, open: out, layers: podium.app.calls.sfu.layers,
          camera: podium.app.calls.devices.local.camera.getSettings()};
}"""


# Frames decoded (video) and audio samples received per participant on the subscription.
DECODED = """async () => {
  const sfu = podium.app.calls.sfu;
  const out = {};
  for (const tr of sfu.sub.getTransceivers()) {
    const s = sfu.streams.find(x => String(x.mid) === String(tr.mid));
    if (!s) continue;
    const stats = await tr.receiver.getStats();
    const rtp = [...stats.values()].find(x => x.type === 'inbound-rtp');
    out[s.peer_id] = out[s.peer_id] || {video: 0, audio: 0};
    out[s.peer_id][s.type] = s.type === 'video' ? (rtp?.framesDecoded || 0) : (rtp?.totalSamplesReceived || 0);
  }
  return out;
}"""


@pytest.fixture
def config_overrides(janus, in_netns, request) -> dict:  # noqa: F811
    url = getattr(request, "param", None) or janus.url  # a test may name an unreachable one
    return {"janus_urls": (url,), "janus_api_secret": janus.settings.api_secret,
            "janus_admin_key": janus.settings.room_admin_key, "redis_url": None,
            "jwt_secret": "sfu-browser-" + secrets.token_hex(24)}


def talking_wav(path) -> str:
    """The fake microphone's sound, looped: 3 s of a loud 440 Hz tone, then 4 s of silence, so
    Janus hears every participant start and stop talking."""
    rate = 48000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        tone = b"".join(struct.pack("<h", int(20000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(rate * 3))
        w.writeframes(tone + bytes(2 * rate * 4))
    return str(path)


SUBSCRIPTION_STATE = """() => {
  const sfu = podium.app.calls.sfu, pc = sfu.sub;
  return { streams: sfu.streams, remote: [...sfu.remote.keys()], signaling: pc && pc.signalingState,
           transceivers: pc ? pc.getTransceivers().map(t => [t.mid, t.currentDirection]) : null };
}"""


async def screen_sides(server, page) -> str:
    """For a failure's message: whether the sharer's page still holds its screen connection,
    what Podium holds of its screen publisher, and who Janus has publishing in the room."""
    sharer = await page.evaluate(
        "() => { const sfu = podium.app.calls.sfu; return { peer: podium.app.calls.peerId,"
        " screenPub: !!sfu.screenPub, screenTrack: !!podium.app.calls.devices.local.screen,"
        " pcs: window.__pcs.map(pc => pc.connectionState) }; }")
    sig = server.deps.sfu_signaling
    held = {key[1]: (p.screen is not None, p.screen_feed, sorted(p.feeds)) for key, p in sig.peers.items()}
    try:
        node, room = next((p.node, p.room) for p in sig.peers.values())
        janus = [(x.get("display"), x.get("id"), x.get("publisher")) for x in await node.rooms.participants_of_room(room)]
    except Exception as e:  # noqa: BLE001  (a message, not a check)
        janus = repr(e)
    return f"sharer page {sharer}; Podium (screen?, screen feed, feeds) by peer {held}; Janus room {janus}"


async def addresses_settled(ns, timeout: float = 10) -> None:
    """Wait until no address in the namespace is still tentative: the IPv6 link-local addresses
    of its veth pair arrive a moment after it is made, and Chromium fails every request made
    across such a change (net::ERR_NETWORK_CHANGED)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        out = subprocess.run(["nsenter", f"--net={ns.path}", "--", "ip", "-6", "addr", "show", "tentative"],
                             capture_output=True, text=True, check=True).stdout
        links = subprocess.run(["nsenter", f"--net={ns.path}", "--", "ip", "-6", "addr", "show", "scope", "link"],
                               capture_output=True, text=True, check=True).stdout
        if not out.strip() and links.count("inet6") >= 2:
            return
        assert asyncio.get_running_loop().time() < deadline, out
        await asyncio.sleep(0.2)


async def remote_videos_playing(page, n: int, timeout_ms: int = MEDIA_TIMEOUT) -> list[dict]:
    """Wait until the page shows ``n`` remote videos with decoded frames, then check each one's
    time advances."""
    await page.wait_for_function(
        f"() => {{ const v = ({REMOTE_VIDEOS})(); return v.length === {n} && v.every(x => x.w > 0 && x.t > 0); }}",
        timeout=timeout_ms)
    first = await page.evaluate(REMOTE_VIDEOS)
    await page.wait_for_timeout(1500)
    later = await page.evaluate(REMOTE_VIDEOS)
    by_peer = {v["peer"]: v for v in first}
    for v in later:
        assert v["t"] > by_peer[v["peer"]]["t"] + 0.3 and not v["paused"], (first, later)
    return later


class Call:
    """Chromium started from the test thread inside the namespace (the driver and the browser
    inherit it), one signed-in page per user on the room, the first starting the call and the
    others joining it from the banner."""

    def __init__(self, server, netns, audio_file: str | None = None):  # noqa: F811
        self.server, self.netns, self.audio_file = server, netns, audio_file
        self.errors: list[str] = []
        self.console: list[str] = []  # the pages' warnings, for a failure's message
        self.pw = None

    async def __aenter__(self) -> "Call":
        await addresses_settled(self.netns)
        from playwright.async_api import async_playwright
        self.pw = await async_playwright().start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.pw.stop()

    async def join(self, names: list[str]) -> list:
        server = self.server
        _, t_token = await server.user(names[0], "instructor", names[0].capitalize())
        students = [await server.user(name, "student", name.capitalize()) for name in names[1:]]
        room = await server.room(t_token, members=[u["id"] for u, _ in students])
        tokens = [t_token] + [tok for _, tok in students]
        url = f"{server.base_url}/#/rooms/{room['id']}"
        args = [*ARGS, f"--use-file-for-fake-audio-capture={self.audio_file}"] if self.audio_file else ARGS
        browser = await self.pw.chromium.launch(executable_path=CHROMIUM, args=args)
        pages = []
        for token in tokens:
            ctx = await browser.new_context(viewport={"width": 1100, "height": 760})
            ctx.set_default_timeout(20_000)
            await ctx.add_init_script(f"localStorage.setItem('podium.token', {json.dumps(token)});")
            await ctx.add_init_script(COUNT_PCS)
            await ctx.add_init_script(SKIP_DEVICE_CHECK)
            page = await ctx.new_page()
            page.on("pageerror", lambda exc: self.errors.append(str(exc)))
            page.on("console", lambda msg, who=token[-6:]: msg.type in ("warning", "error")
                    and self.console.append(f"{who}: {msg.text}"))
            await page.goto(url)
            pages.append(page)
        await pages[0].get_by_test_id("start-call").click()
        await pages[0].get_by_test_id("call-stage").wait_for()
        for p in pages[1:]:
            await p.get_by_test_id("join-call").click()
            await p.get_by_test_id("call-stage").wait_for()
        return pages


async def test_four_browsers_call_through_janus(server, janus, netns, tmp_path):  # noqa: F811
    """Four Chromium users in one SFU call: each plays the other three's video (frames decoded,
    time advancing); each publishes its camera once — one connection with one video sender
    carrying one simulcast encoding set — and receives everyone on one subscription connection
    (two connections in all, whatever the number of participants); the talking participants'
    tiles light up; a tile's layer follows its size; last-N; a screen share on its own tile."""
    async with Call(server, netns, talking_wav(tmp_path / "talk.wav")) as call:
        pages = await call.join(["ana", "ben", "cleo", "dev"])
        a = pages[0]
        for p in pages:
            await p.wait_for_function("() => podium.app.calls.state === 'live'")
            assert await p.evaluate("() => podium.app.calls.media") == "sfu"
            chip = p.get_by_test_id("media-path")
            assert await chip.get_attribute("data-path") == "sfu"

        for p in pages:
            await remote_videos_playing(p, 3)

        # Active speaker: Janus hears each fake microphone's tone start and stop; the tiles of
        # the three others light up and go dark again on every page.
        for p in pages:
            await p.wait_for_function(
                "() => document.querySelectorAll('[data-testid=video-tile][data-talking=yes]').length > 0",
                timeout=20_000)
        await a.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=video-tile]:not(.local)')].every(t => {"
            " window.__spoke = window.__spoke || new Set(); if (t.dataset.talking === 'yes') window.__spoke.add(t.dataset.peerId);"
            " return window.__spoke.has(t.dataset.peerId); })", timeout=20_000, polling=100)
        await a.wait_for_function(
            "() => document.querySelectorAll('[data-testid=video-tile][data-talking=yes]').length === 0",
            timeout=20_000, polling=100)

        await pages[3].screenshot(path="/tmp/sfu-call.png")
        for p in pages:
            sending = await p.evaluate(SENDING)
            open_pcs = sending["open"]
            # two connections: one publishing, one subscription — not one per other participant
            assert sending["pcs"] == 2 and len(open_pcs) == 2, sending
            pub = [c for c in open_pcs if c["videoSenders"]]
            sub = [c for c in open_pcs if not c["videoSenders"]]
            assert len(pub) == 1 and len(sub) == 1, sending
            layers = sending["layers"]
            # as many layers as the camera's size allows (short side >= 540: 3, >= 360: 2)
            short = min(sending["camera"]["width"], sending["camera"]["height"])
            assert layers == (3 if short >= 540 else 2 if short >= 360 else 1), sending
            assert layers >= 2, sending  # the fake camera is big enough for simulcast
            assert pub[0]["videoSenders"] == 1 and len(pub[0]["encodings"][0]) == layers, sending
            assert [e["rid"] for e in pub[0]["encodings"][0]] == ["h", "m", "l"][:layers], sending
            rids = {o["rid"] for o in pub[0]["outbound"]}
            assert len(pub[0]["outbound"]) == layers and rids == set(["h", "m", "l"][:layers]), sending
            assert all(o["bytes"] > 0 for o in pub[0]["outbound"]), sending
            assert sub[0]["inboundVideo"] == 3 and not sub[0]["outbound"], sending

        # A layer switch on one tile: a big stage asks Janus for the full-size layer, a small
        # window for the smallest; the decoded picture follows.
        tile = a.locator("[data-testid=video-tile]:not(.local)").first
        peer = await tile.get_attribute("data-peer-id")
        width_of = f"() => document.querySelector('[data-testid=video-tile][data-peer-id=\"{peer}\"] video').videoWidth"
        await a.set_viewport_size({"width": 1900, "height": 1200})
        await a.get_by_role("button", name="Hide the chat").click()
        await a.wait_for_function(
            f"() => document.querySelector('[data-testid=video-tile][data-peer-id=\"{peer}\"]').dataset.layer === '2'",
            timeout=10_000)
        # The width that met the condition, read in the same poll: the stage can re-lay out
        # right after (a talking tile takes the spotlight) and ask for another layer.
        big = await (await a.wait_for_function(
            f"() => {{ const w = ({width_of})(); return w >= 960 ? w : 0; }}", timeout=20_000)).json_value()
        await a.set_viewport_size({"width": 700, "height": 500})
        await a.wait_for_function(
            f"() => document.querySelector('[data-testid=video-tile][data-peer-id=\"{peer}\"]').dataset.layer === '0'",
            timeout=10_000)
        small = await (await a.wait_for_function(
            f"() => {{ const w = ({width_of})(); return w > 0 && w <= 320 ? w : 0; }}", timeout=20_000)).json_value()
        assert big >= 3 * small, (big, small)

        # Last-N: with room for one remote camera only, the other two tiles show the avatar and
        # their video is no longer sent to this page (frames stop), while their audio goes on.
        b = pages[1]
        for p in pages:  # quiet, so that who spoke last (the last-N order) stays put
            await p.get_by_test_id("toggle-mic").click()
        await b.wait_for_function(
            "() => document.querySelectorAll('[data-testid=video-tile][data-talking=yes]').length === 0",
            timeout=15_000)
        await b.evaluate("() => { podium.app.calls.lastN = 1; podium.app.calls.emit('talking', null); }")
        await b.wait_for_function(
            "() => document.querySelectorAll('[data-testid=video-tile][data-sfu-video=off]').length === 2")
        # Janus stops relaying the two tiles' video once it applies send:false (on a loaded
        # machine that can take a few seconds): sample 1.5 s windows until exactly one tile's
        # video still advances, for at most 15 s; the audio of all three goes on throughout.
        for _ in range(10):
            before = await b.evaluate(DECODED)
            await b.wait_for_timeout(1500)
            after = await b.evaluate(DECODED)
            moving = [k for k in after if after[k]["video"] > before[k]["video"] + 5]
            if len(moving) == 1:
                break
        assert len(moving) == 1, (before, after)
        assert all(after[k]["audio"] > before[k]["audio"] for k in after), (before, after)
        await b.evaluate("() => { podium.app.calls.lastN = 6; podium.app.calls.emit('talking', null); }")
        await b.wait_for_function(
            "() => document.querySelectorAll('[data-testid=video-tile][data-sfu-video=off]').length === 0")
        await remote_videos_playing(b, 3)

        # A tile out of view (a big class's grid scrolled) gets no video: moved off the page,
        # its participant's video stops reaching this page while the audio goes on; back in
        # view, it plays again.
        hidden = await b.evaluate(
            "() => { const t = document.querySelector('[data-testid=video-tile]:not(.local)');"
            " t.style.transform = 'translateY(-5000px)'; return t.dataset.peerId; }")
        hidden_tile = f"document.querySelector('[data-testid=video-tile][data-peer-id=\"{hidden}\"]')"
        await b.wait_for_function(f"() => {hidden_tile}.dataset.sfuVideo === 'off'")
        for _ in range(10):
            before = await b.evaluate(DECODED)
            await b.wait_for_timeout(1500)
            after = await b.evaluate(DECODED)
            if after[hidden]["video"] <= before[hidden]["video"] + 1:
                break
        assert after[hidden]["video"] <= before[hidden]["video"] + 1, (hidden, before, after)
        assert all(after[k]["audio"] > before[k]["audio"] for k in after), (before, after)
        assert all(after[k]["video"] > before[k]["video"] + 5 for k in after if k != hidden), (before, after)
        await b.evaluate(f"() => {{ {hidden_tile}.style.transform = ''; }}")
        await b.wait_for_function(f"() => {hidden_tile}.dataset.sfuVideo === 'on'")
        await remote_videos_playing(b, 3)

        # Screen share: Cleo's screen is a second published stream; the others get a tile of
        # its own on the stage (spotlit) that plays, beside her camera's; it goes when she stops.
        c = pages[2]
        await c.get_by_test_id("share-screen").click()
        cleo = await c.evaluate("() => podium.app.calls.peerId")
        screen_tile = f"[data-testid=video-tile][data-source=screen][data-peer-id='{cleo}']"
        for p in (a, b, pages[3]):
            await p.wait_for_function(
                f"() => {{ const t = document.querySelector(\"{screen_tile}\"); const v = t && t.querySelector('video');"
                " return v && v.videoWidth > 0 && v.currentTime > 0 && t.classList.contains('spotlit'); }",
                timeout=MEDIA_TIMEOUT)
            assert await p.locator("[data-testid=video-tile]").count() == 5
        assert (await c.evaluate(SENDING))["pcs"] == 3  # camera, subscription, screen
        await pages[3].screenshot(path="/tmp/sfu-call-screen.png")
        await c.get_by_test_id("share-screen").click()
        # Janus offers each subscription anew without the screen's m-line (a renegotiation
        # round trip per page, like the share's own); on failure, what each page had.
        for p in (a, b, pages[3]):
            try:
                await p.wait_for_function(f"() => !document.querySelector(\"{screen_tile}\")",
                                          timeout=MEDIA_TIMEOUT)
            except Exception:
                states = [await q.evaluate(SUBSCRIPTION_STATE) for q in (a, b, pages[3])]
                raise AssertionError(f"the screen tile stayed: {states}; console: {call.console[-40:]}; "
                                     f"{await screen_sides(server, c)}") from None
            assert await p.locator("[data-testid=video-tile]").count() == 4
    assert not call.errors, call.errors


@pytest.mark.parametrize("config_overrides", ["ws://127.0.0.1:9"], indirect=True)
async def test_unreachable_janus_falls_back_to_the_mesh_and_says_so(server, netns):  # noqa: F811
    """With the configured Janus unreachable the join ack says mesh: the pages connect to each
    other directly (one connection per other participant, no sfu.* connection) and the call's
    header tells them it is peer-to-peer, for a handful of cameras."""
    async with Call(server, netns) as call:
        pages = await call.join(["ana", "ben"])
        for p in pages:
            await p.wait_for_function("() => podium.app.calls.state === 'live'")
            chip = p.get_by_test_id("media-path")
            assert await chip.get_attribute("data-path") == "mesh"
            assert "Peer-to-peer" in await chip.inner_text()
            assert "6–8 cameras" in await chip.get_attribute("title")
            assert await p.evaluate("() => podium.app.calls.media") == "mesh"
        for p in pages:
            await remote_videos_playing(p, 1)
            assert await p.evaluate("() => [podium.app.calls.peers.size, window.__pcs.length]") == [1, 1]
    assert not call.errors, call.errors


async def test_a_dropped_student_comes_back_through_janus(server, janus, netns):  # noqa: F811
    """A student whose connection to Podium drops leaves the call (the others' tiles go) but
    its connections to Janus stay up; back online it rejoins with its resume token as the same
    participant (same peer_id): Janus kept its publisher (the same connection, never closed:
    the class got its camera all along), only its subscription is made again (the old one
    closed once the new one is answered), and everyone plays everyone again. Then Janus is
    killed and restarted: every page starts its connections again (sfu.restart) and plays
    everyone again."""
    async with Call(server, netns) as call:
        pages = await call.join(["ana", "ben", "cleo"])
        a, b, c = pages
        for p in pages:
            await remote_videos_playing(p, 2)
        old = await b.evaluate("() => podium.app.calls.peerId")
        pcs = await b.evaluate("() => window.__pcs.length")
        await b.context.set_offline(True)
        for p in (a, c):
            await p.wait_for_function(
                "() => document.querySelectorAll('[data-testid=video-tile]').length === 2", timeout=15_000)
        # Janus still has the student's feed: the others' subscriptions keep its stream.
        assert await a.evaluate("old => !!podium.app.calls.sfu.streamOf(old)", old)
        await b.context.set_offline(False)
        await b.wait_for_function("() => podium.app.calls.state === 'live'", timeout=20_000)
        assert await b.evaluate("() => podium.app.calls.peerId") == old
        for p in pages:
            await remote_videos_playing(p, 2)
        states = await b.evaluate("() => window.__pcs.map(pc => pc.connectionState)")
        # publisher (the same one, still up), old subscription (closed), new subscription
        assert len(states) == pcs + 1 and states[0] == "connected", states
        assert states.count("closed") == 1 and states[-1] == "connected", states

        # Janus killed and restarted mid-call (this test runs last in the module): Podium
        # recreates the room and sends sfu.restart; every page closes its connections, publishes
        # and subscribes again on two new ones, and plays everyone again.
        made = [await p.evaluate("() => window.__pcs.length") for p in pages]
        janus.stop(kill=True)
        janus.start()
        for p, n in zip(pages, made):
            await p.wait_for_function(
                f"() => window.__pcs.length === {n + 2} && window.__pcs.slice({n}).every(pc => pc.connectionState === 'connected')"
                f" && window.__pcs.slice(0, {n}).every(pc => pc.connectionState === 'closed')", timeout=MEDIA_TIMEOUT)
        for p in pages:
            await playing_again(p, 2)
    assert not call.errors, call.errors


async def playing_again(page, n: int, timeout_s: float = MEDIA_TIMEOUT / 1000) -> None:
    """``remote_videos_playing`` once the tiles show the new streams (until then a tile may
    still hold its frozen picture of before)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await remote_videos_playing(page, n)
            return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
