"""The keys that sign download links (``SIGNING_KEYS``): an ordered set of ``(kid, secret)``
and its parsing from the environment. Pure: no I/O, nothing of a feature."""
from __future__ import annotations

import base64
import binascii
import hmac
import re
from dataclasses import dataclass
from typing import Sequence

MIN_SECRET_BYTES = 32
KID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


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
            if not isinstance(kid, str) or not KID_RE.fullmatch(kid):
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
        """The secret for ``kid``, or None when it is not listed (or not a well-formed kid)."""
        if not isinstance(kid, str) or not KID_RE.fullmatch(kid):
            return None
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
