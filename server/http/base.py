"""BaseHandler: JSON in/out with a bounded body, bearer auth (through ``deps.accounts``), CORS
for ALLOWED_ORIGINS, errors as ``{"error": {"code", "reason"}}`` with the matching status
(PROTOCOL §3), the base URL of absolute links. Imports no feature: what a handler needs comes
from ``deps``."""
from __future__ import annotations

import asyncio
import json
import math
import logging
from typing import Any

import tornado.web

from server.kernel.actor import Actor, bounded_int, parse_id
from server.kernel.errors import BadRequest, NotFound, PodiumError, RateLimited, TooLarge, Unauthorized
from server.kernel.jsonbody import decode_json_object

log = logging.getLogger("podium.http")


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """The request body is streamed in (Tornado's ``stream_request_body``) so that one over
    ``max_json_body_bytes`` is answered ``413 too_large`` before it is read: by its
    ``Content-Length`` in :meth:`prepare`, or, for a chunked body, as soon as what arrived
    passes the limit (:meth:`data_received`). Tornado then closes the connection instead of
    reading the rest. Within the limit the whole body is in ``self.request.body`` (a
    ``bytearray``) when the HTTP method runs, and :meth:`json_body` parses it. A subclass that
    overrides ``prepare`` calls ``super().prepare()`` first; one that streams its own body
    sets ``buffers_body = False`` (see :class:`StreamedUploadHandler`)."""

    # ``deps`` is server/deps.py's Deps, the composition root above every layer (not imported
    # here): config, db, accounts and the feature services a handler calls.
    deps: Any
    buffers_body = True

    def initialize(self, deps: Any) -> None:
        self.deps = deps
        self.actor: Actor | None = None
        # Filled by data_received; a bytearray grows in place, however small the pieces.
        self.request.body = self._body = bytearray()

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "same-origin")

    def prepare(self) -> None:
        self._allow_origin()
        if any("\x00" in arg for arg in self.path_args):
            # No id or name holds a NUL, and PostgreSQL refuses one in a query (a 500).
            raise NotFound("no such resource")
        if self.buffers_body:
            self._bound_body()

    # -- CORS ------------------------------------------------------------------------------
    def _allow_origin(self) -> None:
        origin = self.request.headers.get("Origin")
        allowed = self.deps.config.allowed_origins
        if origin and (origin in allowed or "*" in allowed):
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Vary", "Origin")
            self.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
            self.set_header("Access-Control-Allow-Methods", "GET, POST, PATCH, PUT, DELETE, OPTIONS")
            self.set_header("Access-Control-Max-Age", "600")

    def options(self, *args: Any) -> None:
        self.set_status(204)
        self.finish()

    # -- the body --------------------------------------------------------------------------
    def body_limit(self) -> int:
        """The largest body this handler buffers (a subclass may allow more, e.g. an image)."""
        return self.deps.config.max_json_body_bytes

    def _bound_body(self) -> None:
        limit = self.body_limit()
        length = self.request.headers.get("Content-Length")
        if length is None:
            # Chunked: data_received answers 413 past the limit. Tornado's own check compares
            # the declared chunk sizes with max_body_size and would drop the connection with a
            # bare 400 first, so it is lifted for this request (the body still ends at our limit).
            self.request.connection.set_max_body_size(1 << 62)
        elif length.isdigit() and int(length) > limit:
            # Answered now, before any of the body is read; Tornado closes the connection once
            # the answer is out. Lifted so its own Content-Length check does not also log the
            # request as malformed and write a bare 400 after our 413.
            self.request.connection.set_max_body_size(int(length))
            raise self._too_large(limit)
        # A malformed Content-Length is refused by Tornado (400) when it starts reading the body.

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._body += chunk
        limit = self.body_limit()
        if len(self._body) > limit:
            self._body.clear()
            self._handle_request_exception(self._too_large(limit))

    def _too_large(self, limit: int) -> TooLarge:
        self.set_header("Connection", "close")  # Tornado closes it: the rest is not read
        return TooLarge(f"request bodies are limited to {limit} bytes")

    # -- auth ------------------------------------------------------------------------------
    async def authenticate(self) -> Actor:
        header = self.request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise Unauthorized("missing bearer token")
        self.actor, _ = await self.deps.accounts.authenticate(header[7:].strip())
        return self.actor

    # -- JSON ------------------------------------------------------------------------------
    def json_body(self) -> dict:
        ctype = self.request.headers.get("Content-Type", "")
        if self.request.body and not ctype.startswith("application/json"):
            raise PodiumError("Content-Type must be application/json", "unsupported_media_type")
        try:
            return decode_json_object(self.request.body or b"{}")
        except BadRequest as e:
            raise BadRequest(f"body {e.reason}") from None

    def send_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data, separators=(",", ":"), ensure_ascii=False))

    def base_url(self) -> str:
        """The origin absolute links start with: ``PUBLIC_URL``, else this request's scheme and
        host (behind a proxy with ``PROXY_HEADERS``, the scheme it forwarded); no trailing ``/``."""
        return (self.deps.config.public_url or f"{self.request.protocol}://{self.request.host}").rstrip("/")

    def query_int(self, name: str, default: int | None, lo: int, hi: int) -> int | None:
        """Query argument ``name`` as an int in ``lo..hi`` (``default`` when absent or empty);
        BadRequest otherwise, by the one rule of :func:`~server.kernel.actor.bounded_int`."""
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None  # not an integer: refused below
        return bounded_int(value, name, lo, hi)

    def path_id(self, raw: str) -> int:
        try:
            return parse_id(raw)
        except BadRequest:
            raise NotFound("no such resource") from None

    # -- errors ----------------------------------------------------------------------------
    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, PodiumError):
            if self._finished:
                return
            if isinstance(e, Unauthorized):
                self.set_header("WWW-Authenticate", 'Bearer error="invalid_token"')
            if isinstance(e, RateLimited) and e.retry_after is not None:
                self.set_header("Retry-After", str(max(1, math.ceil(e.retry_after))))
            self.send_json({"error": {"code": e.code, "reason": e.reason}}, e.status)
            return
        super()._handle_request_exception(e)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        code = {400: "bad_request", 404: "not_found", 405: "bad_request", 413: "too_large"}.get(status_code, "internal")
        reason = self._reason if status_code != 500 else "internal server error"
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": {"code": code, "reason": reason}}))

    def log_exception(self, typ, value, tb) -> None:  # noqa: ANN001
        if isinstance(value, PodiumError):
            return
        super().log_exception(typ, value, tb)


