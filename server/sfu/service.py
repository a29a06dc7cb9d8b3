"""The configured Janus servers (``JANUS_URLS``), or none: then every call is a browser mesh.

``Sfu(config)`` builds one ``JanusConnection`` and one ``JanusRooms`` per URL; ``start()``
opens the connections (in the background: an unreachable Janus is retried with backoff and
logged, never fatal) and logs which media path calls take; ``close()`` closes them.
``place(session)`` gives a call session's Janus: the least-loaded live one, the same in every
web process and sticky (``placement.py``); ``node_for_session(id)`` is this process's last view
of it, without waiting. A Janus whose connection stays down longer than
``janus_failover_grace_s`` *fails over*: every session placed on it is placed on another live
Janus and every ``on_failover`` hook runs with ``(node, sessions)`` (``calls/sfu_signaling.py``
tells their participants to start again). A Janus restart that reconnects within the grace
keeps its sessions (rooms recreated, ``rooms.py``).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server.config import Config
from server.sfu.client import JanusConnection
from server.sfu.placement import LocalPlacements, Placement, RedisPlacements, choose, loads_of
from server.sfu.rooms import JanusRooms

log = logging.getLogger("podium.sfu")


@dataclass
class JanusNode:
    url: str
    connection: JanusConnection
    rooms: JanusRooms


class Sfu:
    """Every Janus this process talks to; empty when none is configured (mesh calls)."""

    def __init__(self, config: Config, store: LocalPlacements | RedisPlacements | None = None):
        key = hashlib.sha256(b"podium-sfu-rooms:" + config.jwt_secret.encode()).digest()
        self.nodes: list[JanusNode] = []
        self.started = False
        for url in config.janus_urls:
            conn = JanusConnection(url, config.janus_api_secret)
            self.nodes.append(JanusNode(url, conn, JanusRooms(conn, key, admin_key=config.janus_admin_key)))
        self.placement = Placement(store if store is not None else LocalPlacements())
        self.failover_grace_s = config.janus_failover_grace_s
        self.failed: set[str] = set()  # URLs down longer than the grace (failed over)
        self.on_failover: list[Callable[[JanusNode, list[int]], Awaitable[None]]] = []
        self._down_since: dict[str, float] = {}
        self._moved_away: dict[str, set[int]] = {}  # URL → sessions moved off it (rooms to drop)
        self._watch: asyncio.Task | None = None

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
        self._watch = asyncio.create_task(self._watch_nodes(), name="janus-failover")

    def live(self) -> list[JanusNode]:
        return [n for n in self.nodes if n.connection.connected.is_set()]

    def node(self, url: str | None) -> JanusNode | None:
        return next((n for n in self.nodes if n.url == url), None)

    async def place(self, session_id: int) -> JanusNode | None:
        """The session's Janus (placed now if it has none; ``placement.py``); None when none
        is live, or while its Janus is down within the grace."""
        live = [n.url for n in self.live()]
        waiting = {n.url for n in self.nodes if n.url not in live and n.url not in self.failed}
        return self.node(await self.placement.place(session_id, live, waiting))

    def node_for_session(self, session_id: int) -> JanusNode | None:
        """Without waiting: the session's Janus as this process last saw it if connected, else
        the live one ``place`` would pick from what this process knows; None when none is
        connected (the join ack's media path, ``media_path``)."""
        live = self.live()
        known = self.node(self.placement.known.get(session_id))
        if known is not None and known in live:
            return known
        return self.node(choose(session_id, [n.url for n in live], loads_of(self.placement.known)))

    async def forget(self, session_id: int) -> None:
        """The call ended: its placement goes (Redis errors are logged, not raised)."""
        try:
            await self.placement.forget(session_id)
        except Exception as e:
            log.warning("sfu: forgetting the placement of session %s failed: %s", session_id, e)

    async def _watch_nodes(self) -> None:
        step = max(0.05, min(0.25, self.failover_grace_s / 4))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(step)
            for node in self.nodes:
                if node.connection.connected.is_set():
                    self._down_since.pop(node.url, None)
                    if node.url in self.failed:
                        self.failed.discard(node.url)
                        log.info("sfu: janus %s is back: it takes new sessions (moved ones stay where they are)",
                                 node.url)
                        await self._drop_moved_rooms(node)
                    continue
                since = self._down_since.setdefault(node.url, loop.time())
                if node.url not in self.failed and loop.time() - since >= self.failover_grace_s:
                    self.failed.add(node.url)
                    try:
                        await self.fail_over(node)
                    except Exception:
                        log.exception("sfu: failing over janus %s failed", node.url)

    async def fail_over(self, node: JanusNode) -> list[int]:
        """``node`` is down for good: each session placed on it (or whose room this process
        opened there) goes to the least-loaded live Janus, and the ``on_failover`` hooks run."""
        sessions = set(await self.placement.on(node.url))
        sessions |= {int(s) for s in node.rooms.open_rooms if s.isdigit()}
        live = [n.url for n in self.live()]
        moved = {}
        for session_id in sorted(sessions):
            moved[session_id] = await self.placement.move(session_id, node.url, live)
            # the dead Janus's room is not recreated if it comes back: the session lives elsewhere
            node.rooms.open_rooms.pop(str(session_id), None)
            self._moved_away.setdefault(node.url, set()).add(session_id)
        log.log(logging.WARNING if moved else logging.INFO,
                "sfu: janus %s down for over %.1fs: %d session(s) moved (%s)", node.url,
                self.failover_grace_s, len(moved),
                ", ".join(f"{s} -> {u or 'none live'}" for s, u in moved.items()) or "none")
        for hook in list(self.on_failover):
            try:
                await hook(node, sorted(moved))
            except Exception:
                log.exception("sfu: failover hook failed for janus %s", node.url)
        return sorted(moved)

    async def _drop_moved_rooms(self, node: JanusNode) -> None:
        """A failed-over Janus is back: if it did not restart (the connection alone was lost),
        it still has the moved sessions' rooms and their old participants: destroy them."""
        for session_id in sorted(self._moved_away.pop(node.url, set())):
            try:
                if await self.placement.store.get(session_id) != node.url:
                    await node.rooms.close(str(session_id))
            except Exception as e:  # gone already (it restarted), or it failed again
                log.info("sfu: dropping the moved session %s's room on janus %s: %s", session_id, node.url, e)

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.wait([self._watch], timeout=2)
        for node in self.nodes:
            await node.connection.close()
