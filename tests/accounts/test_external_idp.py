"""Tokens of an external identity provider (issue 17.6): ``JWT_JWKS_URL`` against a real JWKS
endpoint on loopback (tests/jwksserver.py) — key rotation (refetch on an unknown ``kid``), the
bound on refetches (counted at the endpoint), the cache (max-age), a failing endpoint, the
checks on a token, auto-provisioning by ``(iss, sub)`` with the name and role claims."""
from __future__ import annotations

import asyncio
import logging
import secrets
import time

import pytest
from sqlalchemy import func, select

from server.db.models import ExternalIdentity, User
from tests.jwksserver import JwksServer, SigningKey

ISSUER = "https://idp.example.test"
AUDIENCE = "podium-test"
REFETCH_S = 0.4


@pytest.fixture
def key_a():
    return SigningKey("key-a")


@pytest.fixture
def idp(io_loop, key_a):
    srv = JwksServer([key_a.jwk()])
    yield srv
    srv.stop()


@pytest.fixture
def config_overrides(idp, request):
    """The provider's settings; a test's indirect parameter (a dict) changes some."""
    return {"jwt_jwks_url": idp.url, "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE,
            "jwt_algorithms": ("HS256", "RS256", "ES256"), "jwt_auto_provision": True,
            "jwks_refetch_s": REFETCH_S, "jwks_cache_s": 60.0} | getattr(request, "param", {})


def claims(sub: str = "alice", **extra) -> dict:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300, "name": "Alice Liddell"} | extra


async def me(server, token: str) -> tuple[int, dict]:
    return await server.http("GET", "/api/me", token)


async def users(server) -> int:
    async with server.deps.db.read() as s:
        return (await s.execute(select(func.count()).select_from(User))).scalar()


async def test_rotation_new_key_accepted_at_once_old_key_refused_after_the_cache_expires(server, idp, key_a):
    idp.cache_control = "max-age=1"
    status, body = await me(server, key_a.sign(claims()))
    assert status == 200, body
    alice = body["user"]["id"]
    assert idp.requests == 1
    # the provider publishes key B next to A and starts signing with B
    key_b = SigningKey("key-b")
    idp.keys = [key_a.jwk(), key_b.jwk()]
    await asyncio.sleep(REFETCH_S)  # the set was fetched less than JWKS_REFETCH_S ago: not again yet
    status, body = await me(server, key_b.sign(claims()))
    assert status == 200, body  # unknown kid: the set was fetched again at once
    assert body["user"]["id"] == alice and idp.requests == 2
    # A is withdrawn: still held until the cached set expires (max-age=1), then refused
    idp.keys = [key_b.jwk()]
    status, _ = await me(server, key_a.sign(claims()))
    assert status == 200 and idp.requests == 2
    await asyncio.sleep(1.1)
    status, body = await me(server, key_a.sign(claims()))
    assert status == 401 and "kid" in body["error"]["reason"], body
    assert idp.requests == 3
    status, _ = await me(server, key_b.sign(claims()))
    assert status == 200 and idp.requests == 3


async def test_a_flood_of_unknown_kids_makes_at_most_one_fetch_per_interval(server, idp, key_a):
    status, _ = await me(server, key_a.sign(claims()))
    assert status == 200 and idp.requests == 1
    tokens = [key_a.sign(claims(), kid=secrets.token_hex(8)) for _ in range(200)]  # each a made-up kid
    await asyncio.sleep(REFETCH_S)  # so the first unknown kid may fetch again
    t0 = time.monotonic()
    answers = []
    for wave in range(8):  # 8 waves of 25 concurrent requests
        answers += await asyncio.gather(*(me(server, t) for t in tokens[wave * 25:(wave + 1) * 25]))
    elapsed = time.monotonic() - t0
    assert [s for s, _ in answers] == [401] * 200
    assert all("kid" in b["error"]["reason"] for _, b in answers)
    fetches = idp.requests - 1
    assert fetches <= 1 + elapsed / REFETCH_S, (fetches, elapsed)  # unbounded: 200
    assert fetches >= 1  # the first unknown kid did look again


async def test_max_age_is_respected_within_bounds(server, idp, key_a):
    idp.cache_control = "public, max-age=3600"
    for _ in range(3):
        status, _ = await me(server, key_a.sign(claims()))
        assert status == 200
        await asyncio.sleep(REFETCH_S)
    assert idp.requests == 1
    # no-store counts as the shortest life (JWKS_REFETCH_S), not as "fetch on every token"
    server.deps.jwks.forget()
    idp.cache_control = "no-store"
    token = key_a.sign(claims())
    t0 = time.monotonic()
    for _ in range(30):
        status, _ = await me(server, token)
        assert status == 200
    elapsed = time.monotonic() - t0
    assert 2 <= idp.requests <= 2 + elapsed / REFETCH_S, (idp.requests, elapsed)


