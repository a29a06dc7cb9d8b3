"""ICE servers for clients (server/calls/ice.py; PROTOCOL §3 ice-servers): the configured STUN/TURN
entries plus coturn-compatible TURN REST credentials, in the call.join ack and over REST."""
from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from tests.calls.helpers import call_room, calls_settle, joined  # noqa: F401  (autouse fixture)


TURN_SECRET = "coturn-static-auth-secret"


ICE_CONFIG = {"ice_servers": ({"urls": ["stun:127.0.0.1:3478"]},),
              "turn_secret": TURN_SECRET,
              "turn_urls": ("turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"),
              "turn_ttl_s": 600}


def check_turn_entry(entry: dict, user_id: str, ttl: int) -> None:
    """coturn use-auth-secret: username "<expiry>:<user id>", credential
    base64(HMAC-SHA1(secret, username)), computed here independently of server/ice.py."""
    expiry, _, uid = entry["username"].partition(":")
    assert uid == user_id
    assert abs(int(expiry) - (time.time() + ttl)) <= 5
    mac = hmac.new(TURN_SECRET.encode(), entry["username"].encode(), hashlib.sha1).digest()
    assert entry["credential"] == base64.b64encode(mac).decode()
    assert entry["urls"] == list(ICE_CONFIG["turn_urls"])


@pytest.mark.parametrize("config_overrides", [ICE_CONFIG])
async def test_ice_servers_with_turn_rest_credentials(server):
    """With ice_servers and turn_secret configured, call.join and GET /api/ice-servers both
    return the configured STUN entry plus a TURN entry with short-lived coturn-compatible
    credentials for the caller; ttl is turn_ttl_s; anonymous callers get 401."""
    session, [(ana, a_tok), (ben, b_tok)] = await call_room(server, "ana", "ben")
    _, ack = await joined(server, b_tok, session)
    stun, turn = ack["ice_servers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    check_turn_entry(turn, ben["id"], 600)
    assert ack["ice_ttl_s"] == 600
    status, body = await server.http("GET", "/api/ice-servers", a_tok)
    assert status == 200 and body["ttl_s"] == 600
    stun, turn = body["ice_servers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    check_turn_entry(turn, ana["id"], 600)
    status, _ = await server.http("GET", "/api/ice-servers")
    assert status == 401


@pytest.mark.parametrize("config_overrides", [{"ice_servers": ({"urls": ["stun:127.0.0.1:3478"]},),
                                               "turn_urls": ("turn:127.0.0.1:3478",)}])
async def test_ice_servers_without_turn_secret(server):
    """Without turn_secret no TURN credentials are minted: only the configured servers."""
    _, tok = await server.user("ana", "instructor")
    status, body = await server.http("GET", "/api/ice-servers", tok)
    assert status == 200 and body["ice_servers"] == [{"urls": ["stun:127.0.0.1:3478"]}]
