"""Signed download URLs (PROTOCOL §3 "Files"): ``GET /dl/{file_id}/{name}?exp=&kid=&disp=&sig=``.

A pure module (no Tornado, no I/O). The MAC is HMAC-SHA256 over a canonical byte string that
length-prefixes every field, so no choice of file name (newlines, ``/``, ``?``, ``%``, unicode)
can make two different requests share a MAC input::

    b"podium-dl-v1\\n" + for each of (method, file_id, name, exp, disp, kid):
        b"<byte length>:<utf-8 bytes>\\n"

Rotation: a :class:`SigningKeys` holds an ordered list of ``(kid, secret)``; the first key signs,
every listed key verifies; removing a key revokes every URL it signed.

Callers must still re-check the file's access rules after :func:`verify` succeeds, so deleting
a file (or losing access) revokes its links. A ``HEAD`` request should be verified as ``GET``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import quote, urlencode

from server.kernel.errors import Forbidden

DISPOSITIONS = ("attachment", "inline")
MIN_SECRET_BYTES = 32
_DOMAIN = b"podium-dl-v1\n"
_KID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_METHOD_RE = re.compile(r"[A-Z]{1,16}")
_EXP_RE = re.compile(r"[0-9]{1,12}")  # decimal epoch seconds; no sign, no spaces, no floats
_SIG_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, url-safe base64, no padding
_QUERY_FIELDS = ("exp", "kid", "disp", "sig")


class InvalidSignature(Forbidden):
    """The URL was not signed by a listed key for this method, file, name, expiry and
    disposition (missing, malformed or tampered field, or unknown key id). Maps to 403."""


class ExpiredSignature(Forbidden):
    """The URL's MAC is valid but its expiry has passed. Maps to 403."""


@dataclass(frozen=True)
class SigningKeys:
    """An ordered, non-empty set of ``(kid, secret)``: the first signs, all verify.

    Raises ValueError for an empty list, a malformed or duplicate kid, or a secret shorter
    than 32 bytes.
    """

    keys: tuple[tuple[str, bytes], ...]

    def __init__(self, keys: Sequence[tuple[str, bytes]]):
        keys = tuple((kid, bytes(secret)) for kid, secret in keys)
        if not keys:
            raise ValueError("at least one signing key is required")
        seen: set[str] = set()
        for kid, secret in keys:
            if not isinstance(kid, str) or not _KID_RE.fullmatch(kid):
                raise ValueError(f"signing key id {kid!r} must match [A-Za-z0-9_.-]{{1,64}}")
            if kid in seen:
                raise ValueError(f"duplicate signing key id {kid!r}")
            if len(secret) < MIN_SECRET_BYTES:
                raise ValueError(f"signing key {kid!r} is shorter than {MIN_SECRET_BYTES} bytes")
            seen.add(kid)
        object.__setattr__(self, "keys", keys)

    @property
    def current(self) -> tuple[str, bytes]:
        """The ``(kid, secret)`` that signs new URLs."""
        return self.keys[0]

    def secret(self, kid: str) -> bytes | None:
        """The secret for ``kid``, or None when it is not listed."""
        for k, secret in self.keys:
            if hmac.compare_digest(k.encode(), kid.encode()):
                return secret
        return None

    def __repr__(self) -> str:  # never print secrets
        return f"SigningKeys(kids={[k for k, _ in self.keys]!r})"


def parse_signing_keys(value: str) -> list[tuple[str, bytes]]:
    """Parse ``SIGNING_KEYS`` = ``kid1:base64secret,kid2:base64secret`` (standard or url-safe
    base64, padding optional; whitespace around entries ignored).

    Raises ValueError naming the problem: no entries, an entry without ``kid:``, bad base64,
    a secret under 32 bytes, or a duplicate kid.
    """
    entries = [e.strip() for e in value.split(",")]
    if not any(entries):
        raise ValueError("SIGNING_KEYS is empty")
    result: list[tuple[str, bytes]] = []
    for i, entry in enumerate(entries):
        if not entry:
            raise ValueError(f"SIGNING_KEYS entry {i + 1} is empty")
        kid, sep, encoded = entry.partition(":")
        kid, encoded = kid.strip(), encoded.strip()
        if not sep or not kid or not encoded:
            raise ValueError(f"SIGNING_KEYS entry {i + 1} must be 'kid:base64secret'")
        try:
            secret = _b64decode(encoded)
        except ValueError:
            raise ValueError(f"SIGNING_KEYS key {kid!r} is not valid base64") from None
        result.append((kid, secret))
    SigningKeys(result)  # same validation (kid shape, length, duplicates) as at run time
    return result


def _b64decode(text: str) -> bytes:
    text = text.rstrip("=")
    if len(text) % 4 == 1:
        raise ValueError("bad base64 length")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("bad base64") from None


def _canonical(method: str, file_id: str, name: str, exp: int, disp: str, kid: str) -> bytes:
    out = bytearray(_DOMAIN)
    for value in (method, file_id, name, str(exp), disp, kid):
        data = value.encode("utf-8")  # lone surrogates raise UnicodeEncodeError
        out += b"%d:%s\n" % (len(data), data)
    return bytes(out)


