"""The WebSocket op table: features register their ops when ``deps`` builds the app; a frame
is rate-limited, routed to its op, and every failure is mapped once to an error frame
(PROTOCOL §2). Socket lifecycle hooks (authenticated, closed) are registered here too, so the
transport calls features without importing them.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from server.kernel.errors import BadRequest, PodiumError, RateLimited
from server.realtime.budget import Budget
from server.realtime.close_codes import CLOSE_RATE_LIMITED

log = logging.getLogger("podium.ws")

Op = Callable[[Any, dict], Awaitable[Any]]
PIPELINED = object()  # an op's answer is sent later, by the connection's pipeline


class Dispatcher:
    def __init__(self, budget: Budget, signal_budget: Budget, abuse_limit: int, stats: dict):
        """``budget`` (the user's chat budget, shared with REST sends) pays for every op but
        signaling, which has ``signal_budget``; a socket over budget more than
        ``abuse_limit`` frames in a row is closed with 4429."""
        self.budget, self.signal_budget, self.abuse_limit, self.stats = budget, signal_budget, abuse_limit, stats
        self.ops: dict[str, Op] = {}
        self._signals: set[str] = set()
        self._authenticated: list[Callable[[Any, bool], None]] = []
        self._closed: list[Callable[[Any, list[int], bool], None]] = []

    def register(self, name: str, op: Op, *, signal: bool = False) -> None:
        """Route frames of type ``name`` to ``op(conn, msg)``; its result is the ack's data
        (None: ``{}``; PIPELINED: the op answers later). ``signal``: counted against the
        signaling budget."""
        if name in self.ops:
            raise ValueError(f"op {name!r} registered twice")
        self.ops[name] = op
        if signal:
            self._signals.add(name)

    def on_authenticated(self, hook: Callable[[Any, bool], None]) -> None:
        """``hook(conn, first_socket_of_user)`` after a socket authenticates."""
        self._authenticated.append(hook)

    def on_closed(self, hook: Callable[[Any, list[int], bool], None]) -> None:
        """``hook(conn, rooms_where_user_left, no_socket_of_user_left)`` after an
        authenticated socket closes."""
        self._closed.append(hook)

    def authenticated(self, conn, first: bool) -> None:
        for hook in self._authenticated:
            self._run_hook(hook, conn, first)

    def closed(self, conn, rooms_left: list[int], gone: bool) -> None:
        # The user's budgets are kept until they refill: reconnecting buys no fresh burst.
        for hook in self._closed:
            self._run_hook(hook, conn, rooms_left, gone)

    @staticmethod
    def _run_hook(hook, *args) -> None:
        try:
            hook(*args)
        except Exception:  # one feature's bug must not skip the others' clean-up
            log.exception("socket hook %r failed", hook)

    async def handle(self, conn, kind: str, msg: dict, req_id: str | None) -> None:
        """Run one frame of an authenticated socket and answer it (ack or error)."""
        try:
            budget = self.signal_budget if kind in self._signals else self.budget
            wait = budget.try_take(conn.user_id)
            if wait is None:  # a shared budget whose local lease is spent
                wait = await budget.take(conn.user_id)
            if wait > 0:
                conn.limited_in_a_row += 1
                self.stats["rate_limited"] += 1
                if conn.limited_in_a_row > self.abuse_limit:
                    conn.log.warning("closing: sustained rate-limit abuse")
                    conn.close(CLOSE_RATE_LIMITED, "rate limit exceeded")
                    return
                raise RateLimited("slow down: too many frames", wait)
            conn.limited_in_a_row = 0
            op = self.ops.get(kind)
            if op is None:
                raise BadRequest(f"unknown type {kind!r}")
            data = await op(conn, msg)
            if req_id is not None and data is not PIPELINED:
                conn.reply(req_id, data if data is not None else {})
        except RateLimited as e:
            conn.error(req_id, e.code, e.reason, retry_after_s=e.retry_after)
        except PodiumError as e:
            conn.error(req_id, e.code, e.reason)
        except Exception:  # a bug must not kill the socket; it is logged with the traceback
            conn.log.exception("internal error handling a frame")
            conn.error(req_id, "internal", "internal server error")
