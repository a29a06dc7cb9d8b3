"""Service credentials of LMS back ends (``python -m server service-credential add|list|revoke``).

A credential is ``podium-svc-`` and 43 random URL-safe characters (256 bits), shown once when
made; only its SHA-256 is stored (a secret that long needs no slow hash), and a request's
credential is found by that hash. Each credential has an issuer naming whose external ids it
manages (default ``urn:podium:service:<name>``; credentials sharing one manage the same users
and rooms, so a credential can be replaced without losing them) and a service account (a user
row with role ``recorder``, which never signs in and is never found) that creates its rooms."""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from server.accounts.tokens import SERVICE_CREDENTIAL_PREFIX
from server.db import external as eq
from server.db import users as uq
from server.db.models import ServiceCredential
from server.kernel.clock import utcnow
from server.kernel.errors import Unauthorized

NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def default_issuer(name: str) -> str:
    return f"urn:podium:service:{name}"


async def add(db, name: str, issuer: str | None = None) -> tuple[str, ServiceCredential]:
    """Make a credential; ``(secret, row)``. ValueError for a bad or taken name."""
    if not NAME_RE.fullmatch(name):
        raise ValueError("the name must be 1-64 characters: lower-case letters, digits, . _ - (not first)")
    issuer = issuer or default_issuer(name)
    if not 0 < len(issuer) <= 255:
        raise ValueError("the issuer must be 1-255 characters")
    secret = SERVICE_CREDENTIAL_PREFIX + secrets.token_urlsafe(32)
    async with db.write() as s:
        if await eq.credential_by_name(s, name) is not None:
            raise ValueError(f"a credential named {name!r} exists already (names are never reused)")
        account = await uq.create_user(s, "svc-" + hashlib.sha256(name.encode()).hexdigest()[:40],
                                       f"LMS ({name})", None, "recorder")
        cred = await eq.add_credential(s, name, issuer, hash_secret(secret), account.id)
    return secret, cred


async def revoke(db, name: str) -> bool:
    """Revoke the credential (it stops working at once); False when there is none by that name."""
    async with db.write() as s:
        cred = await eq.credential_by_name(s, name)
        if cred is None:
            return False
        if cred.revoked_at is None:
            cred.revoked_at = utcnow()
        return True


async def listing(db) -> list[dict]:
    async with db.read() as s:
        rows = await eq.credentials(s)
    return [{"name": c.name, "issuer": c.issuer, "created_at": _iso(c.created_at),
             "last_used_at": _iso(c.last_used_at), "revoked_at": _iso(c.revoked_at)} for c in rows]


def _iso(value) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value is not None else None


async def authenticate(db, header: str) -> ServiceCredential:
    """The live credential of an ``Authorization: Bearer …`` header; Unauthorized otherwise
    (a user's token gets its own answer)."""
    if not header.startswith("Bearer "):
        raise Unauthorized("missing bearer service credential")
    secret = header[7:].strip()
    if not secret.startswith(SERVICE_CREDENTIAL_PREFIX):
        raise Unauthorized("user tokens are not accepted here: /api/provision/ takes a service credential "
                           "(python -m server service-credential add NAME)")
    async with db.read() as s:
        cred = await eq.credential_by_hash(s, hash_secret(secret))
    if cred is None or cred.revoked_at is not None:
        raise Unauthorized("unknown or revoked service credential")
    if cred.last_used_at is None or utcnow() - cred.last_used_at > TOUCH_EVERY:
        async with db.write() as s:
            await eq.touch_credential(s, cred.id)
    return cred
