"""Typed notices between web processes (docs/SCALING.md): one encoder/decoder and one router.

A notice travels on the Redis bus as one compact JSON header line followed by the frame it
carries (``<header>\\n<frame>``). The header's letter codes are the bus's wire format, kept
stable so processes of two releases can share a bus during a rolling deploy; nothing outside
this module spells them. Every notice names the process that published it (``origin``); a
process ignores its own.
"""
from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from typing import Callable

# How a header value is read back into a field, by the field's annotation.
_READERS: dict[str, Callable] = {
    "int": int,
    "int | None": lambda v: None if v is None else int(v),
    "str": str,
    "str | None": lambda v: v,
    "bool": bool,
    "list[int]": lambda v: [int(x) for x in v],
    "list | None": lambda v: v,
}


@dataclass(frozen=True, slots=True)
class _Key:
    """Where one field of a notice type goes in the bus header, and how it is read back."""

    name: str
    key: str
    sparse: bool  # left out while the field holds its default (or is empty)
    default: object
    required: bool  # no default: a header without the key is unreadable
    read: Callable


_WIRE: dict[type, tuple[str, tuple[_Key, ...]]] = {}
_KINDS: dict[str, type] = {}


def _notice(kind: str, **keys: str):
    """Declare a notice type: a slotted dataclass whose bus header is ``{"k": kind}``, then
    each field's value under its key in ``keys`` (in field order; a key ending in ``?`` is
    left out while the field holds its default or is empty, and then reads back as the
    default), then ``"o"``: the origin. Booleans travel as 0/1."""

    def declare(cls: type) -> type:
        cls = dataclass(slots=True)(cls)
        wire = []
        for f in fields(cls):
            if f.name != "origin":
                key = keys.pop(f.name)
                wire.append(_Key(f.name, key.rstrip("?"), key.endswith("?"), f.default,
                                 f.default is MISSING and f.default_factory is MISSING, _READERS[f.type]))
        if keys:
            raise TypeError(f"{cls.__name__} has no field {', '.join(keys)}")
        _WIRE[cls] = (kind, tuple(wire))
        _KINDS[kind] = cls
        return cls

    return declare


@_notice("r", room="r", droppable="d?", exclude_user="x?", seqs="s?", change="c?")
class RoomFrame:
    """A frame for every subscriber of ``room``. ``seqs`` lists ``(seq, byte length)`` of each
    ``message.new`` frame in it; ``change`` is the change number of an edit/delete/reaction."""

    room: int
    droppable: bool = False
    exclude_user: int | None = None
    seqs: list | None = None
    change: int | None = None
    origin: str = ""


@_notice("u", user="u")
class UserFrame:
    """A frame for every socket of ``user``."""

    user: int
    origin: str = ""


@_notice("gap", rooms="rooms")
class RoomsGap:
    """The sender lost notices of these rooms: read what they missed from SQL."""

    rooms: list[int] = field(default_factory=list)
    origin: str = ""


@_notice("noop")
class Noop:
    """Carries nothing. Older releases published it to flush a pending ``RoomsGap`` after
    publishing failed; it is still read (and ignored) so they can share a bus with this one."""

    origin: str = ""


@_notice("c", n="n?")
class Canary:
    """A process's own probe: it must come back, or the subscription is silently dead. Its
    number ``n`` confirms what was published before it (realtime.bus_publisher)."""

    n: int = 0
    origin: str = ""


@_notice("unsub", room="r", user="u")
class MemberRemoved:
    """``user`` was removed from ``room``: their sockets stop receiving it, their calls end."""

    room: int
    user: int
    origin: str = ""


@_notice("s", session="s", exclude="x?", outside_room="nr?")
class SessionFrame:
    """A frame for a call's participants (all but peer ``exclude``; with ``outside_room`` only
    those not subscribed to the call's room, who do not get the room's broadcast)."""

    session: int
    exclude: str | None = None
    outside_room: bool = False
    origin: str = ""


@_notice("p", connection="c")
class PeerFrame:
    """A frame for one connection (a call participant) wherever it is held."""

    connection: str
    origin: str = ""


@_notice("ban", session="s", user="u")
class SessionBan:
    """``user`` was removed from the call ``session`` and may not rejoin it."""

    session: int
    user: int
    origin: str = ""


