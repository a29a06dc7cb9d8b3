"""Polls and quick quizzes (issue 16.1, docs/PROTOCOL-ADDITIONS.md "Polls"): a real server on
a free port, real WebSocket clients; runs on SQLite and on PostgreSQL (+ Redis in that pass)."""
from __future__ import annotations

import asyncio
import csv
import io

import pytest

from tests.api import assert_error
from tests.chat.test_ws_chat import classroom, expect_error, joined
from tests.wsclient import WsClient

QUESTION = "Which planets are gas giants?"
OPTIONS = ["Mars", "Jupiter", "Saturn", "Venus"]


async def create(client: WsClient, room: str, **fields) -> dict:
    body = {"question": QUESTION, "options": OPTIONS, **fields}
    return (await client.request("poll.create", room=room, **body))["message"]


async def results_until(client: WsClient, message_id: str, want_voters: int, timeout: float = 10) -> dict:
    """The first ``poll.results`` of the poll with ``want_voters`` voters (earlier pushes of
    fewer voters are skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        ev = await client.next_event("poll.results", timeout=max(0.05, deadline - loop.time()),
                                     message_id=message_id)
        if ev["voters"] == want_voters:
            return ev


async def newest_results(client: WsClient, message_id: str, want: list[int], ballots: bool = False,
                         timeout: float = 20, quiet: float = 1.0) -> dict:
    """The ``poll.results`` of the poll with the highest version a client holds once the counts
    ``want`` have arrived (within ``timeout``) and nothing more came for ``quiet`` seconds;
    with ``ballots`` only the copies sent to instructors alone (which carry the ballots of a
    named poll). The caller asserts on it: a later push must not have undone the counts."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    newest, seen = None, False
    while True:
        wait = quiet if seen else max(0.05, deadline - loop.time())
        try:
            ev = await client.next_event("poll.results", timeout=wait, message_id=message_id)
        except asyncio.TimeoutError:
            assert newest is not None, "no poll.results arrived"
            return newest
        if ballots and "ballots" not in ev:
            continue
        if newest is None or ev["version"] >= newest["version"]:
            newest = ev
        seen = seen or ev["counts"] == want


async def room_last_seq(server, token: str, room: str) -> int:
    status, body = await server.http("GET", f"/api/rooms/{room}", token)
    assert status == 200, body
    return body["room"]["last_seq"]


async def test_a_poll_is_a_message_of_its_own_kind_broadcast_to_the_room(server):
    """poll.create by the instructor stores a ``poll`` message (content = the question) with its
    options and state and broadcasts it as message.new; a resent client_msg_id returns the same
    poll without a second message."""
    k = await classroom(server)
    ana, ben = await joined(server, k.ana_tok, k.rid), await joined(server, k.ben_tok, k.rid)
    msg = await create(ana, k.rid, multiple=True, correct=[1, 2], client_msg_id="p1")
    assert msg["kind"] == "poll" and msg["content"] == QUESTION and msg["sender"]["id"] == k.ana["id"]
    poll = msg["poll"]
    assert poll["options"] == OPTIONS and poll["multiple"] is True and poll["anonymous"] is False
    assert poll["quiz"] is True and poll["correct"] is None  # revealed only once closed
    assert poll["closed"] is False and poll["results_public"] is False and poll["counts"] is None
    ev = await ben.next_event("message.new")
    assert ev["message"] == msg
    again = await create(ana, k.rid, multiple=True, correct=[1, 2], client_msg_id="p1")
    assert again["id"] == msg["id"] and again["seq"] == msg["seq"]
    assert await room_last_seq(server, k.ana_tok, k.rid) == msg["seq"]
    assert await ben.no_event("message.new", within=0.3)


