"""Attendance of a call session (PROTOCOL §3): intervals, merged totals and percent per
attendee, as JSON or CSV; students see only themselves. Instructors see every member of the
room, those who never joined with 0 min (``absent``)."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.calls.wire import session_wire
from server.db import calls as cq
from server.db import rooms as rq
from server.db.engine import Database
from server.db.models import User
from server.kernel.actor import Actor
from server.kernel.clock import iso, utcnow
from server.kernel.errors import BadRequest, Forbidden, NotFound
from server.kernel.wire import user_wire
from server.rooms.membership import room_role


class Attendance:
    def __init__(self, db: Database):
        self.db = db

    async def attendance(self, actor: Actor, session_id: int) -> dict:
        """Intervals, merged total seconds and percent of the session per attendee; students
        see only themselves."""
        return (await self._attendance(actor, session_id))[0]

    async def _attendance(self, actor: Actor, session_id: int) -> tuple[dict, str]:
        async with self.db.read() as s:
            row = await cq.get_session(s, session_id)
            if row is None:
                raise NotFound("no such session")
            _, role = await room_role(s, row.room_id, actor)
            stays = await cq.intervals(s, session_id)
            for group_call in await cq.breakout_sessions(s, session_id):  # time in breakout rooms counts
                stays += await cq.intervals(s, group_call)
            stays.sort(key=lambda r: (r[1].display_name, r[0].joined_at))
            # Every member of the room is listed: who never joined, with 0 min (instructors' view).
            members = [u for u, _ in await rq.members(s, row.room_id)] if role == "instructor" else []
        end = row.ended_at or utcnow()
        span = max((end - row.started_at).total_seconds(), 0.0)
        people: dict[int, dict] = {}
        for interval, user in stays:
            if role != "instructor" and user.id != actor.id:
                continue
            entry = people.setdefault(user.id, {"user": user_wire(user), "intervals": [], "_spans": []})
            left = interval.left_at or end
            entry["intervals"].append({"joined_at": iso(interval.joined_at), "left_at": iso(interval.left_at)})
            entry["_spans"].append((interval.joined_at, left))
        for user in members:
            people.setdefault(user.id, {"user": user_wire(user), "intervals": [], "_spans": []})
        if role != "instructor" and actor.id not in people and actor.role != "recorder":
            async with self.db.read() as s:
                me = await s.get(User, actor.id)
            if me is not None:
                people[actor.id] = {"user": user_wire(me), "intervals": [], "_spans": []}
        attendees = []
        for entry in people.values():
            total = _merged_seconds(entry.pop("_spans"))
            entry["total_s"] = round(total, 1)
            entry["percent"] = round(100.0 * total / span, 1) if span > 0 else 0.0
            entry["absent"] = not entry["intervals"]
            attendees.append(entry)
        return {"session": session_wire(row), "duration_s": round(span, 1), "attendees": attendees}, role

    async def attendance_csv(self, actor: Actor, session_id: int, tz_name: str | None = None) -> str:
        """One row per stay (one for an absent member, times empty). Times are in ``tz_name``
        (an IANA zone, e.g. the teacher's browser's; UTC without one), with their offset, and
        the zone is named in a column; ``total_min`` is the minutes present."""
        zone = parse_zone(tz_name)
        data, role = await self._attendance(actor, session_id)
        if role != "instructor":
            raise Forbidden("only instructors download attendance")
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["user_id", "username", "display_name", "joined_at", "left_at", "interval_s",
                    "total_s", "percent", "total_min", "present", "time_zone"])
        zone_name = tz_name if zone is not timezone.utc else "UTC"

        def local(value: str) -> str:
            at = datetime.fromisoformat(value.rstrip("Z")).replace(tzinfo=timezone.utc).astimezone(zone)
            return at.isoformat(timespec="seconds")
        for a in sorted(data["attendees"], key=lambda a: (a["user"]["display_name"] or "").lower()):
            person = [a["user"]["id"], _cell(a["user"]["username"]), _cell(a["user"]["display_name"])]
            summary = [a["total_s"], a["percent"], round(a["total_s"] / 60, 1), "no" if a["absent"] else "yes", zone_name]
            if not a["intervals"]:
                w.writerow(person + ["", "", 0, *summary])
            for iv in a["intervals"]:
                joined = datetime.fromisoformat(iv["joined_at"].rstrip("Z"))
                left_iso = iv["left_at"] or data["session"]["ended_at"] or iso(utcnow())
                left = datetime.fromisoformat(left_iso.rstrip("Z"))
                w.writerow(person + [local(iv["joined_at"]), local(iv["left_at"]) if iv["left_at"] else "",
                                     round((left - joined).total_seconds(), 1), *summary])
        return out.getvalue()


def parse_zone(name: str | None):
    """The IANA time zone ``name`` (UTC when None); BadRequest for one that does not exist."""
    if name is None or name == "":
        return timezone.utc
    if not isinstance(name, str) or len(name) > 64:
        raise BadRequest("tz must be an IANA time zone name, e.g. Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"unknown time zone {name!r}: use an IANA name, e.g. Europe/Berlin") from None


def _merged_seconds(spans: list[tuple[datetime, datetime]]) -> float:
    """Length of the union of intervals: two devices at once count once."""
    total, cur_start, cur_end = 0.0, None, None
    for start, end in sorted(spans):
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += (cur_end - cur_start).total_seconds()
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        total += (cur_end - cur_start).total_seconds()
    return total


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas in user-controlled cells (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
