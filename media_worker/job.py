"""One recording job (docs/RECORDING.md): join the call as the ``recorder`` participant, offer
receive-only to every participant and newcomer — or, when the call's media go through Janus
(the join ack's ``media_path`` is ``sfu``), subscribe to every publisher on one connection
(``media_worker/sfu.py``) — record through the live path until stopped, then build the assets
off the event loop, upload them and complete the recording.

A job outlives its worker's socket: on a reconnect it rejoins the call (the participants have
new peer ids if the web process restarted, so their tracks start new files). A job found on
disk at start-up (the worker was killed mid-recording) is *recovered*: it is stopped at once
and its files, readable up to the kill, are post-processed like any other.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from media_worker.live import RecordingSession
from media_worker.live.events import EVENTS_FILE, EventLog, recording_started_at
from media_worker.live_render import LiveRenderer
from media_worker.peers import ReceivePeers
from media_worker.post.child import postprocess
from media_worker.post.segment_render import live_off
from media_worker.sfu import SfuSubscription
from media_worker.timeline import timeline_events
from media_worker.upload import complete, fetch_timeline, upload_asset

log = logging.getLogger("podium.worker.job")

PROGRESS_EVERY_S = 1.0


def append_timeline(directory: Path, timeline: dict) -> tuple[int, int]:
    """Append the chat and marks of the server's ``timeline`` to ``events.jsonl`` through
    :class:`EventLog`, placed on the worker's clock (``t = recording_started.t + offset``).
    Returns (events added, malformed entries left out). Raises ``OSError`` / ``ValueError``
    when the manifest is missing or does not start with ``recording_started``."""
    path = directory / EVENTS_FILE
    events, skipped = timeline_events(timeline, recording_started_at(path))
    with EventLog(path) as log_:
        return log_.append_dated(events), skipped


def eta(percent: int, elapsed_s: float) -> dict:
    """``{"eta_s"}``: the seconds left at the rate so far (the class video's frames are most of
    the work; the rest — participant files, uploads — is added as a tenth), once there is a
    rate to go by."""
    if percent < 1 or elapsed_s <= 0:
        return {}
    left = elapsed_s * (100 - percent) / percent
    return {"eta_s": int(round(left * 1.1 + 0.1 * elapsed_s))}


class Job:
    """One recording, from ``begin()`` to its outcome: ``done`` (assets uploaded, recording
    complete) or ``failed`` (reported to the server with a reason). Its peer connections are
    a :class:`ReceivePeers` it owns and closes whatever happens."""

    def __init__(self, client, recording: dict, session: dict, recovered: bool = False):
        self.client, self.config = client, client.config
        self.recording_id = str(recording["id"])
        self.session_id = str(recording.get("session") or session.get("id"))
        self.room_id = str(recording.get("room") or session.get("room"))
        self.directory = self.config.work_dir / f"rec-{self.recording_id}"
        self.recovered = recovered
        self.rec: RecordingSession | None = None
        self.peers = ReceivePeers(f"recording {self.recording_id}", on_ended=self._participant_left)
        self.peer_id: str | None = None
        self.media_path: str | None = None  # "mesh" or "sfu", from the call.join ack
        self.sfu: SfuSubscription | None = None
        self.members: dict[str, dict] = {}  # SFU calls: peer_id → user of every participant logged
        self.stop_reason: str | None = None
        self._stop = asyncio.Event()
        self._negotiations = itertools.count(1)
        self._join_task: asyncio.Task | None = None
        self.task: asyncio.Task | None = None
        self.live: LiveRenderer | None = None  # the class video rendered while recording
        self.fallback: str | None = None  # why it is processed after the class instead

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
                    await self.report_status("stopped", detail="worker_restarted")
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
            await self.report_status("failed", detail=str(e)[:300] or type(e).__name__)
            outcome = "failed"
        finally:
            if self.live is not None:
                await self.live.cancel()
            await self.peers.close_all()
            if self.sfu is not None:
                await self.sfu.close()
            self.client.job_done(self.recording_id)
        if outcome == "done" and not self.config.keep_files:
            shutil.rmtree(self.directory, onerror=self._removal_failed)
        elif self.directory.exists():
            (self.directory / "done").write_text(outcome)  # not reclaimed at the next start
            log.info("recording %s: files kept in %s", self.recording_id, self.directory)

    def _removal_failed(self, _func, path: str, exc_info) -> None:
        # The assets are uploaded: a file left behind costs disk space, not the recording.
        log.warning("recording %s: could not remove %s: %s", self.recording_id, path, exc_info[1])

    async def _record(self) -> None:
        self.rec = RecordingSession(self.directory, recording_id=self.recording_id,
                                    session_id=self.session_id, room_id=self.room_id)
        self.rec.start()
        if self.config.segment_s > 0:
            rec = self.rec
            self.live = LiveRenderer(self.directory, segment_s=self.config.segment_s,
                                     max_rtf=self.config.live_max_rtf,
                                     request_keyframes=lambda: [w.request_keyframe() for w in rec.writers])
            self.live.start()
        self._spawn_join()
        await self._stop.wait()
        reason = self.stop_reason if self.stop_reason in ("stop", "call_ended", "worker_shutdown") else "stop"
        await self.rec.stop(reason)
        if self.live is not None:
            self.fallback = await self.live.finish()
        await self.peers.close_all()
        if self.sfu is not None:
            await self.sfu.close()
        if self.peer_id is not None:
            try:
                await self.client.request("call.leave", session=self.session_id, timeout=5)
            except Exception as e:  # the call may have ended already, or the socket dropped
                log.info("recording %s: call.leave failed (%s); nothing to undo", self.recording_id, e)
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
        self.peer_id = ack["peer_id"]
        self.media_path = ack.get("media_path") or "mesh"
        self.peers.set_ice_servers(ack.get("ice_servers", []))
        present = {p["peer_id"]: p for p in ack.get("participants", []) if not p.get("recorder")}
        if self.media_path == "sfu":
            await self._join_sfu(ack, present)
            return
        for peer_id in self.peers.ids():
            # Gone while we were away. A connection that still carries media is kept (after a
            # web-server restart the peer ids are new but the media path is not): it ends when
            # the browser closes it.
            if peer_id not in present and self.peers.state(peer_id) != "connected":
                await self._drop_peer(peer_id)
        for peer_id, participant in present.items():
            if peer_id not in self.peers:
                await self._add_peer(participant)

    # -- SFU calls -----------------------------------------------------------------------------
    async def _join_sfu(self, ack: dict, present: dict[str, dict]) -> None:
        """Log who is in the call and subscribe to every publisher through Janus. On a rejoin
        (the socket came back) the old subscription died with our old socket's Janus session:
        it is replaced, and its tracks end (new files start)."""
        if self.rec is None or self._stop.is_set():
            return
        for peer_id in list(self.members):
            if peer_id not in present:
                self._sfu_left(peer_id)
        for participant in present.values():
            self._sfu_joined(participant)
        if self.sfu is None:
            self.sfu = SfuSubscription(f"recording {self.recording_id}", self.session_id, self.rec,
                                       self._sfu_request, self._publisher_of)
        self.sfu.set_ice_servers(ack.get("ice_servers", []))
        await self.sfu.restart()

    async def _sfu_request(self, type_: str, **fields: Any) -> dict:
        return await self.client.request(type_, **fields)

    def _publisher_of(self, feed_peer_id: str) -> str | None:
        """The participant a Janus stream belongs to: its publisher's ``peer_id`` (a screen
        feed named ``<peer_id>:…`` belongs to that participant too)."""
        if feed_peer_id in self.members:
            return feed_peer_id
        owner = feed_peer_id.split(":", 1)[0]
        return owner if owner in self.members else None

    def _sfu_joined(self, participant: dict) -> None:
        peer_id = participant["peer_id"]
        if peer_id in self.members or self.rec is None or self.rec.stopped:
            return
        self.members[peer_id] = participant["user"]
        self.rec.participant_joined(peer_id, participant["user"])
        media = participant.get("media") or {}
        if any(media.values()):
            self.rec.media(peer_id, media)

    def _sfu_left(self, peer_id: str) -> None:
        if self.members.pop(peer_id, None) is None:
            return
        if self.sfu is not None:
            self.sfu.forget(peer_id)
        self._participant_left(peer_id)

    async def _on_sfu_event(self, ev: dict) -> None:
        kind = ev.get("type")
        if kind == "call.participant_joined":
            if not ev["participant"].get("recorder"):
                self._sfu_joined(ev["participant"])
        elif kind == "call.participant_left":
            self._sfu_left(ev["peer_id"])
        elif kind == "call.media_changed" and self.rec is not None and not self.rec.stopped:
            p = ev["participant"]
            if p["peer_id"] in self.members:
                self.rec.media(p["peer_id"], p.get("media") or {})
        elif kind == "sfu.feeds_changed" and self.sfu is not None:
            peer_id = self._publisher_of(str(ev.get("peer_id")))
            await (self.sfu.add(peer_id) if peer_id is not None else self.sfu.refresh())
        elif kind == "sfu.offer" and self.sfu is not None:
            await self.sfu.offered(ev.get("sdp"), ev.get("streams") or [])
        elif kind == "sfu.restart" and self.sfu is not None:
            log.warning("recording %s: Janus restarted; subscribing again", self.recording_id)
            await self.sfu.restart()
        elif kind in ("call.ended", "call.removed"):
            self.request_stop("call_ended")
        else:
            log.debug("recording %s: ignoring %s", self.recording_id, kind)

    # -- participants --------------------------------------------------------------------------
    async def _add_peer(self, participant: dict) -> None:
        """Log the participant in the manifest, open a recvonly connection to them and send
        the offer through the server."""
        if self.rec is None or self._stop.is_set():
            return
        peer_id = participant["peer_id"]
        self.rec.participant_joined(peer_id, participant["user"])
        media = participant.get("media") or {}
        if any(media.values()):  # all-false is also what a client that never says looks like
            self.rec.media(peer_id, media)
        rec = self.rec
        sdp = await self.peers.open(peer_id, lambda pc: rec.attach(peer_id, pc))
        self.client.send({"type": "rtc.offer", "session": self.session_id, "to": peer_id, "sdp": sdp,
                          "negotiation_id": f"rec{self.recording_id}-{next(self._negotiations)}"})

    async def _drop_peer(self, peer_id: str) -> None:
        if peer_id in self.peers:
            self._participant_left(peer_id)
            await self.peers.close(peer_id)

    def _participant_left(self, peer_id: str) -> None:
        if self.rec is not None and not self.rec.stopped:
            self.rec.participant_left(peer_id)

    def on_event(self, ev: dict) -> None:
        asyncio.ensure_future(self._on_event(ev))

    async def _on_event(self, ev: dict) -> None:
        kind = ev.get("type")
        try:
            if self.media_path == "sfu":
                await self._on_sfu_event(ev)
            elif kind == "call.participant_joined":
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
                await self.peers.answer(ev.get("from"), ev["sdp"])
            elif kind == "rtc.ice":
                await self.peers.add_candidate(ev.get("from"), ev.get("candidate"))
            elif kind in ("call.ended", "call.removed"):
                self.request_stop("call_ended")
            else:
                log.debug("recording %s: ignoring %s", self.recording_id, kind)
        except Exception:
            log.exception("recording %s: handling %s failed", self.recording_id, kind)

    # -- after the stop ------------------------------------------------------------------------
    async def report_status(self, state: str, **fields: Any) -> None:
        """``worker.status {recording, state, …}``; a failure to report is logged, not raised
        (the server's grace and sweep settle a recording whose worker went quiet)."""
        try:
            await self.client.request("worker.status", recording=self.recording_id, state=state, timeout=10, **fields)
        except Exception as e:
            log.info("recording %s: could not report %s: %s", self.recording_id, state, e)

    async def _finish(self) -> None:
        timeline = await fetch_timeline(self.config, self.recording_id)
        added, malformed = append_timeline(self.directory, timeline)
        if malformed:
            log.warning("recording %s: %d malformed timeline entries left out", self.recording_id, malformed)
        log.info("recording %s: %d chat lines and marks added; post-processing", self.recording_id, added)
        last = [0.0, -1]
        began = time.monotonic()
        # A recovered job did not render live itself: its directory says if the killed worker gave up.
        self.fallback = self.fallback or (live_off(self.directory) or {}).get("reason")
        status = {"fallback": self.fallback} if self.fallback else {}
        if self.fallback:
            log.warning("recording %s: processing after the class (%s)", self.recording_id, self.fallback)
        self.client.send({"type": "worker.status", "recording": self.recording_id,
                          "state": "processing", "percent": 0, **status})

        def on_progress(percent: int) -> None:
            now = time.monotonic()
            if percent != last[1] and (now - last[0] >= PROGRESS_EVERY_S or percent == 100):
                last[:] = [now, percent]
                self.client.send({"type": "worker.status", "recording": self.recording_id,
                                  "state": "processing", "percent": percent, **status,
                                  **eta(percent, now - began)})

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
