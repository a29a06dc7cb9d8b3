"""The configured Janus servers (``JANUS_URLS``), or none: then every call is a browser mesh.

``Sfu(config)`` builds one ``JanusConnection`` and one ``JanusRooms`` per URL; ``start()``
opens the connections (in the background: an unreachable Janus is retried with backoff and
logged, never fatal) and logs which media path calls take; ``close()`` closes them.
``node_for_session(id)`` picks a session's Janus the same way in every process.
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
        # Calls whose session has a connected Janus go through it (the join ack says
        # media_path "sfu" and the web client publishes once and subscribes once); until one is
        # connected, or when none is reachable, calls are a browser mesh.
        log.info("sfu: connecting to Janus at %s: calls go through it once connected (the browser "
                 "mesh until then, or while none is reachable)", ", ".join(n.url for n in self.nodes))
        for node in self.nodes:
            node.connection.start()

    def node_for_session(self, session_id: int) -> JanusNode | None:
        """The session's Janus: of the connected ones, the highest rendezvous hash of (URL,
        session), so every web process picks the same one without talking to the others, and
        a dead one's sessions spread over the rest. None when none is connected."""
        live = [n for n in self.nodes if n.connection.connected.is_set()]
        return max(live, key=lambda n: hashlib.sha256(f"{n.url}|{session_id}".encode()).digest(), default=None)

    async def close(self) -> None:
        for node in self.nodes:
            await node.connection.close()
