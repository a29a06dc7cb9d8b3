"""Recordings over HTTP (PROTOCOL §2.3, §3; docs/RECORDING.md): what members see, the
timeline, and the worker's asset uploads and completion."""
from __future__ import annotations

import logging

import tornado.web

from server.kernel.actor import parse_id
from server.kernel.errors import BadRequest
from server.http.base import BaseHandler, StreamedUploadHandler
from server.recordings.library import RecordingLibrary
from server.recordings.playback import Playback

log = logging.getLogger("podium.recordings")


def library(handler: BaseHandler) -> RecordingLibrary:
    return RecordingLibrary(handler.deps, handler.base_url())


class RoomRecordingsHandler(BaseHandler):
    """``GET /api/rooms/{id}/recordings`` → ``{recordings}`` (members)."""

    async def get(self, room_id: str) -> None:
        actor = await self.authenticate()
        limit = self.query_int("limit", 50, 1, 200)
        self.send_json({"recordings": await library(self).for_room(actor, parse_id(room_id, "room"), limit)})


class RecordingHandler(BaseHandler):
    """``GET /api/recordings/{id}`` → ``{recording}``, each asset with fresh signed links;
    ``PATCH {title}`` renames it and ``DELETE`` deletes it (instructors, recordings/manage.py)."""

    async def get(self, recording_id: str) -> None:
        actor = await self.authenticate()
        self.send_json({"recording": await library(self).get(actor, parse_id(recording_id, "recording"))})

    async def patch(self, recording_id: str) -> None:
        actor = await self.authenticate()
        rid = parse_id(recording_id, "recording")
        change = await self.deps.recording_manager.rename(actor, rid, self.json_body())
        self.deps.registry.broadcast(int(change["room"]), {"type": "recording.updated", "recording": change})
        self.send_json({"recording": await library(self).get(actor, rid)})

    async def delete(self, recording_id: str) -> None:
        actor = await self.authenticate()
        await self.deps.recording_manager.delete(actor, parse_id(recording_id, "recording"))
        self.send_json({})


class TimelineHandler(BaseHandler):
    """``GET /api/recordings/{id}/timeline`` → chat and marks as offsets (workers, instructors)."""

    async def get(self, recording_id: str) -> None:
        actor = await self.authenticate()
        self.send_json(await library(self).timeline(actor, parse_id(recording_id, "recording")))


class PlaybackHandler(BaseHandler):
    """``GET /api/recordings/{id}/playback`` → what the playback page shows (members, once
    ready; recordings/playback.py)."""

    async def get(self, recording_id: str) -> None:
        actor = await self.authenticate()
        rid = parse_id(recording_id, "recording")
        self.send_json(await Playback(self.deps, self.base_url()).read(actor, rid))


class CompleteHandler(BaseHandler):
    """``POST /api/recordings/{id}/complete {assets, duration_s}`` (the worker holding it)."""

    async def post(self, recording_id: str) -> None:
        actor = await self.authenticate()
        ready = await self.deps.recordings.complete(actor, parse_id(recording_id, "recording"),
                                                    self.request.headers.get("X-Worker-Id"), self.json_body())
        self.send_json({"recording": await library(self).wire(ready, "instructor", actor.id)})


@tornado.web.stream_request_body
class AssetHandler(StreamedUploadHandler):
    """``PUT /api/recordings/{id}/assets/{name}``: the raw bytes, streamed into storage."""

    async def prepare(self) -> None:
        super().prepare()
        if self.request.method != "PUT":
            return
        actor = await self.authenticate()
        length = self.request.headers.get("Content-Length")
        if length is not None and not length.isdigit():
            raise BadRequest("bad Content-Length")
        rid, name = self.path_args
        self.request.connection.set_max_body_size(self.deps.config.recording_max_asset_bytes)
        self.upload = await self.deps.assets.open_asset(actor, parse_id(rid, "recording"),
                                                     self.request.headers.get("X-Worker-Id"), name,
                                                     int(length) if length is not None else None)

    async def put(self, recording_id: str, name: str) -> None:
        if self._finished:
            return
        self.send_json({"asset": await self.finish_upload()}, 201)
