"""Bounds on the WebSocket (PROTOCOL §2, ARCHITECTURE principle 4): frame and content size,
per-user rate limits, malformed frames, slow consumers and heartbeats."""
from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from server.realtime.tornado_stream import pending_write_bytes
from tests.wsclient import ProtocolError, RawWs, WsClient


def server_socket(server, user_id: str):
    """The server-side handler of the user's only socket."""
    socks = server.deps.registry.user_sockets(int(user_id))
    assert len(socks) == 1, socks
    return next(iter(socks))


def queued_bytes(handler) -> int:
    """Bytes the server accepted for this socket but has not yet handed to the kernel."""
    return pending_write_bytes(handler.ws_connection.stream)


async def room_with(server, *names: str) -> tuple[str, list[tuple[dict, str]]]:
    """A course room whose first user is the instructor; returns (room id, [(user, token)])."""
    users = [await server.user(n, "instructor" if i == 0 else "student") for i, n in enumerate(names)]
    room = await server.room(users[0][1], members=[u["id"] for u, _ in users[1:]])
    return room["id"], users


async def still_works(c: WsClient, rid: str) -> None:
    data = await c.request("presence.list", room=rid)
    assert isinstance(data["online"], list)


# -- frame and content size -------------------------------------------------------------------------
async def test_frame_over_64k_closes_1009(server):
    """A frame larger than 64 KiB closes the socket with 1009; a frame just under it does not."""
    assert server.deps.config.max_frame_bytes == 64 * 1024
    rid, [(ana, tok)] = await room_with(server, "ana")
    c = await server.client(tok)
    await c.request("room.join", room=rid)
    under = json.dumps({"type": "presence.list", "id": "u", "room": rid, "pad": "x" * (64 * 1024 - 100)})
    assert len(under.encode()) <= 64 * 1024
    c.send(under)
    ack = await c.next_event("ack", timeout=10)
    assert ack["id"] == "u" and ack["data"]["online"] == [ana["id"]]
    c.send(json.dumps({"type": "presence.list", "room": rid, "pad": "x" * (64 * 1024)}))
    assert await c.wait_closed(5) == 1009


async def test_content_over_16k_too_large_socket_usable(server):
    """Content over 16 KiB (in UTF-8 bytes) gets too_large for send and edit; the socket keeps working."""
    assert server.deps.config.max_content_bytes == 16 * 1024
    rid, [(ana, tok)] = await room_with(server, "ana")
    c = await server.client(tok)
    await c.request("room.join", room=rid)
    for i, content in enumerate(("x" * (16 * 1024 + 1), "€" * 5462)):  # 16385 and 16386 bytes
        with pytest.raises(ProtocolError) as e:
            await c.request("message.send", room=rid, client_msg_id=f"big{i}", content=content)
        assert e.value.code == "too_large"
    m = (await c.request("message.send", room=rid, client_msg_id="max", content="y" * 16 * 1024))["message"]
    assert m["seq"] == 1 and len(m["content"]) == 16 * 1024
    with pytest.raises(ProtocolError) as e:
        await c.request("message.edit", message_id=m["id"], content="z" * (16 * 1024 + 1))
    assert e.value.code == "too_large"
    page = await c.request("room.sync", room=rid, since=0)
    assert [x["content"] for x in page["messages"]] == ["y" * 16 * 1024]


# -- rate limits ----------------------------------------------------------------------------------------
# One token a second after a burst of 5: the eight frames below need not reach the server within
# a fifth of a second (5 tokens/s did, and a loaded machine missed it).
LIMITS = {"rate_per_s": 1.0, "rate_burst": 5, "rate_abuse_limit": 10}


@pytest.mark.parametrize("config_overrides", [LIMITS])
async def test_rate_limit_per_user(server):
    """Past the burst a user's frames get rate_limited on all their sockets; other users are unaffected,
    and tokens come back with time."""
    rid, [(ana, a_tok), (ben, b_tok)] = await room_with(server, "ana", "ben")
    a1 = await server.client(a_tok)
    a2 = await server.client(a_tok)
    b = await server.client(b_tok)
    frames = await asyncio.gather(*(a1.request_raw("presence.list", room=rid) for _ in range(8)))
    codes = [f.get("code") if f["type"] == "error" else "ok" for f in frames]
    assert codes[:5] == ["ok"] * 5 and codes.count("rate_limited") >= 2, codes
    assert (await a2.request_raw("presence.list", room=rid)).get("code") == "rate_limited"
    await still_works(b, rid)
    await asyncio.sleep(2.1)  # 1 token/s: at least two back
    await still_works(a2, rid)
    await still_works(a1, rid)
    assert server.deps.stats["rate_limited"] >= 3


@pytest.mark.parametrize("config_overrides", [LIMITS])
async def test_sustained_rate_abuse_closes_4429(server):
    """A socket that keeps sending after being rate limited is closed with 4429."""
    rid, [(ana, a_tok), (ben, b_tok)] = await room_with(server, "ana", "ben")
    a = await server.client(a_tok)
    b = await server.client(b_tok)
    for i in range(40):
        a.send({"type": "presence.list", "room": rid, "id": f"f{i}"})
    assert await a.wait_closed(5) == 4429
    errors = []
    while not a.events.empty():
        errors.append(a.events.get_nowait())
    limited = [e["code"] for e in errors if e["type"] == "error"].count("rate_limited")
    assert 1 <= limited <= LIMITS["rate_abuse_limit"], errors
    assert server.deps.stats["rate_limited"] > LIMITS["rate_abuse_limit"]
    await still_works(b, rid)


