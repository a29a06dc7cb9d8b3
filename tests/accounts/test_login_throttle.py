"""Login and sign-up throttling (server/accounts/throttle.py, docs/SECURITY.md): failed logins per
(username, address), per address and per username, 429 with Retry-After, shared through Redis."""
from __future__ import annotations

import asyncio
import json
import os
import secrets

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.dbutil import test_database_url as database_under_test
from tests.procserver import procs  # noqa: F401  (fixture)

PAIR, PER_ADDRESS, PER_USER = 3, 6, 5


@pytest.fixture
def config_overrides():
    """Small budgets so a test spends them in a few requests."""
    return {"login_failures_per_user_address": PAIR, "login_failures_per_address": PER_ADDRESS,
            "login_failures_per_user": PER_USER, "signups_per_address_per_hour": 2}


async def post(base_url: str, path: str, body: dict, source: str = "127.0.0.1"):
    """POST JSON from the loopback address ``source`` (a real client address, not a header)."""
    req = HTTPRequest(base_url + path, method="POST", body=json.dumps(body),
                      headers={"Content-Type": "application/json"}, network_interface=source,
                      request_timeout=30)
    return await AsyncHTTPClient().fetch(req, raise_error=False)


async def login(server, username: str, password: str, source: str = "127.0.0.1") -> int:
    return (await post(server.base_url, "/api/auth/login", {"username": username, "password": password}, source)).code


def assert_throttled(resp, window_s: int = 900) -> None:
    assert resp.code == 429, resp.body
    assert json.loads(resp.body)["error"]["code"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= window_s


async def test_failed_logins_for_one_account_get_429_with_retry_after(server):
    """After the (username, address) budget of failures, even the right password gets 429 with Retry-After, before it is checked."""
    await server.user("gina")
    assert [await login(server, "gina", "wrong-guess") for _ in range(PAIR)] == [401] * PAIR
    resp = await post(server.base_url, "/api/auth/login", {"username": "gina", "password": "password1"})
    assert_throttled(resp)
    assert "try again in" in json.loads(resp.body)["error"]["reason"]


async def test_successful_logins_spend_nothing(server):
    """A right password spends no budget and clears the (username, address) failures: typos then a success then typos again are not throttled."""
    await server.user("gina")
    for _ in range(2):  # 4 typos in all: more than PAIR, fewer than PER_ADDRESS and PER_USER
        assert [await login(server, "gina", "typo-typo") for _ in range(PAIR - 1)] == [401] * (PAIR - 1)
        assert [await login(server, "gina", "password1") for _ in range(4)] == [200] * 4


async def test_concurrent_guesses_cannot_outrun_the_budget(server):
    """Twenty wrong passwords sent at once: at most the budget are checked (401), the rest are refused (429)."""
    await server.user("gina")
    codes = await asyncio.gather(*(login(server, "gina", f"guess-{i}") for i in range(20)))
    assert codes.count(401) == PAIR and codes.count(429) == 20 - PAIR, codes


async def test_attack_from_elsewhere_does_not_lock_the_user_out(server):
    """An attacker spending the username's budget from other addresses is throttled; the user still signs in from an address they used before."""
    await server.user("gina")
    assert await login(server, "gina", "password1", "127.0.0.1") == 200  # the user's usual address
    codes = [await login(server, "gina", "guess", f"127.0.0.{10 + i // 2}") for i in range(2 * PER_USER)]
    assert codes[:PER_USER] == [401] * PER_USER and set(codes[PER_USER:]) == {429}, codes
    assert await login(server, "gina", "password1", "127.0.0.1") == 200
    # A new address gets the username's budget, which the attack spent.
    assert_throttled(await post(server.base_url, "/api/auth/login", {"username": "gina", "password": "password1"},
                                "127.0.0.99"))


async def test_spraying_one_address_over_many_usernames(server):
    """One address failing across many usernames is throttled after its budget; another address is not."""
    for name in ("u1", "u2", "u3", "u4", "u5"):
        await server.user(name)
    codes = [await login(server, f"u{1 + i % 5}", "Spring2024!", "127.0.0.7") for i in range(PER_ADDRESS + 2)]
    assert codes[:PER_ADDRESS] == [401] * PER_ADDRESS and codes[PER_ADDRESS:] == [429, 429], codes
    assert await login(server, "u1", "password1", "127.0.0.8") == 200


@pytest.mark.parametrize("config_overrides", [{"login_failures_per_user_address": 2, "login_window_s": 1}])
async def test_budget_returns_when_its_window_ends(server):
    """A spent budget passes again once Retry-After seconds have gone by."""
    await server.user("gina")
    assert [await login(server, "gina", "guess") for _ in range(2)] == [401, 401]
    resp = await post(server.base_url, "/api/auth/login", {"username": "gina", "password": "password1"})
    assert_throttled(resp, window_s=1)
    await asyncio.sleep(int(resp.headers["Retry-After"]) + 0.2)
    assert await login(server, "gina", "password1") == 200


async def test_signups_throttled_per_address(server):
    """Sign-ups from one address past its hourly budget get 429 with Retry-After; another address may still sign up."""
    def body(name):
        return {"username": name, "password": "violet-ladder-42"}
    assert (await post(server.base_url, "/api/auth/register", body("s1"), "127.0.0.5")).code == 201
    assert (await post(server.base_url, "/api/auth/register", body("s2"), "127.0.0.5")).code == 201
    assert_throttled(await post(server.base_url, "/api/auth/register", body("s3"), "127.0.0.5"), window_s=3600)
    assert (await post(server.base_url, "/api/auth/register", body("s3"), "127.0.0.6")).code == 201


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="the Redis pass of .ci/run")
async def test_budgets_are_kept_in_redis(server):
    """With REDIS_URL the failure counters live in Redis under REDIS_PREFIX (so every process sees them)."""
    await server.user("gina")
    assert await login(server, "gina", "guess") == 401
    keys = await server.deps.bus.redis.keys(f"{server.deps.config.redis_prefix}:limits*")
    assert any(b"login-pair" in k for k in keys), keys


@pytest.mark.skipif(not (database_under_test() or "").startswith("postgresql") or not os.environ.get("TEST_REDIS_URL"),
                    reason="several web processes need PostgreSQL and Redis (the second pass of .ci/run)")
async def test_two_processes_share_one_budget(procs):  # noqa: F811
    """Failures spread over two web processes on one Redis spend one budget: the next attempt on either is refused."""
    env = {"REDIS_URL": os.environ["TEST_REDIS_URL"], "REDIS_PREFIX": "podium-throttle-" + secrets.token_hex(4),
           "LOGIN_FAILURES_PER_USER_ADDRESS": "4"}
    a, b = procs.new(extra_env=env), procs.new(extra_env=env)
    await a.register("gina", "violet-ladder-42")
    codes = [await login(srv, "gina", "guess") for srv in (a, b, a, b)]
    assert codes == [401] * 4
    assert await login(a, "gina", "violet-ladder-42") == 429
    assert await login(b, "gina", "violet-ladder-42") == 429
