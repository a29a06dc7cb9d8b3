"""Origins an LMS frames Podium from, for ``Content-Security-Policy: frame-ancestors``."""
from __future__ import annotations

import json
import logging
import time
from urllib.parse import urlsplit

from server.http.static import connect_sources

log = logging.getLogger("podium.lti")


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL; None for anything else (nothing that could
    add a CSP directive gets through)."""
    parts = urlsplit(url.strip())
    sources = connect_sources([f"{parts.scheme}://{parts.netloc.lower()}"])  # the same host rule
    return sources[0] if sources else None


def default_frame_origins(issuer: str, auth_login_url: str) -> list[str]:
    found: list[str] = []
    for url in (issuer, auth_login_url):
        o = origin_of(url)
        if o and o not in found:
            found.append(o)
    return found


def frame_origins(platform) -> list[str]:
    return [o for o in json.loads(platform.frame_origins) if origin_of(o) == o]


class FrameOrigins:
    """The frame origins of every registered platform, read again after ``ttl_s`` (a platform
    added with the CLI shows up within that time)."""

    def __init__(self, db, ttl_s: float = 30.0) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._at = -1e9
        self._origins: tuple[str, ...] = ()

    async def get(self) -> tuple[str, ...]:
        if time.monotonic() - self._at > self.ttl_s:
            from server.db import lti as q
            try:
                async with self.db.read() as s:
                    found: list[str] = []
                    for p in await q.platforms(s):
                        found += [o for o in frame_origins(p) if o not in found]
            except Exception:  # the database is down: the pages still load, as framed as before
                log.warning("LTI frame origins not read again", exc_info=True)
                return self._origins
            self._origins, self._at = tuple(found), time.monotonic()
        return self._origins

    def forget(self) -> None:
        self._at = -1e9
