"""One recording job (docs/RECORDING.md): join the call as the ``recorder`` participant, offer
receive-only to every participant and newcomer, record through the live path until stopped,
then build the assets off the event loop, upload them and complete the recording.

A job outlives its worker's socket: on a reconnect it rejoins the call (the participants have
new peer ids if the web process restarted, so their tracks start new files). A job found on
disk at start-up (the worker was killed mid-recording) is *recovered*: it is stopped at once
and its files, readable up to the kill, are post-processed like any other.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from media_worker.live import RecordingSession, add_recvonly_transceivers
from media_worker.post.child import postprocess
from media_worker.upload import complete, fetch_timeline, upload_asset

log = logging.getLogger("podium.worker.job")

PROGRESS_EVERY_S = 1.0


def append_timeline(directory: Path, timeline: dict) -> int:
    """Append the chat and marks of the recorded span to ``events.jsonl``, placed on the
    worker's clock: ``t = recording_started.t + offset`` (offsets are on the server's clock,
    so no clock agreement is needed). Returns how many lines were added."""
    path = directory / "events.jsonl"
    with open(path, encoding="utf-8") as f:
        first = json.loads(f.readline())
    if first.get("type") != "recording_started":
        raise ValueError(f"{path} does not start with recording_started")
    t0 = float(first["t"])
    lines = [{"t": t0 + m["offset_s"], "type": "chat", "seq": m["seq"], "user": m["user"], "text": m["text"]}
             for m in timeline.get("chat", []) if m.get("kind", "text") in ("text", "announcement")]
    lines += [{"t": t0 + k["offset_s"], "type": "mark", "label": k["label"], "by": k["by"]}
              for k in timeline.get("marks", [])]
    with open(path, "a", encoding="utf-8") as f:
        for line in sorted(lines, key=lambda x: x["t"]):
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
        f.flush()
    return len(lines)


class Job:
    def __init__(self, client, recording: dict, session: dict, recovered: bool = False):
        self.client, self.config = client, client.config
        self.recording_id = str(recording["id"])
        self.session_id = str(recording.get("session") or session.get("id"))
        self.room_id = str(recording.get("room") or session.get("room"))
        self.directory = self.config.work_dir / f"rec-{self.recording_id}"
        self.recovered = recovered
        self.rec: RecordingSession | None = None
        self.peers: dict[str, RTCPeerConnection] = {}
        self.ice_servers: list[dict] = []
        self.peer_id: str | None = None
        self.stop_reason: str | None = None
        self._stop = asyncio.Event()
        self._negotiations = itertools.count(1)
        self._join_task: asyncio.Task | None = None
        self._early_ice: dict[str, list] = {}
        self.task: asyncio.Task | None = None

    # -- control -----------------------------------------------------------------------------
    def begin(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()

    def disconnected(self) -> None:
        self.peer_id = None  # the peer connections carry on; we rejoin when the socket is back

    def reconnected(self, kept: bool) -> None:
        if not kept:
            log.warning("recording %s: the server no longer has it for us; dropping it", self.recording_id)
            self.request_stop("failed")
        elif not self._stop.is_set() and not self.recovered:
            self._spawn_join()

    # -- the job -----------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            if self.recovered:
                await self.client.connected.wait()
                self.stop_reason = self.stop_reason or "worker_restarted"
                if self.stop_reason != "failed":
                    await self._report("stopped", detail="worker_restarted")
            else:
                await self._record()
            if self.stop_reason == "failed":
                outcome = "failed"
            else:
                await self._finish()
                outcome = "done"
        except asyncio.CancelledError:
            # The worker is exiting before this job finished (SIGTERM past WORKER_SHUTDOWN_S):
            # the files stay, and the next start reclaims and finishes them.
            log.warning("recording %s interrupted; its files stay in %s", self.recording_id, self.directory)
            raise
        except Exception as e:
            log.exception("recording %s failed", self.recording_id)
            await self._report("failed", detail=str(e)[:300] or type(e).__name__)
            outcome = "failed"
        finally:
            await self._close_peers()
            self.client.job_done(self.recording_id)
        if outcome == "done" and not self.config.keep_files:
            shutil.rmtree(self.directory, ignore_errors=True)
        elif self.directory.exists():
            (self.directory / "done").write_text(outcome)  # not reclaimed at the next start
            log.info("recording %s: files kept in %s", self.recording_id, self.directory)

    async def _record(self) -> None:
        self.rec = RecordingSession(self.directory, recording_id=self.recording_id,
                                    session_id=self.session_id, room_id=self.room_id)
        self.rec.start()
        self._spawn_join()
        await self._stop.wait()
        reason = self.stop_reason if self.stop_reason in ("stop", "call_ended", "worker_shutdown") else "stop"
        await self.rec.stop(reason)
        await self._close_peers()
        if self.peer_id is not None:
            try:
                await self.client.request("call.leave", session=self.session_id, timeout=5)
            except Exception:
                pass  # the call may have ended already
        log.info("recording %s stopped (%s)", self.recording_id, self.stop_reason)

    def _spawn_join(self) -> None:
        if self._join_task is None or self._join_task.done():
            self._join_task = asyncio.ensure_future(self._join())

    async def _join(self) -> None:
        try:
            ack = await self.client.request("call.join", session=self.session_id,
                                            media={"audio": False, "video": False, "screen": False})
        except Exception as e:
            log.warning("recording %s: joining session %s failed: %s", self.recording_id, self.session_id, e)
            if getattr(e, "code", None) in ("conflict", "not_found", "forbidden"):
                self.request_stop("call_ended")
            return
        self.peer_id, self.ice_servers = ack["peer_id"], ack.get("ice_servers", [])
        present = {p["peer_id"]: p for p in ack.get("participants", []) if not p.get("recorder")}
        for peer_id, pc in list(self.peers.items()):
            # Gone while we were away. A connection that still carries media is kept (after a
            # web-server restart the peer ids are new but the media path is not): it ends when
            # the browser closes it.
            if peer_id not in present and pc.connectionState != "connected":
                await self._drop_peer(peer_id)
        for peer_id, participant in present.items():
            if peer_id not in self.peers:
                await self._add_peer(participant)

    # -- peers -------------------------------------------------------------------------------
    def _rtc_config(self) -> RTCConfiguration:
        servers = []
        for s in self.ice_servers:
            urls = s.get("urls")
            if urls:
                servers.append(RTCIceServer(urls=urls, username=s.get("username"), credential=s.get("credential")))
        return RTCConfiguration(iceServers=servers)

    async def _add_peer(self, participant: dict) -> None:
        if self.rec is None or self._stop.is_set():
            return
        peer_id = participant["peer_id"]
        self.rec.participant_joined(peer_id, participant["user"])
        media = participant.get("media") or {}
        if any(media.values()):  # all-false is also what a client that never says looks like
            self.rec.media(peer_id, media)
        pc = RTCPeerConnection(self._rtc_config())
        self.peers[peer_id] = pc
        add_recvonly_transceivers(pc)
        self.rec.attach(peer_id, pc)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and self.peers.get(peer_id) is pc:
                log.info("recording %s: connection to %s %s", self.recording_id, peer_id, pc.connectionState)
                await self._drop_peer(peer_id)

        await pc.setLocalDescription(await pc.createOffer())
        self.client.send({"type": "rtc.offer", "session": self.session_id, "to": peer_id,
                          "sdp": pc.localDescription.sdp,
                          "negotiation_id": f"rec{self.recording_id}-{next(self._negotiations)}"})

    async def _drop_peer(self, peer_id: str) -> None:
        pc = self.peers.pop(peer_id, None)
        self._early_ice.pop(peer_id, None)
        if self.rec is not None and not self.rec.stopped:
            self.rec.participant_left(peer_id)
        if pc is not None:
            await pc.close()

    async def _close_peers(self) -> None:
        for peer_id in list(self.peers):
            pc = self.peers.pop(peer_id)
            await pc.close()

    def on_event(self, ev: dict) -> None:
        asyncio.ensure_future(self._on_event(ev))

    async def _on_event(self, ev: dict) -> None:
        kind = ev.get("type")
        try:
            if kind == "call.participant_joined":
                p = ev["participant"]
                if not p.get("recorder") and p["peer_id"] not in self.peers and self.peer_id is not None:
                    await self._add_peer(p)
            elif kind == "call.participant_left":
                await self._drop_peer(ev["peer_id"])
            elif kind == "call.media_changed" and self.rec is not None and not self.rec.stopped:
                p = ev["participant"]
                if p["peer_id"] in self.peers:
                    self.rec.media(p["peer_id"], p.get("media") or {})
            elif kind == "rtc.answer":
                pc = self.peers.get(ev.get("from"))
                if pc is not None and pc.signalingState == "have-local-offer":
                    await pc.setRemoteDescription(RTCSessionDescription(sdp=ev["sdp"], type="answer"))
                    for c in self._early_ice.pop(ev.get("from"), []):
                        await pc.addIceCandidate(c)
            elif kind == "rtc.ice":
                peer_id, cand = ev.get("from"), ev.get("candidate")
                pc = self.peers.get(peer_id)
                if pc is not None and isinstance(cand, dict) and cand.get("candidate"):
                    c = candidate_from_sdp(cand["candidate"].split(":", 1)[-1])
                    c.sdpMid, c.sdpMLineIndex = cand.get("sdpMid"), cand.get("sdpMLineIndex")
                    if pc.remoteDescription is None:  # trickled ahead of its answer: keep it
                        self._early_ice.setdefault(peer_id, []).append(c)
                    else:
                        await pc.addIceCandidate(c)
            elif kind in ("call.ended", "call.removed"):
                self.request_stop("call_ended")
        except Exception:
            log.exception("recording %s: handling %s failed", self.recording_id, kind)

    # -- after the stop ------------------------------------------------------------------------
    async def _report(self, state: str, **fields: Any) -> None:
        try:
            await self.client.request("worker.status", recording=self.recording_id, state=state, timeout=10, **fields)
        except Exception as e:
            log.info("recording %s: could not report %s: %s", self.recording_id, state, e)

    async def _finish(self) -> None:
        timeline = await fetch_timeline(self.config, self.recording_id)
        added = append_timeline(self.directory, timeline)
        log.info("recording %s: %d chat lines and marks added; post-processing", self.recording_id, added)
        last = [0.0, -1]

        def on_progress(percent: int) -> None:
            now = time.monotonic()
            if percent != last[1] and (now - last[0] >= PROGRESS_EVERY_S or percent == 100):
                last[:] = [now, percent]
                self.client.send({"type": "worker.status", "recording": self.recording_id,
                                  "state": "processing", "percent": percent})

        assets = await postprocess(self.directory, on_progress)
        out = self.directory / "out"
        for asset in assets:
            await upload_asset(self.config, self.recording_id, Path(asset["file"]).name, out / asset["file"])
        composite = next((a for a in assets if a["kind"] == "composite"), None)
        await complete(self.config, self.recording_id,
                       [{"name": Path(a["file"]).name, "kind": a["kind"], "duration_s": a.get("duration_s")}
                        for a in assets],
                       composite.get("duration_s") if composite else None)
        log.info("recording %s complete: %d assets", self.recording_id, len(assets))
