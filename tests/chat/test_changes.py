"""room.changes: a reconnecting client catches up on edits, deletes and reactions it missed."""


async def _setup(server):
    _, ana_tok = await server.user("chg_ana", "instructor")
    ben, ben_tok = await server.user("chg_ben")
    room = await server.room(ana_tok, members=[ben["id"]])
    a = await server.client(ana_tok)
    await a.request("room.join", room=room["id"])
    ids = []
    for i in range(4):
        ack = await a.request("message.send", room=room["id"], client_msg_id=f"c{i}", content=f"m{i}")
        ids.append(ack["message"]["id"])
    return a, ben_tok, room, ids


async def test_changes_while_offline_are_returned_in_change_order(server):
    """Edits, deletes and reaction changes made while a member was away come back from
    room.changes with their current state, and nothing else does."""
    a, ben_tok, room, ids = await _setup(server)
    b = await server.client(ben_tok)
    join = await b.request("room.join", room=room["id"])
    known = join["last_change"]
    b.close()
    await a.request("message.edit", message_id=ids[0], content="m0 edited")
    await a.request("message.delete", message_id=ids[1])
    await a.request("message.react", message_id=ids[2], emoji="👍", on=True)
    b2 = await server.client(ben_tok)
    await b2.request("room.join", room=room["id"])
    data = await b2.request("room.changes", room=room["id"], since=known)
    assert data["complete"] is True
    got = {m["id"]: m for m in data["messages"]}
    assert [m["id"] for m in data["messages"]] == ids[:3]
    assert got[ids[0]]["content"] == "m0 edited" and got[ids[0]]["edited_at"]
    assert got[ids[1]]["deleted_at"] and got[ids[1]]["content"] == ""
    assert got[ids[2]]["reactions"] == {"👍": [a.hello["user"]["id"]]}
    again = await b2.request("room.changes", room=room["id"], since=data["last_change"])
    assert again["messages"] == [] and again["complete"] is True


async def test_changes_page_until_complete(server):
    """room.changes pages: with limit 1 each page returns one change and a last_change to go on from."""
    a, ben_tok, room, ids = await _setup(server)
    for i in range(3):
        await a.request("message.edit", message_id=ids[i], content=f"edit {i}")
    b = await server.client(ben_tok)
    since, seen = 0, []
    while True:
        data = await b.request("room.changes", room=room["id"], since=since, limit=1)
        seen += [m["id"] for m in data["messages"]]
        since = data["last_change"]
        if data["complete"]:
            break
    assert seen == ids[:3]


async def test_changes_need_membership(server):
    """A non-member gets forbidden from room.changes."""
    _, _, room, _ = await _setup(server)
    _, eve_tok = await server.user("chg_eve")
    e = await server.client(eve_tok)
    data = await e.request_raw("room.changes", room=room["id"], since=0)
    assert data["type"] == "error" and data["code"] == "forbidden"
