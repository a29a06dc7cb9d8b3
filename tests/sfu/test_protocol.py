"""Unit tests of server/sfu/protocol.py (transactions, routing) and videoroom.py / rooms.py
request builders: no socket, no Janus."""
from __future__ import annotations

import pytest

from server.sfu import videoroom as vr
from server.sfu.protocol import JanusError, Transactions, request
from server.sfu.rooms import room_spec


def test_transaction_ids_are_unique_and_pending_until_answered():
    """Every request gets a new id; it stays pending until its answer arrives."""
    t = Transactions()
    a, b = t.new("create"), t.new("attach", 7)
    assert a != b and set(t.pending) == {a, b}
    routed = t.receive({"janus": "success", "transaction": a, "data": {"id": 42}})
    assert routed.transaction == a and routed.reply.data == {"id": 42}
    assert set(t.pending) == {b}


def test_an_ack_answers_keepalive_and_trickle_only():
    """``ack`` resolves keepalive/trickle; a plugin message waits past it for its event."""
    t = Transactions()
    ka, msg = t.new("keepalive", 1), t.new("message", 1)
    assert t.receive({"janus": "ack", "transaction": ka, "session_id": 1}).reply.janus == "ack"
    assert t.receive({"janus": "ack", "transaction": msg, "session_id": 1}) is None
    assert t.pending[msg].acked
    routed = t.receive({"janus": "event", "transaction": msg, "session_id": 1, "sender": 9,
                        "plugindata": {"plugin": vr.PLUGIN, "data": {"videoroom": "joined", "id": 5}},
                        "jsep": {"type": "answer", "sdp": "v=0"}})
    assert routed.reply.data == {"videoroom": "joined", "id": 5} and routed.reply.jsep["type"] == "answer"
    assert not t.pending


def test_core_and_plugin_errors_become_janus_errors():
    """A core ``error`` and a plugin ``error_code`` (in a success or an event) are errors."""
    t = Transactions()
    a, b, c = t.new("create"), t.new("message"), t.new("message")
    e = t.receive({"janus": "error", "transaction": a, "error": {"code": 403, "reason": "Unauthorized request"}}).error
    assert isinstance(e, JanusError) and e.code == 403 and not e.plugin
    e = t.receive({"janus": "success", "transaction": b, "plugindata": {
        "data": {"videoroom": "event", "error_code": 427, "error": "Room exists"}}}).error
    assert e.code == 427 and e.plugin
    e = t.receive({"janus": "event", "transaction": c, "plugindata": {
        "data": {"videoroom": "event", "error_code": 428, "error": "No such feed"}}}).error
    assert e.code == 428 and e.plugin


def test_unsolicited_events_are_routed_by_session_and_sender():
    """A message with no pending transaction is an event for (session_id, sender)."""
    t = Transactions()
    for msg in ({"janus": "webrtcup", "session_id": 3, "sender": 4},
                {"janus": "event", "session_id": 3, "sender": 4, "transaction": "someone-else",
                 "plugindata": {"data": {"videoroom": "talking"}}},
                {"janus": "timeout", "session_id": 3}):
        routed = t.receive(msg)
        assert routed.event is msg and routed.session_id == 3 and routed.transaction is None
        assert routed.sender == msg.get("sender")


def test_drain_forgets_everything_pending():
    """A closed socket fails every pending request at once."""
    t = Transactions()
    ids = {t.new("create"), t.new("message")}
    assert set(t.drain()) == ids and not t.pending


def test_request_carries_secret_and_leaves_out_none():
    """Requests carry the api secret when set; None fields are omitted."""
    assert request("keepalive", "p1", "s3", session_id=5, handle_id=None) == {
        "janus": "keepalive", "transaction": "p1", "apisecret": "s3", "session_id": 5}
    assert "apisecret" not in request("info", "p2", None)


def test_videoroom_bodies():
    """The VideoRoom bodies Podium sends: private rooms with talking events, multistream
    subscriptions, moderation by stream mid."""
    room = vr.create_room(77, "sec", admin_key="ak")
    assert room["request"] == "create" and room["secret"] == "sec" and room["admin_key"] == "ak"
    assert room["is_private"] and room["audiolevel_event"] and not room["permanent"]
    assert "admin_key" not in vr.create_room(77, "sec")
    assert vr.join_subscriber(77, [1, 2])["streams"] == [{"feed": 1}, {"feed": 2}]
    assert vr.moderate(77, "sec", 5, "1", True) == {"request": "moderate", "room": 77, "secret": "sec",
                                                    "id": 5, "mid": "1", "mute": True}
    assert vr.kick(77, "sec", 5) == {"request": "kick", "room": 77, "secret": "sec", "id": 5}
    assert vr.join_publisher(77, display="T") == {"request": "join", "ptype": "publisher", "room": 77, "display": "T"}


@pytest.mark.parametrize("session", ["1", "abc", "9" * 40])
def test_room_spec_is_stable_and_keyed(session):
    """A call session's room id and secret are the same every time under one key, differ
    under another, and the id fits a JSON number exactly."""
    a, b = room_spec(b"k1" * 16, session), room_spec(b"k1" * 16, session)
    assert a == b and 0 < a.room < 2 ** 52 and len(a.secret) >= 30
    other = room_spec(b"k2" * 16, session)
    assert other.room != a.room and other.secret != a.secret
