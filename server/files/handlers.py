"""HTTP API for files (PROTOCOL §3 "Files"): streaming upload, info/list/delete, signed links
and the ``/dl/`` download endpoint (docs/FILES.md)."""
from __future__ import annotations

import html
import logging
import re
from typing import Any
from urllib.parse import quote

import tornado.iostream
import tornado.web

from server.files.rules import UnsupportedMediaType, normalize_folder
from server.files.sendfile import direct_connection, send_file_range
from server.files.wire import (
    file_wire,
    folders_wire,
    parse_copy,
    parse_folder_body,
    parse_folder_query,
    parse_link_request,
    parse_room,
    parse_room_body,
    statistics_wire,
)
from server.realtime.budget import spend
from server.http.base import BaseHandler, StreamedUploadHandler
from server.kernel.errors import BadRequest, PodiumError, TooLarge
from server.realtime.turn_budget import SLICE

log = logging.getLogger("podium.files")

_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


@tornado.web.stream_request_body
class FilesHandler(StreamedUploadHandler):
    """``POST /api/files`` (multipart, streamed) and ``GET /api/files?folder=&room=``."""

    async def prepare(self) -> None:
        super().prepare()
        if self.request.method != "POST":
            return
        actor = await self.authenticate()
        cfg = self.deps.config
        ctype = self.request.headers.get("Content-Type", "")
        if not ctype.lower().startswith("multipart/form-data"):
            raise UnsupportedMediaType("Content-Type must be multipart/form-data")
        m = re.search(r'boundary="?([^";,]{1,70})"?', ctype)
        if m is None:
            raise BadRequest("multipart boundary missing")
        length = self.request.headers.get("Content-Length")
        if length is not None:
            if not length.isdigit():
                raise BadRequest("bad Content-Length")
            # Refused before a byte of the body is read.
            if int(length) > cfg.upload_max_request_bytes:
                raise TooLarge(f"uploads are limited to {cfg.upload_max_request_bytes} bytes per request")
        await spend(self.deps.upload_budget, actor.id, "slow down: too many uploads")
        self.request.connection.set_max_body_size(cfg.upload_max_request_bytes)
        self.upload = self.deps.files.upload(actor, m.group(1).encode("latin-1"))

    async def post(self) -> None:
        if self._finished:
            return
        self.send_json({"files": [file_wire(f) for f in await self.finish_upload()]}, 201)

    async def get(self) -> None:
        actor = await self.authenticate()
        folder = parse_folder_query(self.get_query_argument("folder", None))
        room = parse_room(self.get_query_argument("room", None))
        self.send_json({"files": [file_wire(f) for f in await self.deps.files.list(actor, folder, room)]})


class FileHandler(BaseHandler):
    """``GET`` / ``PATCH {name}`` / ``DELETE /api/files/{id}``."""

    async def get(self, file_id: str) -> None:
        actor = await self.authenticate()
        self.send_json({"file": file_wire(await self.deps.files.get(actor, file_id))})

    async def patch(self, file_id: str) -> None:
        actor = await self.authenticate()
        body = self.json_body()
        if "name" not in body:
            raise BadRequest("name is required")
        self.send_json({"file": file_wire(await self.deps.files.rename(actor, file_id, body["name"]))})

    async def delete(self, file_id: str) -> None:
        actor = await self.authenticate()
        await self.deps.files.delete(actor, file_id)
        self.set_status(204)
        self.finish()


class FileActionHandler(BaseHandler):
    """``POST /api/files/{id}/move {folder}`` and ``POST /api/files/{id}/copy {folder, room?}``
    → ``{file}`` (201 for a copy)."""

    async def post(self, file_id: str, action: str) -> None:
        actor = await self.authenticate()
        body = self.json_body()
        if action == "move":
            self.send_json({"file": file_wire(await self.deps.files.move(actor, file_id, parse_folder_body(body)))})
        else:
            self.send_json({"file": file_wire(await self.deps.files.copy(actor, file_id, parse_copy(body)))}, 201)


