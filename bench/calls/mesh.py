"""Join-to-connected time of a 4-peer aiortc mesh (the peers of tests/rtcpeer.py).

Used by ``run.py``; also runnable alone against a running server and a seed file:

    python bench/calls/mesh.py WS_URL SEED.json [--rounds 10] [--no-media]

Two join patterns per round, each in a fresh session of its own room:

* ``sequential``: peers join one after another, each once the previous is fully connected;
  a sample is one newcomer's time from sending ``call.join`` until its connections to every
  peer already present are ``connected`` (3 samples per round).
* ``together``: all four send ``call.join`` at the same moment (a class starting); a sample is
  one peer's time from ``call.join`` until all three of its connections are ``connected``
  (4 samples per round).

Signaling goes through the server over ``/ws``; ICE is trickled through it too (the candidates
are taken out of the SDP). The comparison ``local`` runs the same peers with an in-process relay
instead of a server (no sockets, no JSON on the wire), which is aiortc's own floor.
All peers run in this one process (the server in another), with real VP8/Opus media unless
``--no-media``. Every wait is bounded.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.rtcpeer import RtcPeer  # noqa: E402
from tests.wsclient import ProtocolError, WsClient  # noqa: E402

CONNECT_TIMEOUT_S = 30


# -- an in-process relay with WsClient's interface (the comparison) -----------------------------
class LocalHub:
    """Sessions and signal relay in memory: what the server does, minus sockets and storage."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, "LocalWs"]] = {}
        self._ids = itertools.count(1)

    def client(self) -> "LocalWs":
        return LocalWs(self, f"local{next(self._ids)}")


class LocalWs:
    def __init__(self, hub: LocalHub, peer_id: str):
        self.hub, self.peer_id = hub, peer_id
        self.hello = {"connection_id": peer_id}
        self.events: asyncio.Queue[dict] = asyncio.Queue()

    async def request(self, type_: str, timeout: float = 10, **fields: Any) -> dict:
        frame = await self.request_raw(type_, timeout, **fields)
        if frame["type"] == "error":
            raise ProtocolError(frame)
        return frame["data"]

    async def request_raw(self, type_: str, timeout: float = 10, **fields: Any) -> dict:
        await asyncio.sleep(0)  # a real request yields to the loop too
        sid = str(fields.get("session"))
        members = self.hub.sessions.setdefault(sid, {})
        if type_ == "call.join":
            others = [{"peer_id": p, "recorder": False} for p in members if p != self.peer_id]
            members[self.peer_id] = self
            return {"type": "ack", "data": {"session": {"id": sid}, "peer_id": self.peer_id,
                                            "participants": others, "ice_servers": [], "ice_ttl_s": 0}}
        if type_.startswith("rtc."):
            target = members.get(fields.get("to"))
            if self.peer_id not in members or target is None:
                return {"type": "error", "code": "forbidden"}
            ev = {"type": type_, "session": sid, "from": self.peer_id,
                  "negotiation_id": fields.get("negotiation_id")}
            ev.update({"candidate": fields.get("candidate")} if type_ == "rtc.ice" else {"sdp": fields["sdp"]})
            target.events.put_nowait(ev)
            return {"type": "ack", "data": {}}
        return {"type": "ack", "data": {}}

    def close(self) -> None:
        for members in self.hub.sessions.values():
            members.pop(self.peer_id, None)


# -- rounds ----------------------------------------------------------------------------------------
class Mesh:
    """Makes the four peers of one round against a server (``ws_url``) or a LocalHub."""

    def __init__(self, ws_url: str | None, seed: dict | None, media: bool):
        self.ws_url, self.seed, self.media = ws_url, seed, media
        self.hub = LocalHub() if ws_url is None else None
        self._room = itertools.count(0)

    async def round_peers(self) -> tuple[str, list[RtcPeer], WsClient | None]:
        """A fresh session and four connected (not yet joined) peers."""
        if self.hub is not None:
            sid = f"s{next(self._room)}"
            return sid, [RtcPeer(self.hub.client(), label=f"p{k}", media=self.media) for k in range(4)], None
        room = self.seed["rooms"][next(self._room) % len(self.seed["rooms"])]
        instructor = await WsClient.connect(self.ws_url, room["tokens"][0])
        sid = (await instructor.request("call.start", room=room["id"]))["session"]["id"]
        peers = [await RtcPeer.connect(self.ws_url, tok, label=f"p{k}", media=self.media)
                 for k, tok in enumerate(room["tokens"][:4])]
        return sid, peers, instructor

    async def finish(self, sid: str, peers: list[RtcPeer], instructor: WsClient | None) -> None:
        for p in peers:
            await p.close()
        if instructor is not None:
            try:
                await instructor.request("call.end", session=sid)
            finally:
                instructor.close()

    async def sequential(self) -> list[float]:
        sid, peers, instructor = await self.round_peers()
        out = []
        try:
            await peers[0].join(sid)
            for k, p in enumerate(peers[1:], start=1):
                await p.join(sid)
                await p.wait_connected([q.peer_id for q in peers[:k]], timeout=CONNECT_TIMEOUT_S)
                out.append(max(link.connected_at for link in p.links.values()) - p.joined_at)
            # Everyone's side is connected too before the round ends.
            for p in peers:
                await p.wait_connected([q.peer_id for q in peers if q is not p], timeout=CONNECT_TIMEOUT_S)
        finally:
            await self.finish(sid, peers, instructor)
        return out

    async def together(self) -> list[float]:
        sid, peers, instructor = await self.round_peers()
        try:
            await asyncio.gather(*(p.join(sid) for p in peers))
            for p in peers:
                await p.wait_connected([q.peer_id for q in peers if q is not p], timeout=CONNECT_TIMEOUT_S)
            return [max(link.connected_at for link in p.links.values()) - p.joined_at for p in peers]
        finally:
            await self.finish(sid, peers, instructor)


def pctl(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def summarise(samples: list[float]) -> dict:
    ms = [v * 1000 for v in samples]
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 1), "p95_ms": round(pctl(ms, 95), 1),
            "max_ms": round(max(ms), 1)}


async def measure(ws_url: str | None, seed: dict | None, rounds: int, media: bool = True) -> dict:
    """{"sequential": summary, "together": summary} over ``rounds`` rounds of each (after one
    warm-up round of each, not counted)."""
    mesh = Mesh(ws_url, seed, media)
    await mesh.sequential()
    await mesh.together()
    seq: list[float] = []
    tog: list[float] = []
    for _ in range(rounds):
        seq += await mesh.sequential()
        tog += await mesh.together()
    return {"sequential": summarise(seq), "together": summarise(tog)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("ws_url", help="ws://127.0.0.1:PORT/ws, or 'local' for the in-process relay")
    p.add_argument("seed", nargs="?")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--no-media", action="store_true")
    args = p.parse_args()
    local = args.ws_url == "local"
    seed = None if local else json.loads(Path(args.seed).read_text())
    t0 = time.monotonic()
    res = asyncio.run(measure(None if local else args.ws_url, seed, args.rounds, not args.no_media))
    res["wall_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
