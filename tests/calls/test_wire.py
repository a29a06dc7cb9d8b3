"""Calls on the wire (server/calls/wire.py): media states and signals parsed into typed values,
without a socket."""
from __future__ import annotations

import pytest

from server.calls.wire import (MAX_NEGOTIATION_ID, MAX_SDP_BYTES, parse_flag, parse_join_media, parse_media_change,
                               parse_peer_id, parse_target, signal_event)
from server.kernel.errors import BadRequest

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CAND = {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


@pytest.mark.parametrize("media,expected", [
    (None, {}),
    ({}, {}),
    ({"audio": True}, {"audio": True}),
    ({"audio": False, "video": True, "screen": False}, {"audio": False, "video": True, "screen": False}),
])
def test_join_media_is_none_or_a_subset_of_audio_video_screen(media, expected):
    """call.join's media may be absent or map any of audio/video/screen to booleans."""
    assert parse_join_media(media) == expected


@pytest.mark.parametrize("media", [{"audio": 1}, {"audio": "yes"}, {"mic": True}, [], "audio", True])
def test_join_media_refuses_other_keys_values_and_types(media):
    """Unknown media kinds, non-boolean values and non-objects are bad requests."""
    with pytest.raises(BadRequest):
        parse_join_media(media)


def test_media_change_keeps_only_the_media_fields():
    """call.media takes the media fields of the frame and ignores the others (type, id, session)."""
    msg = {"type": "call.media", "id": "7", "session": "3", "video": False, "screen": True}
    assert parse_media_change(msg) == {"video": False, "screen": True}


@pytest.mark.parametrize("msg", [{}, {"session": "3"}, {"audio": "on"}, {"audio": True, "video": None}])
def test_media_change_needs_at_least_one_boolean_media_field(msg):
    """call.media without any media field, or with a non-boolean one, is a bad request."""
    with pytest.raises(BadRequest):
        parse_media_change(msg)


def test_flags_and_peer_ids_must_have_their_types():
    """call.hand's raised must be a boolean; peer_id and to must be strings."""
    assert parse_flag({"raised": False}, "raised") is False
    assert parse_peer_id({"peer_id": "c0ffee"}) == "c0ffee" and parse_target({"to": "beef"}) == "beef"
    for bad in ({}, {"raised": 1}, {"raised": "true"}):
        with pytest.raises(BadRequest):
            parse_flag(bad, "raised")
    for bad in ({}, {"peer_id": 5}, {"to": None}):
        with pytest.raises(BadRequest):
            parse_peer_id(bad)
        with pytest.raises(BadRequest):
            parse_target(bad)


def test_an_offer_event_carries_session_sender_sdp_and_negotiation_id():
    """rtc.offer/answer become {type, session, from, sdp, negotiation_id} for the target, and nothing else of the frame."""
    msg = {"type": "rtc.offer", "id": "9", "session": "3", "to": "p2", "sdp": SDP, "negotiation_id": "n-1", "extra": 1}
    assert signal_event("rtc.offer", 3, "p1", msg) == {
        "type": "rtc.offer", "session": "3", "from": "p1", "sdp": SDP, "negotiation_id": "n-1"}
    answer = signal_event("rtc.answer", 3, "p2", {"sdp": {"type": "answer", "sdp": SDP}})
    assert answer["sdp"] == SDP and answer["negotiation_id"] is None  # an RTCSessionDescriptionInit is unwrapped


@pytest.mark.parametrize("negotiation_id", [None, "n", 0, 7, "x" * MAX_NEGOTIATION_ID, 10 ** (MAX_NEGOTIATION_ID - 1)])
def test_negotiation_ids_may_be_absent_short_strings_or_numbers(negotiation_id):
    """A negotiation_id is optional, and may be a string or an integer of up to 64 characters."""
    event = signal_event("rtc.ice", 1, "p", {"candidate": None, "negotiation_id": negotiation_id})
    assert event["negotiation_id"] == negotiation_id


@pytest.mark.parametrize("negotiation_id", [True, 1.5, ["n"], {"n": 1}, "x" * (MAX_NEGOTIATION_ID + 1),
                                            10 ** MAX_NEGOTIATION_ID])
def test_other_negotiation_ids_are_refused(negotiation_id):
    """A boolean, a float, a list or object, or more than 64 characters is a bad request."""
    with pytest.raises(BadRequest):
        signal_event("rtc.offer", 1, "p", {"sdp": SDP, "negotiation_id": negotiation_id})


def test_sdp_is_a_non_empty_string_up_to_the_size_limit():
    """An SDP of exactly MAX_SDP_BYTES passes; one more character, an empty or missing SDP, or a non-string is refused."""
    assert len(signal_event("rtc.offer", 1, "p", {"sdp": "v" * MAX_SDP_BYTES})["sdp"]) == MAX_SDP_BYTES
    for bad in ({"sdp": "v" * (MAX_SDP_BYTES + 1)}, {"sdp": ""}, {}, {"sdp": 42}, {"sdp": {"type": "offer"}}):
        with pytest.raises(BadRequest):
            signal_event("rtc.answer", 1, "p", bad)


@pytest.mark.parametrize("candidate", [CAND, CAND["candidate"], None])
def test_an_ice_candidate_is_an_object_a_string_or_null(candidate):
    """rtc.ice relays an object, a string or null (end of candidates) as the candidate, without an sdp field."""
    event = signal_event("rtc.ice", 2, "p", {"candidate": candidate, "negotiation_id": "n"})
    assert event == {"type": "rtc.ice", "session": "2", "from": "p", "candidate": candidate, "negotiation_id": "n"}


@pytest.mark.parametrize("candidate", [5, True, ["candidate:1"]])
def test_other_ice_candidates_are_refused(candidate):
    """A number, a boolean or a list as the ICE candidate is a bad request."""
    with pytest.raises(BadRequest):
        signal_event("rtc.ice", 2, "p", {"candidate": candidate})
