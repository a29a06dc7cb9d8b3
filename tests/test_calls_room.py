"""How calls live in their room: the live session in the room.join ack, abandoned calls."""
import pytest


async def test_room_join_ack_names_the_live_call(server):
    """room.join's ack carries the room's live session while a call runs, and null otherwise."""
    _, ana_tok = await server.user("jl_ana", "instructor")
    ben, ben_tok = await server.user("jl_ben")
    room = await server.room(ana_tok, members=[ben["id"]])
    a = await server.client(ana_tok)
    assert (await a.request("room.join", room=room["id"]))["live_session"] is None
    started = await a.request("call.start", room=room["id"])
    b = await server.client(ben_tok)
    ack = await b.request("room.join", room=room["id"])
    assert ack["live_session"]["id"] == started["session"]["id"]
    await a.request("call.end", session=started["session"]["id"])
    b2 = await server.client(ben_tok)
    assert (await b2.request("room.join", room=room["id"]))["live_session"] is None


@pytest.mark.parametrize("config_overrides", [{"call_end_grace_s": 0.3}])
async def test_a_call_nobody_instructs_ends_after_the_grace(server):
    """A call its instructor starts but never joins ends by itself after call_end_grace_s."""
    _, ana_tok = await server.user("ng_ana", "instructor")
    ben, ben_tok = await server.user("ng_ben")
    room = await server.room(ana_tok, members=[ben["id"]])
    a = await server.client(ana_tok)
    await a.request("room.join", room=room["id"])
    started = await a.request("call.start", room=room["id"])
    b = await server.client(ben_tok)
    await b.request("call.join", session=started["session"]["id"])
    ended = await a.next_event("call.ended", timeout=5)
    assert ended["session"]["id"] == started["session"]["id"] and ended["session"]["ended_at"]
