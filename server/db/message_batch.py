"""The SQL of a batch of chat sends (``chat.writer``): membership, dedupe, seqs, one insert.

One lookup (membership and dedupe together), then per room the seq bump (``UPDATE rooms SET
last_seq = last_seq + k``: seqs stay gapless and in commit order; rooms in id order so batches
cannot deadlock) and one multi-row INSERT — a single statement on PostgreSQL (the UPDATE as a
CTE). Pre-built Core statements (compiled once, then from SQLAlchemy's cache) on a synchronous
connection: ``Database.run_write`` runs the whole transaction in one hop to the SQLite writer
thread, or on the asyncpg connection; this is the hot path of every message, and ORM entity
loading would cost more than the SQL itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import BigInteger, bindparam, cast, insert, literal_column, null, select, text, union_all, update

from server.db.models import File, Membership, Message, Reaction, Room, User
from server.kernel.clock import utcnow
from server.kernel.errors import BadRequest, Forbidden, NotFound

_ROOMS, _MEMBERS, _MESSAGES = Room.__table__, Membership.__table__, Message.__table__
_FILES, _USERS, _REACTIONS_T = File.__table__, User.__table__, Reaction.__table__
# A message of these kinds must carry a file of the same category; ``file`` takes any.
_KIND_CATEGORY = {"image": "image", "video": "video", "audio": "audio"}


@dataclass(frozen=True, slots=True)
class Stored:
    """A send's message row as stored (``created``) or as found stored before (a resend)."""

    message: "NewMessage | object"  # a NewMessage, or the stored row of a resend (same attributes)
    sender_name: str | None
    reactions: dict | None
    created: bool


def attachment_error(req, row) -> Exception | None:
    """Why ``req`` may not carry its ``file_id`` (None when it may). ``row`` is the file's
    ``(owner_id, room_id, category, deleted_at)`` or None. The sender must see the file: their
    own upload not yet in a room (it then becomes the room's), or a file of this room."""
    if row is None or row[3] is not None:
        return NotFound("no such file")
    owner_id, room_id, category, _ = row
    if room_id != req.room_id and not (room_id is None and owner_id == req.actor.id):
        return Forbidden("attach a file you uploaded, or one of this room")
    want = _KIND_CATEGORY.get(req.kind)
    if want and category != want:
        return BadRequest(f"a {req.kind} message needs a {want} file, not a {category}")
    return None


def file_rows(conn, file_ids: set[str]) -> dict[str, tuple]:
    if not file_ids:
        return {}
    stmt = select(_FILES.c.id, _FILES.c.owner_id, _FILES.c.room_id, _FILES.c.category,
                  _FILES.c.deleted_at).where(_FILES.c.id.in_(file_ids))
    return {fid: tuple(rest) for fid, *rest in conn.execute(stmt).all()}


def attach_files(conn, attach: dict[str, int]) -> None:
    """Files attached to a message become visible to its room."""
    for file_id, room_id in attach.items():
        conn.execute(update(_FILES).where(_FILES.c.id == file_id, _FILES.c.room_id.is_(None))
                     .values(room_id=room_id))


class NewMessage:
    """A message row just inserted: the attributes ``rooms.wire.message_wire`` reads (an ORM
    ``Message`` costs more to build than the INSERT that stored it)."""

    __slots__ = ("id", "room_id", "seq", "sender_id", "kind", "content", "file_id", "reply_to",
                 "client_msg_id", "created_at")
    edited_at = deleted_at = change_seq = None

    def __init__(self, id, room_id, seq, sender_id, kind, content, client_msg_id, file_id, reply_to,  # noqa: A002
                 created_at):
        self.id, self.room_id, self.seq, self.sender_id, self.kind = id, room_id, seq, sender_id, kind
        self.content, self.client_msg_id, self.file_id = content, client_msg_id, file_id
        self.reply_to, self.created_at = reply_to, created_at


