"""Graceful stop of the real process (ARCHITECTURE principle 7, PROTOCOL §2 close 1001)."""
from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text
from tornado.httpclient import HTTPClientError
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

from server.db.engine import Database
from tests.procserver import ServerProcess, procs, ws_request  # noqa: F401 - procs is a fixture
from tests.wsclient import WsClient

CLIENTS = 20
SENDERS = 6


async def connect_outcome(srv: ServerProcess, token: str) -> str:
    """Try to open a new socket; describe how it went ("open", "refused", "http 503", ...)."""
    try:
        c = await WsClient.connect(srv.ws_url, token, connect_timeout=5)
    except HTTPClientError as e:
        return f"http {e.code}"
    except (ConnectionRefusedError, StreamClosedError):
        return "refused"
    except OSError as e:
        return f"os error {e!r}"
    c.close()
    return "open"


async def read_all(srv: ServerProcess, token: str, room: str) -> list[dict]:
    """Every stored message of ``room`` via room.sync paging (the recovery rule)."""
    c = await WsClient.connect(srv.ws_url, token)
    try:
        await c.request("room.join", room=room)
        out: list[dict] = []
        since = 0
        while True:
            page = await c.request("room.sync", room=room, since=since, limit=500)
            out.extend(page["messages"])
            if page["complete"]:
                return out
            since = page["messages"][-1]["seq"]
    finally:
        c.close()


@pytest.mark.slow
async def test_sigterm_closes_sockets_1001_spread_and_loses_nothing_acked(procs):  # noqa: F811
    """On SIGTERM the server refuses new sockets, closes every open one with 1001 spread over seconds, exits 0 within 25 s, and every acked message is stored exactly once."""
    srv = procs.new()
    owner, owner_tok = await srv.register("owner")
    others = [await srv.register(f"user{i:02d}") for i in range(CLIENTS - 1)]
    room = (await srv.room(owner_tok, [u["id"] for u, _ in others]))["id"]
    tokens = [owner_tok] + [t for _, t in others]
    clients = [await WsClient.connect(srv.ws_url, t) for t in tokens]
    for c in clients:
        await c.request("room.join", room=room)

    closes: dict[int, tuple[float, int | None]] = {}

    async def watch(i: int, c: WsClient) -> None:
        code = await c.wait_closed(timeout=40)
        closes[i] = (time.monotonic(), code)

    watchers = [asyncio.ensure_future(watch(i, c)) for i, c in enumerate(clients)]

    sent: dict[str, int] = {}       # client_msg_id -> sender index
    acked: dict[str, int] = {}      # client_msg_id -> seq
    in_flight: dict[int, str] = {}  # sender index -> client_msg_id awaiting its ack
    errors: list[dict] = []

    async def sender(i: int, c: WsClient) -> None:
        n = 0
        while not c.closed.is_set():
            cmid = f"s{i}-{n}"
            n += 1
            sent[cmid] = i
            in_flight[i] = cmid
            try:
                frame = await ws_request(c, "message.send", room=room, client_msg_id=cmid,
                                         content=f"message {n} of sender {i}", timeout=15)
            except (ConnectionError, WebSocketClosedError, StreamClosedError, asyncio.TimeoutError):
                return  # socket closed with this one unacknowledged
            del in_flight[i]
            if frame["type"] == "ack":
                acked[cmid] = frame["data"]["message"]["seq"]
            else:
                errors.append(frame)

    senders = [asyncio.ensure_future(sender(i, clients[i])) for i in range(SENDERS)]
    try:
        deadline = time.monotonic() + 20
        while len(acked) < 60 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(acked) >= 60, f"senders too slow before SIGTERM: {len(acked)} acks, errors {errors[:3]}"

        t_term = time.monotonic()
        srv.terminate()

        # Once the first socket is closed the drain is under way: a newcomer must be turned away.
        while not closes and time.monotonic() - t_term < 10:
            await asyncio.sleep(0.005)
        assert closes, "no socket was closed within 10 s of SIGTERM"
        newcomer = await connect_outcome(srv, owner_tok)
        assert newcomer in ("refused", "http 503"), f"new connection during shutdown: {newcomer}"

        code = await srv.await_exit(timeout=25 - (time.monotonic() - t_term))
        exited_after = time.monotonic() - t_term
        await asyncio.wait_for(asyncio.gather(*watchers), timeout=5)
        await asyncio.wait_for(asyncio.gather(*senders), timeout=5)
    finally:
        for t in watchers + senders:
            t.cancel()
        for c in clients:
            c.close()

    times = sorted(t for t, _ in closes.values())
    print(f"shutdown: {len(acked)} acked, newcomer {newcomer}, closes from {times[0] - t_term:.2f} s "
          f"to {times[-1] - t_term:.2f} s, exit {code} after {exited_after:.2f} s")
    assert code == 0, f"exit code {code}\n{srv.log_tail()}"
    assert exited_after <= 25
    codes = {i: code for i, (_, code) in closes.items()}
    assert codes == {i: 1001 for i in range(CLIENTS)}, codes
    span = times[-1] - times[0]
    assert span >= 1.0, f"all {CLIENTS} sockets closed within {span:.3f} s: not spread"
    assert not errors, errors[:5]
    log = srv.log
    assert "shutting down" in log and "Traceback" not in log, srv.log_tail(60)

    # A fresh process over the same database: every acked message is there once, seq is gapless.
    fresh = procs.new(database_url=srv.database_url)
    stored = await read_all(fresh, owner_tok, room)
    seqs = [m["seq"] for m in stored]
    assert seqs == list(range(1, len(stored) + 1))
    cmids = [m["client_msg_id"] for m in stored]
    assert len(cmids) == len(set(cmids)), "a client_msg_id is stored twice"
    by_cmid = {m["client_msg_id"]: m for m in stored}
    missing = [cmid for cmid in acked if cmid not in by_cmid]
    assert not missing, f"acked but not stored: {missing[:10]}"
    assert all(by_cmid[cmid]["seq"] == seq for cmid, seq in acked.items())
    # Anything stored but not acked can only be the frame each sender had in flight at the close.
    unacked_stored = set(by_cmid) - set(acked)
    assert unacked_stored <= set(in_flight.values()), [
        (cmid, by_cmid[cmid]["kind"], by_cmid[cmid]["content"]) for cmid in unacked_stored - set(in_flight.values())]
    assert set(by_cmid) <= set(sent)


