"""``Provisioning``: what an LMS back end's service credential does (docs/LMS.md
"Server-to-server provisioning"). Users and rooms are kept by the credential's issuer and an
external id (``external_identities``, ``external_rooms``), so every call is idempotent: the
first PUT creates, the next ones update the same row, and racing first PUTs end with one row
(the loser of the unique key tries again and updates). Users are never matched by name or
email. Membership changes tell the room and the member as an instructor's would."""
from __future__ import annotations

import logging
import time

from sqlalchemy.exc import IntegrityError

from server.accounts.tokens import issue_token
from server.db import external as eq
from server.db import rooms as rq
from server.db import users as uq
from server.db.models import RoomBan
from server.kernel.errors import Conflict, NotFound
from server.kernel.wire import user_wire
from server.provision.wire import (
    RoomSpec, UserSpec, email_given, provisioned_room_wire, provisioned_user_wire,
)
from server.rooms.membership import system_message
from server.rooms.wire import member_wire

log = logging.getLogger("podium.provision")
_ATTEMPTS = 3


async def _retrying(work):
    """Run ``work()`` (one transaction) again when a concurrent call of the same external id
    took a unique key first; the next attempt finds that row."""
    for attempt in range(_ATTEMPTS):
        try:
            return await work()
        except IntegrityError:
            if attempt == _ATTEMPTS - 1:
                raise


