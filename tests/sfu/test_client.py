"""The Janus client (server/sfu/client.py, rooms.py) against a real Janus 1.1 in a private
network namespace: sessions, rooms with secrets, media from one aiortc publisher to several
aiortc subscribers, moderation, keepalives, reclaim and a Janus restart."""
from __future__ import annotations

import asyncio

import pytest

from server.sfu import videoroom as vr
from server.sfu.client import JanusConnection
from server.sfu.protocol import JanusError
from server.sfu.rooms import JanusRooms, room_spec
from tests.sfu.conftest import wait_until
from tests.sfu.peers import Publisher, Subscriber

pytestmark = pytest.mark.slow
KEY = b"k" * 32


async def connect(janus, **kw) -> JanusConnection:
    conn = JanusConnection(janus.url, janus.settings.api_secret, **kw)
    conn.start()
    await conn.wait_connected(10)
    return conn


async def test_requests_need_the_api_secret(janus, in_netns):
    """A connection without Janus's api_secret is refused (403) on its first request."""
    conn = JanusConnection(janus.url, "wrong-secret")
    conn.start()
    try:
        await conn.wait_connected(10)
        with pytest.raises(JanusError) as e:
            await conn.create_session()
        assert e.value.code == 403
    finally:
        await conn.close()


async def test_rooms_are_created_with_a_secret_and_destroyed(janus, in_netns):
    """open() creates the call session's room (idempotently); moderating it needs the secret;
    close() destroys it."""
    conn = await connect(janus)
    try:
        rooms = JanusRooms(conn, KEY, admin_key=janus.settings.room_admin_key)
        spec = await rooms.open("s-1")
        assert spec == room_spec(KEY, "s-1") and spec.room > 0
        assert await rooms.open("s-1") == spec  # already there: fine
        session = await conn.create_session()
        handle = await session.attach(vr.PLUGIN)
        assert (await handle.message(vr.exists(spec.room))).data["exists"] is True
        with pytest.raises(JanusError) as e:  # a wrong secret
            await handle.message(vr.destroy_room(spec.room, "not-the-secret"))
        assert e.value.plugin and e.value.code == 433
        with pytest.raises(JanusError) as e:  # rooms need the admin key
            await handle.message(vr.create_room(12345, "s"))
        assert e.value.plugin
        await rooms.close("s-1")
        assert (await handle.message(vr.exists(spec.room))).data["exists"] is False
    finally:
        await conn.close()


async def test_publisher_reaches_every_subscriber(janus, in_netns):
    """One aiortc publisher's video (320x240 VP8) and audio (Opus) reach three aiortc
    subscribers, each on one multistream connection through Janus."""
    conn = await connect(janus)
    peers = []
    try:
        rooms = JanusRooms(conn, KEY, admin_key=janus.settings.room_admin_key)
        spec = await rooms.open("s-media")
        session = await conn.create_session()
        pub = Publisher(await session.attach(vr.PLUGIN))
        peers.append(pub)
        feed = await pub.publish(spec.room, "teacher")
        subs = []
        for _ in range(3):
            sub = Subscriber(await session.attach(vr.PLUGIN))
            peers.append(sub)
            subs.append(sub)
            await sub.subscribe(spec.room, [feed])
        await wait_until(lambda: all(s.frames["video"] >= 15 and s.frames["audio"] >= 50 for s in subs), 30)
        assert all(s.sizes == {(320, 240)} for s in subs)
        listed = await rooms.participants(spec)
        assert [p["id"] for p in listed if p.get("publisher")] == [feed]
        await rooms.close("s-media")
    finally:
        for p in peers:
            await p.close()
        await conn.close()


async def test_moderate_mutes_at_janus_and_kick_removes(janus, in_netns):
    """moderate(mute) stops the publisher's audio for subscribers while video flows on, and
    unmute restores it; kick removes the publisher (it hears ``kicked`` and a hangup) and its
    subscribers receive nothing more."""
    conn = await connect(janus)
    peers = []
    try:
        rooms = JanusRooms(conn, KEY, admin_key=janus.settings.room_admin_key)
        spec = await rooms.open("s-mod")
        session = await conn.create_session()
        pub = Publisher(await session.attach(vr.PLUGIN))
        pub_events: list[dict] = []
        pub.handle.on_event.append(pub_events.append)
        peers.append(pub)
        feed = await pub.publish(spec.room, "student")
        sub = Subscriber(await session.attach(vr.PLUGIN))
        peers.append(sub)
        await sub.subscribe(spec.room, [feed])
        await wait_until(lambda: sub.frames["audio"] >= 25 and sub.frames["video"] >= 5, 30)
        audio_mid = next(s["mid"] for s in await _streams(rooms, spec, feed) if s["type"] == "audio")
        await rooms.moderate(spec, feed, audio_mid, mute=True)
        await asyncio.sleep(1.0)  # packets already in flight
        audio, video = sub.frames["audio"], sub.frames["video"]
        await asyncio.sleep(2.0)
        assert sub.frames["audio"] - audio <= 5 and sub.frames["video"] - video >= 10
        await rooms.moderate(spec, feed, audio_mid, mute=False)
        await wait_until(lambda: sub.frames["audio"] >= audio + 25, 10)
        await rooms.kick(spec, feed)
        await wait_until(lambda: any(_data(e).get("reason") == "kicked" for e in pub_events)
                         and any(e["janus"] == "hangup" for e in pub_events), 10)
        assert await rooms.participants(spec) == []
        await asyncio.sleep(0.5)
        video = sub.frames["video"]
        await asyncio.sleep(1.0)
        assert sub.frames["video"] == video  # nothing is relayed any more
        await rooms.close("s-mod")
    finally:
        for p in peers:
            await p.close()
        await conn.close()


