"""Passwords (scrypt) and JWTs (PROTOCOL §1).

Tokens are verified against a fixed algorithm list from configuration, never the token
header; ``exp`` is required; ``aud``/``iss`` are checked when configured. HS* tokens verify
with ``JWT_SECRET`` only and RS*/ES* tokens with ``JWT_PUBLIC_KEY`` only, so an HS256 token
signed with the public key as its secret (algorithm confusion) fails.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from dataclasses import dataclass

import jwt

from server.config import Config
from server.errors import Unauthorized

# scrypt parameters (RFC 7914 recommends N=2^14, r=8, p=1 for interactive logins): ~16 MiB.
_N, _R, _P, _DKLEN = 2**14, 8, 1, 32


def hash_password(password: str) -> str:
    """Return ``scrypt$N$r$p$salt$hash`` for storage."""
    salt = os.urandom(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN, maxmem=64 * 1024 * 1024)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${_N}${_R}${_P}${b64(salt)}${b64(dk)}"


def verify_password(password: str, stored: str | None) -> bool:
    """Constant-time check of ``password`` against a stored scrypt hash."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, dk = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(dk)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(expected), maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@dataclass(frozen=True)
class Identity:
    """Who a verified token speaks for."""

    user_id: int
    name: str
    role: str
    claims: dict


def issue_token(config: Config, user_id: int, name: str, role: str, ttl_s: int | None = None) -> str:
    """Mint an HS256 token for a local user."""
    now = int(time.time())
    claims = {"sub": str(user_id), "name": name, "role": role, "iat": now,
              "exp": now + (ttl_s if ttl_s is not None else config.token_ttl_s)}
    if config.jwt_audience:
        claims["aud"] = config.jwt_audience
    if config.jwt_issuer:
        claims["iss"] = config.jwt_issuer
    return jwt.encode(claims, config.jwt_secret, algorithm="HS256")


# A media worker's own token (docs/RECORDING.md): ``sub`` is this word instead of a user id,
# ``role`` is ``recorder``. It stands for a service, not a person, so no user row backs it; it
# must be signed with JWT_SECRET (an LMS's key cannot mint one).
WORKER_SUBJECT = "worker"
WORKER_USER_ID = 0


def mint_worker_token(secret: str, name: str = "Recorder", ttl_s: int = 24 * 3600,
                      audience: str | None = None, issuer: str | None = None) -> str:
    """A recorder token for a media worker, minted from the shared JWT_SECRET."""
    now = int(time.time())
    claims = {"sub": WORKER_SUBJECT, "name": name, "role": "recorder", "iat": now, "exp": now + ttl_s}
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")


def issue_worker_token(config: Config, name: str = "Recorder", ttl_s: int = 24 * 3600) -> str:
    return mint_worker_token(config.jwt_secret, name, ttl_s, config.jwt_audience, config.jwt_issuer)


def verify_token(config: Config, token: str) -> Identity:
    """Verify ``token``; raise Unauthorized with a reason on any failure."""
    if not isinstance(token, str) or not token:
        raise Unauthorized("missing token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise Unauthorized(f"malformed token: {e}") from None
    alg = header.get("alg")
    if alg not in config.jwt_algorithms:
        raise Unauthorized("token algorithm not accepted")
    if alg.startswith("HS"):
        key = config.jwt_secret
    elif config.jwt_public_key:
        key = config.jwt_public_key
    else:
        raise Unauthorized("no public key configured for this algorithm")
    options = {"require": ["exp", "sub"], "verify_aud": config.jwt_audience is not None}
    try:
        claims = jwt.decode(token, key, algorithms=[alg], options=options,
                            audience=config.jwt_audience, issuer=config.jwt_issuer, leeway=5)
    except jwt.PyJWTError as e:
        raise Unauthorized(f"invalid token: {e}") from None
    role = claims.get("role", "student")
    if role not in ("instructor", "student", "admin", "recorder"):
        raise Unauthorized("unknown role in token")
    if claims["sub"] == WORKER_SUBJECT:
        if role != "recorder" or not alg.startswith("HS"):
            raise Unauthorized("worker tokens carry role recorder and are signed with JWT_SECRET")
        return Identity(user_id=WORKER_USER_ID, name=str(claims.get("name") or "Recorder"), role=role,
                        claims=claims)
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError):
        raise Unauthorized("token subject is not a Podium user id") from None
    return Identity(user_id=user_id, name=str(claims.get("name", "")), role=role, claims=claims)
