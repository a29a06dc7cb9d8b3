"""One VideoRoom per call session on one Janus: create, destroy, moderate, and recreate after
a Janus restart.

A call session's room id and secret are derived from the session id with an HMAC under
Podium's key, so any Podium process (or the same one after a restart) finds the same room and
can moderate it without storing anything; the secret never leaves the server. The rooms this
object opened are recreated (same id, same secret) when the connection reports lost sessions
(Janus restarted): publishers must then publish again — the caller learns it through the
``on_rooms_recreated`` hooks.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server.sfu import videoroom as vr
from server.sfu.client import Handle, JanusConnection, JanusSession
from server.sfu.protocol import JanusError

log = logging.getLogger("podium.sfu")
ROOM_EXISTS = 427
NO_SUCH_ROOM = 426


@dataclass(frozen=True)
class RoomSpec:
    """The Janus room of one call session."""

    call_session_id: str
    room: int
    secret: str


def room_spec(key: bytes, call_session_id: str) -> RoomSpec:
    """The room id (a positive integer below 2^52, exact in JSON numbers) and secret."""
    digest = hmac.new(key, f"janus-room:{call_session_id}".encode(), hashlib.sha256).digest()
    room = int.from_bytes(digest[:7], "big") >> 4 or 1
    secret = base64.urlsafe_b64encode(digest[8:32]).decode().rstrip("=")
    return RoomSpec(call_session_id, room, secret)


class JanusRooms:
    """The rooms Podium opened on one Janus, through one admin session of its own."""

    def __init__(self, connection: JanusConnection, key: bytes, admin_key: str | None = None,
                 publishers: int = 100):
        self.connection, self.key, self.admin_key, self.publishers = connection, key, admin_key, publishers
        self.open_rooms: dict[str, RoomSpec] = {}
        self.on_rooms_recreated: list[Callable[[list[RoomSpec]], Awaitable[None]]] = []
        self._session: JanusSession | None = None
        self._handle: Handle | None = None
        connection.on_reconnected.append(self._reconnected)

    async def _admin(self) -> Handle:
        if self._handle is None or self._session is None or self._session.lost:
            self._session = await self.connection.create_session()
            self._handle = await self._session.attach(vr.PLUGIN)
        return self._handle

    async def open(self, call_session_id: str) -> RoomSpec:
        """The session's room, created if Janus does not have it (idempotent)."""
        spec = room_spec(self.key, call_session_id)
        await self._create(spec)
        self.open_rooms[call_session_id] = spec
        return spec

    async def _create(self, spec: RoomSpec) -> None:
        handle = await self._admin()
        try:
            await handle.message(vr.create_room(spec.room, spec.secret, admin_key=self.admin_key,
                                                publishers=self.publishers,
                                                description=f"podium {spec.call_session_id}"))
        except JanusError as e:
            if e.code != ROOM_EXISTS:
                raise

    async def close(self, call_session_id: str) -> None:
        """Destroy the session's room (everyone in it is kicked); absent already is fine."""
        spec = self.open_rooms.pop(call_session_id, None) or room_spec(self.key, call_session_id)
        handle = await self._admin()
        try:
            await handle.message(vr.destroy_room(spec.room, spec.secret))
        except JanusError as e:
            if e.code != NO_SUCH_ROOM:
                raise

    async def participants(self, spec: RoomSpec) -> list[dict]:
        return await self.participants_of_room(spec.room)

    async def participants_of_room(self, room: int) -> list[dict]:
        """Janus's list: ``{id, display, publisher, talking}`` per participant."""
        handle = await self._admin()
        return (await handle.message(vr.list_participants(room))).data.get("participants", [])

    async def kick(self, spec: RoomSpec, feed_id: int) -> None:
        await (await self._admin()).message(vr.kick(spec.room, spec.secret, feed_id))

    async def moderate(self, spec: RoomSpec, feed_id: int, mid: str, mute: bool) -> None:
        await (await self._admin()).message(vr.moderate(spec.room, spec.secret, feed_id, mid, mute))

    async def _reconnected(self, lost: list[JanusSession]) -> None:
        if not lost:
            return
        recreated = []
        for spec in list(self.open_rooms.values()):
            await self._create(spec)
            recreated.append(spec)
        if recreated:
            log.warning("sfu: janus %s restarted: %d room(s) recreated", self.connection.url, len(recreated))
        for hook in list(self.on_rooms_recreated):
            await hook(recreated)
