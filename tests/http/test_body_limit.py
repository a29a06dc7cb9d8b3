"""Request bodies (server/http/base.py): a JSON endpoint answers ``413 too_large`` to a body
over ``max_json_body_bytes`` (1 MiB) before reading it — by Content-Length, or for a chunked
body as soon as it passes the limit — and the client receives that answer. Bodies within the
limit reach the handler whole; the streamed uploads keep their own, larger limits."""
from __future__ import annotations

import asyncio
import json

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.api import assert_error
from tests.files.test_files import upload

LIMIT = 1024 * 1024
ROOM = b'{"kind":"course","name":"Big body"}'


def padded(size: int) -> bytes:
    """A valid JSON room body of exactly ``size`` bytes (JSON allows trailing whitespace)."""
    return ROOM + b" " * (size - len(ROOM))


async def post(server, path: str, token: str | None, body: bytes | None = None, producer=None):
    """POST with a real client: ``body`` is sent with its Content-Length, ``producer`` chunked."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = HTTPRequest(server.base_url + path, method="POST", headers=headers, body=body,
                      body_producer=producer, request_timeout=30)
    resp = await AsyncHTTPClient().fetch(req, raise_error=False)
    return resp, json.loads(resp.body) if resp.body else None


async def test_content_length_over_the_limit_is_answered_before_the_body(server):
    """Headers announcing a 2 MB body get 413 too_large while not one byte of the body has been sent, on an endpoint that needs a token and on one that does not."""
    _, tok = await server.user("ana", "instructor")
    for path, auth in (("/api/rooms", f"Authorization: Bearer {tok}\r\n"), ("/api/auth/login", "")):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write((f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
                      "Content-Length: 2000000\r\n\r\n").encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 10)  # the server answers and closes
        writer.close()
        head, _, payload = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413 "), response
        assert b"\r\nConnection: close" in head, head
        assert_error(413, json.loads(payload), 413, "too_large")


async def test_a_2mb_json_body_gets_413(server):
    """A client that sends a 2 MB JSON body with its Content-Length receives 413 too_large, and nothing is created."""
    _, tok = await server.user("ana", "instructor")
    resp, body = await post(server, "/api/rooms", tok, padded(2_000_000))
    assert_error(resp.code, body, 413, "too_large")
    resp, body = await post(server, "/api/no-such-endpoint", tok, padded(2_000_000))
    assert_error(resp.code, body, 413, "too_large")
    status, rooms = await server.http("GET", "/api/rooms", tok)
    assert status == 200 and rooms["rooms"] == []


async def test_a_chunked_body_over_the_limit_gets_413(server):
    """A chunked 2 MB body (no Content-Length) is answered 413 too_large once past the limit, and nothing is created."""
    _, tok = await server.user("ana", "instructor")
    data = padded(2_000_000)

    def producer(write):
        for i in range(0, len(data), 64 * 1024):
            write(data[i:i + 64 * 1024])  # buffered by the client: it reads the answer meanwhile

    resp, body = await post(server, "/api/rooms", tok, producer=producer)
    assert_error(resp.code, body, 413, "too_large")
    status, rooms = await server.http("GET", "/api/rooms", tok)
    assert status == 200 and rooms["rooms"] == []


async def test_bodies_up_to_the_limit_reach_the_handler(server):
    """A body of exactly the limit, with Content-Length or chunked in small pieces, is read whole and parsed; one byte more is 413."""
    _, tok = await server.user("ana", "instructor")
    resp, body = await post(server, "/api/rooms", tok, padded(LIMIT))
    assert resp.code == 201 and body["room"]["name"] == "Big body", body
    data = padded(LIMIT)

    def producer(write):
        for i in range(0, len(data), 1000):
            write(data[i:i + 1000])

    resp, body = await post(server, "/api/rooms", tok, producer=producer)
    assert resp.code == 201 and body["room"]["name"] == "Big body", body
    resp, body = await post(server, "/api/rooms", tok, padded(LIMIT + 1))
    assert_error(resp.code, body, 413, "too_large")


async def test_uploads_keep_their_own_limit(server):
    """A 3 MB file upload (a streamed handler with its own limit) is stored as before."""
    _, tok = await server.user("ana")
    data = b"0123456789abcdef\n" * (3_000_000 // 17)
    [f] = await upload(server, tok, [("big.txt", data)])
    assert f["size"] == len(data)
