"""Attendance of a call session (PROTOCOL §3): intervals, merged totals and percent per
attendee, as JSON or CSV; students see only themselves."""
from __future__ import annotations

import csv
import io
from datetime import datetime

from server.calls.wire import session_wire
from server.db import calls as cq
from server.db.engine import Database
from server.kernel.actor import Actor
from server.kernel.clock import iso, utcnow
from server.kernel.errors import Forbidden, NotFound
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
        attendees = []
        for entry in people.values():
            total = _merged_seconds(entry.pop("_spans"))
            entry["total_s"] = round(total, 1)
            entry["percent"] = round(100.0 * total / span, 1) if span > 0 else 0.0
            attendees.append(entry)
        return {"session": session_wire(row), "duration_s": round(span, 1), "attendees": attendees}, role

    async def attendance_csv(self, actor: Actor, session_id: int) -> str:
        data, role = await self._attendance(actor, session_id)
        if role != "instructor":
            raise Forbidden("only instructors download attendance")
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["user_id", "username", "display_name", "joined_at", "left_at", "interval_s",
                    "total_s", "percent"])
        for a in data["attendees"]:
            for iv in a["intervals"]:
                joined = datetime.fromisoformat(iv["joined_at"].rstrip("Z"))
                left = datetime.fromisoformat((iv["left_at"] or data["session"]["ended_at"] or
                                               iso(utcnow())).rstrip("Z"))
                w.writerow([a["user"]["id"], _cell(a["user"]["username"]), _cell(a["user"]["display_name"]),
                            iv["joined_at"], iv["left_at"] or "", round((left - joined).total_seconds(), 1),
                            a["total_s"], a["percent"]])
        return out.getvalue()


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
