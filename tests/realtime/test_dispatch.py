"""Dispatcher (server/realtime/dispatch.py): the op table, budgets, the mapping of failures to
error frames, and the socket hooks, without a socket: a fake connection records what the
dispatcher answers, and the budgets (``LocalBudget``) run on a clock the test moves."""
from __future__ import annotations

import logging

import pytest

from server.kernel.errors import Forbidden, PodiumError
from server.realtime.dispatch import PIPELINED, Dispatcher
from server.realtime.budget import LocalBudget


class Clock:
    """A monotonic clock that moves only when the test says."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeConn:
    """What the dispatcher uses of a connection; records acks, errors and the close."""

    def __init__(self, user_id: int = 1):
        self.user_id = user_id
        self.limited_in_a_row = 0
        self.replies: list[tuple[str | None, object]] = []
        self.errors: list[tuple[str | None, str, str]] = []
        self.retry_after: list[float | None] = []  # retry_after_s of each error, in order
        self.closed_with: tuple[int, str] | None = None
        self.log = logging.getLogger("tests.dispatch.conn")

    def reply(self, req_id, data) -> None:
        self.replies.append((req_id, data))

    def error(self, req_id, code: str, reason: str, retry_after_s: float | None = None) -> None:
        self.errors.append((req_id, code, reason))
        self.retry_after.append(retry_after_s)

    def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


def dispatcher(rate: float = 1000.0, burst: int = 1000, signal_burst: int = 1000, abuse_limit: int = 50):
    """``(dispatcher, clock, stats, calls)``: an echo op ``"echo"`` that records each message it runs."""
    clock, stats, calls = Clock(), {"rate_limited": 0}, []
    d = Dispatcher(LocalBudget(rate, burst, clock), LocalBudget(rate, signal_burst, clock), abuse_limit, stats)

    async def echo(conn, msg):
        calls.append(msg)
        return {"echo": msg.get("n")}

    d.register("echo", echo)
    return d, clock, stats, calls


async def test_an_ops_result_is_the_ack_and_none_acks_empty():
    """The op's result is the ack's data, None acks {}, and a frame without an id gets no ack."""
    d, _, _, calls = dispatcher()

    async def quiet(conn, msg):
        return None

    d.register("quiet", quiet)
    conn = FakeConn()
    await d.handle(conn, "echo", {"n": 1}, "r1")
    await d.handle(conn, "quiet", {}, "r2")
    await d.handle(conn, "echo", {"n": 3}, None)
    assert conn.replies == [("r1", {"echo": 1}), ("r2", {})] and conn.errors == []
    assert calls == [{"n": 1}, {"n": 3}]


async def test_an_unknown_type_is_a_bad_request():
    """A frame of an unregistered type gets a bad_request error naming the type, and the socket stays open."""
    d, _, _, _ = dispatcher()
    conn = FakeConn()
    await d.handle(conn, "nope.nothing", {}, "r1")
    assert [(r, c) for r, c, _ in conn.errors] == [("r1", "bad_request")]
    assert "nope.nothing" in conn.errors[0][2]
    assert conn.replies == [] and conn.closed_with is None


async def test_a_podium_error_is_answered_with_its_own_code_and_reason():
    """An op raising a PodiumError is answered with that error's code and reason."""
    d, _, _, _ = dispatcher()

    async def forbidden(conn, msg):
        raise Forbidden("instructors only")

    async def conflict(conn, msg):
        raise PodiumError("session ended", code="conflict")

    d.register("forbidden", forbidden)
    d.register("conflict", conflict)
    conn = FakeConn()
    await d.handle(conn, "forbidden", {}, "r1")
    await d.handle(conn, "conflict", {}, None)
    assert conn.errors == [("r1", "forbidden", "instructors only"), (None, "conflict", "session ended")]


