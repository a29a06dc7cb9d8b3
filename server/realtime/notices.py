"""Typed notices between web processes (docs/SCALING.md): one encoder/decoder and one router.

A notice travels on the Redis bus as one compact JSON header line followed by the frame it
carries (``<header>\\n<frame>``). The header's letter codes are the bus's wire format, kept
stable so processes of two releases can share a bus during a rolling deploy; nothing outside
this module spells them. Every notice names the process that published it (``origin``); a
process ignores its own.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable


@dataclass(slots=True)
class RoomFrame:
    """A frame for every subscriber of ``room``. ``seqs`` lists ``(seq, byte length)`` of each
    ``message.new`` frame in it; ``change`` is the change number of an edit/delete/reaction."""

    room: int
    droppable: bool = False
    exclude_user: int | None = None
    seqs: list | None = None
    change: int | None = None
    origin: str = ""


@dataclass(slots=True)
class UserFrame:
    """A frame for every socket of ``user``."""

    user: int
    origin: str = ""


@dataclass(slots=True)
class RoomsGap:
    """The sender lost notices of these rooms: read what they missed from SQL."""

    rooms: list[int] = field(default_factory=list)
    origin: str = ""


@dataclass(slots=True)
class Noop:
    """Carries nothing; flushes a pending ``RoomsGap`` after publishing failed."""

    origin: str = ""


@dataclass(slots=True)
class Canary:
    """A process's own probe: it must come back, or the subscription is silently dead."""

    origin: str = ""


@dataclass(slots=True)
class MemberRemoved:
    """``user`` was removed from ``room``: their sockets stop receiving it, their calls end."""

    room: int
    user: int
    origin: str = ""


@dataclass(slots=True)
class SessionFrame:
    """A frame for a call's participants (all but peer ``exclude``; with ``outside_room`` only
    those not subscribed to the call's room, who do not get the room's broadcast)."""

    session: int
    exclude: str | None = None
    outside_room: bool = False
    origin: str = ""


@dataclass(slots=True)
class PeerFrame:
    """A frame for one connection (a call participant) wherever it is held."""

    connection: str
    origin: str = ""


@dataclass(slots=True)
class SessionBan:
    """``user`` was removed from the call ``session`` and may not rejoin it."""

    session: int
    user: int
    origin: str = ""


@dataclass(slots=True)
class SessionMute:
    """In the SFU call ``session`` an instructor muted ``users`` at Janus (held unless
    ``allow``), or (``mute`` false) one of them unmuted: each process applies it to its own
    participants (the frame: the targets' ``call.mute_requested``)."""

    session: int
    users: list[int] = field(default_factory=list)
    allow: bool = False
    mute: bool = True
    origin: str = ""


@dataclass(slots=True)
class SessionEnded:
    """The call ``session`` ended."""

    session: int
    origin: str = ""


@dataclass(slots=True)
class WorkerNotice:
    """For the process holding media worker ``worker``: a frame to send it and/or a job to give
    (``add``) or release (``drop``). ``target`` is the process that listed the worker."""

    worker: str
    target: str | None = None
    add: int | None = None
    drop: int | None = None
    origin: str = ""


Notice = (RoomFrame | UserFrame | RoomsGap | Noop | Canary | MemberRemoved | SessionFrame | PeerFrame
          | SessionBan | SessionEnded | WorkerNotice | SessionMute)