async def test_only_instructors_create_and_bad_polls_change_nothing(server):
    """Students and outsiders get forbidden; message.send of kind poll is bad_request; every
    malformed poll gets a clear error and takes no seq."""
    k = await classroom(server)
    ana, ben = await joined(server, k.ana_tok, k.rid), await joined(server, k.ben_tok, k.rid)
    dan = await server.client(k.dan_tok)
    await expect_error(ben, "forbidden", "poll.create", room=k.rid, question="Q?", options=["a", "b"])
    await expect_error(dan, "forbidden", "poll.create", room=k.rid, question="Q?", options=["a", "b"])
    await expect_error(ben, "bad_request", "message.send", room=k.rid, client_msg_id="x", kind="poll",
                       content="Q?")
    bad = [
        ({"options": ["only one"]}, "bad_request"),
        ({"options": [str(i) for i in range(11)]}, "bad_request"),
        ({"options": ["same", "same"]}, "bad_request"),
        ({"options": ["a", "  "]}, "bad_request"),
        ({"options": ["a", 7]}, "bad_request"),
        ({"options": "a,b"}, "bad_request"),
        ({"question": ""}, "bad_request"),
        ({"question": "x" * 501}, "too_large"),
        ({"options": ["a", "x" * 201]}, "too_large"),
        ({"correct": [4]}, "bad_request"),
        ({"correct": [0, 1]}, "bad_request"),  # single choice: one correct option
        ({"correct": []}, "bad_request"),
        ({"correct": 1}, "bad_request"),
        ({"multiple": "yes"}, "bad_request"),
        ({"anonymous": 1}, "bad_request"),
        ({"results_public": None}, "bad_request"),
        ({"client_msg_id": ""}, "bad_request"),
    ]
    for fields, code in bad:
        body = {"question": QUESTION, "options": OPTIONS, **fields}
        await expect_error(ana, code, "poll.create", room=k.rid, **body)
    await expect_error(ana, "not_found", "poll.create", room="999999", question="Q?", options=["a", "b"])
    assert await room_last_seq(server, k.ana_tok, k.rid) == 0
    assert (await ana.request("room.sync", room=k.rid, since=0))["messages"] == []


async def test_votes_are_private_until_shared_and_live_for_the_instructor(server):
    """A student's vote is acked with their own choice and no counts; the instructor receives
    poll.results with the counts and (named poll) the ballots; a changed vote replaces the old
    one; once shared, everyone sees the counts live."""
    k = await classroom(server)
    ana = await joined(server, k.ana_tok, k.rid)
    ben = await joined(server, k.ben_tok, k.rid)
    cat = await joined(server, k.cat_tok, k.rid)
    msg = await create(ana, k.rid)
    mid = msg["id"]
    poll = (await ben.request("poll.vote", message_id=mid, choices=[0]))["poll"]
    assert poll["my_choices"] == [0] and poll["counts"] is None and poll["voters"] is None
    assert "ballots" not in poll
    live = await results_until(ana, mid, 1)
    assert live["counts"] == [1, 0, 0, 0]
    assert live["ballots"] == [{"user": {"id": k.ben["id"], "display_name": "Ben"}, "choices": [0]}]
    assert await cat.no_event("poll.results", within=0.3)  # students see nothing while private
    changed = (await ben.request("poll.vote", message_id=mid, choices=[1]))["poll"]
    assert changed["my_choices"] == [1]
    live = await results_until(ana, mid, 1)
    assert live["counts"] == [0, 1, 0, 0] and live["version"] > 1
    shared = (await ana.request("poll.share", message_id=mid, results_public=True))["message"]
    assert shared["poll"]["results_public"] is True and shared["poll"]["counts"] == [0, 1, 0, 0]
    ev = await cat.next_event("message.updated")
    assert ev["message"]["poll"]["counts"] == [0, 1, 0, 0]
    await cat.request("poll.vote", message_id=mid, choices=[1])
    pushed = await results_until(ben, mid, 2)
    assert pushed["counts"] == [0, 2, 0, 0] and "ballots" not in pushed  # names are for instructors
    view = (await ben.request("poll.get", message_id=mid))["poll"]
    assert view["counts"] == [0, 2, 0, 0] and view["voters"] == 2 and view["my_choices"] == [1]
    assert view["question"] == QUESTION


async def test_bad_votes_get_clear_errors_and_change_nothing(server):
    """Out of range, repeated, empty, several on a single-choice poll, not a list, an unknown
    poll, an outsider: each refused with its code; the stored answer stays."""
    k = await classroom(server)
    ana, ben = await joined(server, k.ana_tok, k.rid), await joined(server, k.ben_tok, k.rid)
    dan = await server.client(k.dan_tok)
    single = (await create(ana, k.rid))["id"]
    multi = (await create(ana, k.rid, multiple=True))["id"]
    await ben.request("poll.vote", message_id=single, choices=[2])
    for choices in ([4], [-1], [], [0, 1], "0", None, [True], [1.0]):
        await expect_error(ben, "bad_request", "poll.vote", message_id=single, choices=choices)
    await expect_error(ben, "bad_request", "poll.vote", message_id=multi, choices=[1, 1])
    await expect_error(ben, "bad_request", "poll.vote", message_id="abc", choices=[0])
    await expect_error(ben, "not_found", "poll.vote", message_id="987654", choices=[0])
    await expect_error(dan, "forbidden", "poll.vote", message_id=single, choices=[0])
    await expect_error(dan, "forbidden", "poll.get", message_id=single)
    text_msg = (await ben.request("message.send", room=k.rid, client_msg_id="t", kind="text",
                                  content="hi"))["message"]
    await expect_error(ben, "not_found", "poll.vote", message_id=text_msg["id"], choices=[0])
    view = (await ana.request("poll.get", message_id=single))["poll"]
    assert view["counts"] == [0, 0, 1, 0] and view["voters"] == 1
    assert (await ben.request("poll.vote", message_id=multi, choices=[3, 0]))["poll"]["my_choices"] == [0, 3]


