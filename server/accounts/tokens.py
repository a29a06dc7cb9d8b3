"""JWTs (PROTOCOL §1): user tokens, media workers' tokens, and their verification.

Tokens are verified against a fixed algorithm list from configuration, never the token
header; ``exp`` is required; ``aud``/``iss`` are checked when configured. HS* tokens verify
with ``JWT_SECRET`` only and RS*/ES* tokens with ``JWT_PUBLIC_KEY`` only, so an HS256 token
signed with the public key as its secret (algorithm confusion) fails.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from server.config import Config
from server.kernel.errors import Unauthorized


@dataclass(frozen=True)
class Identity:
    """Who a verified token speaks for."""

    user_id: int
    name: str
    role: str
    claims: dict


def issue_token(config: Config, user_id: int, name: str, role: str, ttl_s: int | None = None,
                version: int = 0) -> str:
    """Mint an HS256 token for a local user; ``version`` is the user's token version (claim
    ``tv``): changing the password bumps it, and tokens of an older version stop working."""
    now = int(time.time())
    claims = {"sub": str(user_id), "name": name, "role": role, "iat": now,
              "exp": now + (ttl_s if ttl_s is not None else config.token_ttl_s), "tv": version}
    if config.jwt_audience:
        claims["aud"] = config.jwt_audience
    if config.jwt_issuer:
        claims["iss"] = config.jwt_issuer
    return jwt.encode(claims, config.jwt_secret, algorithm="HS256")


# An LMS back end's service credential (server/provision/credentials.py) starts with this: it
# is accepted on /api/provision/ only, never as a user's token.
SERVICE_CREDENTIAL_PREFIX = "podium-svc-"


# A media worker's own token (docs/RECORDING.md): ``sub`` is this word instead of a user id,
# ``role`` is ``recorder``. It stands for a service, not a person, so no user row backs it. It
# verifies with WORKER_SECRET alone (HS256): no user token (JWT_SECRET) and no token of an LMS's
# key can act as a worker, and a worker's secret cannot mint a user token.
WORKER_SUBJECT = "worker"
WORKER_USER_ID = 0


def issue_worker_token(config: Config, name: str = "Recorder", ttl_s: int = 24 * 3600) -> str:
    """A worker token as a media worker mints it from WORKER_SECRET (tests and ``token``)."""
    now = int(time.time())
    claims = {"sub": WORKER_SUBJECT, "name": name, "role": "recorder", "iat": now, "exp": now + ttl_s}
    if config.jwt_audience:
        claims["aud"] = config.jwt_audience
    if config.jwt_issuer:
        claims["iss"] = config.jwt_issuer
    return jwt.encode(claims, config.worker_secret, algorithm="HS256")


def verify_token(config: Config, token: str) -> Identity:
    """Verify ``token``; raise Unauthorized with a reason on any failure."""
    if not isinstance(token, str) or not token:
        raise Unauthorized("missing token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise Unauthorized(f"malformed token: {e}") from None
    alg = header.get("alg")
    options = {"require": ["exp", "sub"], "verify_aud": config.jwt_audience is not None}
    if alg == "HS256" and _unverified_subject(token) == WORKER_SUBJECT:
        return _verify_worker(config, token, options)
    if alg not in config.jwt_algorithms:
        raise Unauthorized("token algorithm not accepted")
    if alg.startswith("HS"):
        key = config.jwt_secret
    elif config.jwt_public_key:
        key = config.jwt_public_key
    else:
        raise Unauthorized("no public key configured for this algorithm")
    try:
        claims = jwt.decode(token, key, algorithms=[alg], options=options,
                            audience=config.jwt_audience, issuer=config.jwt_issuer, leeway=5)
    except jwt.PyJWTError as e:
        raise Unauthorized(f"invalid token: {e}") from None
    role = claims.get("role", "student")
    if role not in ("instructor", "student", "admin"):
        raise Unauthorized("unknown role in token" if role != "recorder" else
                           "recorder tokens are minted from WORKER_SECRET by media workers only")
    if claims["sub"] == WORKER_SUBJECT:
        raise Unauthorized("worker tokens are signed with WORKER_SECRET")
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError):
        raise Unauthorized("token subject is not a Podium user id") from None
    return Identity(user_id=user_id, name=str(claims.get("name", "")), role=role, claims=claims)


def token_version(ident: Identity) -> int:
    """The token version a verified token was minted for (``tv``; 0 when absent, as in an
    LMS's tokens); -1 for a malformed claim, which matches no user."""
    tv = ident.claims.get("tv", 0)
    return tv if isinstance(tv, int) and not isinstance(tv, bool) else -1


def _unverified_subject(token: str) -> object:
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("sub")
    except jwt.PyJWTError:
        return None


def _verify_worker(config: Config, token: str, options: dict) -> Identity:
    """A media worker's token: HS256 with WORKER_SECRET, role recorder."""
    try:
        claims = jwt.decode(token, config.worker_secret, algorithms=["HS256"], options=options,
                            audience=config.jwt_audience, issuer=config.jwt_issuer, leeway=5)
    except jwt.PyJWTError as e:
        raise Unauthorized(f"invalid worker token: {e}") from None
    if claims.get("role") != "recorder":
        raise Unauthorized("worker tokens carry role recorder")
    return Identity(user_id=WORKER_USER_ID, name=str(claims.get("name") or "Recorder"), role="recorder",
                    claims=claims)