async def test_an_unexpected_exception_is_an_internal_error_and_is_logged(caplog):
    """A bug in an op answers internal without leaking its message, logs the traceback, and the next frame works."""
    d, _, _, _ = dispatcher()

    async def buggy(conn, msg):
        raise KeyError("secret detail")

    d.register("buggy", buggy)
    conn = FakeConn()
    with caplog.at_level(logging.ERROR, logger="tests.dispatch.conn"):
        await d.handle(conn, "buggy", {}, "r1")
    assert conn.errors == [("r1", "internal", "internal server error")]
    (record,) = [r for r in caplog.records if r.name == "tests.dispatch.conn"]
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    await d.handle(conn, "echo", {"n": 2}, "r2")
    assert conn.replies == [("r2", {"echo": 2})] and conn.closed_with is None


async def test_over_budget_frames_are_rate_limited_per_user_until_tokens_come_back():
    """Past the burst a user's frames get rate_limited with retry_after_s, without running the op; others are unaffected."""
    d, clock, stats, calls = dispatcher(rate=2.0, burst=2)
    ana1, ana2, ben = FakeConn(1), FakeConn(1), FakeConn(2)
    await d.handle(ana1, "echo", {"n": 1}, "a")
    await d.handle(ana2, "echo", {"n": 2}, "b")  # a user's sockets share one budget
    await d.handle(ana1, "echo", {"n": 3}, "c")
    await d.handle(ben, "echo", {"n": 4}, "d")
    assert [c for _, c, _ in ana1.errors] == ["rate_limited"] and ana1.limited_in_a_row == 1
    assert ana1.retry_after == [0.5]  # one token at 2 a second
    assert calls == [{"n": 1}, {"n": 2}, {"n": 4}] and stats["rate_limited"] == 1
    clock.now += 0.5
    await d.handle(ana1, "echo", {"n": 5}, "e")
    assert ana1.replies == [("a", {"echo": 1}), ("e", {"echo": 5})] and ana1.limited_in_a_row == 0


async def test_sustained_abuse_closes_the_socket_with_4429():
    """After abuse_limit rate-limited frames in a row the next one closes the socket with 4429 instead of an error."""
    d, _, stats, calls = dispatcher(rate=1.0, burst=1, abuse_limit=3)
    conn = FakeConn()
    for i in range(4):
        await d.handle(conn, "echo", {"n": i}, f"r{i}")
    assert [c for _, c, _ in conn.errors] == ["rate_limited"] * 3 and conn.closed_with is None
    await d.handle(conn, "echo", {"n": 4}, "r4")
    assert conn.closed_with is not None and conn.closed_with[0] == 4429
    assert len(conn.errors) == 3 and calls == [{"n": 0}] and stats["rate_limited"] == 4


async def test_signaling_ops_are_counted_against_the_signal_budget():
    """Ops registered with signal=True draw on the signal budget: signals pass while the chat budget is spent, until their own runs out."""
    d, _, _, calls = dispatcher(rate=1.0, burst=1, signal_burst=3)

    async def relay(conn, msg):
        calls.append(("signal", msg["n"]))

    d.register("rtc.offer", relay, signal=True)
    conn = FakeConn()
    await d.handle(conn, "echo", {"n": 0}, "chat-1")
    await d.handle(conn, "echo", {"n": 1}, "chat-2")  # the chat budget is spent
    for i in range(4):
        await d.handle(conn, "rtc.offer", {"n": i}, f"sig-{i}")
    assert calls == [{"n": 0}, ("signal", 0), ("signal", 1), ("signal", 2)]
    assert [r for r, _, _ in conn.errors] == ["chat-2", "sig-3"]


async def test_an_op_is_registered_once():
    """Registering a second op under a taken name raises ValueError and keeps the first op."""
    d, _, _, calls = dispatcher()

    async def other(conn, msg):
        return "other"

    with pytest.raises(ValueError):
        d.register("echo", other)
    conn = FakeConn()
    await d.handle(conn, "echo", {"n": 1}, "r1")
    assert conn.replies == [("r1", {"echo": 1})]


