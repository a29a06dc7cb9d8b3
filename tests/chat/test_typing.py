"""Typing notices are broadcast only when they change what a room's members see
(server/chat/typing.py, docs/PROTOCOL-ADDITIONS.md "Typing"): a message ends its sender's
typing without a notice, a repeated ``active:true`` within the refresh interval and an
``active:false`` for someone not shown typing are dropped."""
from __future__ import annotations

from server.chat.typing import REFRESH_S, STALE_S, TypingRelay
from tests.chat.test_ws_chat import classroom, drain, joined, send


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_relay_rules_with_a_fake_clock():
    clock = FakeClock()
    relay = TypingRelay(clock)
    assert relay.should_relay(1, 7, False) is False  # not shown typing: nothing to clear
    assert relay.should_relay(1, 7, True) is True
    clock.t += REFRESH_S / 2
    assert relay.should_relay(1, 7, True) is False  # receivers still show it
    clock.t += REFRESH_S
    assert relay.should_relay(1, 7, True) is True  # a refresh before receivers expire it
    assert relay.should_relay(2, 7, True) is True  # rooms are separate
    relay.ended(1, 7)  # a message from user 7 in room 1
    assert relay.should_relay(1, 7, False) is False
    assert relay.should_relay(2, 7, False) is True
    assert relay.should_relay(1, 8, True) is True
    clock.t += STALE_S  # a client that vanished while typing: receivers expired it
    assert relay.should_relay(1, 8, False) is False
    assert relay.should_relay(1, 8, True) is True
    assert relay.should_relay(1, 8, False) is True
    assert len(relay) == 0


def test_tracked_entries_are_bounded(monkeypatch):
    from server.chat import typing
    monkeypatch.setattr(typing, "MAX_ENTRIES", 100)
    clock = FakeClock()
    relay = TypingRelay(clock)
    for user in range(100):
        relay.should_relay(1, user, True)
    clock.t += STALE_S
    relay.should_relay(1, 1000, True)  # the 101st: the stale ones are swept first
    assert len(relay) == 1


async def test_a_message_ends_typing_without_a_notice(server):
    """typing on → send → typing off, as a client does: the room sees typing on and the
    message, and no typing off (its message.new clears the indicator)."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    b = await joined(server, k.ben_tok, k.rid)
    a.send({"type": "typing", "room": k.rid, "active": True})
    await send(a, k.rid, "t1")
    assert await a.request("typing", room=k.rid, active=False) == {}
    seen = [(e["type"], e.get("active")) for e in await drain(b, 0.5) if e["type"] in ("typing", "message.new")]
    assert seen == [("typing", True), ("message.new", None)]


async def test_repeats_and_stray_offs_are_not_broadcast(server):
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    b = await joined(server, k.ben_tok, k.rid)
    assert await a.request("typing", room=k.rid, active=False) == {}  # never shown typing
    for _ in range(3):
        assert await a.request("typing", room=k.rid, active=True) == {}
    assert await a.request("typing", room=k.rid, active=False) == {}
    assert await a.request("typing", room=k.rid, active=False) == {}
    typing = [e["active"] for e in await drain(b, 0.5) if e["type"] == "typing"]
    assert typing == [True, False]


async def test_leaving_the_room_ends_typing(server):
    """After the typer's socket leaves, their next active:true is news again."""
    k = await classroom(server)
    a = await joined(server, k.ana_tok, k.rid)
    b = await joined(server, k.ben_tok, k.rid)
    assert await a.request("typing", room=k.rid, active=True) == {}
    assert await a.request("room.leave", room=k.rid) == {}
    await a.request("room.join", room=k.rid)
    assert await a.request("typing", room=k.rid, active=True) == {}
    typing = [e["active"] for e in await drain(b, 0.5) if e["type"] == "typing"]
    assert typing == [True, True]
