"""Polls across two web processes on one PostgreSQL and one Redis (docs/SCALING.md): real
``python -m server`` processes, real WebSocket clients spread across them. Runs in the
PostgreSQL + Redis pass (several processes cannot share one SQLite file for writing)."""
from __future__ import annotations

import asyncio
import os
import secrets

import pytest

from server.accounts.tokens import issue_token
from server.config import Config
from server.db import users as uq
from server.db.engine import Database
from tests.conftest import password_hash
from tests.dbutil import test_database_url as database_under_test
from tests.polls.test_polls import newest_results
from tests.procserver import JWT_SECRET, procs  # noqa: F401  (fixture)
from tests.wsclient import WsClient

pytestmark = pytest.mark.skipif(
    not (database_under_test() or "").startswith("postgresql") or not os.environ.get("TEST_REDIS_URL"),
    reason="several web processes need PostgreSQL and Redis (the second pass of .ci/run)")

VOTERS = 200


async def users(database_url: str, names: list[str]) -> list[tuple[str, str]]:
    """Users made in the shared database, with tokens the server processes accept: (id, token)."""
    db = Database(database_url)
    config = Config(database_url=database_url, jwt_secret=JWT_SECRET)
    out = []
    try:
        async with db.write() as s:
            for name in names:
                u = await uq.create_user(s, name, name.capitalize(), password_hash(), "student")
                out.append((str(u.id), issue_token(config, u.id, u.display_name, "student")))
    finally:
        await db.close()
    return out


async def test_200_voters_on_two_processes_are_counted_exactly_and_seen_live_on_both(procs, database_url):  # noqa: F811
    """Two web processes with Redis: 200 students, half on each, vote at once (half change their
    answer): poll.get on either process gives the exact counts, and the newest poll.results
    the instructor (on one process) and a student (on the other, results public) hold are
    exact too."""
    prefix = "podium-polls-" + secrets.token_hex(4)
    env = {"REDIS_URL": os.environ["TEST_REDIS_URL"], "REDIS_PREFIX": prefix}
    a, b = procs.new(extra_env=env), procs.new(extra_env=env)
    tag = secrets.token_hex(3)
    accounts = await users(database_url, [f"t{tag}"] + [f"v{tag}{i:03d}" for i in range(VOTERS)])
    (_, teacher_tok), voters = accounts[0], accounts[1:]
    room = (await a.room(teacher_tok, [uid for uid, _ in voters]))["id"]
    teacher = await WsClient.connect(a.ws_url, teacher_tok)
    await teacher.request("room.join", room=room)
    observer = await WsClient.connect(b.ws_url, voters[0][1])
    await observer.request("room.join", room=room)
    await asyncio.sleep(0.3)  # both processes' bus subscriptions are up
    msg = (await teacher.request("poll.create", room=room, question="Best layer?", options=["a", "b", "c"],
                                 results_public=True))["message"]
    mid = msg["id"]
    assert (await observer.next_event("message.new"))["message"]["poll"]["options"] == ["a", "b", "c"]
    clients = await asyncio.gather(*(WsClient.connect((a if i % 2 else b).ws_url, tok)
                                     for i, (_, tok) in enumerate(voters)))

    async def vote(i: int, c: WsClient) -> None:
        await c.request("poll.vote", timeout=60, message_id=mid, choices=[i % 3])
        if i % 2 == 0:
            await c.request("poll.vote", timeout=60, message_id=mid, choices=[(i + 2) % 3])

    await asyncio.gather(*(vote(i, c) for i, c in enumerate(clients)))
    expected = [0, 0, 0]
    for i in range(VOTERS):
        expected[(i + 2) % 3 if i % 2 == 0 else i % 3] += 1
    for server_client in (teacher, clients[0], clients[1]):  # on a, on b, on a
        view = (await server_client.request("poll.get", message_id=mid))["poll"]
        assert view["counts"] == expected and view["voters"] == VOTERS
    teacher_live = await newest_results(teacher, mid, expected, ballots=True)
    assert teacher_live["counts"] == expected and teacher_live["voters"] == VOTERS
    assert len(teacher_live["ballots"]) == VOTERS
    observer_live = await newest_results(observer, mid, expected)
    assert observer_live["counts"] == expected and "ballots" not in observer_live
    closed = (await teacher.request("poll.close", message_id=mid))["message"]
    assert closed["poll"]["counts"] == expected
    updated = await observer.next_event("message.updated")
    assert updated["message"]["poll"]["closed"] is True and updated["message"]["poll"]["counts"] == expected
    for c in clients + [teacher, observer]:
        c.close()
