"""The static web client (``web/``) and the access log line of every request."""
from __future__ import annotations

import logging

import tornado.web

access_log = logging.getLogger("tornado.access")


class WebHandler(tornado.web.StaticFileHandler):
    """Serves ``web/``; unknown paths without a file extension get ``index.html`` so client
    routes survive a reload."""

    def set_extra_headers(self, path: str) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("Content-Security-Policy",
                        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                        "connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; "
                        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


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
