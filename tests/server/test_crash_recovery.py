"""Zero message loss across a server crash (ARCHITECTURE principle 1, PROTOCOL §2.1 recovery).

Ten realistic clients stream 2,000 messages into one room while the server process is killed
with SIGKILL and started again on the same port and database. Each client keeps an outbox of
unacknowledged messages, reconnects with backoff, resends its outbox with the same
``client_msg_id`` and recovers with ``room.join`` + ``room.sync`` from the last seq it saw.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque

import pytest
from sqlalchemy import text
from tornado.httpclient import HTTPClientError
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketError

from server.db.engine import Database
from tests.procserver import ServerProcess, procs, ws_request  # noqa: F401 - procs is a fixture
from tests.wsclient import WsClient

CLIENTS = 10
PER_CLIENT = 200
TOTAL = CLIENTS * PER_CLIENT
WINDOW = 5              # messages in flight per client
KILL_AT = 0.40          # fraction of all messages acked when the server is killed
DOWN_FOR = 0.5          # seconds between SIGKILL and restart
REQUEST_TIMEOUT = 10
SYNC_LIMIT = 100        # room.sync page size
STRAGGLER_MISSES = 400  # client 0 stays away until the others have sent this many more
LOST_ACKS = 3           # acks each client pretends it never got, per reconnect
RUN_LIMIT = 120         # the whole exchange must finish well before this

CONNECT_ERRORS = (OSError, StreamClosedError, HTTPClientError, WebSocketError, asyncio.TimeoutError)
LINK_ERRORS = (ConnectionError, WebSocketClosedError, StreamClosedError, asyncio.TimeoutError)


class Disconnected(Exception):
    """The socket died (or stopped answering); reconnect."""


class Progress:
    def __init__(self) -> None:
        self.acked = 0
        self.kill_point = asyncio.Event()
        self.all_acked = asyncio.Event()
        self.finished = 0

    def ack(self) -> None:
        self.acked += 1
        if self.acked >= KILL_AT * TOTAL:
            self.kill_point.set()
        if self.acked >= TOTAL:
            self.all_acked.set()


class Member:
    """One chat client: outbox, window of in-flight sends, reconnect, resend, sync, merge."""

    def __init__(self, idx: int, user: dict, token: str, room: str, srv: ServerProcess, progress: Progress):
        self.idx, self.user, self.token, self.room, self.srv, self.progress = idx, user, token, room, srv, progress
        # Unacked messages, oldest first: client_msg_id -> content.
        self.outbox: OrderedDict[str, str] = OrderedDict(
            (f"u{idx}-{n:03d}", f"message {n} from client {idx}") for n in range(PER_CLIENT))
        self.contents = dict(self.outbox)
        self.acked: dict[str, int] = {}              # client_msg_id -> seq from the ack
        self.view: dict[int, tuple[str, str]] = {}   # seq -> (sender id, client_msg_id)
        self.high_water = 0                          # every seq 1..high_water is in view
        self.attempted: set[str] = set()
        self.resent = 0
        self.rejoin_last_seq = 0     # room last_seq seen by the latest room.join
        self.found_stored = 0        # resends that were already stored (committed, ack lost)
        # Acks a crash can swallow (still in a kernel buffer when the connection is reset): on
        # each reconnect the client treats its last LOST_ACKS acks as lost and resends those
        # messages too; the server must answer with the stored copy (same seq), not a new one.
        self.replay: dict[str, int] = {}
        self.replayed = 0
        self.straggle = 0            # after the crash, stay away until this many more acks
        self.max_pages = 0           # most pages one recovery sync needed
        self.connects = 0
        self.conflicts: list[tuple] = []
        self.problems: list[str] = []

    # -- local state -------------------------------------------------------------------------
    def merge(self, m: dict) -> None:
        key = (m["sender"]["id"], m["client_msg_id"])
        old = self.view.setdefault(m["seq"], key)
        if old != key:
            self.conflicts.append((m["seq"], old, key))
        while self.high_water + 1 in self.view:
            self.high_water += 1

    def forget_recent_acks(self) -> None:
        for cmid in list(self.acked)[-LOST_ACKS:]:
            if cmid not in self.replay and cmid not in self.outbox:
                self.replay[cmid] = self.acked[cmid]
                self.outbox[cmid] = self.contents[cmid]
                self.outbox.move_to_end(cmid, last=False)

    # -- wire --------------------------------------------------------------------------------
    @staticmethod
    def drop(c: WsClient) -> None:
        """Give up on a socket: fail everything still waiting on it, then close it."""
        for fut in c.pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("dropped"))
                fut.exception()  # a request whose frame never went out has no waiter: no log noise
        c.pending.clear()
        c.close()

    async def req(self, c: WsClient, type_: str, **fields) -> dict:
        if c.closed.is_set():
            raise Disconnected()
        try:
            frame = await ws_request(c, type_, timeout=REQUEST_TIMEOUT, **fields)
        except LINK_ERRORS as e:
            self.drop(c)
            raise Disconnected() from e
        if frame["type"] != "ack":
            # No error is expected here, not even across the crash: make the test fail loudly.
            self.problems.append(f"{type_}: {frame}")
            raise AssertionError(f"client {self.idx}: {type_} answered {frame}")
        return frame["data"]

    async def pump(self, c: WsClient) -> None:
        """Merge live fan-out into the view."""
        while True:
            ev = await c.events.get()
            if ev.get("type") == "message.new" and ev["message"]["room"] == self.room:
                self.merge(ev["message"])

    async def sync(self, c: WsClient) -> None:
        """room.sync from the last seq seen, paging until complete; pages must be gapless."""
        since = self.high_water
        pages = 0
        while True:
            page = await self.req(c, "room.sync", room=self.room, since=since, limit=SYNC_LIMIT)
            pages += 1
            self.max_pages = max(self.max_pages, pages)
            seqs = [m["seq"] for m in page["messages"]]
            if seqs != list(range(since + 1, since + 1 + len(seqs))):
                self.problems.append(f"sync since {since} returned seqs {seqs[:5]}...{seqs[-5:]}")
                raise AssertionError(self.problems[-1])
            for m in page["messages"]:
                self.merge(m)
            if page["complete"]:
                return
            assert seqs, "complete:false with an empty page"
            since = seqs[-1]

    async def send_outbox(self, c: WsClient) -> None:
        """Send (or resend, same client_msg_id) every unacked message, WINDOW at a time."""
        queue = deque(self.outbox)

        async def worker() -> None:
            while queue:
                cmid = queue.popleft()
                resend = cmid in self.attempted
                self.attempted.add(cmid)
                data = await self.req(c, "message.send", room=self.room, client_msg_id=cmid,
                                      kind="text", content=self.contents[cmid])
                m = data["message"]
                assert m["client_msg_id"] == cmid and m["content"] == self.contents[cmid], m
                assert m["sender"]["id"] == self.user["id"], m
                del self.outbox[cmid]
                self.merge(m)
                if cmid in self.replay:
                    assert m["seq"] == self.replay.pop(cmid), f"{cmid} stored twice: {m}"
                    self.replayed += 1
                    continue
                assert cmid not in self.acked, f"{cmid} acked twice"
                self.acked[cmid] = m["seq"]
                if resend:
                    self.resent += 1
                    self.found_stored += m["seq"] <= self.rejoin_last_seq
                self.progress.ack()

        results = await asyncio.gather(*(worker() for _ in range(WINDOW)), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, Disconnected):
                raise r
        if any(isinstance(r, Disconnected) for r in results):
            raise Disconnected()

    async def session(self, c: WsClient) -> None:
        self.rejoin_last_seq = (await self.req(c, "room.join", room=self.room))["last_seq"]
        await self.sync(c)
        await self.send_outbox(c)
        # Stay connected until every client is done, then catch up once more from SQL.
        done = asyncio.ensure_future(self.progress.all_acked.wait())
        closed = asyncio.ensure_future(c.closed.wait())
        await asyncio.wait([done, closed], return_when=asyncio.FIRST_COMPLETED)
        done.cancel()
        closed.cancel()
        if c.closed.is_set():
            raise Disconnected()
        await self.sync(c)

    async def run(self) -> None:
        backoff = 0.05
        while True:
            try:
                c = await WsClient.connect(self.srv.ws_url, self.token, connect_timeout=5)
            except CONNECT_ERRORS:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.5)
                continue
            backoff = 0.05
            self.connects += 1
            pump = asyncio.ensure_future(self.pump(c))
            try:
                await self.session(c)
                self.progress.finished += 1
                return
            except Disconnected:
                self.forget_recent_acks()
                if self.connects == 1 and self.straggle:
                    # A client whose network stays down: it misses enough to page when back.
                    target = self.progress.acked + self.straggle
                    deadline = time.monotonic() + 30
                    while self.progress.acked < target and time.monotonic() < deadline:
                        await asyncio.sleep(0.02)
                continue
            finally:
                pump.cancel()
                # Events already queued still count as seen.
                while not c.events.empty():
                    ev = c.events.get_nowait()
                    if ev.get("type") == "message.new" and ev["message"]["room"] == self.room:
                        self.merge(ev["message"])
                self.drop(c)


async def stored_rows(database_url: str, room: str) -> dict:
    """What the database itself holds for the room."""
    db = Database(database_url)
    try:
        async with db.read() as s:
            rows = (await s.execute(text(
                "SELECT seq, sender_id, client_msg_id FROM messages WHERE room_id = :r ORDER BY seq"),
                {"r": int(room)})).all()
            last_seq = (await s.execute(text("SELECT last_seq FROM rooms WHERE id = :r"),
                                        {"r": int(room)})).scalar_one()
    finally:
        await db.close()
    return {"rows": [(int(seq), str(sender), cmid) for seq, sender, cmid in rows], "last_seq": last_seq}


@pytest.mark.slow
async def test_no_message_lost_or_duplicated_across_sigkill(procs):  # noqa: F811
    """10 clients send 2,000 messages through a SIGKILL and restart; by resending unacked client_msg_ids and syncing, every client ends with exactly the acked messages, once each, seq 1..2000 without gaps."""
    srv = procs.new()
    accounts = [await srv.register(f"client{i:02d}") for i in range(CLIENTS)]
    room = (await srv.room(accounts[0][1], [u["id"] for u, _ in accounts[1:]]))["id"]
    progress = Progress()
    members = [Member(i, u, t, room, srv, progress) for i, (u, t) in enumerate(accounts)]
    members[0].straggle = STRAGGLER_MISSES

    started = time.monotonic()
    tasks = [asyncio.ensure_future(m.run()) for m in members]
    crash: dict = {}

    async def crash_and_restart() -> None:
        await progress.kill_point.wait()
        srv.kill()
        crash["acked_at_kill"] = progress.acked
        crash["killed_at"] = time.monotonic() - started
        await asyncio.sleep(DOWN_FOR)
        await srv.restart()
        crash["back_at"] = time.monotonic() - started

    controller = asyncio.ensure_future(crash_and_restart())
    try:
        done, _ = await asyncio.wait(tasks + [controller], timeout=RUN_LIMIT,
                                     return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            t.result()  # re-raise a client's assertion
        assert all(t.done() for t in tasks + [controller]), (
            f"not finished after {RUN_LIMIT} s: {progress.acked}/{TOTAL} acked, crash {crash}, "
            f"outboxes {[len(m.outbox) for m in members]}\n{srv.log_tail()}")
    finally:
        for t in tasks + [controller]:
            t.cancel()
    elapsed = time.monotonic() - started
    print(f"crash recovery: killed at {crash['acked_at_kill']}/{TOTAL} acked "
          f"({crash['killed_at']:.1f} s), back at {crash['back_at']:.1f} s, done in {elapsed:.1f} s; "
          f"resent {sum(m.resent for m in members)} (already stored: {sum(m.found_stored for m in members)}), "
          f"replayed {sum(m.replayed for m in members)}, straggler pages {members[0].max_pages}, "
          f"connects {[m.connects for m in members]}")

    # The crash really happened mid-stream and the clients really had to recover.
    assert srv.launches == 2
    assert 0.3 * TOTAL <= crash["acked_at_kill"] <= 0.5 * TOTAL, crash
    assert all(m.connects >= 2 for m in members)
    assert sum(m.resent for m in members) > 0, "no message was in flight at the kill"
    assert members[0].max_pages >= 2, "the straggler's recovery sync did not need to page"
    assert all(m.replayed >= LOST_ACKS and not m.replay for m in members), [m.replayed for m in members]

    # Every client sent all its messages and got an ack for each.
    acked: dict[int, tuple[str, str]] = {}
    for m in members:
        assert not m.problems, m.problems[:5]
        assert not m.outbox and len(m.acked) == PER_CLIENT, (m.idx, len(m.outbox))
        for cmid, seq in m.acked.items():
            assert seq not in acked, f"seq {seq} acked to two messages"
            acked[seq] = (m.user["id"], cmid)
    assert sorted(acked) == list(range(1, TOTAL + 1))

    # Every client's view is exactly seqs 1..N, once each, and agrees with the acks.
    for m in members:
        assert not m.conflicts, m.conflicts[:5]
        assert m.high_water == TOTAL and sorted(m.view) == list(range(1, TOTAL + 1)), (
            m.idx, m.high_water, len(m.view))
        assert m.view == acked, f"client {m.idx} sees different messages than were acked"

    # The database holds each client_msg_id exactly once, seq gapless, matching the acks.
    db = await stored_rows(srv.database_url, room)
    assert db["last_seq"] == TOTAL
    assert [seq for seq, _, _ in db["rows"]] == list(range(1, TOTAL + 1))
    pairs = [(sender, cmid) for _, sender, cmid in db["rows"]]
    assert len(set(pairs)) == len(pairs) == TOTAL
    assert {seq: (sender, cmid) for seq, sender, cmid in db["rows"]} == acked
    assert "Traceback" not in srv.log, srv.log_tail(60)
