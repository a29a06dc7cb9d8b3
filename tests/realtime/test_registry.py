"""Registry (server/realtime/registry.py): who is subscribed where, presence transitions, and
local fan-out, with fake connections (the registry only needs ``connection_id``, ``user_id``,
``rooms`` and ``send_frame``) and no bus (one process)."""
from __future__ import annotations

import json

from server.kernel.frames import event_frame
from server.realtime.registry import Registry


class FakeConn:
    """A socket as the registry sees it; records every frame written to it. ``on_send`` runs
    after each write, as a real socket may close itself there (a slow consumer)."""

    def __init__(self, connection_id: str, user_id: int, on_send=None):
        self.connection_id, self.user_id, self.rooms = connection_id, user_id, set()
        self.sent: list[tuple[bytes, bool]] = []
        self.on_send = on_send

    def send_frame(self, frame: bytes, droppable: bool = False) -> None:
        self.sent.append((frame, droppable))
        if self.on_send is not None:
            self.on_send(self)


def payload(frame: bytes) -> dict:
    """The JSON of one short unmasked text frame (2-byte header)."""
    assert frame[0] == 0x81 and frame[1] < 126
    return json.loads(frame[2:])


def registry_with(*conns: FakeConn, room: int | None = None) -> Registry:
    reg = Registry()
    for c in conns:
        reg.add(c)
        if room is not None:
            reg.subscribe(c, room)
    return reg


def test_add_is_true_for_the_users_first_socket_only():
    """add() answers True for a user's first socket and False for the next ones."""
    reg = Registry()
    assert reg.add(FakeConn("a1", 1)) is True
    assert reg.add(FakeConn("a2", 1)) is False
    assert reg.add(FakeConn("b1", 2)) is True
    assert {c.connection_id for c in reg.user_sockets(1)} == {"a1", "a2"}


def test_subscribe_is_true_only_when_the_user_comes_online_in_the_room():
    """subscribe() is True for the user's first socket in the room, False for a second socket or a repeat."""
    a1, a2, b = FakeConn("a1", 1), FakeConn("a2", 1), FakeConn("b", 2)
    reg = registry_with(a1, a2, b)
    assert reg.subscribe(a1, 7) is True
    assert reg.subscribe(a2, 7) is False
    assert reg.subscribe(a1, 7) is False
    assert reg.subscribe(b, 7) is True
    assert reg.subscribe(a2, 8) is True  # per room
    assert a1.rooms == {7} and a2.rooms == {7, 8}


def test_unsubscribe_is_true_only_when_the_users_last_socket_leaves_the_room():
    """unsubscribe() is True when the user's last socket in the room leaves; False before, and for a socket not in it."""
    a1, a2, b = FakeConn("a1", 1), FakeConn("a2", 1), FakeConn("b", 2)
    reg = registry_with(a1, a2, b, room=7)
    assert reg.unsubscribe(b, 8) is False
    assert reg.unsubscribe(a1, 7) is False
    assert reg.online(7) == ["1", "2"]
    assert reg.unsubscribe(a2, 7) is True
    assert reg.unsubscribe(a2, 7) is False
    assert reg.online(7) == ["2"] and a2.rooms == set()


def test_online_lists_user_ids_once_each_in_numeric_order():
    """online() lists each online user once, as id strings in numeric order; an empty room lists nobody."""
    reg = registry_with(FakeConn("x", 10), FakeConn("y", 2), FakeConn("z", 10), room=7)
    assert reg.online(7) == ["2", "10"]
    assert reg.online(99) == []


def test_remove_reports_rooms_where_the_user_went_offline_and_whether_the_user_is_gone():
    """remove() returns the rooms with no socket of the user left and whether the user has no socket left at all."""
    a1, a2 = FakeConn("a1", 1), FakeConn("a2", 1)
    reg = registry_with(a1, a2)
    for room in (7, 8):
        reg.subscribe(a1, room)
    reg.subscribe(a2, 8)
    reg.status[1] = "away"
    assert reg.remove(a1) == ([7], False)
    assert reg.online(7) == [] and reg.online(8) == ["1"]
    assert reg.user_sockets(1) == {a2} and "a1" not in reg.connections
    assert reg.status[1] == "away"  # the user is still connected
    assert reg.remove(a2) == ([8], True)
    assert reg.user_sockets(1) == set() and 1 not in reg.status and reg.connections == {}