async def test_a_failing_key_set_endpoint_keeps_the_cached_keys_and_logs(server, idp, key_a, caplog):
    idp.cache_control = "max-age=0"  # kept JWKS_REFETCH_S
    status, _ = await me(server, key_a.sign(claims()))
    assert status == 200
    idp.status = 503
    await asyncio.sleep(REFETCH_S + 0.1)
    with caplog.at_level(logging.WARNING, logger="podium.jwks"):
        status, body = await me(server, key_a.sign(claims()))
    assert status == 200, body
    assert idp.requests == 2
    assert any("HTTP 503" in r.getMessage() and "keeping the 1 key(s)" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("config_overrides", [{"jwt_jwks_url": "http://127.0.0.1:9/jwks"}], indirect=True)
async def test_an_unreachable_key_set_is_503_not_a_crash(server, key_a):
    status, body = await me(server, key_a.sign(claims()))
    assert status == 503 and "key set could not be fetched" in body["error"]["reason"], body


BAD_TOKENS = [
    (lambda k: k.sign(claims(exp=int(time.time()) - 60)), "expired"),
    (lambda k: k.sign(claims(nbf=int(time.time()) + 600)), "not valid yet"),
    (lambda k: k.sign(claims(iss="https://other-idp.test")), "wrong issuer"),
    (lambda k: k.sign(claims(aud="another-app")), "wrong audience"),
    (lambda k: k.sign({k_: v for k_, v in claims().items() if k_ != "exp"}), "no exp claim"),
    (lambda k: k.sign({k_: v for k_, v in claims().items() if k_ != "aud"}), "no aud claim"),
    (lambda k: SigningKey("key-a").sign(claims()), "signature does not verify"),  # same kid, other key
    (lambda k: k.sign(claims(sub="")), "sub"),
]


async def test_bad_tokens_are_401_with_a_clear_reason_and_create_nothing(server, key_a):
    before = await users(server)
    for bad, reason in BAD_TOKENS:
        status, body = await me(server, bad(key_a))
        assert status == 401, (reason, body)
        assert reason in body["error"]["reason"], (reason, body)
    assert await users(server) == before


async def test_es256_keys_and_sockets(server, idp):
    ec_key = SigningKey("ec-1", "ES256")
    idp.keys.append(ec_key.jwk())
    token = ec_key.sign(claims("bob", name="Bob"))
    status, body = await me(server, token)
    assert status == 200 and body["user"]["display_name"] == "Bob", body
    client = await server.client(token)  # the WebSocket authenticates the same way
    assert client.hello["user"]["display_name"] == "Bob", client.hello


@pytest.mark.parametrize("config_overrides", [{
    "jwt_role_claim": "groups", "jwt_name_claim": "display",
    "jwt_role_map": (("teachers", "instructor"), ("it-staff", "admin"))}], indirect=True)
async def test_auto_provisioning_by_iss_and_sub_with_name_and_role_claims(server, key_a):
    existing, _ = await server.user("alice", display_name="Alice Liddell")
    status, body = await me(server, key_a.sign(claims("alice", display="Alice Liddell", groups=["students"])))
    assert status == 200, body
    first = body["user"]
    assert first["id"] != existing["id"], "matched to an existing account by name"
    assert first["display_name"] == "Alice Liddell" and first["role"] == "student"
    # the same (iss, sub) is the same user; the claims keep the name and role up to date
    status, body = await me(server, key_a.sign(claims("alice", display="Alice L.", groups=["students", "teachers"])))
    assert body["user"]["id"] == first["id"]
    assert body["user"]["display_name"] == "Alice L." and body["user"]["role"] == "instructor"
    status, body = await me(server, key_a.sign(claims("alice", groups="it-staff")))
    assert body["user"]["role"] == "admin"
    status, body = await me(server, key_a.sign(claims("alice", groups=[])))
    assert body["user"]["role"] == "student"  # the provider says: no role that gives rights
    status, body = await me(server, key_a.sign(claims("alice")))  # no claim: unchanged
    assert body["user"]["role"] == "student" and body["user"]["display_name"] == "Alice L."
    async with server.deps.db.read() as s:
        links = (await s.execute(select(ExternalIdentity))).scalars().all()
    assert [(x.issuer, x.subject, str(x.user_id)) for x in links] == [(ISSUER, "alice", first["id"])]


async def test_concurrent_first_tokens_make_one_account(server, key_a):
    before = await users(server)
    answers = await asyncio.gather(*(me(server, key_a.sign(claims("carol", name="Carol"))) for _ in range(8)))
    assert {s for s, _ in answers} == {200}
    assert len({b["user"]["id"] for _, b in answers}) == 1
    assert await users(server) == before + 1


@pytest.mark.parametrize("config_overrides", [{"jwt_auto_provision": False}], indirect=True)
async def test_without_auto_provisioning_an_unknown_identity_is_401(server, key_a):
    before = await users(server)
    status, body = await me(server, key_a.sign(claims("dave")))
    assert status == 401 and "not linked" in body["error"]["reason"], body
    assert await users(server) == before
