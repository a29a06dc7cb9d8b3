"""``Lti``: the OIDC login initiation and the resource-link launch (docs/LMS.md).

A launch makes the LTI context a course room (linked by issuer, deployment and context id) and
the LTI user a Podium user (linked by issuer and ``sub`` only: never matched by name or email),
with the room role of :func:`~server.lti.claims.room_role`. Refusals raise LaunchRefused before
anything is created."""
from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy.exc import IntegrityError

from server.accounts.tokens import issue_token
from server.db import lti as q
from server.db import recordings as recq
from server.db import rooms as rq
from server.db.models import RoomBan
from server.kernel.clock import iso, utcnow
from server.kernel.errors import Forbidden
from server.lti import claims as c
from server.lti import keys
from server.lti.binding import StorageCheck
from server.lti.grades import Gradebook, LmsUnavailable
from server.lti.deep_linking import DeepLinkChoice, DeepLinking
from server.lti.origins import FrameOrigins, frame_origins, origin_of
from server.lti.people import ensure_user
from server.lti.roster import Roster
from server.lti.services import AGS_LINEITEM, AGS_SCORE, AccessTokens, ServiceError
from server.lti.validate import KeySets, LaunchRefused, check_id_token
from server.rooms.membership import room_role, system_message

LOGIN_TTL_S = 600  # a login's state and nonce wait this long for the launch
_FRAME_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # an lti_storage_target Podium posts to


@dataclass(frozen=True)
class Login:
    """Where the login goes next: ``url`` (the platform's authorization endpoint) with
    ``state``; ``storage`` when the login named the LMS's platform storage frame."""
    url: str
    state: str
    storage: StorageCheck | None = None


@dataclass(frozen=True)
class Landing:
    token: str
    room_id: int
    role: str
    frame_origins: list[str]
    recording_id: int | None = None
    user_id: int | None = None


