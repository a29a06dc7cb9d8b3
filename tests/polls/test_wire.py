"""Polls' wire parsing and shapes (server/polls/wire.py); no I/O."""
from __future__ import annotations

import json
from datetime import datetime
from types import SimpleNamespace

import pytest

from server.kernel.errors import BadRequest, TooLarge
from server.polls.wire import ballots_wire, option_list, parse_new, public_wire, results_event


def poll(**kw):
    values = dict(message_id=7, options=json.dumps(["a", "b", "c"]), multiple=False, anonymous=False,
                  correct=json.dumps([2]), results_public=False, closed_at=None, version=4)
    values.update(kw)
    return SimpleNamespace(**values)


def test_a_new_poll_is_trimmed_and_its_correct_options_sorted():
    """Question and options are trimmed; ``correct`` comes back sorted; flags default to false."""
    new = parse_new({"question": "  Why?  ", "options": [" x ", "y", "z"], "multiple": True, "correct": [2, 0]})
    assert (new.question, new.options, new.correct) == ("Why?", ["x", "y", "z"], [0, 2])
    assert (new.multiple, new.anonymous, new.results_public, new.client_msg_id) == (True, False, False, None)


@pytest.mark.parametrize("body, error", [
    ({"options": ["x", " x"]}, BadRequest),  # the same once trimmed
    ({"options": ["x"] * 1}, BadRequest),
    ({"question": None}, BadRequest),
    ({"question": "q" * 501}, TooLarge),
    ({"correct": [True]}, BadRequest),
])
def test_bad_new_polls_are_refused(body, error):
    """Each malformed field raises the named error."""
    with pytest.raises(error):
        parse_new({"question": "Q?", "options": ["x", "y"], **body})


def test_choices_are_distinct_in_range_and_one_unless_multiple():
    """option_list sorts a valid answer and refuses repeats, out-of-range, booleans, several on a
    single-choice poll and an empty list."""
    assert option_list([2, 0], 3, True, "choices") == [0, 2]
    for bad, multiple in (([0, 0], True), ([3], False), ([False], False), ([0, 1], False), ([], True), ((0,), False)):
        with pytest.raises(BadRequest):
            option_list(bad, 3, multiple, "choices")


def test_the_public_field_hides_the_answer_until_closed_and_counts_until_shared():
    """Open: no correct answer, no counts (even when counted); closed: the answer; shared: counts
    in option order with zeros and the number of voters."""
    open_ = public_wire(poll(), ({1: 2}, 2))
    assert open_["correct"] is None and open_["counts"] is None and open_["voters"] is None and open_["quiz"]
    closed = public_wire(poll(closed_at=datetime(2026, 12, 6, 10, 0, 0)), None)
    assert closed["closed"] and closed["correct"] == [2] and closed["closed_at"] == "2026-12-06T10:00:00.000Z"
    shared = public_wire(poll(results_public=True), ({1: 2, 2: 1}, 3))
    assert shared["counts"] == [0, 2, 1] and shared["voters"] == 3


def test_results_carry_ballots_only_when_given():
    """poll.results has ballots (grouped per voter) for instructors, none for the room."""
    ballots = ballots_wire([(5, "ben", "Ben", 0, None), (5, "ben", "Ben", 2, None), (6, "cat", "Cat", 1, None)])
    assert ballots == [{"user": {"id": "5", "display_name": "Ben"}, "choices": [0, 2]},
                       {"user": {"id": "6", "display_name": "Cat"}, "choices": [1]}]
    room_event = results_event(poll(), 3, ({0: 1}, 1), None)
    assert "ballots" not in room_event and room_event["counts"] == [1, 0, 0] and room_event["version"] == 4
    assert results_event(poll(), 3, ({0: 1}, 1), ballots)["ballots"] == ballots
