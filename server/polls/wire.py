"""Polls on the wire (docs/PROTOCOL-ADDITIONS.md "Polls"): requests parsed into typed values at
the edge, and the shapes of a poll — the ``poll`` field of its message (the same for every
reader), a reader's own view (``poll.get``, the ``poll.vote`` ack) and live results."""
from __future__ import annotations

import json
from dataclasses import dataclass

from server.kernel.clock import iso
from server.kernel.errors import BadRequest, TooLarge

MIN_OPTIONS, MAX_OPTIONS = 2, 10
MAX_QUESTION_CHARS = 500
MAX_OPTION_CHARS = 200


@dataclass(frozen=True)
class NewPoll:
    question: str
    options: list[str]
    multiple: bool
    anonymous: bool
    correct: list[int] | None
    results_public: bool
    client_msg_id: str | None


def _flag(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be a boolean")
    return value


def _text(value, what: str, most: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{what} must be a non-empty string")
    value = value.strip()
    if len(value) > most:
        raise TooLarge(f"{what} is longer than {most} characters")
    return value


def option_list(value, n_options: int, multiple: bool, what: str) -> list[int]:
    """Option indexes (0-based): distinct, in range, exactly one unless ``multiple``; sorted."""
    if not isinstance(value, list) or not value:
        raise BadRequest(f"{what} must be a non-empty list of option indexes")
    if any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n_options for v in value):
        raise BadRequest(f"{what} must hold option indexes in 0..{n_options - 1}")
    if len(set(value)) != len(value):
        raise BadRequest(f"{what} must not repeat an option")
    if not multiple and len(value) != 1:
        raise BadRequest(f"a single-choice poll takes exactly one option in {what}")
    return sorted(value)


def parse_new(body: dict) -> NewPoll:
    """``poll.create``'s fields; BadRequest/TooLarge saying what is wrong."""
    question = _text(body.get("question"), "question", MAX_QUESTION_CHARS)
    options = body.get("options")
    if not isinstance(options, list) or not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        raise BadRequest(f"options must be a list of {MIN_OPTIONS} to {MAX_OPTIONS} strings")
    options = [_text(o, "every option", MAX_OPTION_CHARS) for o in options]
    if len(set(options)) != len(options):
        raise BadRequest("options must be different from each other")
    multiple, anonymous = _flag(body, "multiple"), _flag(body, "anonymous")
    correct = body.get("correct")
    if correct is not None:
        correct = option_list(correct, len(options), multiple, "correct")
    cmid = body.get("client_msg_id")
    if cmid is not None and (not isinstance(cmid, str) or not 0 < len(cmid) <= 64):
        raise BadRequest("client_msg_id must be a string of 1..64 characters")
    return NewPoll(question, options, multiple, anonymous, correct, _flag(body, "results_public"), cmid)


def parse_public(value) -> bool:
    if not isinstance(value, bool):
        raise BadRequest("results_public must be a boolean")
    return value


# -- shapes ----------------------------------------------------------------------------------
def options_of(poll) -> list[str]:
    return json.loads(poll.options)


def correct_of(poll) -> list[int] | None:
    return json.loads(poll.correct) if poll.correct is not None else None


def count_list(poll, per_option: dict[int, int]) -> list[int]:
    return [per_option.get(i, 0) for i in range(len(options_of(poll)))]


def public_wire(poll, counted: tuple[dict[int, int], int] | None) -> dict:
    """The ``poll`` field of the poll's message, the same for every reader: the correct
    answer only once the poll is closed, counts only while the results are public
    (``counted`` = ``({option: votes}, voters)``)."""
    closed = poll.closed_at is not None
    shown = poll.results_public and counted is not None
    return {"options": options_of(poll), "multiple": poll.multiple, "anonymous": poll.anonymous,
            "quiz": poll.correct is not None, "correct": correct_of(poll) if closed else None,
            "results_public": poll.results_public, "closed": closed, "closed_at": iso(poll.closed_at),
            "version": poll.version,
            "counts": count_list(poll, counted[0]) if shown else None,
            "voters": counted[1] if shown else None}


def ballots_wire(rows) -> list[dict]:
    """Who chose what (named polls, instructors only): ``[{user:{id, display_name}, choices}]``."""
    out: dict[int, dict] = {}
    for uid, _username, name, option, _at in rows:
        out.setdefault(uid, {"user": {"id": str(uid), "display_name": name}, "choices": []})["choices"].append(option)
    return list(out.values())


def results_event(poll, room_id: int, counted: tuple[dict[int, int], int], ballots: list[dict] | None) -> dict:
    """``poll.results``: live counts (and, to instructors of a named poll, the ballots)."""
    event = {"type": "poll.results", "room": str(room_id), "message_id": str(poll.message_id),
             "version": poll.version, "closed": poll.closed_at is not None,
             "counts": count_list(poll, counted[0]), "voters": counted[1]}
    if ballots is not None:
        event["ballots"] = ballots
    return event
