"""Recordings on the wire (server/recordings/wire.py): the media worker's and the instructor's
requests parsed into typed values, without a socket."""
from __future__ import annotations

import pytest

from server.db.models import ASSET_KINDS
from server.kernel.errors import BadRequest
from server.recordings.wire import (MAX_CAPACITY, MAX_LABEL_CHARS, CompletedAsset, Completion, Registration,
                                    WorkerStatus, parse_completion, parse_label, parse_registration,
                                    parse_worker_status)


def test_a_registration_keeps_the_ids_it_can_read_of_the_recordings_held():
    """worker.register gives worker_id, capacity and the held recording ids; ids that are not numbers are left out."""
    reg = parse_registration({"worker_id": "w1", "capacity": 2, "recordings": ["12", 13, "x", None]})
    assert reg == Registration("w1", 2, [12, 13])
    assert parse_registration({"worker_id": "w" * 64, "capacity": MAX_CAPACITY}).held == []


@pytest.mark.parametrize("msg", [
    {"worker_id": "w1", "capacity": 0},
    {"worker_id": "w1", "capacity": MAX_CAPACITY + 1},
    {"worker_id": "w1", "capacity": True},
    {"worker_id": "w1", "capacity": "2"},
    {"worker_id": "w1"},
    {"worker_id": "", "capacity": 1},
    {"worker_id": "w" * 65, "capacity": 1},
    {"worker_id": 7, "capacity": 1},
    {"worker_id": "w1", "capacity": 1, "recordings": "12"},
    {"worker_id": "w1", "capacity": 1, "recordings": list(range(MAX_CAPACITY + 1))},
])
def test_a_registration_with_a_bad_capacity_worker_id_or_list_is_refused(msg):
    """Capacity outside 1..64, a worker_id that is not 1-64 characters, or recordings that are not a short list: bad request."""
    with pytest.raises(BadRequest):
        parse_registration(msg)


def test_worker_status_carries_a_percent_only_while_processing():
    """processing needs a percent (truncated to an int); other states ignore it; detail is kept as text when given."""
    assert parse_worker_status({"recording": "5", "state": "processing", "percent": 42.9}) == \
        WorkerStatus(5, "processing", 42, None)
    assert parse_worker_status({"recording": "5", "state": "recording", "percent": 500}) == \
        WorkerStatus(5, "recording", None, None)
    assert parse_worker_status({"recording": "5", "state": "failed", "detail": 404}).detail == "404"
    assert parse_worker_status({"recording": "5", "state": "stopped", "detail": ""}).detail is None


def test_worker_status_carries_an_estimate_and_a_fallback_while_processing():
    """Issue 15.4: ``eta_s`` (seconds left, rounded) and ``fallback`` (why the video is built
    after the class) ride along a processing status."""
    st = parse_worker_status({"recording": "5", "state": "processing", "percent": 10, "eta_s": 95.6,
                              "fallback": "could_not_keep_up"})
    assert (st.percent, st.eta_s, st.fallback) == (10, 96, "could_not_keep_up")
    assert parse_worker_status({"recording": "5", "state": "processing", "percent": 10}).eta_s is None


@pytest.mark.parametrize("msg", [
    {"recording": "5", "state": "ready"},
    {"recording": "5"},
    {"recording": "five", "state": "recording"},
    {"state": "recording"},
    {"recording": "5", "state": "processing"},
    {"recording": "5", "state": "processing", "percent": 101},
    {"recording": "5", "state": "processing", "percent": -1},
    {"recording": "5", "state": "processing", "percent": True},
    {"recording": "5", "state": "processing", "percent": "50"},
    {"recording": "5", "state": "processing", "percent": 5, "eta_s": -1},
    {"recording": "5", "state": "processing", "percent": 5, "eta_s": "soon"},
    {"recording": "5", "state": "processing", "percent": 5, "eta_s": True},
    {"recording": "5", "state": "processing", "percent": 5, "fallback": "tired"},
])
def test_worker_status_refuses_unknown_states_ids_and_percents(msg):
    """An unknown state, a missing or unreadable recording id, or a processing percent outside 0..100: bad request."""
    with pytest.raises(BadRequest):
        parse_worker_status(msg)


def test_a_completion_lists_its_assets_and_durations():
    """A completion gives each asset's name, kind and duration, and the total duration as a float."""
    done = parse_completion({"assets": [{"name": "class.mp4", "kind": "composite", "duration_s": 61.5},
                                        {"name": "chat.json", "kind": "chat"}], "duration_s": 62})
    assert done == Completion([CompletedAsset("class.mp4", "composite", 61.5), CompletedAsset("chat.json", "chat", None)],
                              62.0)
    assert isinstance(done.duration_s, float)
    assert parse_completion({"assets": [{"name": "m", "kind": kind} for kind in ASSET_KINDS]}).duration_s is None


@pytest.mark.parametrize("body", [
    {},
    {"assets": []},
    {"assets": "class.mp4"},
    {"assets": [{"name": "x", "kind": "video"}]},
    {"assets": [{"kind": "composite"}]},
    {"assets": [{"name": 3, "kind": "composite"}]},
    {"assets": ["class.mp4"]},
    {"assets": [{"name": "x", "kind": "chat", "duration_s": "10"}]},
    {"assets": [{"name": "x", "kind": "chat"}], "duration_s": -1},
    {"assets": [{"name": "x", "kind": "chat"}], "duration_s": True},
])
def test_a_completion_without_valid_assets_or_durations_is_refused(body):
    """No assets, an asset without a name or with an unknown kind, or a duration that is not a non-negative number: bad request."""
    with pytest.raises(BadRequest):
        parse_completion(body)


def test_a_label_is_stripped_and_bounded():
    """A mark's label is stripped; up to 200 characters pass."""
    assert parse_label("  Chapter 2: waves \n") == "Chapter 2: waves"
    assert parse_label("L" * MAX_LABEL_CHARS) == "L" * MAX_LABEL_CHARS


@pytest.mark.parametrize("label", ["", "   \n", None, 5, "L" * (MAX_LABEL_CHARS + 1)])
def test_an_empty_long_or_non_text_label_is_refused(label):
    """An empty or blank label, one over 200 characters, or a non-string: bad request."""
    with pytest.raises(BadRequest):
        parse_label(label)


@pytest.mark.parametrize("rid", [True, 1.5, " 1_2 ", "-3", str(2**63), None])
def test_recording_ids_follow_the_kernels_id_rule(rid):
    """A worker's recording id is a wire id (digits), never a bool, a float, a signed or an oversized number."""
    with pytest.raises(BadRequest):
        parse_worker_status({"recording": rid, "state": "recording"})


def test_label_length_counts_after_trimming():
    """A label of 200 characters plus surrounding spaces is accepted (the limit applies to what is stored)."""
    assert parse_label("  " + "x" * 200 + "  ") == "x" * 200
