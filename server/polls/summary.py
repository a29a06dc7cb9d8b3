"""A poll in one line, as the class recording shows it (subtitles and chapters): its question
and its result — ``Poll: Capital of France? — Paris 12 ✓ · Lyon 3 (15 answers)``."""
from __future__ import annotations

from server.db import polls as pq
from server.polls.wire import correct_of, count_list, options_of

MAX_CHARS = 200  # a chapter title (recording marks are 1-200 characters)


def poll_line(question: str, options: list[str], counts: list[int], voters: int,
              correct: list[int] | None) -> str:
    right = set(correct or ())
    parts = [f"{text} {n}{' ✓' if i in right else ''}" for i, (text, n) in enumerate(zip(options, counts))]
    answers = "1 answer" if voters == 1 else f"{voters} answers"
    line = f"Poll: {' '.join(question.split())} — {' · '.join(parts)} ({answers})"
    return line if len(line) <= MAX_CHARS else line[:MAX_CHARS - 1] + "…"


async def poll_lines(s, messages: list) -> dict[int, str]:
    """``{message id: poll_line}`` of poll messages (rows of kind ``poll``), with their counts
    as stored now, in the caller's session."""
    ids = [m.id for m in messages]
    polls = await pq.for_messages(s, ids)
    counted = await pq.counts(s, list(polls))
    return {m.id: poll_line(m.content, options_of(polls[m.id]), count_list(polls[m.id], counted[m.id][0]),
                            counted[m.id][1], correct_of(polls[m.id]))
            for m in messages if m.id in polls}