@_notice("mute", session="s", users="u", allow="a", mute="m")
class SessionMute:
    """In the SFU call ``session`` an instructor muted ``users`` at Janus (held unless
    ``allow``), or (``mute`` false) one of them unmuted: each process applies it to its own
    participants (the frame: the targets' ``call.mute_requested``)."""

    session: int
    users: list[int] = field(default_factory=list)
    allow: bool = False
    mute: bool = True
    origin: str = ""


@_notice("rmod", room="r")
class RoomModerated:
    """The chat rules of ``room`` changed (rooms/moderation.py): forget the cached ones."""

    room: int
    origin: str = ""


@_notice("ctl", session="s", what="w", peer="p", video="v", screen="sc", users="u")
class SessionControl:
    """An instructor's control in the call ``session`` that each process applies to its own
    participants (calls/policy.py): ``what`` "hands" lowers the hand of ``peer`` (None: every
    raised hand; the frame: the targets' ``call.hand_lowered``), "policy" sets whether students
    may send ``video`` and ``screen``; the waiting room (calls/lobby.py): "lobby" (the frame
    to the instructors), "admit" / "deny" ``users`` (the frame to their waiting sockets);
    ringing (calls/ringing.py): "answered" — ``users[0]`` answered (``peer`` "answered" or
    "declined") or joined (``peer`` "joined"), so a ring kept by another process stops."""

    session: int
    what: str
    peer: str | None = None
    video: bool = True
    screen: bool = True
    users: list[int] = field(default_factory=list)
    origin: str = ""


@_notice("se", session="s")
class SessionEnded:
    """The call ``session`` ended."""

    session: int
    origin: str = ""


@_notice("w", worker="w", target="t?", add="add?", drop="drop?")
class WorkerNotice:
    """For the process holding media worker ``worker``: a frame to send it and/or a job to give
    (``add``) or release (``drop``). ``target`` is the process that listed the worker."""

    worker: str
    target: str | None = None
    add: int | None = None
    drop: int | None = None
    origin: str = ""


Notice = (RoomFrame | UserFrame | RoomsGap | Noop | Canary | MemberRemoved | SessionFrame | PeerFrame
          | SessionBan | SessionEnded | WorkerNotice | SessionMute | SessionControl | RoomModerated)


def _header(n: Notice) -> dict:
    try:
        kind, wire = _WIRE[type(n)]
    except KeyError:
        raise TypeError(f"not a notice: {n!r}") from None
    h: dict = {"k": kind}
    for k in wire:
        value = getattr(n, k.name)
        if k.sparse and (value == k.default or value == []):
            continue
        h[k.key] = int(value) if type(value) is bool else value
    h["o"] = n.origin
    return h


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # one for every notice (json.dumps builds one per call)


def encode(notice: Notice, frame: bytes = b"") -> bytes:
    """``notice`` and the frame it carries as one bus message. The header's last key is the
    origin (``origin_tail``)."""
    return _ENCODER.encode(_header(notice)).encode() + b"\n" + frame


def origin_tail(origin: str) -> bytes:
    """How the header of every notice published by ``origin`` ends."""
    return json.dumps({"o": origin}, separators=(",", ":")).encode()[1:]


def is_from(data: bytes, tail: bytes) -> bool:
    """Whether the bus message ``data`` was published by the origin whose ``origin_tail`` is
    ``tail`` (without decoding it: a process skips its own notices this way)."""
    nl = data.find(b"\n")
    return nl >= len(tail) and data.startswith(tail, nl - len(tail))


def is_canary(data: bytes) -> bool:
    return data.startswith(b'{"k":"c",')


def _from_header(h: dict) -> Notice:
    cls = _KINDS[h["k"]]
    return cls(**{k.name: k.read(h[k.key]) for k in _WIRE[cls][1] if k.required or k.key in h})


class BadNotice(ValueError):
    """A bus message this process cannot read (malformed, or of a kind it does not know)."""


def decode(data: bytes) -> tuple[Notice, bytes]:
    """The notice and frame of one bus message; BadNotice when it cannot be read."""
    head, _, frame = data.partition(b"\n")
    try:
        h = json.loads(head)
        notice = _from_header(h)
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