ANY_ID = object()


# -- malformed frames -------------------------------------------------------------------------------------
async def test_malformed_frames_get_bad_request_and_socket_stays(server):
    """Malformed frames get bad_request (with the id when readable) and never close the socket."""
    rid, [(ana, tok)] = await room_with(server, "ana")
    c = await server.client(tok)
    await c.request("room.join", room=rid)
    cases: list[tuple[object, str | None]] = [
        ("not json at all", None),
        ("{\"type\": \"room.join\", ", None),
        ("[1, 2, 3]", None),
        ("42", None),
        ('"room.join"', None),
        ("null", None),
        ("", None),
        ({"id": "t1"}, "t1"),                                      # no type
        ({"id": "t2", "type": 7}, "t2"),                           # type not a string
        ({"id": "t3", "type": "no.such.type"}, "t3"),
        ({"id": "t4", "type": "room.join", "room": [1]}, "t4"),
        ({"id": "t5", "type": "room.join", "room": True}, "t5"),
        ({"id": "t6", "type": "message.send", "room": rid, "client_msg_id": 5, "content": "x"}, "t6"),
        ({"id": "t7", "type": "message.send", "room": rid, "client_msg_id": "a", "content": {"x": 1}}, "t7"),
        ({"id": "t8", "type": "room.sync", "room": rid, "since": "zero"}, "t8"),
        ({"id": "t9", "type": "typing", "room": rid, "active": 1}, "t9"),
        ({"id": "t10", "type": "message.react", "message_id": "1", "emoji": 3, "on": True}, "t10"),
        ({"id": "t11", "type": "auth", "token": "again"}, "t11"),
        ({"id": "x" * 65, "type": "presence.list", "room": rid}, None),   # id too long
        ({"id": 12, "type": "presence.list", "room": rid}, None),         # id not a string
        # Strings no database or UTF-8 encoder can hold are refused whole; the id still comes back.
        ('{"id": "t12", "type": "message.send", "room": "%s", "client_msg_id": "n", '
         '"content": "a\\u0000b"}' % rid, "t12"),
        ('{"id": "t13", "type": "message.send", "room": "%s", "client_msg_id": "s", '
         '"content": "a\\ud800b"}' % rid, "t13"),
        ('{"id": "t14", "type": "presence.list", "room": "%s", "x": %s}' % (rid, "[" * 30000 + "]" * 30000),
         ANY_ID),
    ]
    for frame, want_id in cases:
        c.send(frame if isinstance(frame, str) else json.dumps(frame))
        err = await c.next_event("error", timeout=10)
        assert err["code"] == "bad_request", (str(frame)[:200], err)
        if want_id is not ANY_ID:
            assert err.get("id") == want_id, (frame, err)
        await still_works(c, rid)
    c.conn.write_message(b"\x00\x01binary", binary=True)
    err = await c.next_event("error", timeout=10)
    assert err["code"] == "bad_request" and "id" not in err
    m = (await c.request("message.send", room=rid, client_msg_id="ok", content="still here"))["message"]
    assert m["seq"] == 1  # none of the malformed sends was stored
    assert c.close_code is None and not c.closed.is_set()


# -- slow consumer -------------------------------------------------------------------------------------------
SLOW = {"outgoing_soft_bytes": 64 * 1024, "outgoing_max_bytes": 256 * 1024}


