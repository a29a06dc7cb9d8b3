"""``python -m server serve`` runs on uvloop unless ``EVENT_LOOP=asyncio`` (server/event_loop.py),
and chat works on it end to end: a real process, real sockets."""
from __future__ import annotations

import pytest

from server.config import ConfigError, load_config
from tests.procserver import procs  # noqa: F401 - fixture
from tests.wsclient import WsClient


async def chat_round_trip(srv) -> None:
    """Two users in a room: a message sent by one is acked and reaches the other."""
    owner, owner_tok = await srv.register("owner")
    guest, guest_tok = await srv.register("guest")
    room = (await srv.room(owner_tok, [guest["id"]]))["id"]
    a = await WsClient.connect(srv.ws_url, owner_tok)
    b = await WsClient.connect(srv.ws_url, guest_tok)
    try:
        await a.request("room.join", room=room)
        await b.request("room.join", room=room)
        sent = (await a.request("message.send", room=room, client_msg_id="m1", content="on the loop"))["message"]
        got = await b.next_event("message.new", timeout=10)
        assert got["message"]["seq"] == sent["seq"] == 1 and got["message"]["content"] == "on the loop"
    finally:
        a.close()
        b.close()


@pytest.mark.slow
async def test_the_server_runs_on_uvloop_by_default(procs):  # noqa: F811
    """No EVENT_LOOP: the process says it runs on uvloop, and a chat round trip works."""
    srv = procs.new()
    await chat_round_trip(srv)
    assert "event loop uvloop)" in srv.log


@pytest.mark.slow
async def test_event_loop_asyncio_runs_the_standard_loop(procs):  # noqa: F811
    """EVENT_LOOP=asyncio: the standard library's loop, and chat works the same."""
    srv = procs.new(extra_env={"EVENT_LOOP": "asyncio"})
    await chat_round_trip(srv)
    assert "event loop asyncio)" in srv.log


def test_an_unknown_event_loop_is_a_configuration_error(tmp_path):
    """EVENT_LOOP=tokio: refused at start with a message naming the choices."""
    with pytest.raises(ConfigError, match="EVENT_LOOP must be one of uvloop, asyncio"):
        load_config({"DATA_DIR": str(tmp_path), "EVENT_LOOP": "tokio"})
    assert load_config({"DATA_DIR": str(tmp_path), "EVENT_LOOP": " AsyncIO "}).event_loop == "asyncio"
    assert load_config({"DATA_DIR": str(tmp_path)}).event_loop == "uvloop"
