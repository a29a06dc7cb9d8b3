"""In-process connection registry: room → sockets, user → sockets, connection id → socket.

Broadcasts encode once and write the same frame to every subscriber (principle 6).
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable, Protocol

from server.kernel.actor import Actor
from server.kernel.frames import event_frame, split_frames

log = logging.getLogger("podium.registry")


class Connection(Protocol):
    connection_id: str
    user_id: int
    actor: Actor
    rooms: set[int]

    def send_frame(self, frame: bytes, droppable: bool = False) -> None: ...

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


class Registry:
    def __init__(self) -> None:
        # With REDIS_URL (docs/SCALING.md), set once by ``connect_bus`` when deps builds the app.
        self.bus = None
        self.order = None
        self.changes = None
        self.deliveries = 0  # frames written by fan-out (GET /metrics)
        self.connections: dict[str, Connection] = {}
        self.by_user: dict[int, set[Connection]] = {}
        self.by_room: dict[int, set[Connection]] = {}
        # room → user id → number of that user's sockets subscribed (presence in O(1)).
        self.room_users: dict[int, dict[int, int]] = {}
        self.status: dict[int, str] = {}

    def connect_bus(self, bus, order, changes) -> None:
        """With REDIS_URL: ``bus`` publishes what is delivered here to the other processes,
        ``order`` (RoomOrder) sequences message.new deliveries by seq, ``changes``
        (ChangeOrder) edits, deletions and reactions by change number."""
        self.bus, self.order, self.changes = bus, order, changes

    # -- connections ---------------------------------------------------------------------
    def add(self, conn: Connection) -> bool:
        """Register an authenticated socket; True when it is the user's first socket."""
        self.connections[conn.connection_id] = conn
        socks = self.by_user.setdefault(conn.user_id, set())
        socks.add(conn)
        return len(socks) == 1

    def remove(self, conn: Connection) -> tuple[list[int], bool]:
        """Forget a socket. Returns the rooms where its user is now offline and whether the
        user has no sockets left."""
        self.connections.pop(conn.connection_id, None)
        left = [room for room in list(conn.rooms) if self.unsubscribe(conn, room)]
        socks = self.by_user.get(conn.user_id)
        gone = True
        if socks is not None:
            socks.discard(conn)
            gone = not socks
            if gone:
                del self.by_user[conn.user_id]
                self.status.pop(conn.user_id, None)
        return left, gone

    # -- rooms ---------------------------------------------------------------------------
    def subscribe(self, conn: Connection, room: int) -> bool:
        """Subscribe; True when this is the user's first socket in the room (user came online)."""
        subs = self.by_room.setdefault(room, set())
        if conn in subs:
            return False
        subs.add(conn)
        conn.rooms.add(room)
        users = self.room_users.setdefault(room, {})
        users[conn.user_id] = users.get(conn.user_id, 0) + 1
        return users[conn.user_id] == 1

    def unsubscribe(self, conn: Connection, room: int) -> bool:
        """Unsubscribe; True when the user has no socket left in the room."""
        conn.rooms.discard(room)
        subs = self.by_room.get(room)
        if not subs or conn not in subs:
            return False
        subs.discard(conn)
        users = self.room_users[room]
        users[conn.user_id] -= 1
        gone = users[conn.user_id] == 0
        if gone:
            del users[conn.user_id]
        if not subs:
            del self.by_room[room]
            del self.room_users[room]
            if self.order is not None:
                self.order.forget(room)
                self.changes.forget(room)
        return gone

    def online(self, room: int) -> list[str]:
        return [str(uid) for uid in sorted(self.room_users.get(room, ()))]

    def user_sockets(self, user_id: int) -> set[Connection]:
        return self.by_user.get(user_id, set())

    def close_user(self, user_id: int, code: int, reason: str,
                   only: Callable[[Connection], bool] = lambda conn: True) -> int:
        """Close this process's sockets of ``user_id`` for which ``only(conn)``; how many."""
        # A copy: closing a socket takes it out of the registry.
        doomed = [conn for conn in tuple(self.by_user.get(user_id, ())) if only(conn)]
        for conn in doomed:
            conn.close(code, reason)
        return len(doomed)

    # -- fan-out -------------------------------------------------------------------------
    def broadcast(self, room: int, event: dict, *, droppable: bool = False,
                  exclude_user: int | None = None, change: int | None = None) -> int:
        """Send ``event`` to every socket subscribed to ``room`` (in every process); returns
        local deliveries."""
        if self.bus is None and not self.by_room.get(room):
            return 0
        frame = event_frame(event)
        seqs = None
        if event.get("type") == "message.new" and isinstance(event.get("message"), dict):
            seqs = [(int(event["message"]["seq"]), len(frame))]
        return self.broadcast_frame(room, frame, droppable=droppable, exclude_user=exclude_user, seqs=seqs,
                                    change=change)

    def broadcast_frame(self, room: int, frame: bytes, *, droppable: bool = False,
                        exclude_user: int | None = None, seqs: list[tuple[int, int]] | None = None,
                        change: int | None = None) -> int:
        """Write already-framed bytes (one or more frames) to every subscriber of ``room``.
        ``seqs`` lists ``(seq, byte length)`` of each ``message.new`` frame in ``frame``;
        ``change`` is the room's change number of a message edit, deletion or reaction."""
        if self.bus is not None:
            self.bus.room(room, frame, droppable, exclude_user, seqs, change)
            if change is not None:
                if self.by_room.get(room):
                    self.changes.offer(room, change, frame)
                return len(self.by_room.get(room, ()))
            if seqs and self.by_room.get(room):
                self.order.offer(room, split_frames(frame, seqs))
                return len(self.by_room.get(room, ()))
        return self.local_room(room, frame, droppable=droppable, exclude_user=exclude_user)

    def local_room(self, room: int, frame: bytes, *, droppable: bool = False,
                   exclude_user: int | None = None) -> int:
        """This process's subscribers of ``room`` only."""
        subs = self.by_room.get(room)
        if not subs:
            return 0
        return self.send_to(tuple(subs), frame, droppable=droppable, exclude_user=exclude_user)

    def send_user(self, user_id: int, frame: bytes) -> int:
        """Every socket of ``user_id``, in every process."""
        if self.bus is not None:
            self.bus.user(user_id, frame)
        return self.local_user(user_id, frame)

    def local_user(self, user_id: int, frame: bytes) -> int:
        return self.send_to(self.by_user.get(user_id, ()), frame)

    def send_to(self, conns: Iterable[Connection], frame: bytes, *, droppable: bool = False,
                exclude_user: int | None = None) -> int:
        n = 0
        # Iterate over a copy: send_frame may close a slow consumer, which unsubscribes it.
        for conn in tuple(conns):
            if conn.user_id == exclude_user:
                continue
            conn.send_frame(frame, droppable)
            n += 1
        self.deliveries += n
        return n
