"""The WebSocket receive loop of server/realtime/frame_reader.py on a real server and a raw
socket: frames however TCP cuts or joins them, fragments, control frames and the protocol's
refusals behave as RFC 6455 (and Tornado) say, and a frame costs no task of its own."""
from __future__ import annotations

import asyncio
import json
import os
import struct

import pytest

from server.realtime.frame_reader import FrameReader
from tests.wsclient import RawWs


def frame(payload: bytes, opcode: int = 0x1, fin: bool = True, rsv: int = 0, length_bytes: int = 0) -> bytes:
    """One masked client frame (``length_bytes`` 8: the 64-bit length field whatever the size)."""
    mask = os.urandom(4)
    n = len(payload)
    b0 = (0x80 if fin else 0) | rsv | opcode
    if n < 126 and not length_bytes:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n <= 0xFFFF and length_bytes != 8:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def request(rid: str, **fields) -> bytes:
    """A frame the server answers with an ack or error carrying ``rid`` (an unknown type: error)."""
    return json.dumps({"type": "no.such.op", "id": rid, **fields}).encode()


async def answers(ws: RawWs, n: int) -> list[dict]:
    """The next ``n`` ack/error frames, in order."""
    out = []
    while len(out) < n:
        got = await ws.read_frame()
        assert got is not None, f"closed after {len(out)} answers"
        if got[0] == 0x1:
            ev = json.loads(got[1])
            if ev.get("type") in ("ack", "error"):
                out.append(ev)
    return out


async def connected(server) -> RawWs:
    _, token = await server.user("reader")
    ws = await RawWs.connect(server.port, token)
    await ws.read_event("hello")
    return ws


async def send_raw(ws: RawWs, data: bytes) -> None:
    await asyncio.get_running_loop().sock_sendall(ws.sock, data)


async def test_the_server_reads_with_frame_reader(server):
    """Every socket the server accepts uses FrameReader's receive loop."""
    ws = await connected(server)
    try:
        (sock,) = server.deps.sockets
        assert type(sock.ws_connection) is FrameReader
    finally:
        ws.sock.close()


async def test_frames_joined_and_split_by_tcp_are_each_answered_in_order(server):
    """Five frames in one write, then frames cut at every byte of their header and mask and
    inside the payload (7-bit, 16-bit and 64-bit lengths): every one is answered, in order."""
    ws = await connected(server)
    try:
        await send_raw(ws, b"".join(frame(request(f"j{i}")) for i in range(5)))
        assert [a["id"] for a in await answers(ws, 5)] == [f"j{i}" for i in range(5)]
        for rid, pad, length_bytes in (("short", 0, 0), ("mid", 300, 2), ("long", 60_000, 8)):
            data = frame(request(rid, pad="x" * pad), length_bytes=length_bytes)
            cuts = list(range(1, 16)) + [4096, 30_000]
            pos = 0
            for cut in cuts:  # header, length and mask split over several reads
                await send_raw(ws, data[pos:cut])
                pos = cut
                await asyncio.sleep(0.002)
            await send_raw(ws, data[pos:])
            (ans,) = await answers(ws, 1)
            assert ans["id"] == rid
    finally:
        ws.sock.close()


async def test_a_fragmented_message_with_a_ping_between_its_fragments(server):
    """A text message in three fragments with a ping between them: a pong, then one answer for
    the whole message."""
    ws = await connected(server)
    try:
        msg = request("frag")
        parts = [msg[:5], msg[5:12], msg[12:]]
        await send_raw(ws, frame(parts[0], 0x1, fin=False) + frame(parts[1], 0x0, fin=False)
                       + frame(b"hi", 0x9) + frame(parts[2], 0x0, fin=True))
        got = await ws.read_frame()
        assert got == (0xA, b"hi")
        (ans,) = await answers(ws, 1)
        assert ans["id"] == "frag"
    finally:
        ws.sock.close()


@pytest.mark.parametrize("bad", ["reserved bit", "continuation without a start", "fragmented control frame",
                                 "long control frame", "invalid UTF-8"])
async def test_protocol_violations_drop_the_connection(server, bad):
    """Reserved bits, a continuation with nothing to continue, a fragmented or long control
    frame, invalid UTF-8: the server drops the connection (as Tornado's own reader)."""
    ws = await connected(server)
    try:
        data = {"reserved bit": frame(request("r"), rsv=0x40),
                "continuation without a start": frame(b"{}", 0x0),
                "fragmented control frame": frame(b"x", 0x9, fin=False),
                "long control frame": frame(b"x" * 126, 0x9),
                "invalid UTF-8": frame(b"\xff\xfe")}[bad]
        await send_raw(ws, data)
        while (got := await ws.read_frame()) is not None:
            assert got[0] != 0x1 or json.loads(got[1]).get("type") not in ("ack", "error")
        await asyncio.sleep(0.05)
        assert not server.deps.sockets
    finally:
        ws.sock.close()


async def test_a_frame_over_the_size_limit_is_refused_from_its_header(server):
    """A frame announcing more than max_message_size: close 1009 at once, before its payload."""
    ws = await connected(server)
    try:
        (sock,) = server.deps.sockets
        too_big = sock.max_message_size + 1
        await send_raw(ws, struct.pack("!BBQ", 0x81, 0x80 | 127, too_big) + os.urandom(4) + b"{")
        got = await ws.read_frame()
        assert got is not None and got[0] == 0x8 and struct.unpack("!H", got[1][:2])[0] == 1009
    finally:
        ws.sock.close()


async def test_frames_cost_no_task_each(server):
    """Forty frames on one socket, each answered: fewer than five server tasks created
    meanwhile (Tornado's own reader runs every on_message in a task of its own)."""
    ws = await connected(server)
    loop = asyncio.get_running_loop()
    created = []
    previous = loop.get_task_factory()

    def counting(loop_, coro, **kw):
        name = getattr(coro, "__qualname__", repr(coro))
        where = getattr(getattr(coro, "cr_code", None), "co_filename", "")
        # not the test's own client, nor redis-py's commands (the Redis bus, on its own schedule)
        if not name.startswith("BaseSelectorEventLoop.sock_") and "/redis/" not in where:
            created.append(f"{name} ({where})")
        return asyncio.Task(coro, loop=loop_, **kw)

    loop.set_task_factory(counting)
    try:
        for i in range(40):
            await send_raw(ws, frame(request(f"t{i}")))
            (ans,) = await answers(ws, 1)
            assert ans["id"] == f"t{i}"
    finally:
        loop.set_task_factory(previous)
        ws.sock.close()
    assert len(created) < 5, created
