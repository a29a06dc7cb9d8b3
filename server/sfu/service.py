"""The configured Janus servers (``JANUS_URLS``), or none: then every call is a browser mesh.

``Sfu(config)`` builds one ``JanusConnection`` and one ``JanusRooms`` per URL; ``start()``
opens the connections (in the background: an unreachable Janus is retried with backoff and
logged, never fatal) and logs which media path calls take; ``close()`` closes them.
``node_for_new_session()`` picks the connected Janus with the fewest open rooms.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from server.config import Config
from server.sfu.client import JanusConnection
from server.sfu.rooms import JanusRooms

log = logging.getLogger("podium.sfu")


@dataclass
class JanusNode:
    url: str
    connection: JanusConnection
    rooms: JanusRooms


class Sfu:
    """Every Janus this process talks to; empty when none is configured (mesh calls)."""

    def __init__(self, config: Config):
        key = hashlib.sha256(b"podium-sfu-rooms:" + config.jwt_secret.encode()).digest()
        self.nodes: list[JanusNode] = []
        self.started = False
        for url in config.janus_urls:
            conn = JanusConnection(url, config.janus_api_secret)
            self.nodes.append(JanusNode(url, conn, JanusRooms(conn, key, admin_key=config.janus_admin_key)))

    @property
    def enabled(self) -> bool:
        return bool(self.nodes)

    def start(self) -> None:
        self.started = True
        if not self.nodes:
            log.info("sfu: no JANUS_URL configured: calls use the browser mesh (docs/CALLS.md)")
            return
        # Until the SFU signaling lands (issue 14), a configured Janus is connected and kept
        # ready (rooms, keepalives, reclaim) but calls still run as a mesh: say so.
        log.info("sfu: connecting to Janus at %s (SFU call signaling not enabled yet: calls use "
                 "the browser mesh)", ", ".join(n.url for n in self.nodes))
        for node in self.nodes:
            node.connection.start()

    def node_for_new_session(self) -> JanusNode | None:
        """The connected Janus with the fewest open rooms; None when none is connected."""
        live = [n for n in self.nodes if n.connection.connected.is_set()]
        return min(live, key=lambda n: len(n.rooms.open_rooms), default=None)

    async def close(self) -> None:
        for node in self.nodes:
            await node.connection.close()
