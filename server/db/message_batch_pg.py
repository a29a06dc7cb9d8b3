"""Chat sends on PostgreSQL in one round trip: the hot path of ``chat.writer`` for batches
without attachments or replies (``message_batch.simple_batch``), straight on asyncpg
(``Database.run_pg``).

Per room one statement checks membership (the room-role rule of ``rooms.membership``:
a member's role, else instructor for a site admin), refuses announcements from anyone but an
instructor, skips resends of stored messages, bumps the room's seqs and inserts the messages
(``_STORE_ROOM``). It was a lookup and then the write, two round trips; the round trip and
its wake-ups were a third of the CPU a message cost the soak beyond fan-out (bench/scaleout).

The statement only ever does less than ``message_batch.decide`` would allow: a send it left
out is explained by the same lookup and rules as before (``_explain``), and one the rules would
accept after all — a resend of a stored message, or a membership added meanwhile — is
answered by the general path (``store_batch``; the writer passes those on). One room: in
autocommit (one statement is atomic by itself); more: one transaction, rooms in id order.
"""
from __future__ import annotations

import re
from typing import Callable

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from server.db.message_batch import LOOKUP_PG, NewMessage, Stored, decide, read_lookup
from server.kernel.clock import utcnow


def _numbered(clause) -> tuple[str, tuple[str, ...]]:
    """A ``text()`` statement's SQL with ``:name`` parameters as asyncpg's ``$n`` (numbered in
    order of first appearance), and the names in that order."""
    names: list[str] = []

    def number(m: re.Match) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"
    return re.sub(r"(?<![:\w]):(\w+)", number, clause.text), tuple(names)


# Sends to one room as arrays (one prepared statement whatever the batch size). ``ok`` are the
# sends to store, numbered in batch order; ids and seqs come back by (sender, client_msg_id).
_STORE_ROOM = _numbered(text("""
WITH v AS (
  SELECT u.sender_id, u.kind, u.content, u.cmid, u.n,
         COALESCE(m.role, CASE WHEN u.admin THEN 'instructor' END) AS role
  FROM unnest(CAST(:senders AS BIGINT[]), CAST(:admins AS BOOLEAN[]), CAST(:kinds AS VARCHAR[]),
              CAST(:contents AS TEXT[]), CAST(:cmids AS VARCHAR[]))
       WITH ORDINALITY AS u(sender_id, admin, kind, content, cmid, n)
  LEFT JOIN memberships m ON m.room_id = :room AND m.user_id = u.sender_id
),
ok AS (
  SELECT sender_id, kind, content, cmid, row_number() OVER (ORDER BY n) AS k FROM v
  WHERE role IS NOT NULL AND (kind <> 'announcement' OR role = 'instructor')
    AND NOT EXISTS (SELECT 1 FROM messages x WHERE x.room_id = :room AND x.sender_id = v.sender_id
                    AND x.client_msg_id = v.cmid)
),
r AS (UPDATE rooms SET last_seq = last_seq + (SELECT count(*) FROM ok), last_activity_at = :now
      WHERE id = :room AND EXISTS (SELECT 1 FROM ok) RETURNING last_seq)
INSERT INTO messages (room_id, seq, sender_id, kind, content, client_msg_id, created_at)
SELECT CAST(:room AS BIGINT), r.last_seq - (SELECT count(*) FROM ok) + ok.k, ok.sender_id, ok.kind,
       ok.content, ok.cmid, CAST(:now AS TIMESTAMP)
FROM r, ok
RETURNING id, seq, sender_id, client_msg_id
"""))
_LOOKUP = _numbered(LOOKUP_PG)


async def _fetch(conn, statement: tuple[str, tuple[str, ...]], params: dict) -> list:
    sql, names = statement
    try:
        return await conn.fetch(sql, *(params[n] for n in names))
    except Exception as e:
        if getattr(e, "sqlstate", None) == "23505":  # unique_violation: the writer retries it alone
            raise IntegrityError(sql, params, e) from e
        raise


async def store_simple_pg(conn, batch: list, role_of: Callable) -> list["Stored | Exception | None"]:
    """One outcome per send, in order: ``Stored`` (created), the send's own error, or None for
    a send the general path must answer (``message_batch.store_batch``: a resend of a stored
    message, or one the statement's check and ``decide`` disagree on). ``role_of`` is the
    room-role rule, which the statement applies in SQL too."""
    rooms = sorted({r.room_id for r in batch})
    if len(rooms) == 1:
        return await _store(conn, batch, rooms, role_of)
    async with conn.transaction():
        return await _store(conn, batch, rooms, role_of)


async def _store(conn, batch: list, rooms: list[int], role_of: Callable) -> list:
    outcomes: list = [None] * len(batch)
    first_of: dict[tuple, int] = {}
    by_room: dict[int, list[int]] = {}
    for i, req in enumerate(batch):
        if req.key not in first_of:  # a repeat within the batch gets the first one's answer
            first_of[req.key] = i
            by_room.setdefault(req.room_id, []).append(i)
    now = utcnow()
    left: list[int] = []
    for room_id in rooms:  # rooms in id order: concurrent batches cannot deadlock
        idxs = by_room[room_id]
        reqs = [batch[i] for i in idxs]
        rows = await _fetch(conn, _STORE_ROOM, {
            "room": room_id, "now": now, "senders": [r.actor.id for r in reqs],
            "admins": [r.actor.is_admin for r in reqs], "kinds": [r.kind for r in reqs],
            "contents": [r.content for r in reqs], "cmids": [r.client_msg_id for r in reqs]})
        made = {(sender, cmid): (mid, seq) for mid, seq, sender, cmid in rows}
        for i, r in zip(idxs, reqs):
            got = made.get((r.actor.id, r.client_msg_id))
            if got is None:
                left.append(i)
                continue
            msg = NewMessage(got[0], room_id, got[1], r.actor.id, r.kind, r.content, r.client_msg_id, None, None, now)
            outcomes[i] = Stored(msg, r.actor.display_name, None, True)
    if left:
        await _explain(conn, batch, left, outcomes, role_of)
    for i, req in enumerate(batch):
        first = outcomes[first_of[req.key]]
        if first_of[req.key] != i:
            outcomes[i] = (Stored(first.message, first.sender_name, first.reactions, False)
                           if isinstance(first, Stored) else first)
    return outcomes


async def _explain(conn, batch: list, left: list[int], outcomes: list, role_of: Callable) -> None:
    """The error of each send in ``left`` (not stored by the statement), by the lookup and
    ``decide`` of the general path; None where that path must answer."""
    reqs = [batch[i] for i in left]
    rooms, roles, found = read_lookup(await _fetch(conn, _LOOKUP, {
        "rooms": list({r.room_id for r in reqs}), "users": list({r.actor.id for r in reqs}),
        "cmids": list({r.client_msg_id for r in reqs})}))
    decided, _, _, _ = decide(reqs, rooms, roles, found, {}, {}, role_of)
    for i, out in zip(left, decided):
        outcomes[i] = out if isinstance(out, Exception) else None