# Membership and dedupe in one round trip: rows (0, room, member user or NULL, role, NULL) for
# each existing room, (1, room, sender, client_msg_id, message id) for each stored send.
_LOOKUP = union_all(
    select(literal_column("0").label("k"), _ROOMS.c.id.label("room_id"), _MEMBERS.c.user_id.label("user_id"),
           _MEMBERS.c.role.label("text"), cast(null(), BigInteger).label("message_id"))
    .select_from(_ROOMS.outerjoin(_MEMBERS, (_MEMBERS.c.room_id == _ROOMS.c.id)
                                  & _MEMBERS.c.user_id.in_(bindparam("users", expanding=True))))
    .where(_ROOMS.c.id.in_(bindparam("rooms", expanding=True))),
    select(literal_column("1"), _MESSAGES.c.room_id, _MESSAGES.c.sender_id, _MESSAGES.c.client_msg_id,
           cast(_MESSAGES.c.id, BigInteger))
    .where(_MESSAGES.c.room_id.in_(bindparam("rooms", expanding=True)),
           _MESSAGES.c.sender_id.in_(bindparam("users", expanding=True)),
           _MESSAGES.c.client_msg_id.in_(bindparam("cmids", expanding=True))))

# PostgreSQL: the same lookup with arrays instead of expanding IN lists: one statement text
# (and one prepared statement) whatever the batch, nothing re-rendered per execution.
LOOKUP_PG = text("""
SELECT 0, rooms.id, memberships.user_id, memberships.role, CAST(NULL AS BIGINT)
FROM rooms LEFT OUTER JOIN memberships
  ON memberships.room_id = rooms.id AND memberships.user_id = ANY(CAST(:users AS BIGINT[]))
WHERE rooms.id = ANY(CAST(:rooms AS BIGINT[]))
UNION ALL
SELECT 1, room_id, sender_id, client_msg_id, id FROM messages
WHERE room_id = ANY(CAST(:rooms AS BIGINT[])) AND sender_id = ANY(CAST(:users AS BIGINT[]))
  AND client_msg_id = ANY(CAST(:cmids AS VARCHAR[]))
""")

# SQLite: the seq UPDATE and the multi-row INSERT (no DML in a CTE there; the statements are
# local calls on the writer thread, not round trips).
_BUMP = (update(_ROOMS).where(_ROOMS.c.id == bindparam("room"))
         .values(last_seq=_ROOMS.c.last_seq + bindparam("k"), last_activity_at=bindparam("now"))
         .returning(_ROOMS.c.last_seq))
_INSERT = insert(_MESSAGES).returning(_MESSAGES.c.id, _MESSAGES.c.room_id, _MESSAGES.c.seq)

# PostgreSQL: one statement per room for both — the seq UPDATE as a CTE feeding the INSERT, the
# rows as arrays (one prepared statement whatever the batch size); ids come back by seq.
_BUMP_AND_INSERT_PG = text("""
WITH r AS (UPDATE rooms SET last_seq = last_seq + :k, last_activity_at = :now
           WHERE id = :room RETURNING last_seq)
INSERT INTO messages (room_id, seq, sender_id, kind, content, client_msg_id, file_id, reply_to, created_at)
SELECT CAST(:room AS BIGINT), r.last_seq - :k + v.n, v.sender_id, v.kind, v.content, v.cmid, v.file_id,
       v.reply_to, CAST(:now AS TIMESTAMP)
FROM r, unnest(CAST(:senders AS BIGINT[]), CAST(:kinds AS VARCHAR[]), CAST(:contents AS TEXT[]),
               CAST(:cmids AS VARCHAR[]), CAST(:files AS VARCHAR[]), CAST(:replies AS BIGINT[]))
     WITH ORDINALITY AS v(sender_id, kind, content, cmid, file_id, reply_to, n)
RETURNING id, seq
""")


