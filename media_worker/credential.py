"""The worker's own credential: the recorder token it presents to Podium (``/ws?token=`` and
``Authorization: Bearer`` on its HTTP calls), minted from ``WORKER_SECRET`` or given whole as
``WORKER_TOKEN`` (docs/RECORDING.md, "Running workers").

No I/O and no environment reading here (``config.py`` does that): the token's shape is the
contract with the server, which verifies worker tokens with ``WORKER_SECRET`` alone.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

WORKER_SUBJECT = "worker"  # ``sub``: a service, not a user id
WORKER_ROLE = "recorder"
TOKEN_TTL_S = 24 * 3600
ALGORITHM = "HS256"


def mint_worker_token(secret: str, *, name: str = "Recorder", audience: str | None = None,
                      issuer: str | None = None, ttl_s: int = TOKEN_TTL_S,
                      now: float | None = None) -> str:
    """An HS256 JWT signed with ``secret``: ``{"sub": "worker", "role": "recorder", "name",
    "iat", "exp": iat + ttl_s}``, plus ``aud`` / ``iss`` when given (the server checks them
    when it has ``JWT_AUDIENCE`` / ``JWT_ISSUER``). Raises ``ValueError`` for an empty secret."""
    if not secret:
        raise ValueError("a worker token needs a non-empty WORKER_SECRET")
    iat = int(time.time() if now is None else now)
    claims: dict[str, object] = {"sub": WORKER_SUBJECT, "role": WORKER_ROLE, "name": name,
                                 "iat": iat, "exp": iat + ttl_s}
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


@dataclass(frozen=True)
class WorkerCredential:
    """Either a prebuilt ``token`` (``WORKER_TOKEN``, used as given) or a ``secret`` to mint a
    fresh token from each time one is needed (so a long-running worker never presents an
    expired one). At least one of the two is set (``config.py`` guarantees it)."""

    token: str | None = None
    secret: str | None = None
    name: str = "Recorder"
    audience: str | None = None
    issuer: str | None = None

    def current_token(self, clock: Callable[[], float] = time.time) -> str:
        """The token to present now; ``token`` wins over ``secret``."""
        if self.token:
            return self.token
        return mint_worker_token(self.secret or "", name=self.name, audience=self.audience,
                                 issuer=self.issuer, now=clock())