class NotFoundHandler(BaseHandler):
    """Unknown ``/api/*`` paths answer JSON 404."""

    def prepare(self) -> None:
        super().prepare()
        raise NotFound("no such endpoint")


class StreamedUploadHandler(BaseHandler):
    """Base of ``@stream_request_body`` handlers whose ``prepare`` sets ``self.upload`` (an
    object with async ``feed(chunk)``, ``finish()`` and ``abort()``): refusals mid-body are
    answered at once and abort the upload; a dropped connection aborts it. Its ``prepare``
    bounds the body itself (``set_max_body_size``), so BaseHandler's JSON limit is off."""

    buffers_body = False
    upload: Any = None

    async def data_received(self, chunk: bytes) -> None:
        if self.upload is None or self._finished:
            return
        # Parsing, hashing and storing a chunk is CPU on the event loop: like downloads, uploads
        # share one per-loop-turn byte budget, so chat gets a turn between slices however many
        # uploads run (Tornado reads no more of this body until we return).
        await self.deps.transfer_budget.take(len(chunk))
        try:
            await self.upload.feed(chunk)
        except Exception as e:
            await self.upload.abort()
            log.warning("upload to %s by user %s refused: %s", self.request.path,
                        self.actor.id if getattr(self, "actor", None) else "-", e)
            # Answer now; Tornado then closes the connection instead of reading the rest.
            self._handle_request_exception(e)

    def on_connection_close(self) -> None:
        if self.upload is not None and not self._finished:
            asyncio.ensure_future(self.upload.abort())

    async def finish_upload(self) -> Any:
        """The upload's result after the whole body; aborts it on any failure."""
        try:
            return await self.upload.finish()
        except BaseException:
            await self.upload.abort()
            raise