def _header(n: Notice) -> dict:
    if type(n) is RoomFrame:
        h: dict = {"k": "r", "r": n.room}
        if n.droppable:
            h["d"] = 1
        if n.exclude_user is not None:
            h["x"] = n.exclude_user
        if n.seqs:
            h["s"] = n.seqs
        if n.change is not None:
            h["c"] = n.change
    elif type(n) is UserFrame:
        h = {"k": "u", "u": n.user}
    elif type(n) is SessionFrame:
        h = {"k": "s", "s": n.session}
        if n.exclude is not None:
            h["x"] = n.exclude
        if n.outside_room:
            h["nr"] = 1
    elif type(n) is PeerFrame:
        h = {"k": "p", "c": n.connection}
    elif type(n) is WorkerNotice:
        h = {"k": "w", "w": n.worker}
        if n.target is not None:
            h["t"] = n.target
        if n.add is not None:
            h["add"] = n.add
        if n.drop is not None:
            h["drop"] = n.drop
    elif type(n) is MemberRemoved:
        h = {"k": "unsub", "r": n.room, "u": n.user}
    elif type(n) is SessionBan:
        h = {"k": "ban", "s": n.session, "u": n.user}
    elif type(n) is SessionEnded:
        h = {"k": "se", "s": n.session}
    elif type(n) is SessionMute:
        h = {"k": "mute", "s": n.session, "u": n.users, "a": int(n.allow), "m": int(n.mute)}
    elif type(n) is RoomsGap:
        h = {"k": "gap", "rooms": n.rooms}
    elif type(n) is Canary:
        h = {"k": "c"}
    elif type(n) is Noop:
        h = {"k": "noop"}
    else:
        raise TypeError(f"not a notice: {n!r}")
    h["o"] = n.origin
    return h


def encode(notice: Notice, frame: bytes = b"") -> bytes:
    """``notice`` and the frame it carries as one bus message."""
    return json.dumps(_header(notice), separators=(",", ":")).encode() + b"\n" + frame


def _opt_int(v) -> int | None:
    return None if v is None else int(v)


_DECODERS: dict[str, Callable[[dict], Notice]] = {
    "r": lambda h: RoomFrame(int(h["r"]), bool(h.get("d")), _opt_int(h.get("x")), h.get("s"),
                             _opt_int(h.get("c"))),
    "u": lambda h: UserFrame(int(h["u"])),
    "s": lambda h: SessionFrame(int(h["s"]), h.get("x"), bool(h.get("nr"))),
    "p": lambda h: PeerFrame(str(h["c"])),
    "w": lambda h: WorkerNotice(str(h["w"]), h.get("t"), _opt_int(h.get("add")), _opt_int(h.get("drop"))),
    "unsub": lambda h: MemberRemoved(int(h["r"]), int(h["u"])),
    "ban": lambda h: SessionBan(int(h["s"]), int(h["u"])),
    "se": lambda h: SessionEnded(int(h["s"])),
    "mute": lambda h: SessionMute(int(h["s"]), [int(u) for u in h.get("u", [])], bool(h.get("a")),
                                  bool(h.get("m", 1))),
    "gap": lambda h: RoomsGap([int(r) for r in h.get("rooms", [])]),
    "c": lambda h: Canary(),
    "noop": lambda h: Noop(),
}


class BadNotice(ValueError):
    """A bus message this process cannot read (malformed, or of a kind it does not know)."""


def decode(data: bytes) -> tuple[Notice, bytes]:
    """The notice and frame of one bus message; BadNotice when it cannot be read."""
    head, _, frame = data.partition(b"\n")
    try:
        h = json.loads(head)
        notice = _DECODERS[h["k"]](h)
    except (ValueError, KeyError, TypeError) as e:
        raise BadNotice(f"unreadable bus message: {e!r}") from None
    notice.origin = str(h.get("o", ""))
    return notice, frame


Handler = Callable[[Notice, bytes], None]


class NoticeRouter:
    """Who handles each kind of notice from another process: features register a handler for
    their notice types when ``deps`` builds the app (a type has at most one handler)."""

    def __init__(self) -> None:
        self._handlers: dict[type, Handler] = {}

    def on(self, kind: type, handler: Handler) -> None:
        if kind in self._handlers:
            raise ValueError(f"{kind.__name__} already has a handler")
        self._handlers[kind] = handler

    def route(self, notice: Notice, frame: bytes) -> bool:
        """Hand ``notice`` to its handler; False when no handler is registered for it."""
        handler = self._handlers.get(type(notice))
        if handler is None:
            return False
        handler(notice, frame)
        return True