async def test_close_reveals_the_answer_refuses_votes_and_reopen_accepts_them(server):
    """poll.close (instructors) broadcasts message.updated with closed and the correct answer;
    a vote on a closed poll is conflict and changes nothing; students cannot close; poll.reopen
    takes votes again; my_correct tells a student how they did once a quiz is closed."""
    k = await classroom(server)
    ana, ben = await joined(server, k.ana_tok, k.rid), await joined(server, k.ben_tok, k.rid)
    cat = await joined(server, k.cat_tok, k.rid)
    mid = (await create(ana, k.rid, correct=[1]))["id"]
    await ben.request("poll.vote", message_id=mid, choices=[1])
    await cat.request("poll.vote", message_id=mid, choices=[0])
    await expect_error(ben, "forbidden", "poll.close", message_id=mid)
    await expect_error(ben, "forbidden", "poll.share", message_id=mid, results_public=True)
    await expect_error(ana, "bad_request", "poll.share", message_id=mid, results_public="yes")
    closed = (await ana.request("poll.close", message_id=mid))["message"]
    assert closed["poll"]["closed"] is True and closed["poll"]["correct"] == [1]
    assert closed["poll"]["closed_at"] and closed["poll"]["counts"] is None  # still private
    ev = await ben.next_event("message.updated")
    assert ev["message"]["id"] == mid and ev["message"]["poll"]["closed"] is True
    await expect_error(cat, "conflict", "poll.vote", message_id=mid, choices=[1])
    assert (await ben.request("poll.get", message_id=mid))["poll"]["my_correct"] is True
    cat_view = (await cat.request("poll.get", message_id=mid))["poll"]
    assert cat_view["my_correct"] is False and cat_view["my_choices"] == [0]
    again = (await ana.request("poll.close", message_id=mid))["message"]
    assert again["poll"]["closed_at"] == closed["poll"]["closed_at"]  # closing twice keeps the time
    reopened = (await ana.request("poll.reopen", message_id=mid))["message"]
    assert reopened["poll"]["closed"] is False and reopened["poll"]["correct"] is None
    assert (await cat.request("poll.vote", message_id=mid, choices=[1]))["poll"]["my_correct"] is None
    view = (await ana.request("poll.get", message_id=mid))["poll"]
    assert view["counts"] == [0, 2, 0, 0] and view["correct"] == [1]


async def test_anonymous_polls_never_name_voters(server):
    """An anonymous poll's results, views and exports carry counts only; the voter list export
    is refused (conflict)."""
    k = await classroom(server)
    ana, ben = await joined(server, k.ana_tok, k.rid), await joined(server, k.ben_tok, k.rid)
    mid = (await create(ana, k.rid, anonymous=True))["id"]
    await ben.request("poll.vote", message_id=mid, choices=[3])
    live = await results_until(ana, mid, 1)
    assert live["counts"] == [0, 0, 0, 1] and "ballots" not in live
    view = (await ana.request("poll.get", message_id=mid))["poll"]
    assert view["ballots"] is None and view["voters"] == 1
    status, body = await server.http("GET", f"/api/polls/{mid}/results.csv?by=voter", k.ana_tok)
    assert_error(status, body, 409, "conflict")


