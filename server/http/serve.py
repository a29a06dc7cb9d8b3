"""The Tornado application class and the HTTP server, built from configuration in one place:
``python -m server`` and the tests' ``server`` fixture both call :func:`http_server`."""
from __future__ import annotations

from typing import Any

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPServerRequest

from server.config import Config
from server.http.proxy import ProxyHeaders


class Application(tornado.web.Application):
    """Tornado's Application that, with ``PROXY_HEADERS``, first takes each request's client
    address and scheme from the proxy in front (:mod:`server.http.proxy`), so every handler,
    the access log and any limit by address see the same ``request.remote_ip``."""

    def __init__(self, handlers: list, config: Config, **settings: Any) -> None:
        super().__init__(handlers, **settings)
        self.proxy = ProxyHeaders(config.trusted_proxies) if config.proxy_headers else None

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any):  # noqa: ANN201
        if self.proxy is not None:
            self.proxy.apply(request)
        return super().find_handler(request, **kwargs)


def http_server(app: Application, config: Config) -> HTTPServer:
    """The HTTP server for ``app``. ``xheaders`` stays off: proxy headers are the
    Application's (above). ``max_body_size`` is the whole-body limit; a handler that streams
    a larger body (uploads) raises it for its own request, and every JSON endpoint answers 413
    itself before this limit is reached (``BaseHandler.prepare``)."""
    return HTTPServer(app, xheaders=False, max_body_size=config.max_json_body_bytes)
