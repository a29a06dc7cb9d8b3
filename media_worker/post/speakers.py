"""Who is speaking: per-participant audio levels from the samples the mix already decoded, the
active speaker at any instant (the class video's coloured border) and who spoke when
(``speakers.json``).

Levels are kept per ``BLOCK_S`` block of the recording clock (block ``b`` is
``[b * BLOCK_S, (b + 1) * BLOCK_S)``), so they do not depend on how the audio was read. Every
decision is a function of the levels in a bounded window around its instant:

* a block is *voiced* when the participant's mean square level reaches ``THRESHOLD``;
* a participant is *talking* at block ``b`` when at least ``MIN_VOICED`` of the blocks
  ``b - BEHIND … b + AHEAD`` are voiced: a click or a cough does not count, a pause between
  words does not end the talk;
* the *active speaker* at ``b`` is found by stepping through the ``HOLD`` blocks before it from
  nobody: the one talking most, and once chosen kept while still talking unless another is
  ``SWITCH_RATIO`` times louder over the window (hysteresis: no flicker between two voices).

So a renderer needs levels from ``LOOKBEHIND_S`` before its first frame to ``LOOKAHEAD_S``
after its last one (the composite's audio runs ``AUDIO_CHUNK_S`` ahead of its video), and
frames rendered in separate pieces agree with a single pass.
"""
from __future__ import annotations

import array
import math
from collections.abc import Iterable

RATE = 48000
BLOCK_S = 0.1
BLOCK = round(RATE * BLOCK_S)
THRESHOLD = 1e-4  # mean square of a float sample: -40 dBFS RMS, well above a quiet room
BEHIND, AHEAD = 4, 2
MIN_VOICED = 3
HOLD = 5
SWITCH_RATIO = 2.0
LOOKBEHIND_S = (HOLD + BEHIND) * BLOCK_S
LOOKAHEAD_S = (AHEAD + 1) * BLOCK_S
STRIDE = 16  # every 8th stereo frame's left sample: plenty for a level, 1/16 of the work


class SpeakerActivity:
    """Levels of the participants ``keys`` (user ids), fed with packed float stereo samples
    on the recording clock; ``active_at(t)`` and ``segments(key)`` read them."""

    def __init__(self, keys: Iterable[str]):
        self.keys = list(dict.fromkeys(keys))
        self._sum: dict[str, dict[int, float]] = {k: {} for k in self.keys}
        self._count: dict[str, dict[int, int]] = {k: {} for k in self.keys}
        self._active: dict[int, str | None] = {}

    def feed(self, key: str, start: int, data: bytes) -> None:
        """Samples of one of ``key``'s tracks from recording-clock sample ``start`` (48 kHz,
        float32 stereo interleaved). Two tracks of one participant add up."""
        if key not in self._sum or not data:
            return
        samples = array.array("f")
        samples.frombytes(data[:len(data) // 8 * 8])
        sums, counts = self._sum[key], self._count[key]
        n = len(samples) // 2
        i = 0
        while i < n:
            b = (start + i) // BLOCK
            j = min(n, (b + 1) * BLOCK - start)
            picked = samples[2 * i:2 * j:STRIDE]
            sums[b] = sums.get(b, 0.0) + sum(x * x for x in picked)
            counts[b] = counts.get(b, 0) + len(picked)
            i = j

    def blocks(self, lo: int | None = None, hi: int | None = None) -> dict[str, list[list]]:
        """The measured blocks starting in samples ``[lo, hi)`` (None: unbounded), per key:
        ``[[block, sum, count], …]`` (JSON-able; ``merge`` takes them back)."""
        return {key: [[b, self._sum[key][b], self._count[key][b]] for b in sorted(self._sum[key])
                      if (lo is None or b * BLOCK >= lo) and (hi is None or b * BLOCK < hi)]
                for key in self.keys}

    def merge(self, blocks: dict[str, list[list]]) -> None:
        """Take measured blocks (``blocks()`` of another measurement, e.g. an earlier piece of
        the recording): a block given replaces ours. Unknown keys are ignored."""
        for key, rows in blocks.items():
            if key in self._sum:
                for b, total, count in rows:
                    self._sum[key][int(b)] = float(total)
                    self._count[key][int(b)] = int(count)
        self._active.clear()

    def level(self, key: str, b: int) -> float:
        """Mean square of block ``b`` (0 where nothing was fed)."""
        count = self._count[key].get(b, 0)
        return self._sum[key].get(b, 0.0) / count if count else 0.0

    def _window(self, key: str, b: int) -> tuple[int, float]:
        levels = [self.level(key, j) for j in range(b - BEHIND, b + AHEAD + 1)]
        return sum(1 for x in levels if x >= THRESHOLD), sum(levels)

    def talking(self, key: str, b: int) -> bool:
        return self._window(key, b)[0] >= MIN_VOICED

    def _step(self, current: str | None, b: int) -> str | None:
        scores = {k: self._window(k, b) for k in self.keys}
        talkers = [k for k in self.keys if scores[k][0] >= MIN_VOICED]
        if not talkers:
            return None
        best = max(talkers, key=lambda k: scores[k])
        if current in talkers and scores[best][1] < SWITCH_RATIO * scores[current][1]:
            return current
        return best

    def active_at(self, t: float) -> str | None:
        """The active speaker's key at ``t`` on the recording clock, or None."""
        b = math.floor(t / BLOCK_S + 1e-9)
        if b not in self._active:
            current = None
            for j in range(b - HOLD, b + 1):
                current = self._step(current, j)
            self._active[b] = current
        return self._active[b]

    def segments(self, key: str, end_s: float | None = None) -> list[list[float]]:
        """``[[start_s, end_s], …]`` where ``key`` was talking, in seconds on the recording
        clock (clipped to ``end_s``): each run of talking blocks, trimmed to its first and
        last voiced block (the window's hangover is for the border, not for the timeline)."""
        fed = self._count[key]
        if not fed:
            return []
        runs: list[list[int]] = []
        for b in range(min(fed) - AHEAD, max(fed) + BEHIND + 1):
            if self.talking(key, b):
                if runs and runs[-1][1] == b - 1:
                    runs[-1][1] = b
                else:
                    runs.append([b, b])
        out: list[list[float]] = []
        for lo, hi in runs:
            voiced = [b for b in range(lo, hi + 1) if self.level(key, b) >= THRESHOLD]
            if not voiced:
                continue
            start, end = max(0.0, voiced[0] * BLOCK_S), (voiced[-1] + 1) * BLOCK_S
            if end_s is not None:
                end = min(end, end_s)
            if end > start:
                out.append([round(start, 3), round(end, 3)])
        return out


def speakers_document(activity: SpeakerActivity, names: dict[str, str],
                      end_s: float | None = None) -> dict:
    """``speakers.json``: ``{"speakers": [{"user_id", "display_name", "segments": [[start_s,
    end_s], …]}]}``, times in seconds from the class video's start; only participants who
    spoke, in ``activity.keys`` order (the grid's)."""
    speakers = []
    for key in activity.keys:
        segments = activity.segments(key, end_s)
        if segments:
            speakers.append({"user_id": key, "display_name": names.get(key, key),
                             "segments": segments})
    return {"speakers": speakers}
