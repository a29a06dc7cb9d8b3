"""What room members see of recordings (PROTOCOL §3; docs/RECORDING.md): the list and one
recording with fresh signed links (files.links), and the timeline of chat and marks a worker
needs to build subtitles and chapters.

Students see the class video, the chat subtitles and the thumbnail of a ready recording;
instructors see every asset (per-participant files, manifest).
"""
from __future__ import annotations

import time
from datetime import datetime

from server.db import recordings as rq
from sqlalchemy import select

from server.db.models import File, Recording, Room
from server.files import links
from server.kernel.actor import Actor
from server.kernel.clock import utcnow
from server.kernel.errors import Forbidden
from server.polls.summary import poll_lines
from server.recordings.manage import title_of
from server.recordings.wire import STUDENT_ASSET_KINDS, recording_wire

LINK_TTL_S = 3600


class RecordingLibrary:
    def __init__(self, deps, base_url: str = ""):
        """``base_url``: what signed links start with (the request's, or PUBLIC_URL)."""
        self.deps, self.base_url = deps, base_url.rstrip("/")
        self.db, self.rooms, self.recordings = deps.db, deps.rooms, deps.recordings

    # -- reading ---------------------------------------------------------------------------
    async def _wires(self, rows: list[Recording], role: str, holder: int) -> list[dict]:
        """The recordings as ``role`` sees them, with links minted for ``holder``."""
        async with self.db.read() as s:
            by_rec = await rq.assets(s, [r.id for r in rows])
            rooms = {r.id: r.name for r in (await s.execute(
                select(Room).where(Room.id.in_({row.room_id for row in rows})))).scalars()} if rows else {}
        now = time.time()
        out = []
        for row in rows:
            assets = []
            for asset, f in by_rec[row.id]:
                if asset.kind is None or (role != "instructor" and asset.kind not in STUDENT_ASSET_KINDS):
                    continue
                if role != "instructor" and row.status != "ready":
                    continue
                assets.append(self._asset_wire(asset, f, now, holder))
            wire = recording_wire(row, assets, self.recordings.progress.get(row.id),
                                  self.recordings.processing.get(row.id))
            wire["title"] = title_of(rooms.get(row.room_id, "Recording"), row)  # (recordings/manage.py)
            out.append(wire)
        return out

    def _asset_wire(self, asset, f: File, now: float, holder: int) -> dict:
        link = links.file_link(self.deps.signing, f, holder=holder, base_url=self.base_url, expires_in=LINK_TTL_S,
                               max_ttl_s=self.deps.config.signed_url_max_ttl_s, now=now, with_inline=True)
        return {"id": str(asset.id), "kind": asset.kind, "name": asset.name, "file_id": f.id,
                "content_type": f.content_type, "size": f.size, "duration_s": asset.duration_s} | link

    async def wire(self, row: Recording, role: str, holder: int) -> dict:
        """One recording as ``role`` sees it, with fresh signed links for ``holder``."""
        return (await self._wires([row], role, holder))[0]

    async def for_room(self, actor: Actor, room_id: int, limit: int) -> list[dict]:
        role = await self.rooms.role(room_id, actor)
        async with self.db.read() as s:
            rows = await rq.for_room(s, room_id, limit)
        return await self._wires(rows, role, actor.id)

    async def get(self, actor: Actor, recording_id: int) -> dict:
        row = await self.recordings.get(recording_id)
        role = "instructor" if actor.role == "recorder" else await self.rooms.role(row.room_id, actor)
        return (await self._wires([row], role, actor.id))[0]

    async def timeline(self, actor: Actor, recording_id: int) -> dict:
        """Chat and marks of the recorded span, as offsets from its start on the server's clock
        (so a worker needs no clock agreement with the server)."""
        row = await self.recordings.get(recording_id)
        if actor.role != "recorder" and await self.rooms.role(row.room_id, actor) != "instructor":
            raise Forbidden("only instructors and workers read a recording's timeline")
        return {"recording": recording_wire(row)} | await self.span(row)

    async def span(self, row: Recording) -> dict:
        """``{chat, marks}`` of the recorded span (no access check), offsets from its start;
        the class video's clock is the same (its worker places them by these offsets)."""
        if row.started_at is None:
            return {"chat": [], "marks": []}
        end = row.stopped_at or utcnow()
        async with self.db.read() as s:
            chat = await rq.chat_between(s, row.room_id, row.started_at, end)
            marks = await rq.marks(s, row.id)
            polls = await poll_lines(s, [m for m, _ in chat if m.kind == "poll"])

        def offset(at: datetime) -> float:
            return round(max(0.0, (at - row.started_at).total_seconds()), 3)

        def who(u) -> dict:
            return {"id": str(u.id), "display_name": u.display_name}

        # A poll is a subtitle and a chapter, "Poll: …" with its result when the timeline is read.
        return {"chat": [{"seq": m.seq, "kind": m.kind, "text": polls.get(m.id, m.content),
                          "offset_s": offset(m.created_at), "user": who(u)} for m, u in chat],
                "marks": sorted([{"label": k.label, "offset_s": offset(k.at), "by": who(u)} for k, u in marks]
                                + [{"label": polls[m.id], "offset_s": offset(m.created_at), "by": who(u)}
                                   for m, u in chat if m.id in polls], key=lambda k: k["offset_s"])}
