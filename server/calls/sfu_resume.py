"""SFU calls: a participant's Janus session outlives its socket, and a web-process restart.

Every participant's Janus side (``sfu_peer.py``) is stored in ``sfu_peers`` when it changes.
When its socket closes — a network drop, or a web process stopping for a deploy — the session is
*parked*, not destroyed: Janus keeps relaying the participant's camera and microphone (media
flows browser ↔ Janus, not through Podium) for ``CALL_RESUME_GRACE_S``. A ``call.join`` with
the participant's resume token (``resume.py``) *takes* it back: in this process it is simply
picked up again; in another one, or in this one after a restart, the Janus session is claimed
on that process's own connection to Janus (Janus keeps a session whose socket closed for its
``reclaim_session_timeout``, 30 s as Podium configures it). The publisher keeps going; the
subscription is made again by the browser, and the old one is detached once the new one is
answered. When the grace runs out with nobody taking it, the holder destroys it in Janus (the
feed leaves the room). The row names its holder, so of "taken over" and "destroyed at the end
of the grace" exactly one happens, whichever processes run them (``db/sfu_peers.py``).
"""
from __future__ import annotations

import asyncio
import logging
import secrets

from server.calls.sfu_peer import SfuPeer
from server.db import sfu_peers as q
from server.db.engine import Database
from server.kernel.clock import utcnow
from server.sfu.protocol import JanusClosed, JanusError
from server.sfu.service import Sfu

CONNECTED_WAIT_S = 3.0  # how long a resume waits for this process's connection to that Janus

log = logging.getLogger("podium.calls.sfu")
Key = tuple[int, str]  # (call session id, peer id)