async def test_a_pipelined_result_is_not_acked_here():
    """An op answering PIPELINED gets neither an ack nor an error from the dispatcher (the pipeline answers later)."""
    d, _, _, _ = dispatcher()

    async def pipelined(conn, msg):
        return PIPELINED

    d.register("message.send", pipelined)
    conn = FakeConn()
    await d.handle(conn, "message.send", {}, "r1")
    assert conn.replies == [] and conn.errors == []


def test_every_closed_hook_runs_even_if_one_raises(caplog):
    """closed() runs all hooks in order with (conn, rooms_left, gone), logging a failing hook and going on."""
    d, _, _, _ = dispatcher()
    seen = []

    def broken(conn, rooms, gone):
        seen.append("broken")
        raise RuntimeError("feature bug")

    d.on_closed(lambda conn, rooms, gone: seen.append(("first", conn.user_id, rooms, gone)))
    d.on_closed(broken)
    d.on_closed(lambda conn, rooms, gone: seen.append(("last", rooms, gone)))
    with caplog.at_level(logging.ERROR, logger="podium.ws"):
        d.closed(FakeConn(5), [7, 8], True)
    assert seen == [("first", 5, [7, 8], True), "broken", ("last", [7, 8], True)]
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)


def test_every_authenticated_hook_runs_even_if_one_raises():
    """authenticated() passes (conn, first socket) to every hook, past one that raises."""
    d, _, _, _ = dispatcher()
    seen = []
    d.on_authenticated(lambda conn, first: 1 / 0)
    d.on_authenticated(lambda conn, first: seen.append((conn.user_id, first)))
    d.authenticated(FakeConn(3), True)
    assert seen == [(3, True)]


async def test_closing_the_users_last_socket_does_not_refill_their_budgets():
    """Budgets outlive the sockets: a user reconnecting after closing every socket gets no fresh burst, only time refills."""
    d, clock, _, calls = dispatcher(rate=1.0, burst=1, signal_burst=1)

    async def relay(conn, msg):
        calls.append("signal")

    d.register("rtc.ice", relay, signal=True)
    conn = FakeConn()
    await d.handle(conn, "echo", {"n": 1}, "chat")
    await d.handle(conn, "rtc.ice", {}, "sig")
    d.closed(conn, [7], True)
    again = FakeConn()
    await d.handle(again, "echo", {"n": 2}, "chat-again")
    await d.handle(again, "rtc.ice", {}, "sig-again")
    assert [(r, c) for r, c, _ in again.errors] == [("chat-again", "rate_limited"), ("sig-again", "rate_limited")]
    clock.now += 1.0
    await d.handle(again, "echo", {"n": 3}, "later")
    assert again.replies == [("later", {"echo": 3})]


class RemoteBudget:
    """A budget whose local part is spent (``try_take`` None), so the dispatcher must await
    ``take``; answers each take with the next wait in ``waits``."""

    def __init__(self, *waits: float):
        self.waits = list(waits)
        self.asked: list[int] = []

    def try_take(self, key, cost: float = 1.0):
        return None

    async def take(self, key, cost: float = 1.0) -> float:
        self.asked.append(key)
        return self.waits.pop(0)


async def test_a_budget_that_must_ask_elsewhere_is_awaited_and_decides():
    """When try_take cannot decide (a shared budget's lease is spent) the dispatcher awaits take() and obeys its answer."""
    remote = RemoteBudget(0.0, 2.5)
    d = Dispatcher(remote, LocalBudget(1000.0, 1000), 50, {"rate_limited": 0})
    calls = []

    async def echo(conn, msg):
        calls.append(msg["n"])

    d.register("echo", echo)
    conn = FakeConn(4)
    await d.handle(conn, "echo", {"n": 1}, "ok")
    await d.handle(conn, "echo", {"n": 2}, "later")
    assert remote.asked == [4, 4] and calls == [1]
    assert conn.replies == [("ok", {})] and conn.errors[0][:2] == ("later", "rate_limited")
    assert conn.retry_after == [2.5]
