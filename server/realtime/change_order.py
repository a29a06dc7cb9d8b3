"""Per-room ordering of message changes (edits, deletions, reactions) across processes
(docs/SCALING.md) — the counterpart of :mod:`server.realtime.room_order` for ``message.updated``,
``message.deleted`` and ``message.reaction``.

Every change takes the room's next change number in its transaction (``rooms.last_change``,
gapless per room, row-locked until commit). With several processes each change frame carries
its number; for each room with local subscribers a process remembers the last number it
delivered and:

- drops a frame whose change it has already delivered (or superseded, see below);
- when a number arrives past a gap (a notice Redis dropped, or two processes' changes crossing),
  reads from SQL every message changed since the last delivered number and delivers its
  *current* state as ``message.updated``/``message.deleted`` (a message wire carries its
  reactions), holding later frames for the room back meanwhile. Delivering the current state
  is idempotent, so later frames for numbers already covered are dropped;
- after a reconnect to Redis, catches every room up the same way (:meth:`catch_up_all`).

So an edit, deletion or reaction made through one process during a Redis outage still reaches
clients connected to the others, as new messages do.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

log = logging.getLogger("podium.bus")

# ``fetch(room, since)`` → (frames of every message changed after ``since``, in change order;
# the highest change number they cover).
Fetch = Callable[[int, int], Awaitable[tuple[list[bytes], int]]]
Deliver = Callable[[int, bytes], None]


class ChangeOrder:
    def __init__(self, fetch: Fetch, deliver: Deliver):
        self.fetch, self.deliver = fetch, deliver
        self.last: dict[int, int] = {}
        self._filling: dict[int, list[tuple[int, bytes]]] = {}
        self.gaps_filled = 0

    def forget(self, room: int) -> None:
        self.last.pop(room, None)

    def baseline(self, room: int, last_change: int) -> None:
        """The room just got its first local subscriber, with this change number in SQL."""
        self.last.setdefault(room, last_change)

    def offer(self, room: int, change: int, frame: bytes) -> None:
        if room in self._filling:
            self._filling[room].append((change, frame))
            return
        last = self.last.get(room)
        if last is None:
            last = change - 1
        if change <= last:
            return
        if change == last + 1:
            self.last[room] = change
            self.deliver(room, frame)
            return
        self._filling[room] = [(change, frame)]
        asyncio.ensure_future(self._fill(room, last))

    async def catch_up(self, room: int) -> None:
        last = self.last.get(room)
        if last is None or room in self._filling:
            return
        self._filling[room] = []
        await self._fill(room, last)

    async def catch_up_all(self) -> None:
        await asyncio.gather(*(self.catch_up(room) for room in list(self.last)), return_exceptions=True)

    async def _fill(self, room: int, last: int) -> None:
        try:
            for attempt in range(3):
                try:
                    frames, upto = await self.fetch(room, last)
                except Exception:
                    log.exception("room %s: reading changes after %d from SQL failed", room, last)
                    frames, upto = [], last
                if frames:
                    self.gaps_filled += 1
                    log.info("room %s: caught up %d changed messages from SQL", room, len(frames))
                    self.deliver(room, b"".join(frames))
                last = max(last, upto)
                held = sorted(self._filling.get(room, []), key=lambda x: x[0])
                self._filling[room] = []
                gap = False
                for i, (change, frame) in enumerate(held):
                    if change <= last:
                        continue  # covered by the current state just delivered
                    if change > last + 1 and attempt < 2:  # committed after the read, past another gap
                        self._filling[room] = held[i:]
                        gap = True
                        break
                    self.deliver(room, frame)
                    last = change
                if not gap:
                    return
        finally:
            self._filling.pop(room, None)
            self.last[room] = last