@pytest.mark.parametrize("config_overrides", [SLOW])
async def test_slow_consumer_bounded_and_isolated(server):
    """A subscriber that stops reading gets droppable events dropped past the soft limit, is closed
    with 4008 past the hard limit with its queue bounded, and never delays the other subscribers."""
    cfg = server.deps.config
    rid, users = await room_with(server, "ana", "ben", "cat", "dan", "slow")
    (ana, a_tok), (ben, b_tok), _, _, (slow, s_tok) = users
    sender = await server.client(a_tok)
    await sender.request("room.join", room=rid)
    fast = [await server.client(tok) for _, tok in users[1:4]]
    for f in fast:
        await f.request("room.join", room=rid)
    raw = await RawWs.connect(server.port, s_tok, rcvbuf=4096)
    await raw.read_event("hello")
    await raw.send_json({"type": "room.join", "id": "j", "room": rid})
    ack = await raw.read_event("ack")
    assert ack["id"] == "j"
    handler = server_socket(server, slow["id"])
    # Loopback TCP autotunes the server's kernel send buffer to megabytes; keep it small so the
    # server's own (user-space) queue is what fills up, after a few hundred KiB instead of MiBs.
    handler.ws_connection.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    closes: list[int | None] = []
    real_close = handler.close
    handler.close = lambda code=None, reason=None: (closes.append(code), real_close(code, reason))[1]
    # From here on the raw client never reads.

    content = "m" * 4000
    frame_len = 4600  # one message.new frame with this content, generously
    peak, dropped_before = 0, server.deps.stats["dropped"]
    typing_dropped = False
    latencies: list[float] = []
    received = {i: [] for i in range(len(fast))}

    async def collect(i: int, c: WsClient, n: int) -> None:
        while len(received[i]) < n:
            ev = await c.next_event("message.new")
            received[i].append((ev["message"]["seq"], time.monotonic()))

    seq = 0
    while not closes and seq < 400:
        seq += 1
        t0 = time.monotonic()
        m = (await sender.request("message.send", room=rid, client_msg_id=f"s{seq}", content=content))["message"]
        assert m["seq"] == seq
        await asyncio.gather(*(collect(i, c, seq) for i, c in enumerate(fast)))
        latencies.append(max(received[i][-1][1] for i in received) - t0)
        if handler.ws_connection is not None and not handler.ws_connection.is_closing():
            q = queued_bytes(handler)
            peak = max(peak, q)
            assert q <= cfg.outgoing_max_bytes + frame_len
            if q > cfg.outgoing_soft_bytes and not typing_dropped:
                # Past the soft limit typing/presence for the slow socket are dropped, not queued.
                await fast[0].request("typing", room=rid, active=True)
                ev = await fast[1].next_event("typing")
                assert ev["user_id"] == ben["id"]
                assert server.deps.stats["dropped"] > dropped_before
                assert queued_bytes(handler) == q
                typing_dropped = True
    assert typing_dropped, "the slow socket never passed the soft limit"
    assert closes == [4008], closes
    assert server.deps.stats["overflows"] >= 1
    assert peak > cfg.outgoing_soft_bytes
    # Every other subscriber got every message, gapless, promptly.
    for i in received:
        assert [s for s, _ in received[i]] == list(range(1, seq + 1))
    assert max(latencies) < 1.0, max(latencies)
    # After the 4008 close nothing more is queued for it, and the server lets the socket go.
    stream = handler.ws_connection.stream if handler.ws_connection else None
    for i in range(3):
        await sender.request("message.send", room=rid, client_msg_id=f"after{i}", content=content)
    if stream is not None and not stream.closed():
        assert pending_write_bytes(stream) <= cfg.outgoing_max_bytes + frame_len
    deadline = time.monotonic() + 8
    while handler in server.deps.sockets and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert handler not in server.deps.sockets
    assert int(slow["id"]) not in server.deps.registry.by_user
    ev = await fast[0].next_event("presence.left", timeout=10, user_id=slow["id"])
    assert ev["room"] == rid
    # The raw socket sees the end of the stream once it reads again.
    loop = asyncio.get_running_loop()
    while True:
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(raw.sock, 1 << 20), 5)
        except ConnectionResetError:
            break
        if not chunk:
            break
    raw.close()


# -- heartbeat -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config_overrides", [{"heartbeat_s": 1, "heartbeat_timeout_s": 1}])
async def test_heartbeat_drops_silent_client(server):
    """With heartbeat_s=1 a client that never answers pings is disconnected within a few seconds,
    while a client that answers pings stays connected."""
    rid, [(ana, a_tok), (ben, b_tok)] = await room_with(server, "ana", "ben")
    good = await server.client(a_tok)
    assert good.hello["heartbeat_s"] == 1
    await good.request("room.join", room=rid)
    raw = await RawWs.connect(server.port, b_tok)
    await raw.read_event("hello")
    await raw.send_json({"type": "room.join", "id": "j", "room": rid})
    await raw.read_event("ack")
    handler = server_socket(server, ben["id"])
    t0 = time.monotonic()
    pings, close = 0, None
    while close is None:
        frame = await raw.read_frame(timeout=6)
        assert frame is not None, "EOF before a close frame"
        if frame[0] == 0x9:
            pings += 1  # never answered
        elif frame[0] == 0x8:
            close = frame[1]
    elapsed = time.monotonic() - t0
    assert pings >= 1 and elapsed < 8, (pings, elapsed)
    # The server gives up on the socket: it is gone from the registry within a few more seconds.
    deadline = time.monotonic() + 8
    while handler in server.deps.sockets and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert handler not in server.deps.sockets
    await good.next_event("presence.left", timeout=10, user_id=ben["id"])
    assert not good.closed.is_set()
    assert (await good.request("presence.list", room=rid))["online"] == [ana["id"]]
    raw.close()


async def test_kernel_send_buffer_is_bounded(server):
    """Each WebSocket's kernel send buffer is capped, so a slow reader cannot pin megabytes
    in the kernel on top of the bounded outgoing queue."""
    import socket as socketmod

    _, tok = await server.user("sndbuf_user")
    await server.client(tok)
    (sock,) = tuple(server.deps.sockets)
    size = sock.ws_connection.stream.socket.getsockopt(socketmod.SOL_SOCKET, socketmod.SO_SNDBUF)
    # Linux reports twice the value set (bookkeeping overhead); unset it would be tcp_wmem's default.
    assert size == 2 * server.deps.config.socket_sndbuf_bytes
