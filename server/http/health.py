"""``GET /healthz``: 200 when the database answers, 503 otherwise. ``GET /metrics``: Prometheus."""
from __future__ import annotations

import asyncio
import hmac

from sqlalchemy import text

from server.http.base import BaseHandler, log
from server.kernel.errors import Unauthorized


class HealthHandler(BaseHandler):
    async def get(self) -> None:
        try:
            async with self.deps.db.read() as s:
                await asyncio.wait_for(s.execute(text("SELECT 1")), timeout=5)
        except Exception as e:  # any database failure means "not healthy"; the reason is logged
            log.warning("healthz: database check failed: %r", e)
            self.send_json({"status": "unavailable", "reason": "database"}, 503)
            return
        self.send_json({"status": "ok", "connections": len(self.deps.registry.connections),
                        "shutting_down": self.deps.shutting_down},
                       503 if self.deps.shutting_down else 200)


class MetricsHandler(BaseHandler):
    """Prometheus text format; with ``METRICS_TOKEN`` set, only for ``Authorization: Bearer
    <METRICS_TOKEN>`` (compared in constant time)."""

    async def get(self) -> None:
        token = self.deps.config.metrics_token
        if token:
            given = self.request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                raise Unauthorized("metrics need the METRICS_TOKEN bearer token")
        body = await self.deps.metrics.render()
        self.set_header("Content-Type", self.deps.metrics.content_type)
        self.finish(body)
