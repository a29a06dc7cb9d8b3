"""The static web client (``web/``) and the access log line of every request."""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import tornado.web

access_log = logging.getLogger("tornado.access")
_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def connect_sources(allowed_origins: Iterable[str]) -> list[str]:
    """CSP sources for ``ALLOWED_ORIGINS``: each ``http(s)://host[:port]`` origin and its
    WebSocket twin (``ws``/``wss``). ``*`` and anything that is not such an origin are left
    out, so the page never connects to any host and nothing can add a CSP directive."""
    sources: list[str] = []
    for origin in allowed_origins:
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not _HOST_PORT.fullmatch(parts.netloc or ""):
            continue
        if parts.path.strip("/") or parts.query or parts.fragment:
            continue
        ws = "wss" if parts.scheme == "https" else "ws"
        for source in (f"{parts.scheme}://{parts.netloc}", f"{ws}://{parts.netloc}"):
            if source not in sources:
                sources.append(source)
    return sources


def content_security_policy(allowed_origins: Iterable[str]) -> str:
    """The page's CSP: everything from this origin only; ``connect-src`` adds the configured
    origins. ``'self'`` covers the page's own ``ws``/``wss`` URL (CSP Level 3)."""
    connect = " ".join(["'self'", *connect_sources(allowed_origins)])
    return ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
            f"connect-src {connect}; style-src 'self' 'unsafe-inline'; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class WebHandler(tornado.web.StaticFileHandler):
    """Serves ``web/`` (``index.html`` for ``/``; the client routes in the URL fragment, so a
    reload asks for ``/`` again). ``csp`` is :func:`content_security_policy` of the configuration;
    ``frame_ancestors`` (async, optional) gives the origins allowed to frame the pages (the
    registered LMSs, server/lti/origins.py), so this header is made per response."""

    def initialize(self, path: str, default_filename: str | None = None, csp: str = "",
                   frame_ancestors=None) -> None:
        super().initialize(path, default_filename)
        self.csp = csp or content_security_policy(())
        self.frame_ancestors = frame_ancestors

    async def get(self, path: str, include_body: bool = True) -> None:
        if "\x00" in path:  # Tornado's realpath() raises ValueError on a NUL: a 500 otherwise
            raise tornado.web.HTTPError(404)
        if self.frame_ancestors is not None:
            origins = await self.frame_ancestors()
            if origins:
                self.csp = self.csp.replace("frame-ancestors 'none'", "frame-ancestors 'self' " + " ".join(origins))
        await super().get(path, include_body)

    def set_default_headers(self) -> None:
        # Error answers too: no page URL leaves for another origin in a Referer header.
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("X-Content-Type-Options", "nosniff")

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")
        self.set_header("Content-Security-Policy", self.csp)


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log without the query string: ``/ws?token=`` must never reach a log file."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    actor = getattr(handler, "actor", None)
    seconds = handler.request.request_time()
    access_log.log(level, "%d %s %s (%s user=%s) %.2fms", status, handler.request.method,
                   handler.request.path, handler.request.remote_ip, actor.id if actor else "-",
                   1000.0 * seconds)
    deps = getattr(handler, "deps", None)
    if deps is not None:
        deps.metrics.observe(type(handler).__name__, handler.request.method, status, seconds)