async def test_results_export_as_csv_for_instructors(server):
    """GET /api/polls/{id}/results.csv: one row per option (votes, percent of voters, correct);
    ?by=voter one row per voter of a named poll; students 403; formulas neutralised."""
    k = await classroom(server)
    ana, ben = await joined(server, k.ana_tok, k.rid), await joined(server, k.ben_tok, k.rid)
    cat = await joined(server, k.cat_tok, k.rid)
    mid = (await create(ana, k.rid, question="=cmd|' /C calc'!A0", options=["yes", "no", "+1"],
                        multiple=True, correct=[0, 2]))["id"]
    await ben.request("poll.vote", message_id=mid, choices=[0, 2])
    await cat.request("poll.vote", message_id=mid, choices=[1])
    req_ = {"method": "GET", "path": f"/api/polls/{mid}/results.csv", "token": k.ana_tok}
    status, body = await server.http(**req_)
    assert status == 200
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == ["poll_id", "question", "option_index", "option", "votes", "percent_of_voters", "correct"]
    assert [r[2:] for r in rows[1:]] == [["0", "yes", "1", "50.0", "yes"], ["1", "no", "1", "50.0", "no"],
                                         ["2", "'+1", "1", "50.0", "yes"]]
    assert rows[1][1].startswith("'=")
    status, body = await server.http("GET", f"/api/polls/{mid}/results.csv?by=voter", k.ana_tok)
    assert status == 200
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0][:7] == ["poll_id", "user_id", "username", "display_name", "choices", "choice_indexes", "correct"]
    assert [(r[3], r[4], r[5], r[6]) for r in rows[1:]] == [("Ben", "yes; +1", "0 2", "yes"), ("Cat", "no", "1", "no")]
    status, body = await server.http("GET", f"/api/polls/{mid}/results.csv", k.ben_tok)
    assert_error(status, body, 403, "forbidden")
    status, body = await server.http("GET", f"/api/polls/{mid}/results.csv?by=nobody", k.ana_tok)
    assert_error(status, body, 400, "bad_request")
    status, body = await server.http("GET", "/api/polls/424242/results.csv", k.ana_tok)
    assert_error(status, body, 404, "not_found")


async def test_polls_sync_page_and_catch_up_like_messages(server):
    """A client that was away gets the poll from room.sync, history (kind=poll) and search with
    its current state, and its close from room.changes; a deleted poll loses its poll field and
    takes no votes."""
    k = await classroom(server)
    ana = await joined(server, k.ana_tok, k.rid)
    mid = (await create(ana, k.rid, results_public=True))["id"]
    ben = await joined(server, k.ben_tok, k.rid)
    await ben.request("poll.vote", message_id=mid, choices=[2])
    ben.close()
    change_before = (await ana.request("room.join", room=k.rid))["last_change"]
    await ana.request("poll.close", message_id=mid)
    ben = await joined(server, k.ben_tok, k.rid)
    synced = (await ben.request("room.sync", room=k.rid, since=0))["messages"]
    assert [m["kind"] for m in synced] == ["poll"]
    assert synced[0]["poll"]["closed"] is True and synced[0]["poll"]["counts"] == [0, 0, 1, 0]
    changes = await ben.request("room.changes", room=k.rid, since=change_before)
    assert [m["id"] for m in changes["messages"]] == [mid] and changes["messages"][0]["poll"]["closed"]
    status, page = await server.http("GET", f"/api/rooms/{k.rid}/messages?kind=poll", k.ben_tok)
    assert status == 200 and [m["poll"]["voters"] for m in page["messages"]] == [1]
    status, found = await server.http("GET", f"/api/rooms/{k.rid}/messages/search?q=planets", k.ben_tok)
    assert status == 200 and [m["poll"]["options"] for m in found["messages"]] == [OPTIONS]
    await ana.request("message.delete", message_id=mid)
    ev = await ben.next_event("message.deleted")
    assert ev["message"]["poll"] is None
    await expect_error(ben, "conflict", "poll.vote", message_id=mid, choices=[0])


@pytest.mark.parametrize("voters", [200])
async def test_concurrent_voters_are_counted_exactly(server, voters):
    """200 students on their own sockets vote at once, half of them changing their answer
    right away: the counts (poll.get, the CSV and the instructor's last live push) are exact."""
    ana_user, ana_tok = await server.user("teacher", "instructor")
    students = [await server.user(f"s{i:03d}") for i in range(voters)]
    room = (await server.room(ana_tok, members=[u["id"] for u, _ in students]))["id"]
    ana = await joined(server, ana_tok, room)
    mid = (await create(ana, room, options=["a", "b", "c"], multiple=False))["id"]
    clients = await asyncio.gather(*(server.client(tok) for _, tok in students))

    async def vote(i: int, c: WsClient) -> None:
        await c.request("poll.vote", timeout=60, message_id=mid, choices=[i % 3])
        if i % 2:
            await c.request("poll.vote", timeout=60, message_id=mid, choices=[(i + 1) % 3])

    await asyncio.gather(*(vote(i, c) for i, c in enumerate(clients)))
    expected = [0, 0, 0]
    for i in range(voters):
        expected[(i + 1) % 3 if i % 2 else i % 3] += 1
    view = (await ana.request("poll.get", message_id=mid))["poll"]
    assert view["counts"] == expected and view["voters"] == voters
    assert len(view["ballots"]) == voters
    live = await newest_results(ana, mid, expected)
    assert live["counts"] == expected and live["voters"] == voters
    status, body = await server.http("GET", f"/api/polls/{mid}/results.csv", ana_tok)
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert [int(r[4]) for r in rows[1:]] == expected
    for c in clients:
        c.close()