def test_broadcast_encodes_once_and_writes_the_same_bytes_object_to_every_subscriber():
    """broadcast() frames the event once: every subscriber gets the very same bytes object; others get nothing."""
    subs = [FakeConn(f"c{i}", i) for i in range(1, 4)]
    outsider = FakeConn("out", 9)
    reg = registry_with(*subs, room=7)
    reg.add(outsider)
    event = {"type": "typing", "room": "7", "user_id": "1", "active": True}
    assert reg.broadcast(7, event) == 3
    frames = [c.sent[0][0] for c in subs]
    assert all(f is frames[0] for f in frames)
    assert frames[0] == event_frame(event) and payload(frames[0]) == event
    assert outsider.sent == []


def test_exclude_user_skips_every_socket_of_that_user():
    """exclude_user leaves out all of that user's sockets and counts only the others."""
    a1, a2, b = FakeConn("a1", 1), FakeConn("a2", 1), FakeConn("b", 2)
    reg = registry_with(a1, a2, b, room=7)
    assert reg.broadcast(7, {"type": "typing"}, exclude_user=1) == 1
    assert a1.sent == [] and a2.sent == [] and len(b.sent) == 1


def test_droppable_is_passed_through_to_each_socket():
    """The droppable flag of a broadcast reaches every socket's send_frame; frames are not droppable by default."""
    a, b = FakeConn("a", 1), FakeConn("b", 2)
    reg = registry_with(a, b, room=7)
    reg.broadcast(7, {"type": "typing"}, droppable=True)
    reg.broadcast(7, {"type": "message.new", "message": {"seq": 1}})
    assert [d for _, d in a.sent] == [True, False] and [d for _, d in b.sent] == [True, False]


def test_a_socket_leaving_the_room_while_it_is_written_does_not_break_the_broadcast():
    """A subscriber that unsubscribes itself during send_frame (a slow consumer closing) does not stop the others' delivery."""
    reg = Registry()
    quitter = FakeConn("q", 1, on_send=lambda c: reg.unsubscribe(c, 7))
    others = [FakeConn(f"o{i}", i) for i in range(2, 5)]
    for c in (quitter, *others):
        reg.add(c)
        reg.subscribe(c, 7)
    assert reg.broadcast(7, {"type": "typing"}) == 4
    assert all(len(c.sent) == 1 for c in others)
    assert reg.online(7) == ["2", "3", "4"]


def test_send_to_iterates_over_a_copy_of_the_live_set():
    """send_user() on the user's live socket set survives a socket removing itself mid-loop; every socket gets the frame."""
    reg = Registry()
    closing = FakeConn("c1", 1, on_send=reg.remove)
    rest = [FakeConn(f"c{i}", 1) for i in range(2, 5)]
    for c in (closing, *rest):
        reg.add(c)
    frame = event_frame({"type": "room.added"})
    assert reg.send_user(1, frame) == 4
    assert all(c.sent == [(frame, False)] for c in rest) and closing.sent == [(frame, False)]
    assert reg.user_sockets(1) == set(rest)


def test_deliveries_count_every_frame_written_by_fan_out():
    """deliveries adds up the frames written by broadcasts and user sends, not the excluded or absent sockets."""
    a1, a2, b = FakeConn("a1", 1), FakeConn("a2", 1), FakeConn("b", 2)
    reg = registry_with(a1, a2, b, room=7)
    reg.broadcast(7, {"type": "typing"})
    reg.broadcast(7, {"type": "typing"}, exclude_user=2)
    reg.send_user(1, event_frame({"type": "x"}))
    assert reg.broadcast(99, {"type": "typing"}) == 0
    assert reg.send_user(42, b"") == 0
    assert reg.deliveries == 3 + 2 + 2