def _data(event: dict) -> dict:
    return (event.get("plugindata") or {}).get("data") or {}


async def _streams(rooms: JanusRooms, spec, feed: int) -> list[dict]:
    """The publisher's streams as a subscriber-less ``listparticipants`` cannot show them:
    read them from a throwaway subscription's ``attached`` answer."""
    session = await rooms.connection.create_session()
    try:
        handle = await session.attach(vr.PLUGIN)
        reply = await handle.message(vr.join_subscriber(spec.room, [feed]))
        return [{"type": s["type"], "mid": s["feed_mid"]} for s in reply.data["streams"]]
    finally:
        await session.destroy()


async def test_keepalives_hold_a_session_past_janus_timeout(janus, in_netns):
    """Sessions get keepalives: with keepalive_s below Janus's session_timeout a session
    outlives it (checked on a short clock: keepalives every 0.2 s, no timeout event)."""
    conn = await connect(janus, keepalive_s=0.2)
    try:
        session = await conn.create_session()
        await asyncio.sleep(1.0)
        assert not session.lost and session.id in conn.sessions
        await session.attach(vr.PLUGIN)  # still known to Janus
    finally:
        await conn.close()


async def test_reconnect_reclaims_sessions(janus, in_netns):
    """A dropped socket is reopened and its sessions are claimed: handles keep working."""
    conn = await connect(janus, backoff_s=0.1)
    try:
        session = await conn.create_session()
        handle = await session.attach(vr.PLUGIN)
        conn._ws.close()  # noqa: SLF001 — the test drops the socket under the client
        await wait_until(lambda: conn.connects == 2 and conn.connected.is_set(), 10)
        assert not session.lost
        reply = await handle.message(vr.exists(1))
        assert reply.data["exists"] is False
    finally:
        await conn.close()



async def test_a_new_process_claims_sessions_by_id(janus, in_netns):
    """After the connection that made a session closes (a Podium restart), a new connection
    takes it over by id within Janus's reclaim window: its handle answers again and its
    events arrive on the new connection."""
    first = await connect(janus)
    second = None
    try:
        session = await first.create_session()
        handle = await session.attach(vr.PLUGIN)
        ids = (session.id, handle.id)
        await first.close()
        second = await connect(janus)
        claimed = await second.claim_session(ids[0], {ids[1]: vr.PLUGIN})
        reply = await claimed.handles[ids[1]].message(vr.exists(1))
        assert reply.data["exists"] is False
        with pytest.raises(JanusError) as e:  # an id Janus never gave
            await second.claim_session(ids[0] + 1)
        assert e.value.code == 458
    finally:
        await first.close()
        if second is not None:
            await second.close()

async def test_janus_restart_recreates_rooms(janus, in_netns):
    """When Janus restarts, the client reconnects, finds its sessions gone, and recreates the
    rooms it had opened (same id and secret); the hook hears which."""
    conn = await connect(janus, backoff_s=0.1, max_backoff_s=0.5)
    try:
        rooms = JanusRooms(conn, KEY, admin_key=janus.settings.room_admin_key)
        spec = await rooms.open("s-restart")
        recreated: list = []

        async def hook(specs):
            recreated.extend(specs)
        rooms.on_rooms_recreated.append(hook)
        lost = []
        conn.on_session_lost.append(lost.append)
        janus.stop()
        janus.start()
        await wait_until(lambda: recreated, 20)
        assert recreated == [spec] and lost
        session = await conn.create_session()
        handle = await session.attach(vr.PLUGIN)
        assert (await handle.message(vr.exists(spec.room))).data["exists"] is True
        await rooms.close("s-restart")
    finally:
        await conn.close()
