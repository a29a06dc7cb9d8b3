"""The bus's Redis client (server/realtime/resp.py, resp_client.py): the RESP2 codec without
I/O, and the client against the real Redis of the PostgreSQL + Redis pass."""
from __future__ import annotations

import asyncio
import os
import secrets

import pytest

from server.realtime.resp import Address, Parser, ProtocolError, RedisReplyError, encode, parse_url

REPLIES = (b"+OK\r\n:42\r\n$5\r\nhe\r\nl\r\n$-1\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$0\r\n\r\n"
           b"-NOSCRIPT No matching script\r\n*2\r\n:1\r\n*1\r\n$1\r\n0\r\n*0\r\n"
           b"*3\r\n$7\r\nmessage\r\n$9\r\npodium:ev\r\n$8\r\n{\"k\"}\r\n$\r\n:7\r\n")
PARSED = [b"OK", 42, b"he\r\nl", None, [b"message", b"ch", b""], "NOSCRIPT No matching script", [1, [b"0"]], [],
          [b"message", b"podium:ev", b'{"k"}\r\n$'], 7]


def _plain(replies):
    return [str(r) if isinstance(r, RedisReplyError) else r for r in replies]


def test_commands_are_arrays_of_bulk_strings():
    """encode() writes str, bytes and numbers as bulk strings of their bytes."""
    assert encode("PUBLISH", "c", b"a\nb") == b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$3\r\na\nb\r\n"
    assert encode("EVALSHA", "x", 1, 2.5) == b"*4\r\n$7\r\nEVALSHA\r\n$1\r\nx\r\n$1\r\n1\r\n$3\r\n2.5\r\n"


@pytest.mark.parametrize("step", [1, 2, 3, 7, len(REPLIES)])
def test_replies_split_anywhere_come_out_whole_and_in_order(step):
    """Fed in chunks of any size, every reply type comes out once, complete, in order (bulk
    strings may hold CRLF; error replies come out as RedisReplyError values)."""
    p, out = Parser(), []
    for i in range(0, len(REPLIES), step):
        p.feed(REPLIES[i:i + step])
        out.extend(p.replies())
    assert _plain(out) == PARSED
    assert isinstance(out[5], RedisReplyError)


def test_a_reply_that_is_not_resp_is_an_error():
    """Bytes that are not RESP2 raise (the connection is then dropped, not misread)."""
    p = Parser()
    p.feed(b"HTTP/1.1 400\r\n")
    with pytest.raises(ProtocolError):
        p.replies()


def test_urls_are_read_like_redis_py():
    """Host, port, db (path or ?db=), credentials (percent-decoded) and TLS from the URL; other schemes refused."""
    assert parse_url("redis://127.0.0.1:6380/3") == Address("127.0.0.1", 6380, 3)
    assert parse_url("rediss://u:p%40ss@h.example") == Address("h.example", 6379, 0, "u", "p@ss", True)
    assert parse_url("redis://:secret@h/?db=2") == Address("h", 6379, 2, None, "secret")
    with pytest.raises(ValueError):
        parse_url("unix:///tmp/redis.sock")


needs_redis = pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="needs TEST_REDIS_URL")


@needs_redis
async def test_pipelined_commands_from_many_callers_get_their_own_replies():
    """Concurrent callers share one connection; each gets its own reply, error replies are raised
    by execute() and returned by execute_many(), and the db of the URL is the one used."""
    from server.realtime.resp_client import RespClient

    addr = parse_url(os.environ["TEST_REDIS_URL"])
    client = RespClient(addr)
    key = f"podium-test-resp-{secrets.token_hex(4)}"
    try:
        got = await asyncio.gather(*(client.execute("INCRBY", key, i) for i in range(1, 51)))
        assert sorted(got) == sorted({sum(range(1, k + 1)) for k in range(1, 51)}) and max(got) == 1275
        info = (await client.execute("CLIENT", "INFO")).decode()
        assert f" db={addr.db} " in info
        replies = await client.execute_many([("GET", key), ("NOSUCHCOMMAND",), ("DEL", key)])
        assert replies[0] == b"1275" and isinstance(replies[1], RedisReplyError) and replies[2] == 1
        with pytest.raises(RedisReplyError):
            await client.execute("NOSUCHCOMMAND")
    finally:
        await client.close()


@needs_redis
async def test_a_subscription_hands_over_every_message_and_reports_its_loss():
    """Messages published (many in one pipeline) reach on_message in order; killing the
    connection completes ``lost``, and the client reconnects at its next command."""
    from server.realtime.resp_client import RespClient, Subscription

    addr = parse_url(os.environ["TEST_REDIS_URL"])
    channel = f"podium-test-resp-{secrets.token_hex(4)}"
    got: list[bytes] = []
    sub = await Subscription.open(addr, channel, got.append)
    client = RespClient(addr)
    try:
        payloads = [b"x" * (i * 997 % 70_000) + b"\r\n%d" % i for i in range(200)]
        replies = await client.execute_many([("PUBLISH", channel, p) for p in payloads])
        assert replies == [1] * 200
        for _ in range(1000):  # up to 10 s under load
            if len(got) == 200:
                break
            await asyncio.sleep(0.01)
        assert got == payloads
        me = await client.execute("CLIENT", "ID")
        host, port = sub.local_address[:2]
        await client.execute("CLIENT", "KILL", "ADDR", f"{host}:{port}")  # only ours: the Redis is shared
        await asyncio.wait_for(asyncio.shield(sub.lost), 5)
        await client.execute("CLIENT", "KILL", "ID", me)  # the client's own connection dies too ...
        assert await client.execute("PING") == b"PONG"  # ... and the next command opens another
    finally:
        sub.close()
        await client.close()