class Provisioning:
    def __init__(self, config, db, rooms) -> None:
        self.config, self.db, self.rooms = config, db, rooms

    # -- users -------------------------------------------------------------------------------
    async def put_user(self, cred, external: str, spec: UserSpec) -> tuple[dict, bool]:
        """Create or update the user ``external``; ``(wire, created)``. A site admin keeps
        their role."""
        async def work():
            async with self.db.write() as s:
                found = await eq.linked_user(s, cred.issuer, external)
                if found is None:
                    user = await uq.create_user(s, eq.username_for(cred.issuer, external), spec.display_name,
                                                None, spec.role or "student")
                    email = spec.email if email_given(spec) else None
                    await eq.link_user(s, cred.issuer, external, user.id, email)
                    return provisioned_user_wire(external, user, email), True, False
                user, link = found
                renamed = user.display_name != spec.display_name
                user.display_name = spec.display_name
                if email_given(spec):
                    link.email = spec.email
                if spec.role is not None and user.role in ("student", "instructor"):
                    user.role = spec.role
                await s.flush()
                return provisioned_user_wire(external, user, link.email), False, renamed
        wire, created, renamed = await _retrying(work)
        if renamed:
            await self.rooms.user_changed(wire["user"])
        log.info("%s user %s (%s of %s)", "created" if created else "updated", wire["user"]["id"], external, cred.issuer)
        return wire, created

    async def _user(self, s, cred, external: str):
        found = await eq.linked_user(s, cred.issuer, external)
        if found is None:
            raise NotFound(f"no user with external id {external!r}: PUT /api/provision/users/{{external_id}} first")
        return found

    # -- rooms -------------------------------------------------------------------------------
    async def put_room(self, cred, external: str, spec: RoomSpec) -> tuple[dict, bool]:
        """Create or rename the room ``external``; ``(wire, created)``. Conflict when it exists
        with another kind."""
        async def work():
            async with self.db.write() as s:
                room_id = await eq.linked_room(s, cred.issuer, external)
                if room_id is None:
                    room = await rq.create_room(s, spec.kind or "course", spec.name, cred.user_id, {})
                    await eq.link_room(s, cred.issuer, external, room.id)
                    return provisioned_room_wire(external, room), True, None
                room = await rq.get_room(s, room_id)
                if spec.kind is not None and spec.kind != room.kind:
                    raise Conflict(f"the room exists as a {room.kind} room: its kind cannot change")
                renamed = room.name != spec.name
                room.name = spec.name
                note = await system_message(s, room.id, f"The LMS renamed the room to “{spec.name}”") if renamed else None
                await s.flush()
                return provisioned_room_wire(external, room), False, note
        wire, created, note = await _retrying(work)
        if note is not None:
            room_id = int(wire["room"]["id"])
            self.rooms.registry.broadcast(room_id, {"type": "message.new", "message": note})
            self.rooms.registry.broadcast(room_id, {"type": "room.updated",
                                                    "room": {"id": wire["room"]["id"], "name": wire["room"]["name"]}})
        return wire, created

    async def _room_id(self, s, cred, external: str) -> int:
        room_id = await eq.linked_room(s, cred.issuer, external)
        if room_id is None:
            raise NotFound(f"no room with external id {external!r}: PUT /api/provision/rooms/{{external_id}} first")
        return room_id

    # -- memberships -------------------------------------------------------------------------
    async def put_member(self, cred, room_external: str, user_external: str, role: str) -> tuple[dict, bool]:
        """Add the member or set their role; ``(wire, created)``. Conflict when an instructor
        banned them from the room (lifted in Podium)."""
        async with self.db.write() as s:
            room_id = await self._room_id(s, cred, room_external)
            user, _ = await self._user(s, cred, user_external)
            if await s.get(RoomBan, (room_id, user.id)) is not None:
                raise Conflict(f"{user.display_name} is banned from this room: an instructor lifts the ban in Podium")
            m, created = await rq.upsert_member(s, room_id, user.id, role)
            note = await system_message(s, room_id, f"{user.display_name} was added by the LMS") if created else None
            wire = {"room_external_id": room_external, "user_external_id": user_external,
                    "room": {"id": str(room_id)}, "member": member_wire(user, m)}
            count = await rq.count_members(s, room_id)
        if note is not None:
            self.rooms.registry.broadcast(room_id, {"type": "message.new", "message": note})
            # as an instructor's add: the room's people panels and counts follow (PROTOCOL-ADDITIONS)
            self.rooms.registry.broadcast(room_id, {"type": "member.added", "member": wire["member"],
                                                    "room": str(room_id), "members_count": count})
            self.rooms.tell_user(user.id, {"type": "room.added", "room": {"id": str(room_id)}})
        return wire, created

    async def delete_member(self, cred, room_external: str, user_external: str) -> bool:
        """Remove the member; False when they were not one (nothing changes)."""
        async with self.db.write() as s:
            room_id = await self._room_id(s, cred, room_external)
            user, _ = await self._user(s, cred, user_external)
            removed = await rq.remove_member(s, room_id, user.id)
            note = await system_message(s, room_id, f"{user.display_name} was removed by the LMS") if removed else None
            count = await rq.count_members(s, room_id)
        if removed:
            self.rooms.registry.broadcast(room_id, {"type": "message.new", "message": note})
            self.rooms.registry.broadcast(room_id, {"type": "member.removed", "user_id": str(user.id),
                                                    "room": str(room_id), "members_count": count})
            await self.rooms.member_gone(room_id, user.id, "lms")
        return removed

    # -- signing a provisioned user in -------------------------------------------------------
    async def sign_in(self, cred, user_external: str, room_external: str | None, ttl_s: int, base_url: str) -> dict:
        """A Podium token for the user (their browser's sign-in), and with ``room`` the URL that
        opens that room signed in (the token in the fragment, as an LTI launch hands it over)."""
        async with self.db.read() as s:
            user, _ = await self._user(s, cred, user_external)
            room_id = None
            if room_external is not None:
                room_id = await self._room_id(s, cred, room_external)
                if await rq.get_membership(s, room_id, user.id) is None:
                    raise Conflict("the user is not a member of that room: PUT the membership first")
        if user.role == "recorder":
            raise Conflict("this account cannot sign in")
        token = issue_token(self.config, user.id, user.display_name, user.role, ttl_s, version=user.token_version)
        answer = {"token": token, "expires_in": ttl_s, "expires_at": int(time.time()) + ttl_s,
                  "user": user_wire(user)}
        if room_id is not None:
            answer["url"] = f"{base_url}/#lti-token={token}&room={room_id}"
        log.info("sign-in token for user %s minted by service credential %s", user.id, cred.name)
        return answer
