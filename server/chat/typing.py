"""Which typing notices change what a room's members see, so only those are broadcast.

Receivers show "X is typing" from an ``active:true`` until an ``active:false``, a
``message.new`` from X (PROTOCOL-ADDITIONS "Typing"), X leaving, or 6 s without a refresh
(clients refresh every 2.5 s while typing). So, per room and user, in this process:

- ``active:true`` is relayed when the user is not shown typing, or when the last relayed one is
  ``REFRESH_S`` old (before receivers would expire it); a repeat within that time is dropped;
- ``active:false`` is relayed only when the user is shown typing;
- a message from the user (``message.send`` accepted) ends the typing without a notice: its
  ``message.new`` clears the indicator, so the ``active:false`` clients send right after a
  send — one notice to every member of the room per message — is dropped.

A class that chats sends typing on and off around every message: without this, typing
notices were two thirds of a room's deliveries (bench/scaleout soak). Entries older than
``STALE_S`` (a client that vanished while typing) count as not typing and are swept.
"""
from __future__ import annotations

import time
from typing import Callable

REFRESH_S = 2.0  # clients refresh every 2.5 s; receivers expire after 6 s (web/js/store.js)
STALE_S = 6.0
MAX_ENTRIES = 50_000  # a sweep runs when this many (room, user) pairs are tracked


class TypingRelay:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._shown: dict[tuple[int, int], float] = {}  # (room, user) → when active:true was relayed

    def should_relay(self, room_id: int, user_id: int, active: bool) -> bool:
        key, now = (room_id, user_id), self.clock()
        since = self._shown.get(key)
        shown = since is not None and now - since < STALE_S
        if not active:
            self._shown.pop(key, None)
            return shown
        if shown and now - since < REFRESH_S:
            return False
        if len(self._shown) >= MAX_ENTRIES:
            self._sweep(now)
        self._shown[key] = now
        return True

    def ended(self, room_id: int, user_id: int) -> None:
        """The user sent a message to the room (or left it): receivers stop showing them typing."""
        self._shown.pop((room_id, user_id), None)

    def _sweep(self, now: float) -> None:
        for key in [k for k, t in self._shown.items() if now - t >= STALE_S]:
            del self._shown[key]

    def __len__(self) -> int:
        return len(self._shown)
