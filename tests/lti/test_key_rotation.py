"""Key rotation on an LTI platform's key set (issue 17.7): the real platform
(``lti1p3platform``, tests/lti/platform.py) signs launches and rotates its key; its key set is
published by a counting JWKS endpoint on loopback (tests/jwksserver.py) with the JWKs the
library itself makes for its keys (``Registration.get_jwk``: the same ``kid`` it signs with).
Podium fetches it through the shared bounded cache (server/accounts/jwks.py)."""
from __future__ import annotations

import asyncio
import secrets
import time

import jwt
import pytest
from lti1p3platform.registration import Registration

from server.db import lti as q
from tests.jwksserver import JwksServer
from tests.lti.platform import Platform, Scenario
from tests.lti.test_launch import fetch, landing, platform_form

REFETCH_S = 0.4


@pytest.fixture
def config_overrides():
    return {"jwks_refetch_s": REFETCH_S, "jwks_cache_s": 60.0}


@pytest.fixture
def rotating_lms(server, io_loop):
    platform = Platform(server.base_url).start()
    keys = JwksServer([Registration.get_jwk(platform.public_pem)], cache_control="max-age=1")

    async def register():
        async with server.deps.db.write() as s:
            await q.add_platform(s, platform.issuer, platform.client_id, [platform.deployment_id],
                                 platform.base + "/authorize", keys.url, platform.base + "/token", [platform.base])

    io_loop.run_sync(register)
    yield platform, keys
    platform.stop()
    keys.stop()

    async def unregister():
        async with server.deps.db.write() as s:
            for p in await q.platforms_of(s, platform.issuer):
                await q.remove_platform(s, p.id)

    io_loop.run_sync(unregister)


async def post(lms: Platform, fields: dict):
    return await fetch(lms.tool_base + "/lti/launch", "POST", fields)


async def test_platform_rotates_its_key(server, rotating_lms):
    lms, keys = rotating_lms
    _, first = await platform_form(lms, Scenario("u-1"))
    _, held_a = await platform_form(lms, Scenario("u-2"))  # signed with A, posted later
    _, late_a = await platform_form(lms, Scenario("u-3"))
    landing(await post(lms, first))
    assert keys.requests == 1
    old_jwk = Registration.get_jwk(lms.public_pem)
    lms.rotate_key()  # the platform signs with B from now on and publishes A and B
    new_jwk = Registration.get_jwk(lms.public_pem)
    assert new_jwk["kid"] != old_jwk["kid"]
    keys.keys = [old_jwk, new_jwk]
    await asyncio.sleep(REFETCH_S)
    resp = await post(lms, (await platform_form(lms, Scenario("u-4")))[1])
    landing(resp)  # B's unknown kid: the key set was fetched again
    assert keys.requests == 2
    keys.keys = [new_jwk]  # A withdrawn
    landing(await post(lms, held_a))  # the cached set (max-age=1) still holds A
    assert keys.requests == 2
    await asyncio.sleep(1.1)
    resp = await post(lms, late_a)
    assert resp.code == 400 and "not signed by a key of the platform" in resp.body.decode()
    assert keys.requests == 3
    landing(await post(lms, (await platform_form(lms, Scenario("u-5")))[1]))
    assert keys.requests == 3


async def test_forged_kids_do_not_flood_the_platform(server, rotating_lms):
    lms, keys = rotating_lms
    landing(await post(lms, (await platform_form(lms, Scenario("u-1")))[1]))
    forms = [(await platform_form(lms, Scenario(f"f-{i}")))[1] for i in range(30)]
    private = lms.private_pem
    for fields in forms:
        claims = jwt.decode(fields["id_token"], options={"verify_signature": False})
        fields["id_token"] = jwt.encode(claims, private, algorithm="RS256", headers={"kid": secrets.token_hex(8)})
    before, t0 = keys.requests, time.monotonic()
    answers = await asyncio.gather(*(post(lms, f) for f in forms))
    elapsed = time.monotonic() - t0
    assert {r.code for r in answers} == {400}
    assert all("not signed by a key of the platform" in r.body.decode() for r in answers)
    # at most one fetch per JWKS_REFETCH_S for all 30 unknown kids (PyJWKClient made 30)
    assert keys.requests - before <= 1 + elapsed / REFETCH_S, (keys.requests - before, elapsed)