class FoldersHandler(BaseHandler):
    """``GET /api/folders?room=`` → ``{folders:[{folder, files, bytes}]}``."""

    async def get(self) -> None:
        actor = await self.authenticate()
        room = parse_room(self.get_query_argument("room", None))
        self.send_json({"folders": folders_wire(await self.deps.files.folders(actor, room))})


class FolderMoveHandler(BaseHandler):
    """``POST /api/folders/move {room?, folder, to}`` → ``{folder: to, files: n}``: rename or
    move a folder with everything below it."""

    async def post(self) -> None:
        actor = await self.authenticate()
        body = self.json_body()
        folder, to = parse_folder_body(body), parse_folder_body(body, "to")
        moved = await self.deps.files.move_folder(actor, parse_room_body(body), folder, to)
        self.send_json({"folder": to, "files": moved})


class FolderDeleteHandler(BaseHandler):
    """``POST /api/folders/delete {room?, folder}`` → ``{folder, files: n}``: a folder, the
    folders below it and all their files are deleted."""

    async def post(self) -> None:
        actor = await self.authenticate()
        body = self.json_body()
        folder = parse_folder_body(body)
        deleted = await self.deps.files.delete_folder(actor, parse_room_body(body), folder)
        self.send_json({"folder": folder, "files": deleted})


class FolderSizeHandler(BaseHandler):
    """``GET /api/folders/{folder}/size?room=`` → ``{folder, files, bytes}`` (subfolders included)."""

    async def get(self, folder: str) -> None:
        actor = await self.authenticate()
        folder = normalize_folder(folder)
        room = parse_room(self.get_query_argument("room", None))
        files, size = await self.deps.files.folder_size(actor, folder, room)
        self.send_json({"folder": folder, "files": files, "bytes": size})


class FileStatisticsHandler(BaseHandler):
    """``GET /api/files/statistics?room=`` → totals, ``by_category`` and ``by_folder``."""

    async def get(self) -> None:
        actor = await self.authenticate()
        room = parse_room(self.get_query_argument("room", None))
        self.send_json(statistics_wire(await self.deps.files.statistics(actor, room)))


class SignedUrlHandler(BaseHandler):
    """``POST /api/files/{id}/signed-url {disposition, expires_in}`` → ``{url, expires_at}``."""

    async def post(self, file_id: str) -> None:
        actor = await self.authenticate()
        req = parse_link_request(self.json_body())
        await spend(self.deps.link_budget, actor.id, "slow down: too many signed links")
        self.send_json(await self.deps.files.signed_url(actor, file_id, req, self.base_url()))


def parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """One ``bytes=`` range → inclusive ``(start, end)``; None to ignore the header (malformed
    or several ranges: RFC 9110 lets a server serve the whole); False when unsatisfiable."""
    m = _RANGE_RE.fullmatch(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):  # suffix: the last n bytes
        n = int(m.group(2))
        if n == 0 or size == 0:
            return False
        return max(0, size - n), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if m.group(2) and end < start:
        return None
    if start >= size:
        return False
    return start, min(end, size - 1)


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


