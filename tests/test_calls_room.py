"""How calls show up in their room: the live session in the room.join ack."""


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
