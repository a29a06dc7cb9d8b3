"""LTI Deep Linking 2.0 (docs/LMS.md "Deep Linking"): an instructor adding Podium to a course
picks the live class room or one of its ready recordings on a Podium page; Podium answers the
platform an ``LtiDeepLinkingResponse`` JWT signed with the tool key, auto-posted to the
request's ``deep_link_return_url``, with one ``ltiResourceLink`` content item whose launch
lands in the course room (or, with the custom parameter ``podium_recording``, on that
recording).

Between the request and the instructor's pick the request's facts travel in the selection
page's form as a short-lived JWT signed with the tool key (nothing kept server-side, no
cookie: the page works in a cross-site frame)."""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

from server.db import lti as q
from server.db import recordings as recq
from server.db import rooms as rq
from server.lti import claims as c
from server.lti import keys
from server.lti.origins import frame_origins
from server.lti.validate import LaunchRefused

SELECTION_AUDIENCE = "podium:lti-deep-linking-selection"
SELECTION_TTL_S = 1800
RESPONSE_TTL_S = 300
MAX_RECORDINGS = 50


@dataclass(frozen=True)
class DeepLinkChoice:
    """What the selection page shows."""

    selection: str
    room_name: str
    recordings: list[tuple[int, str]]
    frame_origins: list[str]


@dataclass(frozen=True)
class DeepLinkReturn:
    """The auto-posted form back to the platform."""

    return_url: str
    jwt: str
    frame_origins: list[str]


def recording_label(rec, room_name: str) -> str:
    when = (rec.started_at or rec.requested_at).strftime("%Y-%m-%d %H:%M UTC")
    minutes = f", {round((rec.duration_s or 0) / 60)} min" if rec.duration_s else ""
    return f"{rec.title or room_name} — {when}{minutes}"


class DeepLinking:
    def __init__(self, db, tool_key) -> None:
        self.db = db
        self._tool_key = tool_key  # () -> the tool's RSA private key

    async def choice(self, platform, claims: dict, room_id: int, user_id: int, frames: list[str]) -> DeepLinkChoice:
        settings = claims[c.DEEP_LINKING_SETTINGS]
        async with self.db.read() as s:
            room = await rq.get_room(s, room_id)
            ready = [r for r in await recq.for_room(s, room_id, 200) if r.status == "ready"][:MAX_RECORDINGS]
        accept = settings.get("accept_types")
        if isinstance(accept, list) and "ltiResourceLink" not in accept:
            raise LaunchRefused("the LMS does not accept LTI resource links from this Deep Linking request")
        now = int(time.time())
        selection = {"iss": "podium", "aud": SELECTION_AUDIENCE, "iat": now, "exp": now + SELECTION_TTL_S,
                     "pid": platform.id, "dep": claims[c.DEPLOYMENT_ID], "ret": settings["deep_link_return_url"],
                     "room": room_id, "uid": user_id}
        if "data" in settings:
            selection["data"] = settings["data"]
        key = self._tool_key()
        token = jwt.encode(selection, key, algorithm="RS256", headers={"kid": keys.kid_of(key)})
        return DeepLinkChoice(token, room.name, [(r.id, recording_label(r, room.name)) for r in ready], frames)

    async def respond(self, selection: str, pick: str, launch_url: str) -> DeepLinkReturn:
        """The signed response for the instructor's ``pick`` (``room`` or ``recording:<id>``).
        LaunchRefused for a selection that is forged, expired or names another room's
        recording."""
        try:
            facts = jwt.decode(selection, self._tool_key().public_key(), algorithms=["RS256"],
                               audience=SELECTION_AUDIENCE, issuer="podium",
                               options={"require": ["exp", "iat", "pid", "ret", "room"]})
        except jwt.ExpiredSignatureError:
            raise LaunchRefused("the selection page was open too long: add Podium again from the LMS") from None
        except jwt.PyJWTError:
            raise LaunchRefused("this selection did not come from Podium's Deep Linking page") from None
        async with self.db.read() as s:
            platform = await q.platform(s, facts["pid"])
            room = await rq.get_room(s, facts["room"])
            m = await rq.get_membership(s, facts["room"], facts.get("uid"))
            if m is None or m.role != "instructor":
                raise LaunchRefused("only the course's instructors add Podium links to it")
            rec = None
            if pick.startswith("recording:") and pick[10:].isdigit() and len(pick) < 30:
                rec = await recq.get(s, int(pick[10:]))
                if rec is None or rec.room_id != facts["room"] or rec.status != "ready":
                    raise LaunchRefused("that recording is not a ready recording of this course")
            elif pick != "room":
                raise LaunchRefused("pick the live class room or one of its recordings")
        if platform is None or room is None:
            raise LaunchRefused("the platform or the course room was removed meanwhile")
        if rec is None:
            item = {"type": "ltiResourceLink", "title": f"{room.name} — live class", "url": launch_url,
                    "text": "The course's live class room in Podium (calls, chat, files).",
                    "custom": {"podium_room": str(room.id)}}
        else:
            item = {"type": "ltiResourceLink", "title": f"Recording: {recording_label(rec, room.name)}",
                    "url": launch_url, "text": "A recording of the course's live class in Podium.",
                    "custom": {"podium_room": str(room.id), "podium_recording": str(rec.id)}}
        now = int(time.time())
        message = {"iss": platform.client_id, "aud": [platform.issuer], "azp": platform.client_id,
                   "iat": now, "exp": now + RESPONSE_TTL_S, "nonce": secrets.token_urlsafe(24),
                   c.DEPLOYMENT_ID: facts["dep"], c.MESSAGE_TYPE: "LtiDeepLinkingResponse",
                   c.VERSION: "1.3.0", c.DEEP_LINKING_CONTENT_ITEMS: [item]}
        if "data" in facts:
            message[c.DEEP_LINKING_DATA] = facts["data"]
        key = self._tool_key()
        token = jwt.encode(message, key, algorithm="RS256", headers={"kid": keys.kid_of(key)})
        return DeepLinkReturn(facts["ret"], token, frame_origins(platform))
