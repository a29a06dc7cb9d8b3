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


@pytest.mark.parametrize("config_overrides", [{"call_end_grace_s": 2.0}])
async def test_a_call_nobody_instructs_ends_after_the_grace(server):
    """A call its instructor starts but never joins ends by itself after call_end_grace_s,
    even with a student in it. (Both sockets connect before the start: under CI load a
    connection's hello once took longer than a short grace, and the call had ended.)"""
    _, ana_tok = await server.user("ng_ana", "instructor")
    ben, ben_tok = await server.user("ng_ben")
    room = await server.room(ana_tok, members=[ben["id"]])
    a = await server.client(ana_tok)
    b = await server.client(ben_tok)
    await a.request("room.join", room=room["id"])
    started = await a.request("call.start", room=room["id"])
    await b.request("call.join", session=started["session"]["id"])
    ended = await a.next_event("call.ended", timeout=15)
    assert ended["session"]["id"] == started["session"]["id"] and ended["session"]["ended_at"]


async def test_call_start_and_end_are_system_messages(server):
    """Starting and ending a call each leave a system message in the room's history."""
    _, ana_tok = await server.user("sm_ana", "instructor", display_name="Ana Lima")
    room = await server.room(ana_tok)
    a = await server.client(ana_tok)
    await a.request("room.join", room=room["id"])
    started = await a.request("call.start", room=room["id"])
    await a.request("call.end", session=started["session"]["id"])
    sync = await a.request("room.sync", room=room["id"], since=0)
    notes = [(m["kind"], m["content"]) for m in sync["messages"]]
    assert notes == [("system", "Ana Lima started a call"), ("system", "The call ended (1 min)")]


async def test_join_with_initial_media_state(server):
    """call.join may carry the joiner's media state; the others see it in participant_joined."""
    _, ana_tok = await server.user("im_ana", "instructor")
    ben, ben_tok = await server.user("im_ben")
    room = await server.room(ana_tok, members=[ben["id"]])
    a = await server.client(ana_tok)
    sid = (await a.request("call.start", room=room["id"]))["session"]["id"]
    await a.request("call.join", session=sid)
    b = await server.client(ben_tok)
    await b.request("call.join", session=sid, media={"audio": True, "video": True})
    ev = await a.next_event("call.participant_joined")
    assert ev["participant"]["media"] == {"audio": True, "video": True, "screen": False}
    c = await server.client(ben_tok)
    err = await c.request_raw("call.join", session=sid, media={"audio": "yes"})
    assert err["type"] == "error" and err["code"] == "bad_request"


async def test_concurrent_starts_make_one_live_call(server):
    """Two instructors starting a call in one room at the same moment get the same session."""
    import asyncio

    _, ana_tok = await server.user("cs_ana", "instructor")
    cid, cid_tok = await server.user("cs_cid", "instructor")
    room = await server.room(ana_tok)
    await server.http("POST", f"/api/rooms/{room['id']}/members", ana_tok,
                      {"user_id": cid["id"], "role": "instructor"})
    a = await server.client(ana_tok)
    c = await server.client(cid_tok)
    results = await asyncio.gather(*(cl.request("call.start", room=room["id"]) for cl in (a, c, a, c)))
    assert len({r["session"]["id"] for r in results}) == 1
    status, body = await server.http("GET", f"/api/rooms/{room['id']}/sessions", ana_tok)
    assert [s["ended_at"] for s in body["sessions"]] == [None]