class _RawSqlite:
    """The three statements of every batch straight on the stdlib ``sqlite3`` connection of the
    SQLite writer thread (``Database.run_write``): through SQLAlchemy's execution machinery they
    cost ~0.1 ms of CPU each here, several times the SQLite work. Same SQL as ``_LOOKUP``,
    ``_BUMP`` and ``_INSERT``; datetimes bound with SQLAlchemy's own SQLite processor, so the
    stored text is what every other query reads."""

    _COLS = "room_id, seq, sender_id, kind, content, client_msg_id, file_id, reply_to, created_at"

    def __init__(self, conn):
        self.db = conn.connection.driver_connection
        dt = _MESSAGES.c.created_at.type.dialect_impl(conn.dialect)
        self.dt = dt.bind_processor(conn.dialect) or (lambda v: v)

    @staticmethod
    def _marks(n: int) -> str:
        return ",".join("?" * n)

    def lookup(self, rooms: list, users: list, cmids: list):
        r, u, c = self._marks(len(rooms)), self._marks(len(users)), self._marks(len(cmids))
        return self.db.execute(
            f"SELECT 0, rooms.id, memberships.user_id, memberships.role, NULL FROM rooms LEFT OUTER JOIN "
            f"memberships ON memberships.room_id = rooms.id AND memberships.user_id IN ({u}) WHERE rooms.id IN ({r}) "
            f"UNION ALL SELECT 1, room_id, sender_id, client_msg_id, id FROM messages "
            f"WHERE room_id IN ({r}) AND sender_id IN ({u}) AND client_msg_id IN ({c})",
            (*users, *rooms, *rooms, *users, *cmids)).fetchall()

    def bump(self, room_id: int, k: int, now) -> int:
        return self.db.execute("UPDATE rooms SET last_seq = last_seq + ?, last_activity_at = ? WHERE id = ? "
                               "RETURNING last_seq", (k, self.dt(now), room_id)).fetchone()[0]

    def insert(self, room_id: int, first: int, reqs: list, now) -> dict[int, int]:
        at = self.dt(now)
        params = []
        for n, r in enumerate(reqs):
            params += (room_id, first + n, r.actor.id, r.kind, r.content, r.client_msg_id, r.file_id, r.reply_to, at)
        rows = ",".join(["(?,?,?,?,?,?,?,?,?)"] * len(reqs))
        return {seq: mid for mid, seq in self.db.execute(
            f"INSERT INTO messages ({self._COLS}) VALUES {rows} RETURNING id, seq", params).fetchall()}


_RESENT = (select(*_MESSAGES.c, _USERS.c.display_name.label("sender_name"))
           .outerjoin(_USERS, _USERS.c.id == _MESSAGES.c.sender_id)
           .where(_MESSAGES.c.id.in_(bindparam("ids", expanding=True))))
_REACTIONS = (select(_REACTIONS_T.c.message_id, _REACTIONS_T.c.emoji, _REACTIONS_T.c.user_id)
              .where(_REACTIONS_T.c.message_id.in_(bindparam("ids", expanding=True)))
              .order_by(_REACTIONS_T.c.created_at, _REACTIONS_T.c.user_id))


def needs_transaction(batch: list) -> bool:
    """Whether ``store_batch`` may write with more than one statement: more than one room, or a
    file to attach. Otherwise its only write is one statement (PostgreSQL: seqs and INSERT in
    one CTE), atomic without a transaction around it (``Database.run_write(atomic=False)``)."""
    room = batch[0].room_id
    return any(r.room_id != room or r.file_id is not None for r in batch)


def reactions_for(conn, message_ids: list[int]) -> dict[int, dict[str, list[str]]]:
    """``db.messages.reactions_for`` on a synchronous connection (resends only)."""
    out: dict[int, dict[str, list[str]]] = {}
    for mid, emoji, uid in conn.execute(_REACTIONS, {"ids": message_ids}).all():
        out.setdefault(mid, {}).setdefault(emoji, []).append(str(uid))
    return out


