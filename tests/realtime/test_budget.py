"""Per-user budgets (server/realtime/budget.py): token buckets kept until refilled, one chat
budget for WebSocket frames and REST sends that survives reconnects and (with Redis) spans
processes, and the upload and signed-link budgets."""
from __future__ import annotations

import json
import os

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from server.deps import Deps
from server.realtime.budget import PRUNE_EVERY, LocalBudget
from tests.files.test_files import multipart


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_local_budget_spends_the_burst_then_refills_at_the_rate():
    """burst takes pass at once, the next is refused with the exact wait, and time refills it."""
    clock = Clock()
    b = LocalBudget(rate=2.0, burst=3, clock=clock)
    assert [b.try_take("u") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.try_take("u") == pytest.approx(0.5)
    clock.now += 0.5
    assert b.try_take("u") == 0.0
    assert b.try_take("other") == 0.0  # keys are independent


def test_a_refused_take_spends_nothing():
    """Frames refused while over budget do not push the refill further away."""
    clock = Clock()
    b = LocalBudget(rate=1.0, burst=1, clock=clock)
    assert b.try_take("u") == 0.0
    for _ in range(10):
        assert b.try_take("u") > 0
    clock.now += 1.0
    assert b.try_take("u") == 0.0


def test_pruning_forgets_only_refilled_buckets():
    """A sweep drops buckets that are full again (the same as a new one) and keeps spent ones."""
    clock = Clock()
    b = LocalBudget(rate=1.0, burst=2, clock=clock)
    b.try_take("spent")
    b.try_take("spent")
    b.try_take("idle")
    clock.now += 1.5  # "idle" has refilled, "spent" has 1.5 of 2
    for _ in range(PRUNE_EVERY):
        b.try_take(f"k{_ % 3}")
    keys = set(b._buckets)  # noqa: SLF001 - what the sweep kept is the behaviour under test
    assert "spent" in keys and "idle" not in keys


async def rest_send(server, token: str, room: str, cmid: str):
    """POST a message; the response's status, Retry-After header and body."""
    req = HTTPRequest(f"{server.base_url}/api/rooms/{room}/messages", method="POST",
                      headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                      body=json.dumps({"client_msg_id": cmid, "kind": "text", "content": "hi"}))
    resp = await AsyncHTTPClient().fetch(req, raise_error=False)
    return resp.code, resp.headers.get("Retry-After"), json.loads(resp.body)


TIGHT = {"rate_per_s": 0.2, "rate_burst": 4, "rate_abuse_limit": 1000}


@pytest.mark.parametrize("config_overrides", [TIGHT])
async def test_rest_and_websocket_sends_spend_one_budget(server):
    """Two WebSocket sends and two REST sends use up a burst of 4; the next REST send is 429 with
    Retry-After, and the next frame is refused with rate_limited and retry_after_s."""
    ana, tok = await server.user("ana", "instructor")
    room = (await server.room(tok))["id"]
    ws = await server.client(tok)
    for i in range(2):
        await ws.request("message.send", room=room, client_msg_id=f"w{i}", content="hi")
    for i in range(2):
        status, _, body = await rest_send(server, tok, room, f"r{i}")
        assert status == 201, body
    status, retry_after, body = await rest_send(server, tok, room, "r-over")
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert retry_after is not None and 1 <= int(retry_after) <= 5
    err = await ws.request_raw("message.send", room=room, client_msg_id="w-over", content="hi")
    assert err["type"] == "error" and err["code"] == "rate_limited" and 0 < err["retry_after_s"] <= 5


@pytest.mark.parametrize("config_overrides", [TIGHT])
async def test_reconnecting_does_not_refill_the_budget(server):
    """A user who spent the burst and reconnects at once is still over budget (it is kept until it refills)."""
    ana, tok = await server.user("ana", "instructor")
    room = (await server.room(tok))["id"]
    ws = await server.client(tok)
    for i in range(4):
        await ws.request("message.send", room=room, client_msg_id=f"w{i}", content="hi")
    ws.close()
    again = await server.client(tok)
    err = await again.request_raw("message.send", room=room, client_msg_id="after", content="hi")
    assert err["type"] == "error" and err["code"] == "rate_limited"


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="the budget spans processes only with Redis")
@pytest.mark.parametrize("config_overrides", [TIGHT])
async def test_with_redis_another_process_sees_the_spent_budget(server):
    """A second process (its own Deps on the same Redis) refuses the user whose burst was spent
    through the first one, and still serves another user."""
    ana, tok = await server.user("ana", "instructor")
    room = (await server.room(tok))["id"]
    for i in range(4):
        status, _, body = await rest_send(server, tok, room, f"r{i}")
        assert status == 201, body
    other = Deps(server.deps.config)
    try:
        assert await other.chat_budget.take(int(ana["id"])) > 0
        assert await other.chat_budget.take(int(ana["id"]) + 1000) == 0.0
    finally:
        await other.close()


