"""Names and Role Provisioning Service (LTI NRPS 2.0): a course room's membership follows the
LMS roster (docs/LMS.md "Roster sync").

A sync reads every page of the context memberships URL the launch gave (``Link: rel=next``),
then in one transaction: each Active member becomes a Podium user linked by ``(issuer,
user_id)`` (created without a password) and a member of the room with the role the launch
would give; memberships that came from the LMS (``lti_memberships``) whose person is no
longer Active in the roster are removed. Memberships an instructor added by hand are never
changed. Runs on launch (in the background), on demand and every ``LTI_ROSTER_SYNC_S``; one
at a time per room (an in-process lock and a claim in SQL across processes)."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from server.db import lti as q
from server.db import rooms as rq
from server.db.models import RoomBan
from server.kernel.clock import utcnow
from server.kernel.errors import Conflict, PodiumError
from server.lti import claims as c
from server.lti.people import ensure_user
from server.lti.services import NRPS_SCOPE, AccessTokens, ServiceError, fetch
from server.rooms.membership import system_message

log = logging.getLogger("podium.lti")

MEMBERSHIP_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
MAX_PAGES = 200
MAX_MEMBERS = 20_000
CLAIM_STALE_S = 600  # a claim older than this is from a process that died mid-sync
LAUNCH_RESYNC_S = 300  # a launch starts a sync only when the last one is older than this


@dataclass
class SyncResult:
    members: int = 0
    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)

    def wire(self) -> dict:
        return {"members": self.members, "added": len(self.added), "removed": len(self.removed),
                "updated": len(self.updated)}


@dataclass(frozen=True)
class RosterMember:
    sub: str
    name: str | None
    role: str


class Roster:
    def __init__(self, db, rooms, tokens: AccessTokens, interval_s: float) -> None:
        self.db = db
        self.rooms = rooms
        self.tokens = tokens
        self.interval_s = interval_s
        self._running: dict[int, asyncio.Task] = {}
        self._background: set[asyncio.Task] = set()
        self._loop_task: asyncio.Task | None = None

    # -- triggers ------------------------------------------------------------------------------
    async def sync(self, room_id: int) -> SyncResult:
        """Sync now (or join the sync of this room already running here); ServiceError when
        the LMS cannot be read (nothing changed then)."""
        task = self._running.get(room_id)
        if task is None:
            task = self._running[room_id] = asyncio.ensure_future(self._sync(room_id))
            task.add_done_callback(lambda _t: self._running.pop(room_id, None))
        return await asyncio.shield(task)

    def sync_soon(self, room_id: int, last_synced) -> None:
        """After a launch: sync in the background unless a recent sync did."""
        if last_synced is not None and utcnow() - last_synced < timedelta(seconds=LAUNCH_RESYNC_S):
            return
        self._spawn(room_id)

    def _spawn(self, room_id: int) -> None:
        task = asyncio.ensure_future(self._quiet(room_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _quiet(self, room_id: int) -> None:
        try:
            await self.sync(room_id)
        except (ServiceError, PodiumError) as e:
            log.warning("LTI roster sync of room %s failed: %s", room_id, e.reason)
        except Exception:
            log.exception("LTI roster sync of room %s failed", room_id)

    def start(self) -> None:
        """The periodic sync (``LTI_ROSTER_SYNC_S``; 0: off)."""
        if self.interval_s > 0 and self._loop_task is None:
            self._loop_task = asyncio.ensure_future(self._periodic())

    async def _periodic(self) -> None:
        pause = min(self.interval_s, 60.0)
        while True:
            await asyncio.sleep(pause)
            try:
                async with self.db.read() as s:
                    due = await q.rooms_due(s, utcnow() - timedelta(seconds=self.interval_s), 50)
            except Exception:
                log.warning("LTI roster: the rooms due for a sync could not be read", exc_info=True)
                continue
            for room_id in due:  # one at a time: a bounded load on the LMS and on Podium
                await self._quiet(room_id)

    def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
        for task in list(self._background) + list(self._running.values()):
            task.cancel()

    # -- one sync ------------------------------------------------------------------------------
    async def _sync(self, room_id: int) -> SyncResult:
        async with self.db.write() as s:
            services = await q.services(s, room_id)
            if services is None or not services.memberships_url:
                raise Conflict("this course's LMS launch offered no roster service (NRPS): enable "
                               "Names and Role Provisioning for Podium in the LMS")
            if not await q.claim_sync(s, room_id, utcnow() - timedelta(seconds=CLAIM_STALE_S)):
                raise Conflict("a roster sync of this room is already running")
            platform = await q.platform(s, services.platform_id)
            url = services.memberships_url
        error = None
        try:
            roster = await self.read(platform, url)
            result, events = await self._apply(room_id, platform.issuer, roster)
        except ServiceError as e:
            error = e.reason
            raise
        except BaseException as e:
            error = f"the roster sync failed: {type(e).__name__}"
            raise
        finally:
            async with self.db.write() as s:
                await q.finish_sync(s, room_id, error)
        for event in events:
            self.rooms.registry.broadcast(room_id, event)
        for user_id in result.added:
            self.rooms.tell_user(user_id, {"type": "room.added", "room": {"id": str(room_id)}})
        for user_id in result.removed:
            await self.rooms.member_gone(room_id, user_id, "lms_roster")
        if result.added or result.removed:  # the room's people panels and counts follow, in one event
            await self.rooms.count_changed(room_id, {"type": "members.changed", "added": len(result.added),
                                                     "removed": len(result.removed)})
        log.info("LTI roster sync of room %s: %s", room_id, result.wire())
        return result

    async def read(self, platform, url: str) -> list[RosterMember]:
        """Every Active member of the roster (all pages)."""
        token = await self.tokens.token(platform, [NRPS_SCOPE])
        found: dict[str, RosterMember] = {}
        seen = 0
        for _ in range(MAX_PAGES):
            reply = await fetch("GET", url, token, MEMBERSHIP_TYPE, what="the roster request (NRPS)")
            body = reply.body if isinstance(reply.body, dict) else {}
            members = body.get("members")
            if not isinstance(members, list):
                raise ServiceError("the LMS's roster answer has no members list")
            for m in members:
                seen += 1
                if not isinstance(m, dict) or not isinstance(m.get("user_id"), str) or not m["user_id"]:
                    continue
                if m.get("status", "Active") != "Active":  # Inactive or Deleted: no access
                    found.pop(m["user_id"], None)
                    continue
                found[m["user_id"]] = RosterMember(m["user_id"][:255], c.display_name(m, None),
                                                   c.room_role(m.get("roles")))
            if seen > MAX_MEMBERS:
                raise ServiceError(f"the roster has more than {MAX_MEMBERS} members")
            url = reply.next_link()
            if not url:
                return list(found.values())
        raise ServiceError(f"the roster has more than {MAX_PAGES} pages")

    async def _apply(self, room_id: int, issuer: str, roster: list[RosterMember]) -> tuple[SyncResult, list[dict]]:
        if not roster:  # more likely a broken LMS answer than a course everybody left
            raise ServiceError("the LMS's roster lists nobody active: nothing was changed")
        result = SyncResult(members=len(roster))
        events: list[dict] = []
        async with self.db.write() as s:
            current = {u.id: m.role for u, m in await rq.members(s, room_id)}
            from_lms = await q.lti_member_ids(s, room_id)
            in_roster: set[int] = set()
            for person in roster:
                user = await ensure_user(s, issuer, person.sub, person.name, person.role)
                in_roster.add(user.id)
                if await s.get(RoomBan, (room_id, user.id)) is not None:
                    continue
                if user.id not in current:
                    await rq.upsert_member(s, room_id, user.id, person.role)
                    await q.mark_lti_member(s, room_id, user.id)
                    result.added.append(user.id)
                elif user.id in from_lms and current[user.id] != person.role:
                    await rq.upsert_member(s, room_id, user.id, person.role)
                    result.updated.append(user.id)
            for user_id in from_lms - in_roster:
                if user_id in current:
                    await rq.remove_member(s, room_id, user_id)
                    result.removed.append(user_id)
                await q.unmark_lti_member(s, room_id, user_id)
            if result.added or result.removed:
                text = (f"Roster synced from the LMS: {len(result.added)} added, "
                        f"{len(result.removed)} removed")
                events.append({"type": "message.new", "message": await system_message(s, room_id, text)})
        return result, events
