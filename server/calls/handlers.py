"""Sessions, attendance and ICE servers over REST (PROTOCOL §3)."""
from __future__ import annotations

from server.calls.ice import ice_servers
from server.http.base import BaseHandler


class RoomSessionsHandler(BaseHandler):
    async def get(self, room_id: str) -> None:
        actor = await self.authenticate()
        limit = self.query_int("limit", 50, 1, 500)
        self.send_json(await self.deps.calls.sessions(actor, self.path_id(room_id), limit))


class AttendanceHandler(BaseHandler):
    async def get(self, session_id: str) -> None:
        actor = await self.authenticate()
        sid = self.path_id(session_id)
        if self.get_query_argument("format", "json") == "csv":
            body = await self.deps.attendance.attendance_csv(actor, sid, self.get_query_argument("tz", None))
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", f'attachment; filename="attendance-session-{sid}.csv"')
            self.finish(body)
            return
        self.send_json(await self.deps.attendance.attendance(actor, sid))


class IceServersHandler(BaseHandler):
    async def get(self) -> None:
        actor = await self.authenticate()
        servers, ttl = ice_servers(self.deps.config, actor.id)
        self.send_json({"ice_servers": servers, "ttl_s": ttl})


class BreakoutsHandler(BaseHandler):
    """``GET``/``POST /api/sessions/{id}/breakouts`` (calls/breakouts.py)."""

    async def get(self, session_id: str) -> None:
        actor = await self.authenticate()
        self.send_json(await self.deps.breakouts.current(actor, self.path_id(session_id)))

    async def post(self, session_id: str) -> None:
        actor = await self.authenticate()
        self.send_json(await self.deps.breakouts.start(actor, self.path_id(session_id), self.json_body()), 201)


class BreakoutActionHandler(BaseHandler):
    """``POST /api/breakouts/{id}/broadcast {text}`` and ``POST /api/breakouts/{id}/end``."""

    async def post(self, breakout_id: str, action: str) -> None:
        actor = await self.authenticate()
        bid = self.path_id(breakout_id)
        if action == "broadcast":
            self.send_json(await self.deps.breakouts.broadcast(actor, bid, self.json_body()))
        else:
            self.send_json(await self.deps.breakouts.end(actor, bid))
