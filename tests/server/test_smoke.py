"""Smoke tests of the fixtures: the server answers and chat round-trips."""


async def test_healthz(server):
    """GET /healthz answers 200 with status ok when the database answers."""
    status, body = await server.http("GET", "/healthz")
    assert status == 200 and body["status"] == "ok"


async def test_two_users_chat(server):
    """A message sent by one member reaches another member's socket, acked after store."""
    ana, ana_tok = await server.user("ana", "instructor")
    ben, ben_tok = await server.user("ben")
    room = await server.room(ana_tok, members=[ben["id"]])
    a = await server.client(ana_tok)
    b = await server.client(ben_tok)
    await a.request("room.join", room=room["id"])
    await b.request("room.join", room=room["id"])
    ack = await a.request("message.send", room=room["id"], client_msg_id="m1", content="hello")
    assert ack["message"]["seq"] == 1
    ev = await b.next_event("message.new")
    assert ev["message"]["content"] == "hello" and ev["message"]["sender"]["id"] == ana["id"]
