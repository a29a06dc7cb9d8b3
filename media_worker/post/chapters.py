"""Instructor marks as chapters: the first chapter starts at 0 (titled "Start" unless a mark is
there already), each chapter runs to the next one or to the end. Marks at the same instant
(within 0.5 s) are one chapter with their labels joined; marks at or past the end are dropped.
"""
from __future__ import annotations

import fractions
from dataclasses import dataclass

from media_worker.post.manifest import Mark

SAME_INSTANT_S = 0.5
MS = fractions.Fraction(1, 1000)


@dataclass
class Chapter:
    start_s: float
    end_s: float
    title: str


def chapters_from_marks(marks: list[Mark], duration_s: float) -> list[Chapter]:
    if not marks:
        return []
    starts: list[tuple[float, list[str]]] = []
    for mark in sorted(marks, key=lambda m: m.t_s):
        t = max(0.0, mark.t_s)
        if t >= duration_s:
            continue
        if starts and t - starts[-1][0] < SAME_INSTANT_S:
            starts[-1][1].append(mark.label)
        else:
            starts.append((t, [mark.label]))
    if not starts:
        return []
    if starts[0][0] >= SAME_INSTANT_S:
        starts.insert(0, (0.0, ["Start"]))
    else:
        starts[0] = (0.0, starts[0][1])
    return [Chapter(t, starts[i + 1][0] if i + 1 < len(starts) else duration_s, " / ".join(labels))
            for i, (t, labels) in enumerate(starts)]


def to_av(chapters: list[Chapter]) -> list[dict]:
    """The ``OutputContainer.set_chapters`` form (milliseconds)."""
    return [{"id": i + 1, "start": round(c.start_s * 1000), "end": round(c.end_s * 1000),
             "time_base": MS, "metadata": {"title": c.title}} for i, c in enumerate(chapters)]
