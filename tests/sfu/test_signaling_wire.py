"""Unit tests of the sfu.* request parsing and the subscription streams shape
(server/calls/sfu_signaling.py): no socket, no Janus."""
from __future__ import annotations

import pytest

from server.calls.sfu_wire import parse_ice, parse_sdp, streams_wire
from server.kernel.errors import BadRequest


def test_sdp_is_a_bounded_string_or_a_description():
    """``sdp`` is a non-empty string (or an RTCSessionDescriptionInit) of at most 60 KiB."""
    assert parse_sdp({"sdp": "v=0\r\n"}) == "v=0\r\n"
    assert parse_sdp({"sdp": {"type": "offer", "sdp": "v=0\r\n"}}) == "v=0\r\n"
    for bad in ({}, {"sdp": ""}, {"sdp": 5}, {"sdp": "v" * (60 * 1024 + 1)}):
        with pytest.raises(BadRequest):
            parse_sdp(bad)


def test_ice_names_a_target_and_keeps_only_candidate_fields():
    """``target`` is publish or subscribe; a candidate keeps candidate/sdpMid/sdpMLineIndex
    and nothing else; null ends the candidates."""
    cand = {"candidate": "candidate:1 1 udp 1 10.77.0.2 5000 typ host", "sdpMid": "0",
            "sdpMLineIndex": 0, "usernameFragment": "x", "extra": {"a": 1}}
    assert parse_ice({"target": "publish", "candidate": cand}) == (
        "publish", {"candidate": cand["candidate"], "sdpMid": "0", "sdpMLineIndex": 0})
    assert parse_ice({"target": "subscribe", "candidate": None}) == ("subscribe", None)
    for bad in ({"target": "both", "candidate": None}, {"candidate": None},
                {"target": "publish", "candidate": "candidate:1"}, {"target": "publish", "candidate": {}},
                {"target": "publish", "candidate": {"candidate": "c" * 2000}}):
        with pytest.raises(BadRequest):
            parse_ice(bad)


def test_streams_name_the_publisher_by_peer_id():
    """Janus's subscription streams become {mid, type, peer_id, feed}; data channels are left out."""
    streams = [{"type": "audio", "mid": "0", "feed_id": 7, "feed_display": "peer-a"},
               {"type": "video", "mid": "1", "feed_id": 7, "feed_display": "peer-a"},
               {"type": "data", "mid": "2"}]
    assert streams_wire(streams) == [{"mid": "0", "type": "audio", "peer_id": "peer-a", "feed": "7"},
                                     {"mid": "1", "type": "video", "peer_id": "peer-a", "feed": "7"}]