class Lti:
    def __init__(self, config, db, rooms, attendance) -> None:
        self.config = config
        self.db = db
        self.rooms = rooms  # server/rooms/service.py's Rooms: its registry tells the room
        self.key_sets = KeySets()
        self.frames = FrameOrigins(db)
        self._tool_key = None
        self.tokens = AccessTokens(lambda: self.tool_key)
        self.roster = Roster(db, rooms, self.tokens, config.lti_roster_sync_s)
        self.deep_linking = DeepLinking(db, lambda: self.tool_key)
        self.gradebook = Gradebook(db, attendance, self.tokens)

    @property
    def tool_key(self):
        if self._tool_key is None:
            self._tool_key = keys.load_or_create(self.config.data_dir)
        return self._tool_key

    def start(self) -> None:
        """Load the tool's key pair, or make it on the first start."""
        self._tool_key = keys.load_or_create(self.config.data_dir)

    def start_services(self) -> None:
        """What needs the running loop: the periodic roster sync."""
        self.roster.start()

    def close(self) -> None:
        self.roster.close()

    def jwks(self) -> dict:
        return keys.jwks(self.tool_key)

    async def login(self, params: dict[str, str], launch_url: str) -> Login:
        """The platform's authorization URL to send the browser to (OIDC third-party login), and
        the platform storage to put the state in when the request names one
        (``lti_storage_target``)."""
        issuer, hint = params.get("iss", ""), params.get("login_hint", "")
        if not issuer or not hint:
            raise LaunchRefused("the login request needs iss and login_hint")
        async with self.db.read() as s:
            found = await q.platforms_of(s, issuer)
        client_id = params.get("client_id")
        if client_id:
            found = [p for p in found if p.client_id == client_id]
        if not found:
            raise LaunchRefused("this platform (issuer and client id) is not registered with Podium")
        if len(found) > 1:
            raise LaunchRefused("several registrations share this issuer: the login must name its client_id")
        platform = found[0]
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        target = params.get("lti_storage_target", "")
        origin = origin_of(platform.auth_login_url)
        storage = StorageCheck(target, origin, state) if _FRAME_NAME.fullmatch(target) and origin else None
        async with self.db.write() as s:
            await q.add_state(s, state, nonce, platform.id, LOGIN_TTL_S, storage.target if storage else None)
        query = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post",
                 "prompt": "none", "client_id": platform.client_id, "redirect_uri": launch_url,
                 "login_hint": hint, "state": state, "nonce": nonce}
        if params.get("lti_message_hint"):
            query["lti_message_hint"] = params["lti_message_hint"]
        sep = "&" if "?" in platform.auth_login_url else "?"
        return Login(platform.auth_login_url + sep + urlencode(query), state, storage)

    async def launch(self, id_token: str, state: str, bound: bool
                     ) -> tuple[Landing | DeepLinkChoice, StorageCheck | None]:
        """A resource link launch lands in the course room (:class:`Landing`); a Deep Linking
        request (instructors only) makes or joins the room the same way and answers the
        selection page (:class:`DeepLinkChoice`). LaunchRefused before anything is created.

        ``bound``: the browser sent the state cookie of this login (server/lti/binding.py).
        Without it the launch is refused, unless the login put the state in the LMS's platform
        storage: then the answer comes with the :class:`StorageCheck` the page must pass in the
        browser before it signs in (the state is used either way)."""
        if not id_token or not state:
            raise LaunchRefused("the launch needs id_token and state")
        async with self.db.write() as s:
            taken = await q.take_state(s, state)
        if taken is None:
            raise LaunchRefused("unknown or already used login state: start the launch again from the LMS")
        nonce, platform_id, expires_at, storage_target = taken
        if expires_at < utcnow():
            raise LaunchRefused("the login took too long: start the launch again from the LMS")
        async with self.db.read() as s:
            platform = await q.platform(s, platform_id)
        if platform is None:
            raise LaunchRefused("the platform was removed during the login")
        check = None
        if not bound:
            origin = origin_of(platform.auth_login_url)
            if storage_target is None or origin is None:
                raise LaunchRefused(
                    "this launch did not start in this browser (the cookie of its login is missing), so "
                    "Podium does not sign you in: open Podium from the course in your learning platform. "
                    "If that fails too, your browser blocks Podium's cookies inside the learning platform: "
                    "allow them for Podium, or open Podium in a new window", 403)
            check = StorageCheck(storage_target, origin, state)
        claims = await check_id_token(self.key_sets, id_token, platform, nonce)
        deep_linking = claims[c.MESSAGE_TYPE] == c.DEEP_LINKING_REQUEST
        if deep_linking and c.room_role(claims.get(c.ROLES)) != "instructor":
            raise LaunchRefused("only instructors add Podium to a course (Deep Linking)", 403)
        for attempt in range(3):
            try:
                landing, joined = await self._land(platform, claims)
                break
            except IntegrityError:  # a concurrent first launch of the same user or course
                if attempt == 2:
                    raise
        if joined is not None:
            self.rooms.registry.broadcast(landing.room_id, {"type": "message.new", "message": joined})
        if deep_linking:
            return await self.deep_linking.choice(platform, claims, landing.room_id, landing.user_id,
                                                  landing.frame_origins), check
        return landing, check

    # -- a course room's LMS services (REST, instructors) --------------------------------------
    async def room_status(self, actor, room_id: int) -> dict | None:
        """Which services the room's LMS offers; None for a room that is no LMS course."""
        async with self.db.read() as s:
            _, role = await room_role(s, room_id, actor)
            services = await q.services(s, room_id)
        if role != "instructor":
            raise Forbidden("only instructors see the room's LMS services")
        if services is None:
            return None  # not linked to an LMS course
        scopes = set(json.loads(services.ags_scopes or "[]"))
        return {"roster": services.memberships_url is not None,
                "gradebook": bool(services.lineitems_url) and {AGS_LINEITEM, AGS_SCORE} <= scopes,
                "synced_at": iso(services.synced_at), "sync_error": services.sync_error,
                "sync_interval_s": self.config.lti_roster_sync_s}

    async def sync_roster(self, actor, room_id: int) -> dict:
        async with self.db.read() as s:
            _, role = await room_role(s, room_id, actor)
        if role != "instructor":
            raise Forbidden("only instructors sync the roster")
        try:
            result = await self.roster.sync(room_id)
        except ServiceError as e:
            raise LmsUnavailable(e.reason) from None
        return dict(result.wire(), **(await self.room_status(actor, room_id) or {}))

    async def _land(self, platform, claims: dict) -> tuple[Landing, dict | None]:
        """The user, room and membership of this launch (made when missing) and the system
        message announcing a new member of an existing room (None otherwise)."""
        issuer, deployment = platform.issuer, claims[c.DEPLOYMENT_ID]
        context = claims[c.CONTEXT]
        role = c.room_role(claims.get(c.ROLES))
        name = c.display_name(claims, None)  # None: the LMS shares no name this time
        memberships_url, lineitems_url, ags_scopes = _service_claims(claims)
        joined = None
        async with self.db.write() as s:
            user = await ensure_user(s, issuer, claims["sub"], name, role)
            room_id = await q.linked_room(s, issuer, deployment, context["id"])
            if room_id is None:
                title = context.get("title") or context.get("label") or "LMS course"
                room = await rq.create_room(s, "course", str(title)[:200], user.id, {user.id: role})
                await q.link_room(s, issuer, deployment, context["id"], room.id)
                room_id = room.id
                await q.mark_lti_member(s, room_id, user.id)
            else:
                if await s.get(RoomBan, (room_id, user.id)) is not None:
                    raise LaunchRefused("you are banned from this course's Podium room", 403)
                _, new = await rq.upsert_member(s, room_id, user.id, role)
                if new:
                    await q.mark_lti_member(s, room_id, user.id)
                    joined = await system_message(s, room_id, f"{user.display_name} joined from the LMS")
            await q.set_services(s, room_id, platform.id, memberships_url, lineitems_url, ags_scopes)
            services = await q.services(s, room_id)
            recording = await _recording_target(s, claims, room_id)
            token = issue_token(self.config, user.id, user.display_name, user.role, version=user.token_version)
        if memberships_url and services is not None:
            self.roster.sync_soon(room_id, services.synced_at)
        return Landing(token, room_id, role, frame_origins(platform), recording, user.id), joined


