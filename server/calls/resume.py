"""Resume tokens (docs/PROTOCOL-ADDITIONS.md "Resuming a call"): a participant whose socket
drops rejoins as the same participant — same ``peer_id`` — and, in an SFU call, takes its Janus
session back (``sfu_resume.py``), so its camera and microphone never stop for the others.

The ``call.join`` ack carries ``resume``: ``<peer_id>.<mac>``, an HMAC under a key derived from
Podium's secret over the session, the user and the peer id. Any web process (a restarted one
too) can check it without storing anything; it is useless to another user or in another
session.
"""
from __future__ import annotations

import base64
import hashlib
import hmac

from server.kernel.errors import BadRequest

MAX_TOKEN = 200


class ResumeTokens:
    def __init__(self, secret: str):
        self.key = hashlib.sha256(b"podium-call-resume:" + secret.encode()).digest()

    def _mac(self, session_id: int, user_id: int, peer_id: str) -> str:
        digest = hmac.new(self.key, f"{session_id}:{user_id}:{peer_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    def make(self, session_id: int, user_id: int, peer_id: str) -> str:
        return f"{peer_id}.{self._mac(session_id, user_id, peer_id)}"

    def check(self, token, session_id: int, user_id: int) -> str:
        """The peer id ``token`` resumes; BadRequest when it is not one of this user's tokens
        for this session."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN or token.count(".") != 1:
            raise BadRequest("resume must be the resume token of an earlier call.join of this session")
        peer_id, mac = token.split(".")
        if not peer_id or not hmac.compare_digest(mac, self._mac(session_id, user_id, peer_id)):
            raise BadRequest("this resume token is not yours for this session")
        return peer_id