def simple_batch(batch: list) -> bool:
    """No attachment, no reply: what ``message_batch_pg.store_simple_pg`` stores."""
    return all(r.file_id is None and r.reply_to is None for r in batch)


def read_lookup(rows) -> tuple[set[int], dict[tuple[int, int], str], dict[tuple, int]]:
    """The lookup's rows as (existing rooms, (room, user) → membership role, send key → id of
    the message already stored with it)."""
    rooms: set[int] = set()
    roles: dict[tuple[int, int], str] = {}
    found: dict[tuple, int] = {}
    for k, rid, uid, txt, mid in rows:
        if k == 0:
            rooms.add(rid)
            if uid is not None:
                roles[(rid, uid)] = txt
        else:
            found[(rid, uid, txt)] = mid
    return rooms, roles, found


def decide(batch: list, rooms: set[int], roles: dict, existing: dict, reply_room: dict, files: dict,
            role_of: Callable) -> tuple[list, dict[tuple, int], dict[int, list[int]], dict[str, int]]:
    """Which sends are refused (their outcome: the error), which are resends (no outcome yet),
    which are stored: (outcomes, send key → index of its first send, room → indexes of the
    sends to store there, unattached file → the room it joins)."""
    outcomes: list[Stored | Exception | None] = [None] * len(batch)
    first_of: dict[tuple, int] = {}
    by_room: dict[int, list[int]] = {}
    attach: dict[str, int] = {}
    for i, req in enumerate(batch):
        if req.room_id not in rooms:
            outcomes[i] = NotFound("no such room")
            continue
        role = role_of(roles.get((req.room_id, req.actor.id)), req.actor)
        if role is None:
            outcomes[i] = Forbidden("you are not a member of this room")
        elif req.key in existing or req.key in first_of:
            continue  # a resend: answered below with the stored copy
        elif req.kind == "announcement" and role != "instructor":
            outcomes[i] = Forbidden("only room instructors send announcements")
        elif req.reply_to is not None and reply_room.get(req.reply_to) != req.room_id:
            outcomes[i] = BadRequest("reply_to must be a message of this room")
        elif req.file_id is not None and (err := attachment_error(req, files.get(req.file_id))):
            outcomes[i] = err
        elif req.file_id is not None and attach.get(req.file_id, req.room_id) != req.room_id:
            outcomes[i] = Forbidden("attach a file you uploaded, or one of this room")
        else:
            first_of[req.key] = i
            by_room.setdefault(req.room_id, []).append(i)
            if req.file_id is not None and files[req.file_id][1] is None:
                attach[req.file_id] = req.room_id
    return outcomes, first_of, by_room, attach


def _bump_and_insert_params(room_id: int, reqs: list, now) -> dict:
    return {"k": len(reqs), "now": now, "room": room_id, "senders": [r.actor.id for r in reqs],
            "kinds": [r.kind for r in reqs], "contents": [r.content for r in reqs],
            "cmids": [r.client_msg_id for r in reqs], "files": [r.file_id for r in reqs],
            "replies": [r.reply_to for r in reqs]}


def _created(outcomes: list, batch: list, idxs: list[int], room_id: int, first: int, ids: dict[int, int],
             now) -> None:
    for n, i in enumerate(idxs):
        r, seq = batch[i], first + n
        msg = NewMessage(ids[seq], room_id, seq, r.actor.id, r.kind, r.content, r.client_msg_id, r.file_id,
                         r.reply_to, now)
        outcomes[i] = Stored(msg, r.actor.display_name, None, True)


