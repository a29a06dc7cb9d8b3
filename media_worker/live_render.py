"""Rendering the class video while the class runs (docs/RECORDING.md, "Ready minutes after the
bell").

``LiveRenderer`` runs beside a recording on the worker's event loop: every ``segment_s`` of the
recording clock, once the span ``[a, b)`` is ``LAG_S`` in the past (its clusters are on disk),
it runs ``python -m media_worker.post.segment_render <dir> <k0> <k1>`` at low priority
(``nice`` +10) and waits for it. Shortly before each boundary it asks every video sender for a
keyframe, so the next segment starts decoding near its own start. After the stop,
post-processing reuses the segments (``media_worker/post/segment_join.py``) and renders only
the tail.

When a segment comes out with another layout than the earlier ones (``plan_key``: someone got a
cell, a larger source changed the canvas), every earlier frame would look different too: the
earlier segments are deleted and rendered again, back to back, until the renderer has caught up.

A segment slower than ``max_rtf`` × its length puts the renderer behind the class by the
difference; faster ones pay it back (``Lag``). One slow segment on a machine that otherwise
keeps up is tolerated; once the renderer is more than ``LAG_ALLOWANCE`` of a segment behind
(a segment still running at that point is killed, so a stop never waits for it), or a segment
fails, live rendering stops for this recording: ``live/off.json`` says why, the post-processing
after the stop renders the rest of the video as before, and ``fallback`` tells the job to say so.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from media_worker.live.events import EVENTS_FILE, recording_started_at
from media_worker.post.child import PROJECT_ROOT
from media_worker.post.composite import plan_extends
from media_worker.post.segment_render import LIVE_DIR, write_off

log = logging.getLogger("podium.worker.live_render")

LAG_S = 3.0  # a span is rendered once its end is this far behind the wall clock
KEYFRAME_BEFORE_S = 1.0  # ask for keyframes this long before a segment boundary
FPS = 30
COULD_NOT_KEEP_UP = "could_not_keep_up"
SEGMENT_FAILED = "segment_failed"
# How far behind the class (a fraction of one segment's budget) slow segments may put the
# renderer before it gives up: what a stop may then have to wait for beyond the usual tail.
LAG_ALLOWANCE = 0.5


class Lag:
    """How far live rendering is behind the class, in seconds: each segment adds what it took
    beyond its budget (``max_rtf`` × its length) and takes off what it left unused, never
    below zero. Over ``allowance_s`` the machine cannot keep up."""

    def __init__(self, budget_s: float, allowance: float = LAG_ALLOWANCE):
        self.budget_s = budget_s
        self.allowance_s = allowance * budget_s
        self.behind_s = 0.0

    def add(self, wall_s: float) -> None:
        self.behind_s = max(0.0, self.behind_s + wall_s - self.budget_s)

    @property
    def over(self) -> bool:
        return self.behind_s > self.allowance_s

    def time_left_s(self) -> float:
        """How long the next segment may run before the renderer is too far behind."""
        return self.budget_s + self.allowance_s - self.behind_s


class LiveRenderer:
    def __init__(self, directory: Path, *, segment_s: float, max_rtf: float,
                 request_keyframes: Callable[[], None] | None = None, fps: int = FPS,
                 lag_s: float = LAG_S):
        self.directory = Path(directory)
        self.frames_per_segment = max(1, round(segment_s * fps))
        self.segment_s = self.frames_per_segment / fps
        self.max_rtf = max_rtf
        self.fps = fps
        self.lag_s = lag_s
        self.request_keyframes = request_keyframes
        self.fallback: str | None = None  # why live rendering stopped, if it did
        self.segments = 0
        self.cpu_s = 0.0
        self.rtf: list[float] = []  # wall time / span, per segment
        self.relayouts = 0  # times the layout changed and earlier segments were rendered again
        self.history: list[dict] = []  # per segment rendered: k0, k1, started (wall clock), wall_s
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._child: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def finish(self) -> str | None:
        """At the stop: no new segment; one being rendered is awaited (post-processing would
        otherwise render it again). Returns ``fallback``."""
        self._stopping.set()
        if self._task is not None:
            try:
                await self._task
            except Exception:
                log.exception("%s: live rendering failed", self.directory.name)
                self._off(SEGMENT_FAILED, "live rendering failed")
        return self.fallback

    async def cancel(self) -> None:
        self._stopping.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def _sleep_until(self, wall: float) -> bool:
        """Sleep until the wall clock reaches ``wall``; False when stopped first."""
        delay = wall - time.time()
        if delay > 0:
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except asyncio.TimeoutError:
                pass
        return not self._stopping.is_set()

    async def _loop(self) -> None:
        started = None
        while started is None:  # events.jsonl's first line is written by RecordingSession.start
            try:
                started = recording_started_at(self.directory / EVENTS_FILE)
            except (OSError, ValueError):
                if not await self._sleep_until(time.time() + 0.2):
                    return
        k0 = 0
        plan = None
        done: dict[int, int] = {}  # k0 -> k1 of the segments rendered with ``plan``
        lag = Lag(self.segment_s * self.max_rtf)
        while True:
            if k0 in done:  # catching up after a layout change: this span is already there
                k0 = done[k0]
                continue
            k1 = k0 + self.frames_per_segment
            boundary = started + k1 / self.fps
            if time.time() < boundary - KEYFRAME_BEFORE_S:
                if not await self._sleep_until(boundary - KEYFRAME_BEFORE_S):
                    return
                if self.request_keyframes is not None:
                    self.request_keyframes()
            if not await self._sleep_until(boundary + self.lag_s):
                return
            t0, began = time.monotonic(), time.time()
            result = await self._render(k0, k1, lag)
            wall = time.monotonic() - t0
            if result is None:
                return
            lag.add(wall)
            self.segments += 1
            self.cpu_s += float(result.get("cpu_s") or 0.0)
            rtf = wall / self.segment_s
            self.rtf.append(round(rtf, 3))
            self.history.append({"k0": k0, "k1": k1, "started": began, "wall_s": round(wall, 3)})
            log.info("%s: live segment %d-%d rendered in %.1f s (%.2fx real time)",
                     self.directory.name, k0, k1, wall, rtf)
            if lag.over:
                self._off(COULD_NOT_KEEP_UP,
                          f"segment {k0}-{k1} took {wall:.1f} s for {self.segment_s:.1f} s "
                          f"({rtf:.2f}x real time, limit {self.max_rtf:g}x): {lag.behind_s:.1f} s "
                          f"behind the class")
                return
            seg_plan = result["segment"].get("plan")
            if plan is not None and not plan_extends(plan, seg_plan):
                # Someone got a cell, or a bigger source changed the canvas: every frame so far
                # looks different now. Drop the old segments and render them again, catching up.
                # (A first screen share alone does not: the grid before it stays as it was.)
                log.info("%s: the class video's layout changed at frame %d; rendering the %d "
                         "earlier segments again", self.directory.name, k0, len(done))
                self._drop(done)
                done = {}
                self.relayouts += 1
            plan = seg_plan
            done[k0] = k1
            k0 = 0 if len(done) == 1 and k0 > 0 else k1

    def _drop(self, spans: dict[int, int]) -> None:
        live = self.directory / LIVE_DIR
        for k0, k1 in spans.items():
            for suffix in (".json", ".nut"):  # the .json first: without it a segment is not one
                (live / f"seg-{k0:08d}-{k1:08d}{suffix}").unlink(missing_ok=True)

    async def _render(self, k0: int, k1: int, lag: Lag) -> dict | None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "media_worker.post.segment_render", str(self.directory),
            str(k0), str(k1), "--fps", str(self.fps), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        budget = lag.time_left_s()
        try:
            out, err = await asyncio.wait_for(proc.communicate(), budget)
        except asyncio.TimeoutError:
            # Too far behind whatever happens next: stop now rather than let a stop wait for a
            # segment that will not be used.
            proc.kill()
            await proc.wait()
            self.rtf.append(round(budget / self.segment_s, 3))
            self._off(COULD_NOT_KEEP_UP, f"segment {k0}-{k1} was not done after {budget:.1f} s for "
                                         f"{self.segment_s:.1f} s (limit {self.max_rtf:g}x real time, "
                                         f"{lag.behind_s:.1f} s behind before it)")
            return None
        except asyncio.CancelledError:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        result: dict = {}
        for line in out.decode("utf-8", "replace").splitlines():
            try:
                result.update(json.loads(line))
            except ValueError:
                pass
        if proc.returncode != 0 or "segment" not in result:
            tail = err.decode("utf-8", "replace").strip().splitlines()[-5:]
            log.warning("%s: live segment %d-%d failed (exit %s): %s", self.directory.name, k0, k1,
                        proc.returncode, result.get("error") or " | ".join(tail))
            self._off(SEGMENT_FAILED, str(result.get("error") or f"exit {proc.returncode}"))
            return None
        return result

    def _off(self, reason: str, detail: str) -> None:
        if self.fallback is not None:
            return
        self.fallback = reason
        write_off(self.directory, reason, detail)
        log.warning("%s: live rendering stopped, the class video will be processed after the "
                    "class: %s (%s)", self.directory.name, reason, detail)
