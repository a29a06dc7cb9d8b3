"""Signed download URLs (PROTOCOL §3 "Files"): ``GET /dl/{file_id}/{name}?exp=&kid=&disp=&u=&sig=``,
the one place links are minted, for files and for recording assets (:func:`file_link`).

A pure module (no Tornado, no I/O). The MAC is HMAC-SHA256 over a canonical byte string that
length-prefixes every field, so no choice of file name (newlines, ``/``, ``?``, ``%``, unicode)
can make two different requests share a MAC input::

    b"podium-dl-v2\\n" + for each of (method, file_id, name, exp, disp, kid, holder):
        b"<byte length>:<utf-8 bytes>\\n"

A link names its holder (``u``, the user it was minted for): the download checks that the
holder may still read the file, so a link stops working when its holder leaves or is removed
from the room, or the file is deleted (docs/SECURITY.md).

Rotation: a :class:`~server.kernel.signing_keys.SigningKeys` holds an ordered list of ``(kid, secret)``; the first key signs,
every listed key verifies; removing a key revokes every URL it signed.

Callers must still re-check the holder's access to the file after :func:`verify` succeeds, so
deleting a file (or losing access) revokes its links. A ``HEAD`` request should be verified as ``GET``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import quote, urlencode

from server.files.rules import INLINE_SAFE
from server.kernel.clock import iso
from server.kernel.errors import Forbidden
from server.kernel.signing_keys import SigningKeys

DISPOSITIONS = ("attachment", "inline")
_DOMAIN = b"podium-dl-v2\n"
_METHOD_RE = re.compile(r"[A-Z]{1,16}")
_EXP_RE = re.compile(r"[0-9]{1,12}")  # decimal epoch seconds; no sign, no spaces, no floats
_SIG_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, url-safe base64, no padding
_QUERY_FIELDS = ("exp", "kid", "disp", "u", "sig")
_HOLDER_RE = re.compile(r"[0-9]{1,19}")


class InvalidSignature(Forbidden):
    """The URL was not signed by a listed key for this method, file, name, expiry and
    disposition (missing, malformed or tampered field, or unknown key id). Maps to 403."""


class ExpiredSignature(Forbidden):
    """The URL's MAC is valid but its expiry has passed. Maps to 403."""


def _canonical(method: str, file_id: str, name: str, exp: int, disp: str, kid: str, holder: int) -> bytes:
    out = bytearray(_DOMAIN)
    for value in (method, file_id, name, str(exp), disp, kid, str(holder)):
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
         disposition: str, holder: int) -> dict[str, str]:
    """Sign with the first key; return the query fields ``{exp, kid, disp, u, sig}`` as strings.

    Raises ValueError for an unknown disposition, a non-integer or negative expiry or holder,
    or an empty method, file id or name.
    """
    method, file_id, name = _check_fields(method, file_id, name)
    if disposition not in DISPOSITIONS:
        raise ValueError(f"disposition must be one of {DISPOSITIONS}")
    if isinstance(exp, bool) or not isinstance(exp, int) or not _EXP_RE.fullmatch(str(exp)):
        raise ValueError("exp must be a non-negative integer of epoch seconds")
    if isinstance(holder, bool) or not isinstance(holder, int) or not _HOLDER_RE.fullmatch(str(holder)):
        raise ValueError("holder must be a user id")
    kid, secret = keys.current
    sig = _mac(secret, _canonical(method, file_id, name, exp, disposition, kid, holder))
    return {"exp": str(exp), "kid": kid, "disp": disposition, "u": str(holder), "sig": sig}


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
           now: float) -> tuple[str, int]:
    """Check a signed URL; return its disposition (``attachment`` or ``inline``) and holder.

    ``name`` is the decoded path segment. The MAC is checked before the expiry, so only an
    authentic URL can be reported as expired. Raises InvalidSignature for any missing,
    malformed or tampered field or unknown kid, ExpiredSignature when ``now >= exp``.
    """
    try:
        method, file_id, name = _check_fields(method, file_id, name)
    except ValueError as e:
        raise InvalidSignature(str(e)) from None
    exp_s, kid, disp, holder_s, sig = (_one(query, f) for f in _QUERY_FIELDS)
    if not _HOLDER_RE.fullmatch(holder_s):
        raise InvalidSignature("u must be a user id")
    if not _EXP_RE.fullmatch(exp_s):
        raise InvalidSignature("exp must be integer epoch seconds")
    if disp not in DISPOSITIONS:
        raise InvalidSignature("unknown disposition")
    if not _SIG_RE.fullmatch(sig):
        raise InvalidSignature("malformed signature")
    secret = keys.secret(kid)
    if secret is None:
        raise InvalidSignature("unknown key id")
    exp = int(exp_s)
    try:
        canonical = _canonical(method, file_id, name, exp, disp, kid, int(holder_s))
    except UnicodeEncodeError:
        raise InvalidSignature("name is not valid unicode") from None
    if not hmac.compare_digest(_mac(secret, canonical).encode("ascii"), sig.encode("ascii")):
        raise InvalidSignature("signature mismatch")
    if now >= exp:
        raise ExpiredSignature("link expired")
    return disp, int(holder_s)


def signed_path(keys: SigningKeys, file_id: Any, name: str, disposition: str, expires_in: int,
                max_ttl_s: int, now: float, holder: int) -> tuple[str, int]:
    """Return ``("/dl/{file_id}/{quoted name}?exp=&kid=&disp=&u=&sig=", expires_at)`` for GET
    by ``holder``.

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
    query = sign(keys, "GET", file_id, name, expires_at, disposition, holder)
    path = f"/dl/{quote(str(file_id), safe='')}/{quote(name, safe='')}?{urlencode(query)}"
    return path, expires_at


def file_link(keys: SigningKeys, f: Any, *, holder: int, base_url: str, expires_in: int, max_ttl_s: int,
              now: float, disposition: str = "attachment", with_inline: bool = False) -> dict:
    """``{url, expires_at}`` of a GET link for ``holder`` to the file row ``f`` (``id``, ``name``) with
    ``disposition``; with ``with_inline``, also ``inline_url`` when ``f.content_type`` may be shown
    in the page (:data:`~server.files.rules.INLINE_SAFE`), for ``<video>``/``<img>``. Both links
    expire together, at ``floor(now) + min(expires_in, max_ttl_s)``; ``base_url`` (no trailing
    ``/``) is prefixed to the path. Raises ValueError as :func:`signed_path` does."""
    path, exp = signed_path(keys, f.id, f.name, disposition, expires_in, max_ttl_s, now, holder)
    link = {"url": base_url + path,
            "expires_at": iso(datetime.fromtimestamp(exp, timezone.utc).replace(tzinfo=None))}
    if with_inline and f.content_type in INLINE_SAFE:
        inline, _ = signed_path(keys, f.id, f.name, "inline", expires_in, max_ttl_s, now, holder)
        link["inline_url"] = base_url + inline
    return link
