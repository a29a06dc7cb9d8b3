"""Cross-process notices (server/realtime/notices.py): the codec and the router, without I/O."""
from __future__ import annotations

import pytest

from server.realtime import notices
from server.realtime.notices import (BadNotice, Canary, MemberRemoved, Noop, NoticeRouter, PeerFrame, RoomFrame,
                                     RoomModerated, RoomsGap, SessionBan, SessionControl, SessionEnded, SessionFrame, UserFrame,
                                     WorkerNotice)

EVERY_KIND = [
    RoomFrame(7), RoomFrame(7, droppable=True, exclude_user=3, seqs=[[5, 10], [6, 12]]), RoomFrame(7, change=9),
    UserFrame(4), RoomsGap([1, 2]), Noop(), Canary(), MemberRemoved(7, 4), SessionFrame(2),
    SessionFrame(2, exclude="abc", outside_room=True), PeerFrame("c0ffee"), SessionBan(2, 4), SessionEnded(2),
    WorkerNotice("w1"), WorkerNotice("w1", target="p2", add=5, drop=6),
    RoomModerated(7), SessionControl(2, "hands"), SessionControl(2, "hands", peer="abc"), SessionControl(2, "policy", None, False, True),
    SessionControl(2, "admit", users=[4, 5]),
]


@pytest.mark.parametrize("notice", EVERY_KIND, ids=lambda n: type(n).__name__)
def test_every_notice_survives_the_round_trip_with_its_frame_and_origin(notice):
    """decode(encode(n, frame)) gives back an equal notice (origin included) and the same frame bytes."""
    notice.origin = "proc-a"
    frame = b"\x81\x05hello\n\x81\x01x"  # frames may contain newlines: only the first one splits
    back, got = notices.decode(notices.encode(notice, frame))
    assert back == notice and got == frame


def test_wire_letters_stay_those_of_the_previous_release():
    """The header keeps the letter codes older processes read during a rolling deploy."""
    assert notices.encode(RoomFrame(7, seqs=[[5, 10]], origin="o")) == b'{"k":"r","r":7,"s":[[5,10]],"o":"o"}\n'
    assert notices.encode(MemberRemoved(7, 4, origin="o")).startswith(b'{"k":"unsub","r":7,"u":4')
    assert notices.encode(SessionFrame(2, outside_room=True, origin="o")).startswith(b'{"k":"s","s":2,"nr":1')


@pytest.mark.parametrize("data", [b"not json\n", b'{"k":"zz"}\n', b'{"k":"r"}\n', b'[1]\n', b'{"k":"u","u":"x"}\n'])
def test_unreadable_messages_raise_bad_notice(data):
    """Malformed JSON, an unknown kind, a missing or non-integer field: BadNotice, never a crash elsewhere."""
    with pytest.raises(BadNotice):
        notices.decode(data)


def test_router_hands_each_type_to_its_one_handler():
    """A registered type reaches its handler with the frame; an unregistered one is reported unhandled;
    a second handler for one type is refused."""
    router, seen = NoticeRouter(), []
    router.on(SessionEnded, lambda n, f: seen.append((n.session, f)))
    assert router.route(SessionEnded(3), b"f") is True and seen == [(3, b"f")]
    assert router.route(SessionBan(3, 1), b"") is False
    with pytest.raises(ValueError):
        router.on(SessionEnded, lambda n, f: None)


@pytest.mark.parametrize("notice", EVERY_KIND, ids=lambda n: type(n).__name__)
def test_a_process_recognises_its_own_notices_without_decoding_them(notice):
    """is_from(encode(n), origin_tail(o)) holds for o's notices of every kind (whatever the frame
    holds) and not for another origin's, even one whose name ends the same or sits in the frame."""
    notice.origin = "proc-a"
    data = notices.encode(notice, b'{"o":"proc-b"}\n')
    assert notices.is_from(data, notices.origin_tail("proc-a"))
    assert not notices.is_from(data, notices.origin_tail("proc-b"))
    assert not notices.is_from(data, notices.origin_tail("c-a"))
    assert notices.is_canary(data) == (type(notice) is Canary)
