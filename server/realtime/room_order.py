"""Per-room ordering of ``message.new`` deliveries when several processes publish (docs/SCALING.md).

SQL is the log (ARCHITECTURE principle 1): every message has a gapless per-room ``seq``. With
one process, messages reach the local sockets in commit order and nothing here is used. With
several, a process receives its own messages at commit and the others' through Redis, in any
interleaving, and Redis may drop notices (a restart, a dropped subscriber). ``RoomOrder`` keeps,
for each room with local subscribers, the last seq delivered, and:

- drops what was already delivered (a message seen locally and again through Redis, or twice);
- when a message arrives past a gap, reads the missing ones from SQL first and delivers them in
  order, holding back later arrivals for that room until the gap is filled;
- after a reconnect to Redis, catches every room up from SQL (:meth:`catch_up_all`).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

log = logging.getLogger("podium.bus")

GAP_WAIT_S = 0.05  # how long a gap may close by itself before it is read from SQL
GAP_POLL_S = 0.002

# (seq, frame) pairs; ``fetch(room, after, until)`` → frames for seqs in (after, until], ascending.
Fetch = Callable[[int, int, int | None], Awaitable[list[tuple[int, bytes]]]]
Deliver = Callable[[int, bytes], None]


class RoomOrder:
    def __init__(self, fetch: Fetch, deliver: Deliver):
        self.fetch, self.deliver = fetch, deliver
        self.last: dict[int, int] = {}
        self._filling: dict[int, list[tuple[int, bytes]]] = {}  # room → held back while filling
        self.gaps_filled = 0
        self.duplicates = 0

    def forget(self, room: int) -> None:
        """The room has no local subscriber any more."""
        self.last.pop(room, None)

    def baseline(self, room: int, last_seq: int) -> None:
        """The room just got its first local subscriber, with this last seq in SQL: a later
        seq that arrives before an earlier one is held for it (not taken as the first)."""
        self.last.setdefault(room, last_seq)

    def offer(self, room: int, items: list[tuple[int, bytes]]) -> None:
        """Deliver ``items`` (ascending seqs) to the room's local sockets in seq order."""
        if room in self._filling:
            self._filling[room].extend(items)
            return
        last = self.last.get(room)
        if last is None:  # a room without a baseline (no subscriber joined it here): no history
            last = items[0][0] - 1
        last, rest = self._deliver_run(room, last, items)
        if rest:  # something past a gap: read the gap from SQL, hold later arrivals meanwhile
            self._filling[room] = rest
            asyncio.ensure_future(self._fill(room, last))

    def _deliver_run(self, room: int, last: int, items: list[tuple[int, bytes]]) -> tuple[int, list]:
        """Deliver the run that continues ``last``; return the new last and what lies past a gap."""
        frames, rest = [], []
        for seq, frame in sorted(items, key=lambda x: x[0]):
            if seq <= last:
                self.duplicates += 1
            elif seq == last + 1 and not rest:
                frames.append(frame)
                last = seq
            else:
                rest.append((seq, frame))
        if frames:
            self.deliver(room, b"".join(frames))
        self.last[room] = last
        return last, rest

    async def _gap_closes(self, room: int, last: int) -> None:
        """Wait up to ``GAP_WAIT_S`` for the seq after ``last`` to arrive by itself.

        Most gaps are not losses but a race: another process's batch, committed just after
        ours, comes back through Redis before this process has broadcast its own. Reading SQL
        for messages that are a few milliseconds away costs more than the whole delivery."""
        deadline = asyncio.get_running_loop().time() + GAP_WAIT_S
        while asyncio.get_running_loop().time() < deadline:
            if any(seq == last + 1 for seq, _ in self._filling[room]):
                return
            await asyncio.sleep(GAP_POLL_S)

    async def _fill(self, room: int, last: int) -> None:
        try:
            while self._filling[room]:
                await self._gap_closes(room, last)
                held, self._filling[room] = self._filling[room], []
                first = min((seq for seq, _ in held if seq > last), default=None)
                if first is None:
                    continue
                if first > last + 1:
                    try:
                        missing = await self.fetch(room, last, first - 1)
                    except Exception:
                        log.exception("room %s: reading seqs %d..%d from SQL failed", room, last + 1, first - 1)
                        missing = []
                    if missing:
                        self.gaps_filled += 1
                        log.info("room %s: filled a gap of %d messages from SQL", room, len(missing))
                    last, _ = self._deliver_run(room, last, missing)
                    if last < first - 1:  # not in SQL (cannot happen with gapless seqs): move on
                        log.warning("room %s: seqs %d..%d missing from SQL; skipped", room, last + 1, first - 1)
                        last = self.last[room] = first - 1
                last, rest = self._deliver_run(room, last, held)
                self._filling[room].extend(rest)
        finally:
            self._filling.pop(room, None)

    async def catch_up(self, room: int) -> None:
        """Deliver everything committed after the last seq seen (after missed notices)."""
        last = self.last.get(room)
        if last is None or room in self._filling:
            return
        self._filling[room] = []
        try:
            missing = await self.fetch(room, last, None)
            if missing:
                self.gaps_filled += 1
                log.info("room %s: caught up %d messages from SQL", room, len(missing))
            last, rest = self._deliver_run(room, last, missing)
            self._filling[room].extend(rest)
        except Exception:
            log.exception("room %s: catching up from SQL failed", room)
        held = self._filling.pop(room, [])
        if held:
            self.offer(room, held)

    async def catch_up_all(self) -> None:
        await asyncio.gather(*(self.catch_up(room) for room in list(self.last)), return_exceptions=True)
