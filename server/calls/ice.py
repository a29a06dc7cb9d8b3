"""ICE servers for clients: configured STUN/TURN plus short-lived TURN REST credentials
compatible with coturn's ``use-auth-secret`` (the scheme Synapse uses)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import time

from server.config import Config


def turn_credentials(secret: str, user_id: int, ttl_s: int, now: float | None = None) -> tuple[str, str]:
    """``(username, credential)``: username ``"<expiry>:<user_id>"``, credential
    base64(HMAC-SHA1(secret, username))."""
    expiry = int(now if now is not None else time.time()) + ttl_s
    username = f"{expiry}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(config: Config, user_id: int) -> tuple[list[dict], int]:
    """The RTCIceServer list for one user and how long its credentials last."""
    servers = [dict(s) for s in config.ice_servers]
    if config.turn_secret and config.turn_urls:
        username, credential = turn_credentials(config.turn_secret, user_id, config.turn_ttl_s)
        servers.append({"urls": list(config.turn_urls), "username": username, "credential": credential})
    return servers, config.turn_ttl_s