async def raw_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str, path: str,
                   body: bytes = b"") -> tuple[int, bytes]:
    """One HTTP/1.1 request on an open keep-alive connection; ``(status, body)``."""
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    writer.write(head + body)
    await writer.drain()
    header = await reader.readuntil(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next((int(v) for k, _, v in (ln.partition(":") for ln in lines[1:]) if k.lower() == "content-length"), 0)
    return status, await reader.readexactly(length)


async def test_sigterm_lets_http_requests_in_flight_finish(procs):  # noqa: F811
    """HTTP requests already being handled when SIGTERM arrives still get their normal response before the process exits."""
    srv = procs.new()
    conns = []
    for _ in range(6):
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        # A first request proves the server has accepted this connection (it is not in the backlog).
        status, _ = await raw_http(reader, writer, "GET", "/healthz")
        assert status == 200
        conns.append((reader, writer))
    # Sign-ups hash a password (tens of ms each), so they are still running at the SIGTERM.
    pending = [asyncio.ensure_future(raw_http(r, w, "POST", "/api/auth/register",
                                              f'{{"username":"late{i}","password":"violet-ladder-42"}}'.encode()))
               for i, (r, w) in enumerate(conns)]
    await asyncio.sleep(0.05)
    srv.terminate()
    results = await asyncio.gather(*pending, return_exceptions=True)
    for _, w in conns:
        w.close()
    code = await srv.await_exit(timeout=25)
    statuses = [r if isinstance(r, BaseException) else r[0] for r in results]
    assert statuses == [201] * len(conns), f"{statuses}\n{srv.log_tail()}"
    assert code == 0
    # And what they answered is true: the accounts exist.
    fresh = procs.new(database_url=srv.database_url)
    for i in range(len(conns)):
        status, body = await fresh.http("POST", "/api/auth/login", body={"username": f"late{i}", "password": "violet-ladder-42"})
        assert status == 200, body


async def hold_room_lock(database_url: str, room: str, locked: asyncio.Event, release: asyncio.Event) -> None:
    """Keep a write transaction open on the room row (SQLite: the database write lock;
    PostgreSQL: the room's row lock) until ``release`` is set: every message.send stalls."""
    db = Database(database_url)
    try:
        async with db.write() as s:
            await s.execute(text("UPDATE rooms SET last_seq = last_seq WHERE id = :r"), {"r": int(room)})
            locked.set()
            await release.wait()
            await s.rollback()
    finally:
        await db.close()


@pytest.mark.slow
async def test_sigterm_exits_in_time_while_the_database_stalls(procs):  # noqa: F811
    """With 30 sockets each stuck in a message.send on a stalled database, SIGTERM still closes every socket with 1001 and the process exits 0 within 25 s."""
    n = 30
    srv = procs.new()
    owner, owner_tok = await srv.register("owner")
    others = [await srv.register(f"stuck{i:02d}") for i in range(n - 1)]
    room = (await srv.room(owner_tok, [u["id"] for u, _ in others]))["id"]
    clients = [await WsClient.connect(srv.ws_url, t) for t in [owner_tok] + [t for _, t in others]]
    for c in clients:
        await c.request("room.join", room=room)

    locked, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.ensure_future(hold_room_lock(srv.database_url, room, locked, release))
    sends: list[asyncio.Future] = []
    try:
        await asyncio.wait_for(locked.wait(), 10)
        sends = [asyncio.ensure_future(ws_request(c, "message.send", room=room, client_msg_id=f"stuck-{i}",
                                                  content="stuck", timeout=60))
                 for i, c in enumerate(clients)]
        await asyncio.sleep(0.5)
        assert not any(f.done() for f in sends), "a send completed although the database is locked"

        t_term = time.monotonic()
        srv.terminate()
        try:
            code = await srv.await_exit(timeout=40)
        finally:
            release.set()
        exited_after = time.monotonic() - t_term
        codes = [await c.wait_closed(timeout=10) for c in clients]
    finally:
        release.set()
        await asyncio.wait_for(holder, 10)
        for f in sends:
            f.cancel()
        for c in clients:
            c.close()
    print(f"stalled shutdown: exit {code} after {exited_after:.2f} s")
    assert exited_after <= 25, f"took {exited_after:.1f} s to exit (Heroku kills at 30 s)\n{srv.log_tail()}"
    assert codes == [1001] * n, codes
    # 0 when the stuck database calls could be cancelled (asyncpg); 1 when the hard-exit
    # backstop had to cut one that cannot (aiosqlite's thread sits in SQLite's busy wait).
    log = srv.log
    assert code == 0 or (code == 1 and "forcing exit" in log), f"exit code {code}\n{srv.log_tail()}"
    assert "stopped in" in log or "forcing exit" in log