@pytest.mark.parametrize("config_overrides", [{"upload_rate_per_min": 1.0, "upload_burst": 2,
                                               "link_rate_per_min": 1.0, "link_burst": 2}])
async def test_uploads_and_signed_links_have_budgets_of_their_own(server):
    """Past their own bursts, uploads and signed-link minting answer 429 with Retry-After, while
    chat sends (another budget) still pass."""
    ana, tok = await server.user("ana", "instructor")
    room = (await server.room(tok))["id"]
    client = AsyncHTTPClient()

    async def upload(i: int):
        body, ctype = multipart([(f"n{i}.txt", b"hello")])
        return await client.fetch(HTTPRequest(f"{server.base_url}/api/files", method="POST", body=body,
                                              headers={"Authorization": f"Bearer {tok}", "Content-Type": ctype}),
                                  raise_error=False)

    first, second, third = [await upload(i) for i in range(3)]
    assert (first.code, second.code, third.code) == (201, 201, 429), third.body
    assert int(third.headers["Retry-After"]) >= 1
    file_id = json.loads(first.body)["files"][0]["id"]
    codes = []
    for _ in range(3):
        status, _ = await server.http("POST", f"/api/files/{file_id}/signed-url", tok,
                                      {"disposition": "attachment", "expires_in": 60})
        codes.append(status)
    assert codes == [200, 200, 429]
    status, _, _ = await rest_send(server, tok, room, "chat-still-ok")
    assert status == 201


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="the budget spans processes only with Redis")
async def test_a_lease_is_spent_locally_until_lease_s_then_redis_is_asked_again():
    """A lease of 5 taken for the first frame pays the next four even 20 s later (a user typing,
    then sending, every several seconds) without touching the user's GCRA in Redis; once
    LEASE_S has passed, the rest of it is gone and the next frame asks Redis."""
    from server.realtime.budget import LEASE_S, SharedBudget
    from server.realtime.resp import parse_url
    from server.realtime.resp_client import RespClient

    client, clock = RespClient(parse_url(os.environ["TEST_REDIS_URL"])), Clock()
    prefix = f"podium-test-lease-{os.getpid()}-{id(clock)}"
    budget = SharedBudget(client, prefix, rate=1.0, burst=60, lease=5, clock=clock)
    try:
        assert await budget.take(7) == 0.0
        tat = await client.execute("GET", f"{prefix}:7")
        clock.now += 20.0
        assert [budget.try_take(7) for _ in range(4)] == [0.0] * 4
        assert budget.try_take(7) is None  # spent: Redis must be asked
        assert await client.execute("GET", f"{prefix}:7") == tat
        assert await budget.take(7) == 0.0  # the next lease
        clock.now += LEASE_S
        assert budget.try_take(7) is None  # its four left-overs expired
    finally:
        await client.execute("DEL", f"{prefix}:7")
        await client.close()