class SfuResume:
    def __init__(self, db: Database, sfu: Sfu, grace_s: float, spawn):
        self.db, self.sfu, self.grace_s, self.spawn = db, sfu, grace_s, spawn
        self.parked: dict[Key, tuple[SfuPeer, asyncio.TimerHandle]] = {}
        self._writes: dict[Key, asyncio.Task] = {}

    # -- storing -------------------------------------------------------------------------
    def save_soon(self, key: Key, user_id: int, peer: SfuPeer) -> None:
        """Store the peer's state in the background, after any write of it still running."""
        before = self._writes.get(key)
        task = asyncio.ensure_future(self._save_after(before, key, user_id, peer))
        self._writes[key] = task
        task.add_done_callback(lambda t: self._writes.get(key) is t and self._writes.pop(key, None))

    async def _save_after(self, before: asyncio.Task | None, key: Key, user_id: int, peer: SfuPeer) -> None:
        if before is not None:
            await asyncio.wait([before])
        await self.save(key, user_id, peer)

    async def save(self, key: Key, user_id: int, peer: SfuPeer) -> None:
        peer.holder = peer.holder or secrets.token_hex(8)
        try:
            async with self.db.write() as s:
                await q.save(s, key[0], key[1], user_id, peer.node.url, peer.janus.id, peer.state(),
                             peer.holder, utcnow())
        except Exception:  # the call goes on; only a resume of this participant is lost
            log.exception("session %s: storing %s's Janus session failed", *key)

    async def _settled(self, key: Key) -> None:
        task = self._writes.get(key)
        if task is not None:
            await asyncio.wait([task])

    # -- a socket closed: park; the grace runs out: destroy ---------------------------------
    async def park(self, key: Key, peer: SfuPeer) -> None:
        await self._settled(key)
        held = False
        try:
            async with self.db.write() as s:
                held = await q.park(s, key[0], key[1], peer.holder, utcnow())
        except Exception:
            log.exception("session %s: parking %s's Janus session failed", *key)
        if not held:  # never stored (it goes now), or taken over elsewhere already (theirs)
            if not peer.holder:
                await destroy(key[0], peer)
            else:
                self._let_go(peer)
            return
        timer = asyncio.get_running_loop().call_later(self.grace_s, lambda: self.spawn(self._expire(key)))
        self.parked[key] = (peer, timer)
        log.info("session %s: %s's Janus session %s kept %.0fs for a resume", key[0], key[1],
                 peer.janus.id, self.grace_s)

    async def _expire(self, key: Key) -> None:
        entry = self.parked.pop(key, None)
        if entry is None:
            return
        peer = entry[0]
        async with self.db.write() as s:
            ours = await q.forget(s, key[0], key[1], peer.holder)
        if not ours:  # taken over meanwhile: it is someone else's now
            self._let_go(peer)
            return
        log.info("session %s: %s did not come back: its Janus session goes", *key)
        await destroy(key[0], peer)

    @staticmethod
    def _let_go(peer: SfuPeer) -> None:
        """Stop keeping a session alive that another process (or a newer object) holds."""
        if peer.node.connection.sessions.get(peer.janus.id) is peer.janus:
            peer.node.connection.sessions.pop(peer.janus.id, None)

    async def forget(self, key: Key, peer: SfuPeer) -> None:
        """It left for good (leave, removal): its row goes, if it is still ours."""
        await self._settled(key)
        try:
            async with self.db.write() as s:
                await q.forget(s, key[0], key[1], peer.holder)
        except Exception:
            log.exception("session %s: forgetting %s's Janus session failed", *key)

    async def forget_session(self, session_id: int) -> list[SfuPeer]:
        """The call ended: every row goes; the parked peers of this process are returned (to
        destroy)."""
        out = []
        for key in [k for k in self.parked if k[0] == session_id]:
            peer, timer = self.parked.pop(key)
            timer.cancel()
            out.append(peer)
        async with self.db.write() as s:
            await q.forget_session(s, session_id)
        return out

    # -- a rejoin with the resume token: take it back ----------------------------------------
    async def take(self, key: Key, user_id: int) -> SfuPeer | None:
        """The participant's Janus side, now this process's (its subscription as
        ``stale_subscriber``); None when there is none to take (never published, the grace ran
        out, Janus restarted or is not connected here)."""
        local = self.parked.pop(key, None)
        if local is not None:
            local[1].cancel()
        await self._settled(key)
        async with self.db.write() as s:
            row = await q.take(s, key[0], key[1], user_id)
        node = self.sfu.node(row.janus_url) if row is not None else None
        if node is not None and not node.connection.connected.is_set():
            # a process that has just started may still be opening its connection to Janus
            try:
                await asyncio.wait_for(node.connection.connected.wait(), CONNECTED_WAIT_S)
            except asyncio.TimeoutError:
                pass
        if row is None or node is None or not node.connection.connected.is_set():
            if local is not None:  # ours, but no longer resumable: it goes now
                await destroy(key[0], local[0])
            return None
        handles = SfuPeer.handles_in(row.state)
        try:
            if row.janus_session in node.connection.sessions:  # this process's: new objects, same session
                janus = node.connection.adopt_session(row.janus_session, handles)
            else:
                janus = await node.connection.claim_session(row.janus_session, handles)
        except (JanusError, JanusClosed) as e:  # it timed out in Janus, or Janus restarted
            log.info("session %s: %s's Janus session %s cannot be claimed: %s", key[0], key[1],
                     row.janus_session, e)
            return None
        if await self.sfu.placement.store.set_if(key[0], node.url, None) != node.url:
            log.warning("session %s: %s's Janus session is on %s, the call now elsewhere", key[0], key[1], node.url)
            await destroy(key[0], SfuPeer(node, janus, 0))
            return None
        self.sfu.placement.known[key[0]] = node.url
        peer = SfuPeer.restored(node, janus, row.state)
        await self.save(key, user_id, peer)
        log.info("session %s: %s resumed its Janus session %s%s", key[0], key[1], janus.id,
                 " (claimed)" if local is None else "")
        return peer

    def close(self) -> None:
        """The process stops: parked sessions stay in Janus for another process to take."""
        for _, timer in self.parked.values():
            timer.cancel()
        self.parked.clear()


async def destroy(session_id: int, peer: SfuPeer) -> None:
    try:
        await peer.janus.destroy()
    except (JanusError, JanusClosed) as e:  # Janus drops it itself after its timeout
        log.warning("session %s: destroying a Janus session failed: %s", session_id, e)
