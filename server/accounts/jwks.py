"""Key sets (JWKS) fetched over HTTP, cached and bounded — one cache for every key set Podium
reads: the external identity provider's (``JWT_JWKS_URL``, server/accounts/external.py) and
each LTI platform's (server/lti/validate.py).

- A set is kept for its response's ``Cache-Control: max-age``, clamped to
  ``[refetch_s, max_ttl_s]`` (``no-store``/``no-cache`` count as 0, so as ``refetch_s``), or
  ``default_ttl_s`` without one; an expired set is fetched again when next needed.
- A token whose ``kid`` is not in the set fetches it again (key rotation), but one set is
  fetched at most once per ``refetch_s`` whatever asks, and concurrent askers share one fetch:
  a flood of tokens with made-up ``kid``s makes at most one fetch per ``refetch_s``.
- A failed fetch (network, status, body) keeps the keys held and is logged; the next attempt
  waits ``refetch_s`` too.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

log = logging.getLogger("podium.jwks")

MAX_BODY_BYTES = 256 * 1024
MAX_KEYS = 100
MAX_KID_CHARS = 256
_KTY = {"RS": "RSA", "PS": "RSA", "ES": "EC"}
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.I)


class KeyNotFound(Exception):
    """No key of the set verifies this token; ``reason`` says why."""

    def __init__(self, reason: str, unavailable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unavailable = unavailable  # the set could never be fetched (a server-side problem)


@dataclass
class _Set:
    keys: dict[str | None, list[tuple[dict, jwt.PyJWK]]] = field(default_factory=dict)
    fetched: bool = False  # a fetch succeeded once
    expires_at: float = 0.0
    attempted_at: float | None = None
    inflight: asyncio.Future | None = None


class JwksCache:
    def __init__(self, refetch_s: float = 10.0, default_ttl_s: float = 300.0, max_ttl_s: float = 86400.0,
                 timeout_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.refetch_s, self.default_ttl_s, self.max_ttl_s = refetch_s, default_ttl_s, max_ttl_s
        self.timeout_s = timeout_s
        self.clock = clock
        self._sets: dict[str, _Set] = {}
        self.fetches = 0  # attempts made (metrics, tests)

    @classmethod
    def from_config(cls, config) -> "JwksCache":
        return cls(config.jwks_refetch_s, config.jwks_cache_s, config.jwks_cache_max_s)

    def forget(self) -> None:
        """Drop every set held (the next token fetches its set again)."""
        self._sets.clear()

    async def key_for(self, url: str, token: str, algorithms: tuple[str, ...]) -> jwt.PyJWK:
        """The key of the set at ``url`` that ``token``'s header names (its ``kid``; without one,
        the set's only key for the algorithm). KeyNotFound otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise KeyNotFound(f"the token is not a JWT: {e}") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in algorithms:
            raise KeyNotFound(f"the token's algorithm must be one of {', '.join(algorithms)}")
        if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS):
            raise KeyNotFound("the token's kid is malformed")
        entry = self._sets.setdefault(url, _Set())
        if not entry.fetched or self.clock() >= entry.expires_at:
            await self._refresh(url, entry)
        if kid is not None and kid not in entry.keys:
            await self._refresh(url, entry)  # rotation: the set may have a new key (bounded)
        if not entry.fetched:
            raise KeyNotFound(f"the key set at {url} could not be fetched", unavailable=True)
        return _pick(entry, kid, alg)

    async def _refresh(self, url: str, entry: _Set) -> None:
        """Fetch the set again unless one fetch is under way (then wait for it) or the last
        attempt was less than ``refetch_s`` ago."""
        if entry.inflight is not None:
            await asyncio.shield(entry.inflight)
            return
        now = self.clock()
        if entry.attempted_at is not None and now - entry.attempted_at < self.refetch_s:
            return
        entry.attempted_at = now
        entry.inflight = asyncio.ensure_future(self._fetch(url, entry))
        entry.inflight.add_done_callback(lambda _: setattr(entry, "inflight", None))
        await asyncio.shield(entry.inflight)

    async def _fetch(self, url: str, entry: _Set) -> None:
        self.fetches += 1
        client = AsyncHTTPClient(force_instance=True, max_body_size=MAX_BODY_BYTES)
        try:
            resp = await client.fetch(HTTPRequest(url, headers={"Accept": "application/json"},
                                                  connect_timeout=self.timeout_s, request_timeout=self.timeout_s,
                                                  follow_redirects=True, max_redirects=3), raise_error=False)
            if resp.code != 200:
                raise ValueError(f"HTTP {resp.code}" + (f" ({resp.error})" if resp.code == 599 else ""))
            keys = _parse(resp.body)
        except Exception as e:  # noqa: BLE001 - any failure keeps what we had
            held = sum(len(v) for v in entry.keys.values())
            log.warning("fetching the key set %s failed: %s; keeping the %d key(s) held", url, e, held)
            return
        finally:
            client.close()
        ttl = _ttl(resp.headers.get("Cache-Control"), self.default_ttl_s)
        ttl = min(max(ttl, self.refetch_s), self.max_ttl_s)
        entry.keys, entry.fetched, entry.expires_at = keys, True, self.clock() + ttl
        log.info("fetched the key set %s: %d key(s), kept %.0f s", url, sum(len(v) for v in keys.values()), ttl)


def _parse(body: bytes) -> dict[str | None, list[tuple[dict, jwt.PyJWK]]]:
    """The usable signing keys of a JWKS document by ``kid``; ValueError when it has none."""
    doc = json.loads(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError("not a JWK Set (no 'keys' list)")
    keys: dict[str | None, list[tuple[dict, jwt.PyJWK]]] = {}
    for raw in doc["keys"][:MAX_KEYS]:
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
            continue
        try:
            parsed = jwt.PyJWK(raw)
        except jwt.PyJWTError:
            continue  # a key type or curve we cannot use: the others still count
        kid = raw.get("kid") if isinstance(raw.get("kid"), str) else None
        keys.setdefault(kid, []).append((raw, parsed))
    if not keys:
        raise ValueError("no usable signing key in the set")
    return keys


def _ttl(cache_control: str | None, default: float) -> float:
    if not cache_control:
        return default
    if re.search(r"\b(no-store|no-cache)\b", cache_control, re.I):
        return 0.0
    m = _MAX_AGE.search(cache_control)
    return float(m.group(1)) if m else default


def _fits(raw: dict, alg: str) -> bool:
    """May this JWK verify a token of ``alg``? Its ``alg`` (when it says one) and key type agree."""
    if raw.get("alg") is not None and raw["alg"] != alg:
        return False
    return raw.get("kty") == _KTY.get(alg[:2])


def _pick(entry: _Set, kid: str | None, alg: str) -> jwt.PyJWK:
    if kid is not None:
        found = [k for raw, k in entry.keys.get(kid, []) if _fits(raw, alg)]
        if not found:
            raise KeyNotFound("no key of the key set has the token's kid" if kid not in entry.keys
                              else f"the key with the token's kid is not for {alg}")
        return found[0]
    found = [k for candidates in entry.keys.values() for raw, k in candidates if _fits(raw, alg)]
    if len(found) != 1:
        raise KeyNotFound("the token has no kid and the key set does not have exactly one key for its algorithm")
    return found[0]
