"""Assignment and Grade Services (LTI AGS 2.0): a call session's attendance as LMS gradebook
scores (docs/LMS.md "Attendance in the gradebook").

One line item per call session, labelled ``Attendance — <date> <time> UTC`` (resourceId
``podium-session-<id>``, tag ``attendance``, scoreMaximum 100), made in the course's line items
container the launch's AGS claim names and remembered (``lti_line_items``): sending again
posts fresh scores to the same line item. Each student of the room who came from the LMS gets
``scoreGiven`` = the percent of the session they attended (activityProgress Completed,
gradingProgress FullyGraded). The preview is the same computation without sending."""
from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit, urlunsplit

from server.db import calls as cq
from server.db import lti as q
from server.db import rooms as rq
from server.kernel.clock import iso, utcnow
from server.kernel.errors import Conflict, NotFound, PodiumError
from server.lti.services import AGS_LINEITEM, AGS_SCORE, AccessTokens, ServiceError, fetch
from server.rooms.membership import require_instructor

LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
SCORE_MAXIMUM = 100
SCORE_CONCURRENCY = 8  # scores posted at once to the LMS


def line_item_label(started_at) -> str:
    return f"Attendance — {started_at:%Y-%m-%d %H:%M} UTC"


def scores_url(lineitem_url: str) -> str:
    """The line item's scores endpoint: ``/scores`` appended to its path (AGS §3.4)."""
    scheme, netloc, path, query, fragment = urlsplit(lineitem_url)
    return urlunsplit((scheme, netloc, path.rstrip("/") + "/scores", query, fragment))


class LmsUnavailable(PodiumError):
    """The LMS refused or did not answer (HTTP 503 with its reason)."""

    code = "unavailable"


class Gradebook:
    def __init__(self, db, attendance, tokens: AccessTokens) -> None:
        self.db = db
        self.attendance = attendance
        self.tokens = tokens
        self._locks: dict[int, asyncio.Lock] = {}

    async def preview(self, actor, session_id: int) -> dict:
        """What sending would post: per student from the LMS, name, minutes and percent."""
        return (await self._plan(actor, session_id))[0]

    async def _plan(self, actor, session_id: int):
        async with self.db.read() as s:
            row = await cq.get_session(s, session_id)
            if row is None:
                raise NotFound("no such session")
            await require_instructor(s, row.room_id, actor, "only instructors send attendance to the gradebook")
            services = await q.services(s, row.room_id)
            if services is None or not services.lineitems_url:
                raise Conflict("this room's LMS launch offered no gradebook service (AGS): "
                               "enable Assignment and Grade Services for Podium in the LMS")
            scopes = set(json.loads(services.ags_scopes or "[]"))
            if not {AGS_LINEITEM, AGS_SCORE} <= scopes:
                raise Conflict("the LMS lets Podium neither create line items nor post scores "
                               "(scopes lineitem and score): enable them for Podium in the LMS")
            platform = await q.platform(s, services.platform_id)
            roles = {u.id: m.role for u, m in await rq.members(s, row.room_id)}
            subs = await q.linked_subs(s, platform.issuer, list(roles))
            existing = await q.line_item(s, session_id)
        data = await self.attendance.attendance(actor, session_id)
        scores, skipped = [], []
        for a in sorted(data["attendees"], key=lambda a: (a["user"]["display_name"] or "").lower()):
            uid = int(a["user"]["id"])
            if roles.get(uid) != "student":
                skipped.append({"user": a["user"], "reason": "instructor" if uid in roles else "no longer a member"})
            elif uid not in subs:
                skipped.append({"user": a["user"], "reason": "not from the LMS"})
            else:
                scores.append({"user": a["user"], "lms_user_id": subs[uid], "minutes": round(a["total_s"] / 60, 1),
                               "percent": a["percent"], "score_given": min(a["percent"], SCORE_MAXIMUM),
                               "score_maximum": SCORE_MAXIMUM})
        preview = {"session": data["session"], "duration_min": round(data["duration_s"] / 60, 1),
                   "label": line_item_label(row.started_at), "line_item": existing,
                   "live": row.ended_at is None, "scores": scores, "skipped": skipped}
        return preview, platform, services

    async def send(self, actor, session_id: int) -> dict:
        """Post the scores (making the session's line item the first time); the preview plus
        ``sent`` and ``failed`` (per student, with the LMS's reason)."""
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:  # one send per session at a time here: one line item
            preview, platform, services = await self._plan(actor, session_id)
            if preview["live"]:
                raise Conflict("the call is still live: send its attendance once it has ended")
            if not preview["scores"]:
                raise Conflict("nobody in this session came from the LMS as a student: nothing to send")
            try:
                token = await self.tokens.token(platform, [AGS_LINEITEM, AGS_SCORE])
                url = preview["line_item"] or await self._create(token, services.lineitems_url, session_id, preview)
                try:
                    sent, failed = await self._post_scores(token, url, preview)
                except ServiceError as e:
                    if e.status != 404 or not preview["line_item"]:
                        raise
                    # the line item was deleted in the LMS: make it again
                    url = await self._create(token, services.lineitems_url, session_id, preview)
                    sent, failed = await self._post_scores(token, url, preview)
            except ServiceError as e:
                raise LmsUnavailable(e.reason) from None
        return dict(preview, line_item=url, sent=sent, failed=failed)

    async def _create(self, token: str, lineitems_url: str, session_id: int, preview: dict) -> str:
        body = {"scoreMaximum": SCORE_MAXIMUM, "label": preview["label"],
                "resourceId": f"podium-session-{session_id}", "tag": "attendance"}
        reply = await fetch("POST", lineitems_url, token, LINEITEM_TYPE, json.dumps(body).encode(),
                            LINEITEM_TYPE, what="creating the gradebook line item")
        url = reply.body.get("id") if isinstance(reply.body, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ServiceError("the LMS made a line item without an id URL")
        async with self.db.write() as s:
            await q.save_line_item(s, session_id, url)
        return url

    async def _post_scores(self, token: str, url: str, preview: dict) -> tuple[int, list[dict]]:
        """Post every score, ``SCORE_CONCURRENCY`` at a time; ServiceError 404 when the line item
        is gone (no score landed), else the count sent and the refusals."""
        target = scores_url(url)
        duration = preview["duration_min"]
        gate = asyncio.Semaphore(SCORE_CONCURRENCY)

        async def post(entry: dict) -> ServiceError | None:
            score = {"userId": entry["lms_user_id"], "scoreGiven": entry["score_given"],
                     "scoreMaximum": SCORE_MAXIMUM, "activityProgress": "Completed",
                     "gradingProgress": "FullyGraded", "timestamp": iso(utcnow()),
                     "comment": f"Attended {entry['minutes']:g} of {duration:g} min ({entry['percent']:g}%)"}
            async with gate:
                try:
                    await fetch("POST", target, token, "application/json", json.dumps(score).encode(), SCORE_TYPE,
                                what="posting a score")
                except ServiceError as e:
                    return e
            return None

        errors = await asyncio.gather(*(post(entry) for entry in preview["scores"]))
        failed = [{"user": entry["user"], "reason": e.reason} for entry, e in zip(preview["scores"], errors) if e]
        sent = len(errors) - len(failed)
        if sent == 0 and errors and all(e.status == 404 for e in errors):
            raise errors[0]  # the line item is gone: the caller makes it again
        async with self.db.write() as s:  # when it was last sent
            await q.save_line_item(s, int(preview["session"]["id"]), url)
        return sent, failed