def _mac(secret: bytes, canonical: bytes) -> str:
    digest = hmac.new(secret, canonical, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _check_fields(method: str, file_id: Any, name: str) -> tuple[str, str, str]:
    if not isinstance(method, str) or not _METHOD_RE.fullmatch(method):
        raise ValueError(f"bad HTTP method {method!r}")
    file_id = str(file_id)
    if not file_id:
        raise ValueError("file id is empty")
    if not isinstance(name, str) or not name:
        raise ValueError("file name is empty")
    return method, file_id, name


def sign(keys: SigningKeys, method: str, file_id: Any, name: str, exp: int,
         disposition: str) -> dict[str, str]:
    """Sign with the first key; return the query fields ``{exp, kid, disp, sig}`` as strings.

    Raises ValueError for an unknown disposition, a non-integer or negative expiry, or an
    empty method, file id or name.
    """
    method, file_id, name = _check_fields(method, file_id, name)
    if disposition not in DISPOSITIONS:
        raise ValueError(f"disposition must be one of {DISPOSITIONS}")
    if isinstance(exp, bool) or not isinstance(exp, int) or not _EXP_RE.fullmatch(str(exp)):
        raise ValueError("exp must be a non-negative integer of epoch seconds")
    kid, secret = keys.current
    sig = _mac(secret, _canonical(method, file_id, name, exp, disposition, kid))
    return {"exp": str(exp), "kid": kid, "disp": disposition, "sig": sig}


def _one(query: Mapping[str, Any], field: str) -> str:
    """One query value as str; accepts str, bytes, or a one-element list of either (Tornado's
    ``request.query_arguments``). Missing, repeated or non-UTF-8 → InvalidSignature."""
    value = query.get(field)
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise InvalidSignature(f"exactly one {field!r} is required")
        value = value[0]
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidSignature(f"{field!r} is not UTF-8") from None
    if not isinstance(value, str) or not value:
        raise InvalidSignature(f"missing {field!r}")
    return value


def verify(keys: SigningKeys, method: str, file_id: Any, name: str, query: Mapping[str, Any],
           now: float) -> str:
    """Check a signed URL; return its disposition (``attachment`` or ``inline``).

    ``name`` is the decoded path segment. The MAC is checked before the expiry, so only an
    authentic URL can be reported as expired. Raises InvalidSignature for any missing,
    malformed or tampered field or unknown kid, ExpiredSignature when ``now >= exp``.
    """
    try:
        method, file_id, name = _check_fields(method, file_id, name)
    except ValueError as e:
        raise InvalidSignature(str(e)) from None
    exp_s, kid, disp, sig = (_one(query, f) for f in _QUERY_FIELDS)
    if not _EXP_RE.fullmatch(exp_s):
        raise InvalidSignature("exp must be integer epoch seconds")
    if disp not in DISPOSITIONS:
        raise InvalidSignature("unknown disposition")
    if not _SIG_RE.fullmatch(sig):
        raise InvalidSignature("malformed signature")
    secret = keys.secret(kid) if _KID_RE.fullmatch(kid) else None
    if secret is None:
        raise InvalidSignature("unknown key id")
    exp = int(exp_s)
    try:
        canonical = _canonical(method, file_id, name, exp, disp, kid)
    except UnicodeEncodeError:
        raise InvalidSignature("name is not valid unicode") from None
    if not hmac.compare_digest(_mac(secret, canonical).encode("ascii"), sig.encode("ascii")):
        raise InvalidSignature("signature mismatch")
    if now >= exp:
        raise ExpiredSignature("link expired")
    return disp


def signed_path(keys: SigningKeys, file_id: Any, name: str, disposition: str, expires_in: int,
                max_ttl_s: int, now: float) -> tuple[str, int]:
    """Return ``("/dl/{file_id}/{quoted name}?exp=&kid=&disp=&sig=", expires_at)`` for GET.

    ``expires_in`` is capped at ``max_ttl_s``; ``expires_at = floor(now) + ttl`` (epoch
    seconds), so a link never outlives the cap. The name is percent-encoded with no safe
    characters (``/``, ``?``, ``#``, ``%`` all escaped); the MAC covers the decoded name.
    Raises ValueError when ``expires_in`` is not a positive integer or the name is ``.`` or
    ``..`` (clients collapse such path segments, even percent-encoded).
    """
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
        raise ValueError("expires_in must be a positive integer of seconds")
    if max_ttl_s <= 0:
        raise ValueError("max_ttl_s must be positive")
    if name in (".", ".."):
        raise ValueError("file name may not be '.' or '..'")
    expires_at = int(now) + min(expires_in, max_ttl_s)
    query = sign(keys, "GET", file_id, name, expires_at, disposition)
    path = f"/dl/{quote(str(file_id), safe='')}/{quote(name, safe='')}?{urlencode(query)}"
    return path, expires_at