def _answer_resends(outcomes: list, batch: list, existing: dict, reactions: dict, first_of: dict) -> None:
    """What is left are resends: of a stored message, or of a send earlier in this batch."""
    for i, req in enumerate(batch):
        if outcomes[i] is not None:
            continue
        if req.key in existing:
            msg, name = existing[req.key]
            outcomes[i] = Stored(msg, name, reactions.get(msg.id), False)
        else:
            first_out = outcomes[first_of[req.key]]
            outcomes[i] = Stored(first_out.message, first_out.sender_name, first_out.reactions, False)


def store_batch(conn, batch: list, role_of: Callable) -> list["Stored | Exception"]:
    """Store a batch of validated sends (``chat.writer.SendRequest``) on ``conn``, a synchronous
    SQLAlchemy Connection inside the caller's transaction (``Database.run_write``), with a fixed
    number of statements whatever its size: one lookup (membership and dedupe), then per room
    the seqs and the INSERT (one statement on PostgreSQL, two on SQLite). One outcome per send,
    in order: a ``Stored`` or the send's own error. ``role_of(membership role or None, actor)``
    is the room-role rule (rooms.membership.effective_role). Nothing is committed here."""
    room_ids = list({r.room_id for r in batch})
    user_ids = list({r.actor.id for r in batch})
    cmids = list({r.client_msg_id for r in batch})
    # The stdlib driver on SQLite's writer thread; SQLAlchemy Core otherwise (PostgreSQL, or an
    # in-memory SQLite database on the aiosqlite connection).
    raw = _RawSqlite(conn) if conn.dialect.driver == "pysqlite" else None
    pg = conn.dialect.name == "postgresql"
    rooms, roles, found = read_lookup(raw.lookup(room_ids, user_ids, cmids) if raw else conn.execute(
        LOOKUP_PG if pg else _LOOKUP, {"rooms": room_ids, "users": user_ids, "cmids": cmids}))
    existing = {}
    if found:  # resends are rare: load their full rows only then
        by_id = {mid: key for key, mid in found.items()}
        for row in conn.execute(_RESENT, {"ids": list(by_id)}).all():
            existing[by_id[row.id]] = (row, row.sender_name)
    reply_ids = {r.reply_to for r in batch if r.reply_to is not None}
    reply_room = dict(conn.execute(select(_MESSAGES.c.id, _MESSAGES.c.room_id)
                                   .where(_MESSAGES.c.id.in_(reply_ids))).all()) if reply_ids else {}
    files = file_rows(conn, {r.file_id for r in batch if r.file_id})
    outcomes, first_of, by_room, attach = decide(batch, rooms, roles, existing, reply_room, files, role_of)

    now = utcnow()
    for room_id in sorted(by_room):  # rooms in id order: concurrent batches cannot deadlock
        idxs = by_room[room_id]
        reqs = [batch[i] for i in idxs]
        if pg:
            ids = dict((seq, mid) for mid, seq in conn.execute(_BUMP_AND_INSERT_PG,
                                                                _bump_and_insert_params(room_id, reqs, now)))
            first = min(ids)
        elif raw:
            first = raw.bump(room_id, len(idxs), now) - len(idxs) + 1
            ids = raw.insert(room_id, first, reqs, now)
        else:
            last = conn.execute(_BUMP, {"room": room_id, "k": len(idxs), "now": now}).scalar_one()
            first = last - len(idxs) + 1
            # RETURNING order is not guaranteed: ids are matched back by seq.
            ids = {seq: mid for mid, _, seq in conn.execute(_INSERT, [
                dict(room_id=room_id, seq=first + n, sender_id=r.actor.id, kind=r.kind, content=r.content,
                     client_msg_id=r.client_msg_id, file_id=r.file_id, reply_to=r.reply_to, created_at=now)
                for n, r in enumerate(reqs)]).all()}
        _created(outcomes, batch, idxs, room_id, first, ids, now)
    attach_files(conn, attach)

    old = [m.id for m, _ in existing.values()]
    _answer_resends(outcomes, batch, existing, reactions_for(conn, old) if old else {}, first_of)
    return outcomes  # type: ignore[return-value]