def _service_claims(claims: dict) -> tuple[str | None, str | None, list[str]]:
    """The NRPS context memberships URL, the AGS line items URL and the AGS scopes of a launch
    (None, None, [] for services it does not offer or URLs that are not http(s))."""
    nrps = claims.get(c.NRPS) if isinstance(claims.get(c.NRPS), dict) else {}
    ags = claims.get(c.AGS) if isinstance(claims.get(c.AGS), dict) else {}
    memberships = nrps.get("context_memberships_url")
    lineitems = ags.get("lineitems")
    scopes = [s for s in ags.get("scope", []) if isinstance(s, str)] if isinstance(ags.get("scope"), list) else []

    def url(value) -> str | None:
        return value if isinstance(value, str) and len(value) <= 1000 and origin_of(value) else None
    return url(memberships), url(lineitems), scopes


async def _recording_target(s, claims: dict, room_id: int) -> int | None:
    """The recording a Deep Linking content item pointed at (custom ``podium_recording``), when
    it is a ready recording of this course's room; otherwise the launch opens the room."""
    custom = claims.get(c.CUSTOM)
    value = custom.get("podium_recording") if isinstance(custom, dict) else None
    if not isinstance(value, str) or not value.isdigit() or len(value) > 18:
        return None
    rec = await recq.get(s, int(value))
    return rec.id if rec is not None and rec.room_id == room_id and rec.status == "ready" else None
