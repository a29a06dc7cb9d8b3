"""A poll's results as CSV for instructors (``GET /api/polls/{id}/results.csv``): one row per
option, or with ``by=voter`` one row per voter of a named poll."""
from __future__ import annotations

import csv
import io

from server.db import polls as pq
from server.db.engine import Database
from server.kernel.actor import Actor
from server.kernel.clock import iso
from server.kernel.errors import BadRequest, Conflict, NotFound
from server.polls.wire import correct_of, count_list, options_of
from server.rooms.membership import require_instructor

BY = ("option", "voter")


def spreadsheet_safe(value: str) -> str:
    """Neutralise spreadsheet formulas in user-controlled cells (CSV injection), as the
    attendance export does."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


async def results_csv(db: Database, actor: Actor, message_id: int, by: str) -> str:
    if by not in BY:
        raise BadRequest("by must be option or voter")
    async with db.read() as s:
        row = await pq.get(s, message_id)
        if row is None:
            raise NotFound("no such poll")
        poll, msg = row
        await require_instructor(s, msg.room_id, actor, "only the room's instructors export a poll's results")
        if by == "voter" and poll.anonymous:
            raise Conflict("an anonymous poll has no list of voters")
        counted = (await pq.counts(s, [message_id]))[message_id]
        ballots = await pq.ballots(s, message_id) if by == "voter" else []
    options, correct = options_of(poll), correct_of(poll)
    right = set(correct or ())
    out = io.StringIO()
    w = csv.writer(out)
    if by == "option":
        counts, voters = count_list(poll, counted[0]), counted[1]
        w.writerow(["poll_id", "question", "option_index", "option", "votes", "percent_of_voters", "correct"])
        for i, (text, n) in enumerate(zip(options, counts)):
            percent = round(100 * n / voters, 1) if voters else 0.0
            w.writerow([message_id, spreadsheet_safe(msg.content), i, spreadsheet_safe(text), n, percent,
                        "" if correct is None else ("yes" if i in right else "no")])
        return out.getvalue()
    w.writerow(["poll_id", "user_id", "username", "display_name", "choices", "choice_indexes", "correct",
                "voted_at"])
    per_voter: dict[int, list] = {}
    for uid, username, name, option, at in ballots:
        entry = per_voter.setdefault(uid, [username, name, [], at])
        entry[2].append(option)
        entry[3] = max(entry[3], at)
    for uid, (username, name, chosen, at) in per_voter.items():
        w.writerow([message_id, uid, spreadsheet_safe(username), spreadsheet_safe(name),
                    spreadsheet_safe("; ".join(options[o] for o in chosen)), " ".join(map(str, chosen)),
                    "" if correct is None else ("yes" if chosen == sorted(right) else "no"), iso(at)])
    return out.getvalue()
