"""Replaying a finished recording directory as the live path would write it: on the wall clock.

``replay(source, dest)`` re-writes ``source``'s ``events.jsonl`` and track files into ``dest``
at the pace they happened (``t`` re-based on the current wall clock): each event line at its
time, each frame through the live path's own ``MatroskaTrackFile`` (500 ms clusters, flushed as
they close) at its track offset + pts. So ``dest`` holds *growing* files exactly as a worker's
recording directory does mid-class, and a live renderer reads them while they grow. Used by
tests/worker/test_live_render.py and bench/recording (the synthetic class is made faster than
real time by ``bench/recording/synth.py``, then replayed in real time).

Chat and mark lines are written after the stop (the worker appends them from the server's
timeline then). ``stop_at`` cuts the replay short (a ``recording_stopped`` line at that time).
"""
from __future__ import annotations

import heapq
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
from av.bitstream import BitStreamFilterContext

from media_worker.live.matroska import CLOCK_RATES, MatroskaTrackFile

LATE = ("chat", "mark")


def _packets(path: Path, offset: float, name: str) -> Iterator[tuple[float, int, str, bytes, float, bool]]:
    with av.open(str(path)) as c:
        stream = c.streams[0]
        tb = stream.time_base
        # H.264 is stored length-prefixed (avcC); the live path receives Annex B access units.
        bsf = BitStreamFilterContext("h264_mp4toannexb", stream) if stream.codec_context.name == "h264" else None
        for pkt in c.demux(stream):
            if pkt.size == 0 or pkt.pts is None:
                continue
            s = float(pkt.pts * tb)
            key = pkt.is_keyframe
            for out in (bsf.filter(pkt) if bsf is not None else [pkt]):
                yield offset + s, 1, name, bytes(out), s, key


class Replay:
    def __init__(self, source: Path, dest: Path, stop_at: float | None = None):
        self.source, self.dest, self.stop_at = Path(source), Path(dest), stop_at
        lines = (self.source / "events.jsonl").read_text().splitlines()
        self.events = [json.loads(x) for x in lines if x.strip()]
        self.t0_src = self.events[0]["t"]
        self.t0: float | None = None
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "Replay":
        self._thread = threading.Thread(target=self._run, name="replay", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            self.done.set()

    def run(self) -> None:
        (self.dest / "tracks").mkdir(parents=True, exist_ok=True)
        rel = lambda ev: ev["t"] - self.t0_src  # noqa: E731
        end = self.stop_at if self.stop_at is not None else max(
            (rel(e) for e in self.events if e["type"] == "recording_stopped"), default=None)
        streams: list[Iterator] = []
        info: dict[str, dict] = {}
        schedule = []
        for i, ev in enumerate(self.events[1:]):
            if ev["type"] in LATE or ev["type"] == "recording_stopped":
                continue
            schedule.append((rel(ev), 0, f"{i:08d}", ev, 0.0, False))
            if ev["type"] == "track_started":
                with av.open(str(self.source / ev["file"])) as c:
                    cc = c.streams[0].codec_context
                    size = (cc.width or 0, cc.height or 0) if ev["kind"] == "video" else (0, 0)
                info[ev["track"]] = {**ev, "size": size}
                streams.append(_packets(self.source / ev["file"], rel(ev), ev["track"]))
        merged = heapq.merge(sorted(schedule, key=lambda x: x[:3]), *streams, key=lambda x: x[:3])
        files: dict[str, MatroskaTrackFile] = {}
        out = open(self.dest / "events.jsonl", "a", encoding="utf-8")
        self.t0 = time.time()
        out.write(json.dumps({**self.events[0], "t": self.t0}) + "\n")
        out.flush()
        try:
            for at, kind, name, payload, pts_s, key in merged:
                if end is not None and (at > end or (at == end and kind == 1)):
                    break
                delay = self.t0 + at - time.time()
                if delay > 0:
                    time.sleep(delay)
                if kind == 0:  # an event line
                    ev = dict(payload)
                    ev["t"] = self.t0 + at
                    if ev["type"] == "track_ended" and ev["track"] in files:
                        files.pop(ev["track"]).close().result(30)
                    out.write(json.dumps(ev) + "\n")
                    out.flush()
                    continue
                ev = info[name]
                f = files.get(name)
                if f is None:
                    f = files[name] = MatroskaTrackFile(self.dest / ev["file"], ev["codec"],
                                                        width=ev["size"][0], height=ev["size"][1])
                rate = CLOCK_RATES[ev["codec"]]
                f.write(payload, round(pts_s * rate), key)
            if end is not None:
                delay = self.t0 + end - time.time()
                if delay > 0:
                    time.sleep(delay)
            for f in files.values():
                f.close().result(30)
            stop_t = self.t0 + (end if end is not None else time.time() - self.t0)
            for ev in self.events[1:]:
                if ev["type"] in LATE and (end is None or rel(ev) < end):
                    out.write(json.dumps({**ev, "t": self.t0 + rel(ev)}) + "\n")
            out.write(json.dumps({"t": stop_t, "type": "recording_stopped", "reason": "stop"}) + "\n")
        finally:
            out.close()


def replay(source: Path, dest: Path, stop_at: float | None = None) -> Replay:
    """Start replaying ``source`` into ``dest`` in a thread; ``.join()`` waits for the end."""
    return Replay(source, dest, stop_at).start()