LINK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>This link no longer works · Podium</title>
<style>body{font:16px/1.5 system-ui,sans-serif;margin:0;display:grid;place-items:center;min-height:100vh;background:#f8f9fb;color:#1d2430}
main{max-width:28rem;padding:2rem;text-align:center}a{display:inline-block;margin-top:1rem;padding:.6rem 1rem;border-radius:8px;background:#2f6fed;color:#fff;text-decoration:none}
small{color:#5b6575}</style></head>
<body><main data-testid="link-error"><h1>This link no longer works</h1>
<p>Download links expire after a while, and stop working when the file is deleted or your access changes.
Ask for a fresh link, or open the file again from Podium.</p>
<p><small>({reason})</small></p><a href="/" data-testid="back-to-podium">Back to Podium</a></main></body></html>
"""


class DownloadHandler(BaseHandler):
    """``GET``/``HEAD /dl/{file_id}/{name}?exp=&kid=&disp=&sig=``: no credential but the
    signature; Range, ETag (the stored SHA-256), If-None-Match, If-Range. From disk storage on a
    plain socket the body goes by ``os.sendfile`` (server/files/sendfile.py); otherwise it is
    streamed in ≤ 1 MiB chunks with a flush between them. Both move slices within the per-turn
    transfer budget."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "private, no-cache")
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")

    async def head(self, file_id: str, name: str) -> None:
        await self.get(file_id, name)


    async def get(self, file_id: str, name: str) -> None:
        f, disp = await self.deps.files.for_download(self.request.method, file_id, name,
                                                  self.request.query_arguments)
        etag = f'"{f.sha256}"'
        ascii_name = f.name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
        self.set_header("ETag", etag)
        self.set_header("Accept-Ranges", "bytes")
        self.set_header("Content-Disposition",
                        f"{disp}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(f.name, safe='')}")
        inm = self.request.headers.get("If-None-Match")
        if inm is not None and _etag_matches(inm, etag):
            self.set_status(304)
            self.finish()
            return
        ctype = f.content_type + ("; charset=utf-8" if f.content_type.startswith("text/") else "")
        self.set_header("Content-Type", ctype)
        size = f.size
        start, end = 0, size - 1
        rng_header = self.request.headers.get("Range")
        if_range = self.request.headers.get("If-Range")
        if rng_header is not None and (if_range is None or if_range.strip() == etag):
            rng = parse_range(rng_header, size)
            if rng is False:
                self.set_status(416)
                self.set_header("Content-Range", f"bytes */{size}")
                self.clear_header("Content-Type")
                self.finish()
                return
            if rng is not None:
                start, end = rng
                self.set_status(206)
                self.set_header("Content-Range", f"bytes {start}-{end}/{size}")
        length = end - start + 1 if size else 0
        self.set_header("Content-Length", str(length))
        if self.request.method == "HEAD" or length == 0:
            self.finish()
            return
        budget = self.deps.transfer_budget
        connection = direct_connection(self.request.connection)
        local = await self.deps.storage.open_file(f.storage_key, start, end) if connection else None
        if local is not None:
            await self._send_file(connection, local, start, length)
            return
        self.deps.stats["downloads_streamed"] += 1
        stream = await self.deps.storage.open_range(f.storage_key, start, end)
        async with stream:
            try:
                async for chunk in stream:
                    # Slices within a per-turn budget shared by all downloads, so chat and
                    # signaling get the loop between slices (server/realtime/turn_budget.py).
                    for i in range(0, len(chunk), SLICE):
                        await budget.take(min(SLICE, len(chunk) - i))
                        self.write(chunk[i:i + SLICE])
                        await self.flush()
            except tornado.iostream.StreamClosedError:
                return  # the client went away; nothing to answer
        self.finish()

    async def _send_file(self, connection, local, start: int, length: int) -> None:
        """The body by ``os.sendfile`` from the stored file (server/files/sendfile.py)."""
        self.deps.stats["downloads_sendfile"] += 1
        with local:
            try:
                await self.flush()  # the status line and headers, through Tornado
                await send_file_range(connection, local, start, length, self.deps.transfer_budget)
            except tornado.iostream.StreamClosedError:
                connection.close()  # the client went away: nothing to answer, and Tornado may not have noticed
                return
        self.finish()

    def _handle_request_exception(self, e: BaseException) -> None:
        """A person who opens a dead link in the browser (expired, tampered, revoked) gets a
        page that says so and what to do, not JSON (issue 15.8); programs still get JSON."""
        if self._headers_written:  # mid-stream failure: the status is already sent
            log.error("download of %s failed mid-stream: %s", self.request.path, e)
            self.request.connection.close()
            return
        wants_page = "text/html" in self.request.headers.get("Accept", "")
        if isinstance(e, PodiumError) and not self._finished and wants_page and 400 <= e.status < 500:
            self.clear_header("Content-Disposition")
            self.set_status(e.status)
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
            self.finish(LINK_PAGE.replace("{reason}", html.escape(e.reason)))
            return
        super()._handle_request_exception(e)

    def compute_etag(self) -> Any:
        return None  # ours comes from the stored SHA-256
